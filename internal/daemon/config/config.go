// Package config is berthd's configuration: daemon.json with Docker's key
// names, merged with command-line flags the way dockerd merges them (a
// setting given both ways is an error, an unknown key is an error).
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"sort"
	"strings"
)

// Defaults.
const (
	DefaultHost       = "unix:///run/berth/berth.sock"
	DefaultDataRoot   = "/var/lib/berth"
	DefaultExecRoot   = "/run/berth"
	DefaultConfigFile = "/etc/berth/daemon.json"
	DefaultPidfile    = "/run/berth/berthd.pid"
)

// Config holds every daemon.json key berth knows. Keys berth reads but does
// not act on yet are kept so that a Docker configuration loads unchanged.
type Config struct {
	Hosts     []string `json:"hosts,omitempty"`
	DataRoot  string   `json:"data-root,omitempty"`
	ExecRoot  string   `json:"exec-root,omitempty"`
	Pidfile   string   `json:"pidfile,omitempty"`
	LogLevel  string   `json:"log-level,omitempty"`
	Debug     bool     `json:"debug,omitempty"`
	Group     string   `json:"group,omitempty"`
	TLS       bool     `json:"tls,omitempty"`
	TLSVerify bool     `json:"tlsverify,omitempty"`
	TLSCACert string   `json:"tlscacert,omitempty"`
	TLSCert   string   `json:"tlscert,omitempty"`
	TLSKey    string   `json:"tlskey,omitempty"`
	Labels    []string `json:"labels,omitempty"`

	RegistryMirrors    []string `json:"registry-mirrors,omitempty"`
	InsecureRegistries []string `json:"insecure-registries,omitempty"`
	// RegistryCertsDir holds per-registry certificates (berth's own key;
	// dockerd uses /etc/docker/certs.d).
	RegistryCertsDir string `json:"registry-certs-dir,omitempty"`

	Bridge              string            `json:"bridge,omitempty"`
	BIP                 string            `json:"bip,omitempty"`
	FixedCIDR           string            `json:"fixed-cidr,omitempty"`
	MTU                 int               `json:"mtu,omitempty"`
	AllowDirectRouting  bool              `json:"allow-direct-routing,omitempty"`
	DefaultAddressPools []AddressPool     `json:"default-address-pools,omitempty"`
	DNS                 []string          `json:"dns,omitempty"`
	DNSOptions          []string          `json:"dns-opts,omitempty"`
	DNSSearch           []string          `json:"dns-search,omitempty"`
	IPForward           *bool             `json:"ip-forward,omitempty"`
	IPMasq              *bool             `json:"ip-masq,omitempty"`
	IPTables            *bool             `json:"iptables,omitempty"`
	StorageDriver       string            `json:"storage-driver,omitempty"`
	StorageOpts         []string          `json:"storage-opts,omitempty"`
	LogDriver           string            `json:"log-driver,omitempty"`
	LogOpts             map[string]string `json:"log-opts,omitempty"`
	LiveRestore         bool              `json:"live-restore,omitempty"`
	MaxConcurrentDL     int               `json:"max-concurrent-downloads,omitempty"`
	MaxConcurrentUL     int               `json:"max-concurrent-uploads,omitempty"`
	ShutdownTimeout     int               `json:"shutdown-timeout,omitempty"`
	DefaultUlimits      map[string]any    `json:"default-ulimits,omitempty"`
	Experimental        bool              `json:"experimental,omitempty"`
	Features            map[string]bool   `json:"features,omitempty"`
	ExecOpts            []string          `json:"exec-opts,omitempty"`
	SeccompProfile      string            `json:"seccomp-profile,omitempty"`
	UsernsRemap         string            `json:"userns-remap,omitempty"`
	CgroupParent        string            `json:"cgroup-parent,omitempty"`
	DefaultRuntime      string            `json:"default-runtime,omitempty"`
	Init                bool              `json:"init,omitempty"`
}

// AddressPool is one entry of default-address-pools.
type AddressPool struct {
	Base string `json:"base"`
	Size int    `json:"size"`
}

// Default returns the configuration without file or flags.
func Default() *Config {
	return &Config{
		Hosts:    []string{DefaultHost},
		DataRoot: DefaultDataRoot,
		ExecRoot: DefaultExecRoot,
		Pidfile:  DefaultPidfile,
		LogLevel: "info",
	}
}

// keys lists the daemon.json keys of Config.
func keys() map[string]bool {
	out := map[string]bool{}
	t := reflect.TypeOf(Config{})
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		out[name] = true
	}
	return out
}

// Parse reads a daemon.json document; it returns the configuration and the
// keys it set. Unknown keys are an error, with dockerd's wording.
func Parse(data []byte) (*Config, map[string]bool, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, nil, fmt.Errorf("invalid configuration file: %w", err)
	}
	known := keys()
	var unknown []string
	set := map[string]bool{}
	for k := range raw {
		if !known[k] {
			unknown = append(unknown, k)
		}
		set[k] = true
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, nil, fmt.Errorf("the following directives don't match any configuration option: %s", strings.Join(unknown, ", "))
	}
	var c Config
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&c); err != nil {
		return nil, nil, fmt.Errorf("invalid configuration file: %w", err)
	}
	return &c, set, nil
}

// Load reads the configuration file at path. A missing file is no error
// when mustExist is false (the default path), as with dockerd.
func Load(path string, mustExist bool) (*Config, map[string]bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !mustExist {
		return &Config{}, map[string]bool{}, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("unable to configure the daemon: %w", err)
	}
	c, set, err := Parse(data)
	if err != nil {
		return nil, nil, fmt.Errorf("unable to configure the daemon with file %s: %w", path, err)
	}
	return c, set, nil
}

// Flag is a command-line setting with its daemon.json key.
type Flag struct {
	Key   string
	Value string // as given, for the conflict message
	Apply func(*Config)
}

// Merge applies the file's settings over the defaults, then the flags;
// a key given both as a flag and in the file is an error, as in dockerd.
func Merge(file *Config, fileSet map[string]bool, flags []Flag) (*Config, error) {
	var conflicts []string
	for _, f := range flags {
		if fileSet[f.Key] {
			conflicts = append(conflicts, fmt.Sprintf("%s: (from flag: %s, from file: %s)", f.Key, f.Value, fileValue(file, f.Key)))
		}
	}
	if len(conflicts) > 0 {
		return nil, fmt.Errorf("the following directives are specified both as a flag and in the configuration file: %s", strings.Join(conflicts, ", "))
	}
	c := Default()
	overlay(c, file, fileSet)
	for _, f := range flags {
		f.Apply(c)
	}
	return c, nil
}

// overlay copies the fields of src that the file set onto dst.
func overlay(dst, src *Config, set map[string]bool) {
	dv, sv := reflect.ValueOf(dst).Elem(), reflect.ValueOf(src).Elem()
	t := dv.Type()
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if set[name] {
			dv.Field(i).Set(sv.Field(i))
		}
	}
}

func fileValue(c *Config, key string) string {
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == key {
			return fmt.Sprint(v.Field(i).Interface())
		}
	}
	return ""
}
