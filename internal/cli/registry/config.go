package registry

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/moby/moby/api/types/registry"
)

// configName is the client configuration file in a config directory.
const configName = "config.json"

// configFile is a Docker-compatible config.json. Only the credential
// entries are interpreted; every other key, and every entry not changed,
// is written back as it was read.
type configFile struct {
	path        string
	doc         map[string]json.RawMessage
	auths       map[string]json.RawMessage
	credsStore  string
	credHelpers map[string]string
}

// authEntry is one "auths" entry as docker writes it: the user name and
// password as base64("user:password") and an optional identity token.
type authEntry struct {
	Auth          string `json:"auth,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

// loadConfig reads path; a missing file is an empty configuration.
func loadConfig(path string) (*configFile, error) {
	c := &configFile{path: path, doc: map[string]json.RawMessage{}, auths: map[string]json.RawMessage{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return c, nil
	}
	if err := json.Unmarshal(data, &c.doc); err != nil {
		return nil, err
	}
	for key, dst := range map[string]any{"auths": &c.auths, "credsStore": &c.credsStore, "credHelpers": &c.credHelpers} {
		if raw, ok := c.doc[key]; ok {
			if err := json.Unmarshal(raw, dst); err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
		}
	}
	if c.auths == nil {
		c.auths = map[string]json.RawMessage{}
	}
	return c, nil
}

// helper names the credential helper the file assigns to a registry, if
// any: its credHelpers entry, else its credsStore.
func (c *configFile) helper(key string) string {
	if h := c.credHelpers[convertToHostname(key)]; h != "" {
		return h
	}
	if h := c.credHelpers[key]; h != "" {
		return h
	}
	return c.credsStore
}

// get returns the credentials stored under key, or under an entry whose
// host name is key's (entries written as URLs by older clients), as
// docker's file store looks them up. Entries without credentials (the
// markers a credential helper leaves) do not count.
func (c *configFile) get(key string) (registry.AuthConfig, bool, error) {
	raw, ok := c.auths[key]
	found := key
	if !ok {
		host := convertToHostname(key)
		for k, r := range c.auths {
			if convertToHostname(k) == host {
				raw, found, ok = r, k, true
				break
			}
		}
	}
	if !ok {
		return registry.AuthConfig{}, false, nil
	}
	var e authEntry
	if err := json.Unmarshal(raw, &e); err != nil {
		return registry.AuthConfig{}, false, fmt.Errorf("%s: auths[%q]: %w", c.path, found, err)
	}
	a := registry.AuthConfig{ServerAddress: found, IdentityToken: e.IdentityToken, RegistryToken: e.RegistryToken}
	if e.Auth != "" {
		user, pass, err := decodeAuth(e.Auth)
		if err != nil {
			return registry.AuthConfig{}, false, fmt.Errorf("%s: auths[%q]: %w", c.path, found, err)
		}
		a.Username, a.Password = user, pass
	}
	if a.Username == "" && a.Password == "" && a.IdentityToken == "" && a.RegistryToken == "" {
		return registry.AuthConfig{}, false, nil
	}
	return a, true, nil
}

// set stores a's credentials under key and reports whether that changed
// the entry.
func (c *configFile) set(key string, a registry.AuthConfig) (bool, error) {
	e := authEntry{IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
	if a.Username != "" || a.Password != "" {
		e.Auth = base64.StdEncoding.EncodeToString([]byte(a.Username + ":" + a.Password))
	}
	if raw, ok := c.auths[key]; ok {
		var old authEntry
		if json.Unmarshal(raw, &old) == nil && old == e {
			return false, nil
		}
	}
	raw, err := json.Marshal(e)
	if err != nil {
		return false, err
	}
	c.auths[key] = raw
	return true, nil
}

// remove deletes the entry under key and reports whether there was one.
func (c *configFile) remove(key string) bool {
	_, ok := c.auths[key]
	delete(c.auths, key)
	return ok
}

// save writes the file atomically, readable by its owner only, creating
// the directory (0700) when needed. A symbolic link is followed, so that
// a linked config file stays linked.
func (c *configFile) save() error {
	auths, err := json.Marshal(c.auths)
	if err != nil {
		return err
	}
	c.doc["auths"] = auths
	data, err := json.MarshalIndent(c.doc, "", "\t")
	if err != nil {
		return err
	}
	path := c.path
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(data, '\n'), 0o600)
}

func decodeAuth(s string) (user, password string, err error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", "", errors.New("invalid auth configuration file")
	}
	user, password, ok := strings.Cut(string(b), ":")
	if !ok || user == "" {
		return "", "", errors.New("invalid auth configuration file")
	}
	return user, strings.Trim(password, "\x00"), nil
}

// convertToHostname reduces a registry address, possibly a URL such as
// "https://registry.example.com/v2/", to its host[:port].
func convertToHostname(addr string) string {
	if strings.Contains(addr, "://") {
		if u, err := url.Parse(addr); err == nil && u.Hostname() != "" {
			if u.Port() == "" {
				return u.Hostname()
			}
			return u.Hostname() + ":" + u.Port()
		}
	}
	host, _, _ := strings.Cut(addr, "/")
	return host
}
