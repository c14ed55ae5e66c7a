package runtime

import (
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestValidID(t *testing.T) {
	for _, id := range []string{"a", "abc-DEF_1.2+3", strings.Repeat("x", 64)} {
		if err := validID(id); err != nil {
			t.Errorf("validID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", ".", "..", "a/b", "../x", "a b", "a\x00"} {
		if err := validID(id); err == nil {
			t.Errorf("validID(%q) accepted", id)
		}
	}
}

func TestProcStartTimeAndAlive(t *testing.T) {
	start, zombie, err := procStartTime(os.Getpid())
	if err != nil || zombie || start == 0 {
		t.Fatalf("procStartTime(self) = %d, %v, %v", start, zombie, err)
	}
	r := &record{Pid: os.Getpid(), PidStart: start}
	if !r.alive() {
		t.Error("own process not alive")
	}
	r.PidStart++
	if r.alive() {
		t.Error("a reused PID (different start time) counted as alive")
	}
}

func TestPlanFromSpec(t *testing.T) {
	spec := &specs.Spec{Linux: &specs.Linux{
		Namespaces: []specs.LinuxNamespace{
			{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace, Path: "/var/run/netns/x"},
			{Type: specs.MountNamespace}, {Type: specs.UserNamespace},
		},
		UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}},
	}}
	p := planFromSpec(spec)
	if want := unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWUSER; p.flags != want {
		t.Errorf("flags = %#x, want %#x", p.flags, want)
	}
	if len(p.join) != 1 || p.join[0] != "net:/var/run/netns/x" {
		t.Errorf("join = %q", p.join)
	}
	if len(p.uidMaps) != 1 {
		t.Errorf("uid maps not carried: %v", p.uidMaps)
	}
}

func TestPlanJoinSkipsOwnNamespaces(t *testing.T) {
	// Joining ourselves: every namespace is the same, nothing to join.
	if p := planJoin(os.Getpid()); len(p.join) != 0 {
		t.Errorf("planJoin(self) = %q, want nothing", p.join)
	}
}

func TestHomeOf(t *testing.T) {
	passwd := "root:x:0:0:root:/root:/bin/sh\nberth:x:1000:1000::/home/berth:/bin/sh\nbad\n"
	for uid, want := range map[uint32]string{0: "/root", 1000: "/home/berth", 5: "/"} {
		if got := homeOf(passwd, uid); got != want {
			t.Errorf("homeOf(%d) = %q, want %q", uid, got, want)
		}
	}
}

func TestCheckSpec(t *testing.T) {
	ok := func() *specs.Spec {
		return &specs.Spec{Version: "1.2.0", Root: &specs.Root{Path: "rootfs"}, Process: &specs.Process{Args: []string{"sh"}}, Linux: &specs.Linux{}}
	}
	tests := []struct {
		name   string
		mutate func(*specs.Spec)
		want   string
	}{
		{"valid", func(*specs.Spec) {}, ""},
		{"old version", func(s *specs.Spec) { s.Version = "0.9" }, "ociVersion"},
		{"no root", func(s *specs.Spec) { s.Root = nil }, "root.path"},
		{"no args", func(s *specs.Spec) { s.Process.Args = nil }, "args"},
		{"bad ns", func(s *specs.Spec) { s.Linux.Namespaces = []specs.LinuxNamespace{{Type: "bogus"}} }, "unknown namespace"},
		{"dup ns", func(s *specs.Spec) {
			s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.PIDNamespace}}
		}, "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok()
			tt.mutate(s)
			err := checkSpec(s)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
