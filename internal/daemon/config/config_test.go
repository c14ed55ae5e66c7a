package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		wantErr string
		check   func(*Config) bool
	}{
		{"docker keys", `{"data-root":"/d","registry-mirrors":["https://m"],"insecure-registries":["h:5000"],"bip":"10.1.0.1/24","mtu":1400,"default-address-pools":[{"base":"10.10.0.0/16","size":24}]}`, "",
			func(c *Config) bool {
				return c.DataRoot == "/d" && c.RegistryMirrors[0] == "https://m" && c.MTU == 1400 && c.DefaultAddressPools[0].Size == 24
			}},
		{"unknown keys", `{"data-root":"/d","bogus":1,"alsobad":true}`, "the following directives don't match any configuration option: alsobad, bogus", nil},
		{"bad JSON", `{"data-root":`, "invalid configuration file", nil},
		{"wrong type", `{"mtu":"big"}`, "invalid configuration file", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := Parse([]byte(tt.json))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !tt.check(c) {
				t.Fatalf("Parse = %+v, %v", c, err)
			}
		})
	}
}

func TestMerge(t *testing.T) {
	file, set, err := Parse([]byte(`{"data-root":"/from-file","log-level":"debug"}`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Merge(file, set, []Flag{{Key: "exec-root", Value: "/x", Apply: func(c *Config) { c.ExecRoot = "/x" }}})
	if err != nil {
		t.Fatal(err)
	}
	if c.DataRoot != "/from-file" || c.ExecRoot != "/x" || c.LogLevel != "debug" || !reflect.DeepEqual(c.Hosts, []string{DefaultHost}) {
		t.Errorf("merged: %+v", c)
	}
	_, err = Merge(file, set, []Flag{{Key: "data-root", Value: "/from-flag", Apply: func(c *Config) { c.DataRoot = "/from-flag" }}})
	want := "the following directives are specified both as a flag and in the configuration file: data-root: (from flag: /from-flag, from file: /from-file)"
	if err == nil || err.Error() != want {
		t.Errorf("conflict: %v\nwant %s", err, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "daemon.json")
	if _, _, err := Load(missing, false); err != nil {
		t.Errorf("missing default file: %v", err)
	}
	if _, _, err := Load(missing, true); err == nil {
		t.Error("missing explicit file accepted")
	}
	if err := os.WriteFile(missing, []byte(`{"nope":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(missing, false); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("bad file: %v", err)
	}
}
