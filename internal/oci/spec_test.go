package oci

import (
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func baseConfig() *containertypes.Config {
	return &containertypes.Config{Hostname: "0123456789ab", Cmd: []string{"sh"}}
}

func mustSpec(t *testing.T, cfg *containertypes.Config, hc *containertypes.HostConfig) *specs.Spec {
	t.Helper()
	s, err := Spec(cfg, hc, Opts{ID: "c1", Rootfs: "/r", HostCapabilities: []string{"CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_NET_ADMIN"}})
	if err != nil {
		t.Fatalf("Spec: %v", err)
	}
	return s
}

func hasNS(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	return slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == t })
}

func mountAt(s *specs.Spec, dst string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dst {
			return &s.Mounts[i]
		}
	}
	return nil
}

func TestSpecProcess(t *testing.T) {
	cfg := baseConfig()
	cfg.Entrypoint = []string{"/entry"}
	cfg.Cmd = []string{"a", "b"}
	cfg.Env = []string{"A=1"}
	cfg.Tty = true
	cfg.WorkingDir = "/w"
	s := mustSpec(t, cfg, nil)
	if got := s.Process.Args; !slices.Equal(got, []string{"/entry", "a", "b"}) {
		t.Errorf("args %q", got)
	}
	if s.Process.Cwd != "/w" || !s.Process.Terminal || s.Hostname != "0123456789ab" {
		t.Errorf("cwd %q terminal %v hostname %q", s.Process.Cwd, s.Process.Terminal, s.Hostname)
	}
	want := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=0123456789ab", "TERM=xterm", "A=1"}
	if !slices.Equal(s.Process.Env, want) {
		t.Errorf("env %q, want %q", s.Process.Env, want)
	}
	if s.Linux.CgroupsPath != "/berth/c1" || s.Root.Path != "/r" {
		t.Errorf("cgroups path %q root %q", s.Linux.CgroupsPath, s.Root.Path)
	}
	if s.Linux.Seccomp == nil {
		t.Error("no default seccomp profile")
	}
	if _, err := Spec(&containertypes.Config{}, nil, Opts{}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("empty command: %v, want invalid argument", err)
	}
}

func TestProcessEnvKeepsImagePath(t *testing.T) {
	env := ProcessEnv(&containertypes.Config{Hostname: "h", Env: []string{"PATH=/x", "TERM=dumb"}, Tty: true})
	if want := []string{"HOSTNAME=h", "PATH=/x", "TERM=dumb"}; !slices.Equal(env, want) {
		t.Errorf("env %q, want %q", env, want)
	}
}

