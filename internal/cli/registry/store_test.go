package registry

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/moby/moby/api/types/registry"
)

// dirs gives the test its own berth and docker config directories.
func dirs(t *testing.T) (own, docker string) {
	t.Helper()
	own, docker = t.TempDir(), t.TempDir()
	t.Setenv(EnvDockerConfig, docker)
	return own, docker
}

func writeConfig(t *testing.T, dir, content string) string {
	t.Helper()
	p := filepath.Join(dir, configName)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func readAuths(t *testing.T, dir string) map[string]map[string]string {
	t.Helper()
	var doc struct {
		Auths map[string]map[string]string `json:"auths"`
	}
	data, err := os.ReadFile(filepath.Join(dir, configName))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%v in %s", err, data)
	}
	return doc.Auths
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestKey(t *testing.T) {
	for in, want := range map[string]string{
		"":                            IndexServer,
		"docker.io":                   IndexServer,
		"index.docker.io":             IndexServer,
		IndexServer:                   IndexServer,
		"localhost:5000":              "localhost:5000",
		"http://localhost:5000/v2/":   "localhost:5000",
		"https://registry.example.io": "registry.example.io",
		"registry.example.io/path":    "registry.example.io",
	} {
		if got := Key(in); got != want {
			t.Errorf("Key(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStoreRoundTrip(t *testing.T) {
	own, _ := dirs(t)
	// Keys the store does not manage survive a write unchanged.
	writeConfig(t, own, `{"psFormat": "table {{.ID}}", "auths": {"other.io": {"auth": "`+b64("o:p")+`", "email": "x@y"}}}`)
	var warn bytes.Buffer
	s := Open(own, &warn)
	if written, err := s.Save(registry.AuthConfig{Username: "alice", Password: "s3:cret", ServerAddress: "localhost:5000"}); err != nil || !written {
		t.Fatal(written, err)
	}
	// The same credentials again leave the file alone.
	if written, err := Open(own, &warn).Save(registry.AuthConfig{Username: "alice", Password: "s3:cret", ServerAddress: "localhost:5000"}); err != nil || written {
		t.Errorf("unchanged credentials: written %v, %v", written, err)
	}
	p := filepath.Join(own, configName)
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config mode %v, %v; want 0600", fi.Mode(), err)
	}
	data, _ := os.ReadFile(p)
	var doc struct {
		PsFormat string
		Auths    map[string]map[string]string
	}
	if err := json.Unmarshal(data, &doc); err != nil || doc.PsFormat != "table {{.ID}}" || doc.Auths["other.io"]["email"] != "x@y" {
		t.Errorf("unmanaged content lost (%v):\n%s", err, data)
	}
	auths := readAuths(t, own)
	if got := auths["localhost:5000"]; got["auth"] != b64("alice:s3:cret") || len(got) != 1 {
		t.Errorf("stored entry %v", got)
	}

	got := Open(own, &warn).Get("localhost:5000")
	want := registry.AuthConfig{Username: "alice", Password: "s3:cret", ServerAddress: "localhost:5000"}
	if got != want {
		t.Errorf("Get = %+v, want %+v", got, want)
	}
	// An entry stored under a URL is found by host name, as docker finds it.
	writeConfig(t, own, `{"auths": {"https://legacy.io/v1/": {"auth": "`+b64("l:p")+`"}}}`)
	if got := Open(own, &warn).Get("legacy.io"); got.Username != "l" || got.ServerAddress != "https://legacy.io/v1/" {
		t.Errorf("legacy entry: %+v", got)
	}
	if warn.Len() != 0 {
		t.Errorf("warnings: %q", warn.String())
	}
}

func TestStoreIdentityToken(t *testing.T) {
	own, _ := dirs(t)
	s := Open(own, &bytes.Buffer{})
	if _, err := s.Save(registry.AuthConfig{Username: "alice", IdentityToken: "tok", ServerAddress: IndexServer}); err != nil {
		t.Fatal(err)
	}
	e := readAuths(t, own)[IndexServer]
	if e["auth"] != b64("alice:") || e["identitytoken"] != "tok" {
		t.Errorf("entry %v", e)
	}
	if got := Open(own, &bytes.Buffer{}).Get(IndexServer); got.IdentityToken != "tok" || got.Username != "alice" || got.Password != "" {
		t.Errorf("Get = %+v", got)
	}
}

func TestStoreAtomicWrite(t *testing.T) {
	own, _ := dirs(t)
	p := writeConfig(t, own, `{"auths": {}}`)
	before, _ := os.Stat(p)
	if _, err := Open(own, &bytes.Buffer{}).Save(registry.AuthConfig{Username: "u", Password: "p", ServerAddress: "r.io"}); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(p)
	// A new inode: the file was renamed into place, not rewritten.
	if before.Sys().(*syscall.Stat_t).Ino == after.Sys().(*syscall.Stat_t).Ino {
		t.Error("config rewritten in place")
	}
	entries, _ := os.ReadDir(own)
	if len(entries) != 1 {
		t.Errorf("files left beside the config: %v", entries)
	}
	// A config reached through a symbolic link stays a link.
	target := filepath.Join(t.TempDir(), "real.json")
	if err := os.Rename(p, target); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(own, &bytes.Buffer{}).Erase("r.io"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(p); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("link replaced: %v %v", fi.Mode(), err)
	}
	if data, _ := os.ReadFile(target); strings.Contains(string(data), "r.io") {
		t.Error("entry not erased through the link")
	}
}

func TestStoreCorruptConfigUntouched(t *testing.T) {
	own, _ := dirs(t)
	p := writeConfig(t, own, `{"auths": `)
	var warn bytes.Buffer
	s := Open(own, &warn)
	if got := s.Get("r.io"); got != (registry.AuthConfig{}) {
		t.Errorf("Get from a corrupt file: %+v", got)
	}
	if !strings.HasPrefix(warn.String(), "WARNING: Error loading config file: "+p) {
		t.Errorf("warning %q", warn.String())
	}
	if _, err := s.Save(registry.AuthConfig{Username: "u", Password: "p", ServerAddress: "r.io"}); err == nil {
		t.Error("saved over a corrupt config")
	}
	if _, err := s.Erase("r.io"); err == nil {
		t.Error("erased from a corrupt config")
	}
	if data, _ := os.ReadFile(p); string(data) != `{"auths": ` {
		t.Errorf("corrupt config rewritten: %q", data)
	}
}

func TestStoreDockerFallback(t *testing.T) {
	own, docker := dirs(t)
	writeConfig(t, docker, `{"auths": {"`+IndexServer+`": {"auth": "`+b64("dockeruser:dpw")+`"}, "r.io": {"auth": "`+b64("d:d")+`"}}, "credsStore": "desktop"}`)
	writeConfig(t, own, `{"auths": {"r.io": {"auth": "`+b64("berth:b")+`"}}}`)
	var warn bytes.Buffer
	s := Open(own, &warn)
	if got := s.Get(IndexServer); got.Username != "dockeruser" || got.Password != "dpw" || got.ServerAddress != IndexServer {
		t.Errorf("fallback: %+v", got)
	}
	if !strings.Contains(warn.String(), `credential helper "desktop"`) || !strings.Contains(warn.String(), "not supported") {
		t.Errorf("no helper warning: %q", warn.String())
	}
	// berth's own entry wins over docker's.
	if got := s.Get("r.io"); got.Username != "berth" {
		t.Errorf("own entry: %+v", got)
	}
	if got := s.Get("none.io"); got != (registry.AuthConfig{}) {
		t.Errorf("unknown registry: %+v", got)
	}
	if path, ok := s.InDockerConfig(IndexServer); !ok || path != filepath.Join(docker, configName) {
		t.Errorf("InDockerConfig = %q %v", path, ok)
	}
	// Writing goes to berth's file only.
	if _, err := s.Save(registry.AuthConfig{Username: "n", Password: "p", ServerAddress: "new.io"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := readAuths(t, docker)["new.io"]; ok {
		t.Error("docker's config written")
	}
}

func TestEncode(t *testing.T) {
	got, err := Encode(registry.AuthConfig{Username: "a", Password: "p?>", ServerAddress: "r.io"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := base64.URLEncoding.DecodeString(got)
	if err != nil {
		t.Fatalf("not base64url: %q", got)
	}
	var back registry.AuthConfig
	if err := json.Unmarshal(b, &back); err != nil || back != (registry.AuthConfig{Username: "a", Password: "p?>", ServerAddress: "r.io"}) {
		t.Errorf("decoded %s: %v", b, err)
	}
	if empty, _ := Encode(registry.AuthConfig{}); empty != "e30=" {
		t.Errorf("empty credentials encode as %q", empty)
	}
}
