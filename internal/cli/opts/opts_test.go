package opts

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/mount"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestValues(t *testing.T) {
	var m MemBytes
	if err := m.Set("1.5g"); err != nil || m.Value() != 1536<<20 {
		t.Errorf("1.5g: %d %v", m.Value(), err)
	}
	var s MemSwapBytes
	if err := s.Set("-1"); err != nil || s.Value() != -1 {
		t.Errorf("swap -1: %d %v", s.Value(), err)
	}
	var c NanoCPUs
	if err := c.Set("0.25"); err != nil || c.Value() != 250_000_000 {
		t.Errorf("cpus: %d %v", c.Value(), err)
	}
	if err := c.Set("0.0000000001"); err == nil {
		t.Error("too precise cpus accepted")
	}
	f := NewFilter()
	for _, v := range []string{"status=exited", "label=a=b", "Status=running"} {
		if err := f.Set(v); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.String(); got != `{"label":{"a=b":true},"status":{"exited":true,"running":true}}` {
		t.Errorf("filters %s", got)
	}
	if err := f.Set("noequals"); err == nil {
		t.Error("filter without = accepted")
	}
}

func TestValidators(t *testing.T) {
	t.Setenv("BERTH_OPTS_X", "x1")
	for _, tc := range []struct {
		fn      Validator
		in, out string
		err     string
	}{
		{ValidateEnv, "A=1", "A=1", ""},
		{ValidateEnv, "BERTH_OPTS_X", "BERTH_OPTS_X=x1", ""},
		{ValidateEnv, "BERTH_OPTS_UNSET", "BERTH_OPTS_UNSET", ""},
		{ValidateEnv, "=1", "", "invalid environment variable: =1"},
		{ValidateLabel, "a b=1", "", "label 'a b' contains whitespaces"},
		{ValidateExtraHost, "db=[::1]", "db:::1", ""},
		{ValidateExtraHost, "db:1.2.3.4", "db:1.2.3.4", ""},
		{ValidateExtraHost, "db:nope", "", `invalid IP address in add-host: "nope"`},
		{ValidateIPAddress, "1.2.3.4", "1.2.3.4", ""},
		{ValidateIPAddress, "x", "", "IP address is not correctly formatted: x"},
		{ValidateSysctl, "net.core.somaxconn=1024", "net.core.somaxconn=1024", ""},
		{ValidateSysctl, "kernel.shmmax=1", "kernel.shmmax=1", ""},
		{ValidateAttach, "STDIN", "stdin", ""},
	} {
		out, err := tc.fn(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || out != tc.out {
			t.Errorf("%q: %q %v, want %q", tc.in, out, err, tc.out)
		}
	}
}

func TestReadKVFiles(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("\xef\xbb\xbfA=1\n# c\n\n  B=two words\nC\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadKVFiles([]string{p}, []string{"D=4"}, func(k string) (string, bool) { return "looked-up", k == "C" })
	if err != nil || !reflect.DeepEqual(got, []string{"A=1", "B=two words", "C=looked-up", "D=4"}) {
		t.Errorf("%q %v", got, err)
	}
	if err := os.WriteFile(p, []byte("BAD KEY=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadKVFiles([]string{p}, nil, nil); err == nil || !strings.Contains(err.Error(), "contains whitespaces") {
		t.Errorf("whitespace key: %v", err)
	}
}

func TestMounts(t *testing.T) {
	var m Mounts
	for _, v := range []string{
		"type=volume,source=data,target=/data,volume-nocopy,volume-label=a=b",
		`"type=bind","src=/a,b",dst=/x,bind-propagation=rshared,ro=false`,
	} {
		if err := m.Set(v); err != nil {
			t.Fatalf("%q: %v", v, err)
		}
	}
	want := []mount.Mount{
		{Type: mount.TypeVolume, Source: "data", Target: "/data", VolumeOptions: &mount.VolumeOptions{NoCopy: true, Labels: map[string]string{"a": "b"}}},
		{Type: mount.TypeBind, Source: "/a,b", Target: "/x", BindOptions: &mount.BindOptions{Propagation: mount.PropagationRShared}},
	}
	if !reflect.DeepEqual(m.Value(), want) {
		t.Errorf("%+v", m.Value())
	}
	for v, msg := range map[string]string{
		"type=bind,target=/x,ro=maybe":         `invalid value for 'ro': invalid boolean value ("maybe")`,
		"type=bind,target=/x,foo=bar":          "unknown option 'foo' in 'foo=bar'",
		"target":                               "invalid field 'target' must be a key=value pair",
		"type=volume,target=/x,tmpfs-size=1m":  "cannot mix 'tmpfs-*' options with mount type 'volume'",
		"type=bind,target=/x,bind-recursive=q": `invalid value for bind-recursive: q`,
	} {
		if err := m.Set(v); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: %v, want %q", v, err, msg)
		}
	}
}

func TestParseVolumeAndPlatform(t *testing.T) {
	for in, want := range map[string]VolumeSpec{
		"/data":       {Target: "/data"},
		"/data:ro":    {Target: "/data", Mode: "ro"},
		"/a:/b":       {Source: "/a", Target: "/b"},
		"vol:/b:ro,z": {Source: "vol", Target: "/b", Mode: "ro,z"},
	} {
		got, err := ParseVolume(in)
		if err != nil || got != want {
			t.Errorf("%q: %+v %v", in, got, err)
		}
	}
	for _, bad := range []string{"rel", "a:b:c:d", "/a:/b:bogus"} {
		if _, err := ParseVolume(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for in, want := range map[string]ocispec.Platform{
		"linux/amd64":      {OS: "linux", Architecture: "amd64"},
		"linux/arm64/v8":   {OS: "linux", Architecture: "arm64", Variant: "v8"},
		"linux/aarch64/v8": {OS: "linux", Architecture: "arm64"},
		"x86_64":           {OS: "linux", Architecture: "amd64"},
	} {
		got, err := ParsePlatform(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%q: %+v %v", in, got, err)
		}
	}
}