func TestSpecNamespacesByMode(t *testing.T) {
	for _, tc := range []struct {
		hc      containertypes.HostConfig
		without []specs.LinuxNamespaceType
		with    []specs.LinuxNamespaceType
		err     func(error) bool
	}{
		{hc: containertypes.HostConfig{NetworkMode: "bridge"}, with: []specs.LinuxNamespaceType{specs.NetworkNamespace, specs.PIDNamespace}},
		{hc: containertypes.HostConfig{NetworkMode: "none"}, with: []specs.LinuxNamespaceType{specs.NetworkNamespace}},
		{hc: containertypes.HostConfig{NetworkMode: "host"}, without: []specs.LinuxNamespaceType{specs.NetworkNamespace}},
		{hc: containertypes.HostConfig{PidMode: "host", IpcMode: "host", UTSMode: "host", CgroupnsMode: "host"},
			without: []specs.LinuxNamespaceType{specs.PIDNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.CgroupNamespace}},
		{hc: containertypes.HostConfig{NetworkMode: "mynet"}, with: []specs.LinuxNamespaceType{specs.NetworkNamespace}},
		{hc: containertypes.HostConfig{PidMode: "container:x"}, err: errdefs.IsInvalidArgument},
	} {
		hc := tc.hc
		s, err := Spec(baseConfig(), &hc, Opts{ID: "c"})
		if tc.err != nil {
			if !tc.err(err) {
				t.Errorf("%+v: error %v", tc.hc, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%+v: %v", tc.hc, err)
		}
		for _, ns := range tc.with {
			if !hasNS(s, ns) {
				t.Errorf("%+v: no %s namespace", tc.hc, ns)
			}
		}
		for _, ns := range tc.without {
			if hasNS(s, ns) {
				t.Errorf("%+v: has a %s namespace", tc.hc, ns)
			}
		}
	}
}

func TestCapabilities(t *testing.T) {
	host := []string{"CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_NET_ADMIN"}
	for _, tc := range []struct {
		name      string
		hc        containertypes.HostConfig
		has, lack []string
		err       bool
	}{
		{name: "default", has: []string{"CAP_CHOWN", "CAP_NET_RAW", "CAP_KILL"}, lack: []string{"CAP_SYS_ADMIN", "CAP_NET_ADMIN"}},
		{name: "add", hc: containertypes.HostConfig{CapAdd: []string{"net_admin"}}, has: []string{"CAP_NET_ADMIN", "CAP_CHOWN"}},
		{name: "drop", hc: containertypes.HostConfig{CapDrop: []string{"CHOWN", "cap_kill"}}, lack: []string{"CAP_CHOWN", "CAP_KILL"}, has: []string{"CAP_NET_RAW"}},
		{name: "drop all add one", hc: containertypes.HostConfig{CapDrop: []string{"ALL"}, CapAdd: []string{"KILL"}}, has: []string{"CAP_KILL"}, lack: []string{"CAP_CHOWN"}},
		{name: "privileged gets the host's", hc: containertypes.HostConfig{Privileged: true}, has: host, lack: []string{"CAP_NET_RAW"}},
		{name: "unknown", hc: containertypes.HostConfig{CapAdd: []string{"FLY"}}, err: true},
	} {
		hc := tc.hc
		caps, err := capabilities(&hc, host)
		if tc.err {
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("%s: error %v, want invalid argument", tc.name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for _, c := range tc.has {
			if !slices.Contains(caps, c) {
				t.Errorf("%s: %s missing from %v", tc.name, c, caps)
			}
		}
		for _, c := range tc.lack {
			if slices.Contains(caps, c) {
				t.Errorf("%s: %s present in %v", tc.name, c, caps)
			}
		}
	}
}

func TestSpecPrivileged(t *testing.T) {
	s := mustSpec(t, baseConfig(), &containertypes.HostConfig{Privileged: true})
	if s.Linux.Seccomp != nil || len(s.Linux.MaskedPaths) > 0 || len(s.Linux.ReadonlyPaths) > 0 {
		t.Errorf("privileged: seccomp %v, masked %v, readonly %v", s.Linux.Seccomp != nil, s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	if d := s.Linux.Resources.Devices; len(d) != 1 || !d[0].Allow {
		t.Errorf("privileged devices %+v", d)
	}
	if slices.Contains(mountAt(s, "/sys").Options, "ro") {
		t.Error("privileged /sys is read-only")
	}
}

func TestSpecResources(t *testing.T) {
	limit := int64(100)
	s := mustSpec(t, baseConfig(), &containertypes.HostConfig{Resources: containertypes.Resources{
		Memory: 64 << 20, NanoCPUs: 1_500_000_000, CPUShares: 512, CpusetCpus: "0", PidsLimit: &limit, BlkioWeight: 300,
	}, ShmSize: 1 << 20, Tmpfs: map[string]string{"/run": "size=1m"}})
	r := s.Linux.Resources
	if *r.Memory.Limit != 64<<20 || *r.Memory.Swap != 128<<20 {
		t.Errorf("memory %d swap %d", *r.Memory.Limit, *r.Memory.Swap)
	}
	if *r.CPU.Quota != 150000 || *r.CPU.Period != 100000 || *r.CPU.Shares != 512 || r.CPU.Cpus != "0" {
		t.Errorf("cpu %+v", r.CPU)
	}
	if *r.Pids.Limit != 100 || *r.BlockIO.Weight != 300 {
		t.Errorf("pids %d blkio %d", *r.Pids.Limit, *r.BlockIO.Weight)
	}
	if !slices.Contains(mountAt(s, "/dev/shm").Options, "size=1024k") {
		t.Errorf("/dev/shm options %v", mountAt(s, "/dev/shm").Options)
	}
	if m := mountAt(s, "/run"); m == nil || m.Type != "tmpfs" || !slices.Contains(m.Options, "size=1m") {
		t.Errorf("tmpfs /run: %+v", m)
	}
}

func TestParseBind(t *testing.T) {
	for _, tc := range []struct {
		in      string
		dst     string
		opts    string
		errKind func(error) bool
	}{
		{in: "/h:/c", dst: "/c", opts: "rbind,rprivate"},
		{in: "/h:/c/:ro", dst: "/c", opts: "rbind,ro,rprivate"},
		{in: "/h:/c:rw,rshared", dst: "/c", opts: "rbind,rw,rshared"},
		{in: "/h:c", errKind: errdefs.IsInvalidArgument},
		{in: "/h:/", errKind: errdefs.IsInvalidArgument},
		{in: "/h:/c:bogus", errKind: errdefs.IsInvalidArgument},
		{in: "vol:/c", errKind: errdefs.IsNotImplemented},
		{in: "/anon", errKind: errdefs.IsNotImplemented},
		{in: "a:b:c:d", errKind: errdefs.IsInvalidArgument},
	} {
		m, err := ParseBind(tc.in)
		if tc.errKind != nil {
			if !tc.errKind(err) {
				t.Errorf("%q: error %v", tc.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if m.Destination != tc.dst || strings.Join(m.Options, ",") != tc.opts || m.Type != "bind" {
			t.Errorf("%q: %+v", tc.in, m)
		}
	}
}

func TestSecurityOpts(t *testing.T) {
	s := mustSpec(t, baseConfig(), &containertypes.HostConfig{SecurityOpt: []string{"seccomp=unconfined", "no-new-privileges"}})
	if s.Linux.Seccomp != nil || !s.Process.NoNewPrivileges {
		t.Errorf("seccomp %v nnp %v", s.Linux.Seccomp != nil, s.Process.NoNewPrivileges)
	}
	if _, err := Spec(baseConfig(), &containertypes.HostConfig{SecurityOpt: []string{"bogus"}}, Opts{}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("bad security opt: %v", err)
	}
}

func TestInitAndUlimits(t *testing.T) {
	init := true
	hc := &containertypes.HostConfig{Init: &init}
	hc.Ulimits = []*containertypes.Ulimit{{Name: "nproc", Soft: 10, Hard: 20}}
	s, err := Spec(baseConfig(), hc, Opts{InitBinary: "/x/berth-init"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Process.Args[0] != InitPath || mountAt(s, InitPath) == nil || mountAt(s, InitPath).Source != "/x/berth-init" {
		t.Errorf("init: args %q mount %+v", s.Process.Args, mountAt(s, InitPath))
	}
	if !slices.ContainsFunc(s.Process.Rlimits, func(r specs.POSIXRlimit) bool {
		return r.Type == "RLIMIT_NPROC" && r.Soft == 10 && r.Hard == 20
	}) {
		t.Errorf("rlimits %+v", s.Process.Rlimits)
	}
	hc.Ulimits = []*containertypes.Ulimit{{Name: "bogus"}}
	if _, err := Spec(baseConfig(), hc, Opts{InitBinary: "/x"}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("bad ulimit: %v", err)
	}
}

func TestHostCapabilitiesSubset(t *testing.T) {
	caps := HostCapabilities()
	if len(caps) == 0 || !slices.Contains(caps, "CAP_CHOWN") {
		t.Fatalf("host capabilities %v", caps)
	}
	for _, c := range caps {
		if !slices.Contains(capNames, c) {
			t.Errorf("unknown %s", c)
		}
	}
}
