package runtime

import (
	"fmt"
	"github.com/berth-dev/berth/internal/runtime/seccomp"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// recordOps records procOps calls as strings.
type recordOps struct {
	calls []string
	fail  string // a call prefix that returns an error
}

func (r *recordOps) rec(format string, a ...any) error {
	c := fmt.Sprintf(format, a...)
	r.calls = append(r.calls, c)
	if r.fail != "" && strings.HasPrefix(c, r.fail) {
		return fmt.Errorf("injected failure")
	}
	return nil
}

func (r *recordOps) Sethostname(n string) error           { return r.rec("sethostname %s", n) }
func (r *recordOps) Setdomainname(n string) error         { return r.rec("setdomainname %s", n) }
func (r *recordOps) WriteFile(p, d string) error          { return r.rec("write %s=%s", p, d) }
func (r *recordOps) Setrlimit(res int, s, h uint64) error { return r.rec("rlimit %d %d %d", res, s, h) }
func (r *recordOps) SetNoNewPrivs() error                 { return r.rec("nnp") }
func (r *recordOps) LoadSeccomp(*seccomp.Program) error   { return r.rec("seccomp") }
func (r *recordOps) DropBounding(keep []string) error {
	return r.rec("bounding %s", strings.Join(keep, ","))
}
func (r *recordOps) SetKeepCaps(on bool) error { return r.rec("keepcaps %v", on) }
func (r *recordOps) Setgroups(g []int) error   { return r.rec("setgroups %v", g) }
func (r *recordOps) Setresgid(g int) error     { return r.rec("setgid %d", g) }
func (r *recordOps) Setresuid(u int) error     { return r.rec("setuid %d", u) }
func (r *recordOps) ApplyCaps(c *specs.LinuxCapabilities) error {
	return r.rec("caps e=%s p=%s a=%s", strings.Join(c.Effective, ","), strings.Join(c.Permitted, ","), strings.Join(c.Ambient, ","))
}
func (r *recordOps) Umask(m int)          { _ = r.rec("umask %o", m) }
func (r *recordOps) Chdir(d string) error { return r.rec("chdir %s", d) }
func (r *recordOps) Exec(p string, a, e []string) error {
	return r.rec("exec %s %v", p, a)
}

func TestApplySecurityOrder(t *testing.T) {
	umask := uint32(0o077)
	caps := &specs.LinuxCapabilities{
		Bounding: []string{"CAP_CHOWN", "CAP_KILL"}, Effective: []string{"CAP_KILL"}, Permitted: []string{"CAP_KILL"},
	}
	tests := []struct {
		name     string
		proc     specs.Process
		seccomp  bool
		want     []string
		wantLate bool
	}{
		{
			name: "root without seccomp",
			proc: specs.Process{Cwd: "/work", Capabilities: caps},
			want: []string{
				"bounding CAP_CHOWN,CAP_KILL", "keepcaps true", "chdir /work", "setgroups []", "setgid 0", "setuid 0",
				"keepcaps false", "caps e=CAP_KILL p=CAP_KILL a=", "umask 22", "chdir /work",
			},
		},
		{
			name:    "seccomp before dropping privileges without no_new_privs",
			proc:    specs.Process{User: specs.User{UID: 1000, GID: 100, AdditionalGids: []uint32{29, 30}, Umask: &umask}},
			seccomp: true,
			want: []string{
				"seccomp", "bounding ", "keepcaps true", "chdir /", "setgroups [29 30]", "setgid 100", "setuid 1000",
				"keepcaps false", "caps e= p= a=", "umask 77", "chdir /",
			},
		},
		{
			name:     "no_new_privs defers seccomp to the caller",
			proc:     specs.Process{NoNewPrivileges: true},
			seccomp:  true,
			wantLate: true,
			want: []string{
				"nnp", "bounding ", "keepcaps true", "chdir /", "setgroups []", "setgid 0", "setuid 0",
				"keepcaps false", "caps e= p= a=", "umask 22", "chdir /",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops := &recordOps{}
			var sc *seccomp.Program
			if tt.seccomp {
				sc = &seccomp.Program{}
			}
			late, err := applySecurity(&tt.proc, sc, ops)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ops.calls, tt.want) {
				t.Errorf("calls:\n got %q\nwant %q", ops.calls, tt.want)
			}
			if (late != nil) != tt.wantLate {
				t.Errorf("late seccomp = %v, want %v", late != nil, tt.wantLate)
			}
		})
	}
}

func TestApplySecurityStopsAtFirstError(t *testing.T) {
	ops := &recordOps{fail: "setuid"}
	_, err := applySecurity(&specs.Process{User: specs.User{UID: 5}}, nil, ops)
	if err == nil || !strings.Contains(err.Error(), "setuid 5") {
		t.Fatalf("err = %v, want a setuid error", err)
	}
	if last := ops.calls[len(ops.calls)-1]; last != "setuid 5" {
		t.Errorf("kept going after the failure: last call %q", last)
	}
}

func TestApplyContainer(t *testing.T) {
	uts := []specs.LinuxNamespace{{Type: specs.UTSNamespace}}
	tests := []struct {
		name    string
		spec    specs.Spec
		want    []string
		wantErr string
	}{
		{
			name: "hostname, domainname and sysctls in key order",
			spec: specs.Spec{Hostname: "box", Domainname: "example.org", Linux: &specs.Linux{
				Namespaces: uts, Sysctl: map[string]string{"net.ipv4.ip_forward": "1", "kernel.msgmax": "8192"},
			}},
			want: []string{"sethostname box", "setdomainname example.org",
				"write /proc/sys/kernel/msgmax=8192", "write /proc/sys/net/ipv4/ip_forward=1"},
		},
		{
			name:    "hostname without a UTS namespace",
			spec:    specs.Spec{Hostname: "box", Linux: &specs.Linux{}},
			wantErr: "private UTS namespace",
		},
		{
			name:    "sysctl escaping /proc/sys",
			spec:    specs.Spec{Linux: &specs.Linux{Sysctl: map[string]string{"..kernel": "1"}}},
			wantErr: "invalid sysctl",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops := &recordOps{}
			err := applyContainer(&tt.spec, ops)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ops.calls, tt.want) {
				t.Errorf("calls:\n got %q\nwant %q", ops.calls, tt.want)
			}
		})
	}
}

func TestApplyProcess(t *testing.T) {
	adj := -500
	ops := &recordOps{}
	p := &specs.Process{
		Rlimits:     []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 2048}, {Type: "RLIMIT_CORE"}},
		OOMScoreAdj: &adj,
	}
	if err := applyProcess(p, ops); err != nil {
		t.Fatal(err)
	}
	want := []string{"rlimit 7 1024 2048", "rlimit 4 0 0", "write /proc/self/oom_score_adj=-500"}
	if !reflect.DeepEqual(ops.calls, want) {
		t.Errorf("calls:\n got %q\nwant %q", ops.calls, want)
	}
	if err := applyProcess(&specs.Process{Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_BOGUS"}}}, ops); err == nil {
		t.Error("unknown rlimit accepted")
	}
}

func TestParseCaps(t *testing.T) {
	got, err := parseCaps([]string{"CAP_CHOWN", "cap_kill"}, nil)
	if err != nil || len(got) != 2 {
		t.Fatalf("parseCaps = %v, %v", got, err)
	}
	if _, err := parseCaps([]string{"CAP_NOPE"}, nil); err == nil {
		t.Error("unknown capability accepted")
	}
}
