// Package registry holds the registry commands (login, logout) and the
// credential store the image commands draw on: berth's config.json,
// Docker-compatible, with docker's own config.json as a read-only
// fallback.
package registry

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/moby/moby/api/types/registry"
)

// IndexServer is the config.json key of Docker Hub's credentials.
const IndexServer = "https://index.docker.io/v1/"

// EnvDockerConfig names docker's config directory, read as a fallback.
const EnvDockerConfig = "DOCKER_CONFIG"

// DockerConfigDir is $DOCKER_CONFIG, else ~/.docker.
func DockerConfigDir() string {
	if d := os.Getenv(EnvDockerConfig); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".docker")
}

// Store is the credential store. Credentials are read from berth's
// config.json, then from docker's when berth's has no entry for the
// registry; they are written to berth's only. Credential helpers are not
// supported: a file that names one gets a warning and is used as a plain
// file.
type Store struct {
	own     *configFile
	ownErr  error
	docker  *configFile
	warn    io.Writer
	warned  map[string]bool
	ownPath string
}

// Open opens the store of the berth config directory dir; warnings go
// to warn. A file that cannot be read is reported when used.
func Open(dir string, warn io.Writer) *Store {
	s := &Store{warn: warn, warned: map[string]bool{}, ownPath: filepath.Join(dir, configName)}
	s.own, s.ownErr = loadConfig(s.ownPath)
	if ddir := DockerConfigDir(); ddir != "" {
		dpath := filepath.Join(ddir, configName)
		if !samePath(dpath, s.ownPath) {
			var err error
			if s.docker, err = loadConfig(dpath); err != nil {
				s.warnOnce("load "+dpath, fmt.Sprintf("WARNING: Error loading config file: %s: %v", dpath, err))
			}
		}
	}
	return s
}

func samePath(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	ai, aerr := os.Stat(a)
	bi, berr := os.Stat(b)
	return aerr == nil && berr == nil && os.SameFile(ai, bi)
}

func (s *Store) warnOnce(key, msg string) {
	if s.warned[key] {
		return
	}
	s.warned[key] = true
	fmt.Fprintln(s.warn, msg)
}

// checkHelper warns when c assigns a credential helper to key.
func (s *Store) checkHelper(c *configFile, key string) {
	if h := c.helper(key); h != "" {
		s.warnOnce("helper "+c.path+" "+h, fmt.Sprintf("WARNING: credential helper %q named in %s is not supported; using the credentials stored in the file", h, c.path))
	}
}

// Get returns the credentials for the registry key (a host[:port], or
// IndexServer for Docker Hub), with ServerAddress set to the entry they
// came from; an empty AuthConfig when there are none.
func (s *Store) Get(key string) registry.AuthConfig {
	files := []*configFile{s.docker}
	if s.ownErr != nil {
		s.warnOnce("load "+s.ownPath, fmt.Sprintf("WARNING: Error loading config file: %s: %v", s.ownPath, s.ownErr))
	} else {
		files = []*configFile{s.own, s.docker}
	}
	for _, c := range files {
		if c == nil {
			continue
		}
		s.checkHelper(c, key)
		a, ok, err := c.get(key)
		if err != nil {
			s.warnOnce("entry "+err.Error(), "WARNING: "+err.Error())
			continue
		}
		if ok {
			return a
		}
	}
	return registry.AuthConfig{}
}

// InDockerConfig reports whether docker's config file, not berth's, holds
// credentials for key, and its path.
func (s *Store) InDockerConfig(key string) (string, bool) {
	if s.docker == nil {
		return "", false
	}
	_, ok, _ := s.docker.get(key)
	return s.docker.path, ok
}

// Path is berth's config file.
func (s *Store) Path() string { return s.ownPath }

// Save stores a's credentials under a.ServerAddress in berth's file and
// reports whether the file was written: credentials already stored as
// they are leave it alone.
func (s *Store) Save(a registry.AuthConfig) (bool, error) {
	if s.ownErr != nil {
		return false, fmt.Errorf("loading config file: %s: %w", s.ownPath, s.ownErr)
	}
	s.checkHelper(s.own, a.ServerAddress)
	changed, err := s.own.set(a.ServerAddress, a)
	if err != nil || !changed {
		return false, err
	}
	return true, s.own.save()
}

// Erase removes the entries under keys from berth's file and reports
// whether there were any.
func (s *Store) Erase(keys ...string) (bool, error) {
	if s.ownErr != nil {
		return false, fmt.Errorf("loading config file: %s: %w", s.ownPath, s.ownErr)
	}
	removed := false
	for _, k := range keys {
		if s.own.remove(k) {
			removed = true
		}
	}
	if !removed {
		return false, nil
	}
	return true, s.own.save()
}
