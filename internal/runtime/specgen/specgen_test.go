package specgen

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestDefaultFields(t *testing.T) {
	s := Default()
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"ociVersion", s.Version, specs.Version},
		{"args", s.Process.Args, []string{"sh"}},
		{"terminal", s.Process.Terminal, false},
		{"user", s.Process.User, specs.User{}},
		{"cwd", s.Process.Cwd, "/"},
		{"env", s.Process.Env, []string{"PATH=" + DefaultPath, "TERM=xterm"}},
		{"noNewPrivileges", s.Process.NoNewPrivileges, true},
		{"rlimits", s.Process.Rlimits, []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}}},
		{"root path", s.Root.Path, "rootfs"},
		{"root readonly", s.Root.Readonly, false},
		{"hostname", s.Hostname, "berth"},
		{"bounding caps", s.Process.Capabilities.Bounding, DefaultCapabilities()},
		{"effective caps", s.Process.Capabilities.Effective, DefaultCapabilities()},
		{"permitted caps", s.Process.Capabilities.Permitted, DefaultCapabilities()},
		{"inheritable caps", len(s.Process.Capabilities.Inheritable), 0},
		{"ambient caps", len(s.Process.Capabilities.Ambient), 0},
		{"device cgroup", s.Linux.Resources.Devices, []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}},
		{"cgroupsPath", s.Linux.CgroupsPath, ""},
		{"seccomp", s.Linux.Seccomp, (*specs.LinuxSeccomp)(nil)},
		{"uid mappings", len(s.Linux.UIDMappings), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %#v, want %#v", tt.got, tt.want)
			}
		})
	}
}

func TestDefaultCapabilities(t *testing.T) {
	caps := DefaultCapabilities()
	if len(caps) != 14 {
		t.Errorf("%d capabilities, want Docker's 14: %v", len(caps), caps)
	}
	for _, c := range []string{"CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_KILL", "CAP_AUDIT_WRITE", "CAP_SETPCAP", "CAP_MKNOD"} {
		if !slices.Contains(caps, c) {
			t.Errorf("missing %s", c)
		}
	}
	for _, c := range []string{"CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_MODULE", "CAP_DAC_READ_SEARCH"} {
		if slices.Contains(caps, c) {
			t.Errorf("%s must not be a default capability", c)
		}
	}
}

func TestDefaultNamespaces(t *testing.T) {
	var got []specs.LinuxNamespaceType
	for _, ns := range Default().Linux.Namespaces {
		if ns.Path != "" {
			t.Errorf("namespace %s has a path %q", ns.Type, ns.Path)
		}
		got = append(got, ns.Type)
	}
	want := []specs.LinuxNamespaceType{
		specs.PIDNamespace, specs.NetworkNamespace, specs.IPCNamespace,
		specs.UTSNamespace, specs.MountNamespace, specs.CgroupNamespace,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("namespaces %v, want %v", got, want)
	}
}

func TestDefaultMounts(t *testing.T) {
	tests := []struct {
		dest, typ, source string
		options           []string // must all be present
		readonly          bool
	}{
		{"/proc", "proc", "proc", nil, false},
		{"/dev", "tmpfs", "tmpfs", []string{"nosuid", "mode=755"}, false},
		{"/dev/pts", "devpts", "devpts", []string{"newinstance", "ptmxmode=0666", "gid=5"}, false},
		{"/dev/shm", "tmpfs", "shm", []string{"nosuid", "noexec", "nodev", "mode=1777"}, false},
		{"/dev/mqueue", "mqueue", "mqueue", []string{"nosuid", "noexec", "nodev"}, false},
		{"/sys", "sysfs", "sysfs", []string{"nosuid", "noexec", "nodev"}, true},
		{"/sys/fs/cgroup", "cgroup", "cgroup", []string{"nosuid", "noexec", "nodev"}, true},
	}
	mounts := Default().Mounts
	if len(mounts) != len(tests) {
		t.Fatalf("%d mounts, want %d: %+v", len(mounts), len(tests), mounts)
	}
	for i, tt := range tests {
		t.Run(tt.dest, func(t *testing.T) {
			m := mounts[i]
			if m.Destination != tt.dest || m.Type != tt.typ || m.Source != tt.source {
				t.Fatalf("mount %d = %s %s %s, want %s %s %s", i, m.Destination, m.Type, m.Source, tt.dest, tt.typ, tt.source)
			}
			for _, o := range tt.options {
				if !slices.Contains(m.Options, o) {
					t.Errorf("option %q missing from %v", o, m.Options)
				}
			}
			if got := slices.Contains(m.Options, "ro"); got != tt.readonly {
				t.Errorf("read-only = %v, want %v", got, tt.readonly)
			}
		})
	}
}

func TestDefaultMaskedAndReadonlyPaths(t *testing.T) {
	s := Default()
	tests := []struct {
		path   string
		list   []string
		listed string
	}{
		{"/proc/kcore", s.Linux.MaskedPaths, "masked"},
		{"/proc/keys", s.Linux.MaskedPaths, "masked"},
		{"/proc/timer_list", s.Linux.MaskedPaths, "masked"},
		{"/proc/sched_debug", s.Linux.MaskedPaths, "masked"},
		{"/sys/firmware", s.Linux.MaskedPaths, "masked"},
		{"/proc/acpi", s.Linux.MaskedPaths, "masked"},
		{"/proc/sys", s.Linux.ReadonlyPaths, "read-only"},
		{"/proc/sysrq-trigger", s.Linux.ReadonlyPaths, "read-only"},
		{"/proc/irq", s.Linux.ReadonlyPaths, "read-only"},
		{"/proc/bus", s.Linux.ReadonlyPaths, "read-only"},
		{"/proc/fs", s.Linux.ReadonlyPaths, "read-only"},
	}
	for _, tt := range tests {
		if !slices.Contains(tt.list, tt.path) {
			t.Errorf("%s is not %s: %v", tt.path, tt.listed, tt.list)
		}
	}
	for _, p := range s.Linux.MaskedPaths {
		if slices.Contains(s.Linux.ReadonlyPaths, p) {
			t.Errorf("%s is both masked and read-only", p)
		}
	}
}

func TestDefaultIsIndependent(t *testing.T) {
	a, b := Default(), Default()
	a.Process.Args[0] = "changed"
	a.Process.Capabilities.Bounding[0] = "changed"
	a.Mounts[0].Destination = "changed"
	a.Linux.MaskedPaths[0] = "changed"
	a.Linux.Namespaces[0].Path = "changed"
	if !reflect.DeepEqual(b, Default()) {
		t.Error("changing one default configuration changed another")
	}
	if &a.Process.Capabilities.Bounding[0] == &a.Process.Capabilities.Effective[0] {
		t.Error("capability sets share storage")
	}
}

func TestDefaultJSONRoundTrip(t *testing.T) {
	data, err := json.Marshal(Default())
	if err != nil {
		t.Fatal(err)
	}
	var got specs.Spec
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, Default()) {
		t.Errorf("round trip changed the configuration:\n%s", data)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"ociVersion", "process", "root", "hostname", "mounts", "linux"} {
		if _, ok := raw[key]; !ok {
			t.Errorf("config.json lacks %q", key)
		}
	}
}
