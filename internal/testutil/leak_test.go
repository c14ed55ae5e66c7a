package testutil

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// recorder is a testing.TB whose errors and cleanups the test inspects;
// everything else goes to the real test.
type recorder struct {
	testing.TB
	errors   []string
	cleanups []func()
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

// finish runs the recorded cleanups, last registered first.
func (r *recorder) finish() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	r.cleanups = nil
}

func (r *recorder) reported(substr string) bool {
	for _, e := range r.errors {
		if strings.Contains(e, substr) {
			return true
		}
	}
	return false
}

// shortGrace makes LeakCheck report leftovers without the usual wait.
func shortGrace(t *testing.T) {
	old := leakGrace
	leakGrace = 100 * time.Millisecond
	t.Cleanup(func() { leakGrace = old })
}

func TestLeakCheckClean(t *testing.T) {
	r := &recorder{TB: t}
	LeakCheck(r)
	// A child that is waited for is no leak.
	if err := exec.Command("true").Run(); err != nil {
		t.Fatal(err)
	}
	r.finish()
	if len(r.errors) != 0 {
		t.Errorf("unexpected leaks: %q", r.errors)
	}
}

func TestLeakCheckChildProcess(t *testing.T) {
	shortGrace(t)
	r := &recorder{TB: t}
	LeakCheck(r)
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	r.finish()
	if !r.reported(fmt.Sprintf("child process left behind: pid %d (sleep)", pid)) {
		t.Errorf("leaked child %d not reported: %q", pid, r.errors)
	}
	// LeakCheck killed and reaped it.
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("pid %d still exists after the check: %v", pid, err)
	}
}

func TestLeakCheckMount(t *testing.T) {
	shortGrace(t)
	RequiresRoot(t)
	r := &recorder{TB: t}
	LeakCheck(r)
	target := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("berth-leakcheck", target, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(target, syscall.MNT_DETACH) })
	r.finish()
	if !r.reported("mount left behind: " + target + " (tmpfs") {
		t.Errorf("leaked mount not reported: %q", r.errors)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mi), " "+target+" ") {
		t.Errorf("%s is still mounted after the check", target)
	}
}

func TestLeakCheckCgroup(t *testing.T) {
	shortGrace(t)
	RequiresRoot(t)
	roots := cgroupHierarchies()
	if len(roots) == 0 {
		t.Skip("no cgroup hierarchy")
	}
	r := &recorder{TB: t}
	LeakCheck(r)
	dir := filepath.Join(roots[0], fmt.Sprintf("berth-leakcheck-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot create a cgroup: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Rmdir(dir) })
	r.finish()
	if !r.reported("cgroup left behind: " + dir) {
		t.Errorf("leaked cgroup not reported: %q", r.errors)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still exists after the check: %v", dir, err)
	}
}

func TestLeakCheckPreexistingIsNoLeak(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	r := &recorder{TB: t}
	LeakCheck(r)
	r.finish()
	if len(r.errors) != 0 {
		t.Errorf("a child started before the check was reported: %q", r.errors)
	}
}

func TestParseMountinfo(t *testing.T) {
	data := `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
35 22 0:30 / /tmp/with\040space rw,nosuid shared:12 - tmpfs berth\040src rw,size=64k
36 22 0:31 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
37 36 0:32 / /sys/fs/cgroup/unified rw master:2 propagate_from:1 - cgroup2 cgroup2 rw
`
	got, err := parseMountinfo([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	want := []mountEntry{
		{id: 22, mountPoint: "/", fsType: "ext4", source: "/dev/sda1"},
		{id: 35, mountPoint: "/tmp/with space", fsType: "tmpfs", source: "berth src"},
		{id: 36, mountPoint: "/sys/fs/cgroup", fsType: "tmpfs", source: "tmpfs"},
		{id: 37, mountPoint: "/sys/fs/cgroup/unified", fsType: "cgroup2", source: "cgroup2"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	for _, bad := range []string{"22 1 8:1 / / rw - ext4\n", "x 1 8:1 / / rw - ext4 /dev/sda1 rw\n", "22 1 8:1\n"} {
		if _, err := parseMountinfo([]byte(bad)); err == nil {
			t.Errorf("no error for %q", bad)
		}
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/plain", "/plain"},
		{`/a\040b`, "/a b"},
		{`/tab\011x`, "/tab\tx"},
		{`/nl\012`, "/nl\n"},
		{`/back\134slash`, `/back\slash`},
		{`/short\04`, `/short\04`},
		{`/not\999`, `/not\999`},
	}
	for _, tt := range tests {
		if got := unescapeMountinfo(tt.in); got != tt.want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseProcStat(t *testing.T) {
	tail := " 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 0 123456 1000 50"
	tests := []struct {
		name      string
		stat      string
		comm      string
		state     string
		ppid      int
		start     uint64
		wantError bool
	}{
		{"plain", "42 (sleep) S 7" + tail, "sleep", "S", 7, 123456, false},
		{"spaces and parens", "43 (a) b (c)) Z 1" + tail, "a) b (c)", "Z", 1, 123456, false},
		{"truncated", "44 (x) S 1 0", "", "", 0, 0, true},
		{"garbage", "garbage", "", "", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ppid, err := parseProcStat([]byte(tt.stat + "\n"))
			if (err != nil) != tt.wantError {
				t.Fatalf("error %v, want error %v", err, tt.wantError)
			}
			if err != nil {
				return
			}
			if p.comm != tt.comm || p.state != tt.state || ppid != tt.ppid || p.start != tt.start {
				t.Errorf("got %q %q ppid %d start %d", p.comm, p.state, ppid, p.start)
			}
		})
	}
}

func TestLeakScopeOwnsMount(t *testing.T) {
	sc := leakScope{tmpRoot: "/tmp/TestX123"}
	tests := []struct {
		m    mountEntry
		want bool
	}{
		{mountEntry{mountPoint: "/tmp/TestX123/001/rootfs", source: "overlay"}, true},
		{mountEntry{mountPoint: "/tmp/TestX123", source: "tmpfs"}, true},
		{mountEntry{mountPoint: "/mnt", source: "/tmp/TestX123/001/src"}, true},
		{mountEntry{mountPoint: "/run/berth/netns/x", source: "nsfs"}, true},
		{mountEntry{mountPoint: "/tmp/TestX1234", source: "tmpfs"}, false},
		{mountEntry{mountPoint: "/proc", source: "proc"}, false},
	}
	for _, tt := range tests {
		if got := sc.ownsMount(tt.m); got != tt.want {
			t.Errorf("ownsMount(%+v) = %v, want %v", tt.m, got, tt.want)
		}
	}
}

func TestChildProcessesFindsChild(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	kids, err := childProcesses(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range kids {
		if k.pid == cmd.Process.Pid {
			if k.comm != "sleep" || k.start == 0 {
				t.Errorf("child %+v", k)
			}
			return
		}
	}
	t.Errorf("child %d not found among %+v", cmd.Process.Pid, kids)
}
