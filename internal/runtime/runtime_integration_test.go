package runtime_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/cgroups"
	_ "github.com/berth-dev/berth/internal/runtime/nsenter"
	"github.com/berth-dev/berth/internal/testutil"
	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	if runtime.IsInit() {
		runtime.Init()
	}
	os.Exit(m.Run())
}

// harness is one runtime root per test, with cleanup of every container.
type harness struct {
	t  *testing.T
	rt *runtime.Runtime
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	testutil.RequiresRoot(t)
	testutil.LeakCheck(t)
	rt, err := runtime.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, rt: rt}
	t.Cleanup(func() {
		cs, _ := rt.List()
		for _, c := range cs {
			if err := c.Delete(context.Background(), true); err != nil {
				t.Errorf("cleanup of %s: %v", c.ID(), err)
			}
		}
	})
	return h
}

// bundle makes a busybox bundle running args; mutate adjusts the spec.
func (h *harness) bundle(mutate func(*specs.Spec), args ...string) string {
	dir, spec := testutil.NewBundle(h.t, args...)
	if mutate != nil {
		mutate(spec)
	}
	testutil.WriteSpec(h.t, dir, spec)
	return dir
}

// run creates, starts and waits for a container; it returns stdout+stderr.
func (h *harness) run(id string, mutate func(*specs.Spec), args ...string) (string, runtime.ExitStatus) {
	h.t.Helper()
	c, out := h.create(id, mutate, args...)
	if err := c.Start(context.Background()); err != nil {
		h.t.Fatalf("start: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := c.Wait(ctx)
	if err != nil {
		h.t.Fatalf("wait: %v", err)
	}
	if err := c.Delete(ctx, false); err != nil {
		h.t.Fatalf("delete: %v", err)
	}
	return out(), st
}

// create creates a container whose stdout and stderr go to a file; the
// returned function reads it.
func (h *harness) create(id string, mutate func(*specs.Spec), args ...string) (*runtime.Container, func() string) {
	h.t.Helper()
	outPath := filepath.Join(h.t.TempDir(), "out")
	out, err := os.Create(outPath)
	if err != nil {
		h.t.Fatal(err)
	}
	defer out.Close()
	c, err := h.rt.Create(context.Background(), id, h.bundle(mutate, args...), runtime.CreateOpts{IO: runtime.IO{Stdout: out, Stderr: out}})
	if err != nil {
		h.t.Fatalf("create: %v", err)
	}
	return c, func() string {
		data, _ := os.ReadFile(outPath)
		return string(data)
	}
}

func lines(s string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

func capMask(names []string) uint64 {
	var m uint64
	for _, n := range names {
		for i, known := range runtime.KnownCapabilities() {
			if known == n {
				m |= 1 << uint(i)
			}
		}
	}
	return m
}

func TestRunIdentityNamespacesAndSecurity(t *testing.T) {
	h := newHarness(t)
	var spec *specs.Spec
	out, st := h.run("ident", func(s *specs.Spec) {
		s.Hostname = "berth-test"
		s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{29}}
		prof, err := seccomp.GetDefaultProfile(s)
		if err != nil {
			t.Fatal(err)
		}
		s.Linux.Seccomp = prof
		spec = s
	}, "sh", "-c", `echo pid1=$(cat /proc/1/cmdline | tr '\0' ' ')
echo self=$$
echo hostname=$(hostname)
echo id=$(id)
grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|Seccomp|NoNewPrivs):' /proc/self/status | sed 's/:\s*/=/'
for p in /proc/kcore /proc/timer_list /proc/keys; do [ -e $p ] && echo "masked$p=$(stat -c %t:%T $p)-$(cat $p | wc -c)"; done
mount -t tmpfs none /tmp 2>/dev/null && echo mount=ok || echo mount=denied
unshare -m true 2>/dev/null && echo unshare=ok || echo unshare=denied
echo cwd=$(pwd)`)
	if st.Code != 0 {
		t.Fatalf("exit %d, output:\n%s", st.Code, out)
	}
	got := lines(out)
	want := map[string]string{
		"pid1":     "sh -c " + spec.Process.Args[2] + " ",
		"self":     "1",
		"hostname": "berth-test",
		"mount":    "denied",
		"unshare":  "denied",
		"Seccomp":  "2",
		"cwd":      "/",
	}
	for k, v := range want {
		if k == "pid1" {
			if !strings.HasPrefix(got[k], "sh -c echo pid1") {
				t.Errorf("PID 1 is %q, want the container's command", got[k])
			}
			continue
		}
		if got[k] != v {
			t.Errorf("%s = %q, want %q\noutput:\n%s", k, got[k], v, out)
		}
	}
	// Masked files are the container's /dev/null (char 1:3), empty to read.
	masked := 0
	for _, p := range []string{"/proc/kcore", "/proc/timer_list", "/proc/keys"} {
		if _, err := os.Stat(p); err != nil {
			continue // not in this kernel
		}
		masked++
		if g := got["masked"+p]; g != "1:3-0" {
			t.Errorf("%s inside the container: %q, want masked (1:3, empty)", p, g)
		}
	}
	if masked == 0 {
		t.Error("no masked path to check on this kernel")
	}
	if !strings.Contains(got["id"], "uid=1000(berth) gid=1000(berth)") || !strings.Contains(got["id"], "29(audio)") {
		t.Errorf("id = %q", got["id"])
	}
	// A non-root user keeps no effective or permitted capabilities (as with
	// runc); the bounding set is the spec's.
	caps := spec.Process.Capabilities
	for set, names := range map[string][]string{"CapBnd": caps.Bounding, "CapEff": nil, "CapPrm": nil, "CapAmb": nil} {
		wantMask := capMask(names) & hostBounding(t)
		gotMask, err := strconv.ParseUint(got[set], 16, 64)
		if err != nil || gotMask != wantMask {
			t.Errorf("%s = %s, want %016x", set, got[set], wantMask)
		}
	}
}

func hostBounding(t *testing.T) uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	v := lines(strings.ReplaceAll(string(data), ":\t", "="))["CapBnd"]
	m, err := strconv.ParseUint(v, 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRootCapabilities(t *testing.T) {
	h := newHarness(t)
	var spec *specs.Spec
	out, st := h.run("caps", func(s *specs.Spec) { spec = s }, "sh", "-c",
		`grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status | sed 's/:\s*/=/'`)
	if st.Code != 0 {
		t.Fatalf("exit %d: %s", st.Code, out)
	}
	got := lines(out)
	c := spec.Process.Capabilities
	for set, names := range map[string][]string{"CapEff": c.Effective, "CapPrm": c.Permitted, "CapBnd": c.Bounding} {
		wantMask := capMask(names) & hostBounding(t)
		if gotMask, _ := strconv.ParseUint(got[set], 16, 64); gotMask != wantMask {
			t.Errorf("%s = %s, want %016x", set, got[set], wantMask)
		}
	}
}

func TestCgroupLimitsVisibleInside(t *testing.T) {
	h := newHarness(t)
	mem := int64(64 << 20)
	pids := int64(50)
	shares := uint64(512)
	out, st := h.run("limits", func(s *specs.Spec) {
		s.Linux.Resources = &specs.LinuxResources{
			Memory: &specs.LinuxMemory{Limit: &mem},
			Pids:   &specs.LinuxPids{Limit: &pids},
			CPU:    &specs.LinuxCPU{Shares: &shares},
		}
	}, "sh", "-c", `cd /sys/fs/cgroup
if [ -f cgroup.controllers ]; then
  echo memory=$(cat memory.max); echo pids=$(cat pids.max); echo cpu=$(cat cpu.weight)
else
  echo memory=$(cat memory/memory.limit_in_bytes); echo pids=$(cat pids/pids.max); echo cpu=$(cat cpu/cpu.shares)
fi
touch memory/x 2>/dev/null && echo cgroupfs=rw || echo cgroupfs=ro`)
	if st.Code != 0 {
		t.Fatalf("exit %d: %s", st.Code, out)
	}
	got := lines(out)
	if got["memory"] != strconv.FormatInt(mem, 10) || got["pids"] != "50" || got["cgroupfs"] != "ro" {
		t.Errorf("limits inside the container: %q", out)
	}
	if got["cpu"] != "512" && got["cpu"] != "59" { // v1 shares or v2 weight
		t.Errorf("cpu = %q", got["cpu"])
	}
}

func TestOOMKillIsReported(t *testing.T) {
	h := newHarness(t)
	mem := int64(16 << 20)
	swap := mem // no swap beyond the limit
	out, st := h.run("oom", func(s *specs.Spec) {
		s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &mem, Swap: &swap}}
	}, "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1")
	if !st.OOMKilled || st.Code != 137 {
		t.Fatalf("status %+v, want OOM-killed with 137; output: %s", st, out)
	}
}

func TestPidsLimitStopsForkBomb(t *testing.T) {
	h := newHarness(t)
	limit := int64(10)
	out, st := h.run("forkbomb", func(s *specs.Spec) {
		s.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &limit}}
	}, "sh", "-c", `sh -c 'n=0; while [ $n -lt 40 ]; do sleep 30 & n=$((n+1)); done' 2>/dev/null
echo bomb=$?
n=0; for p in /proc/[0-9]*; do n=$((n+1)); done
echo procs=$n
kill -9 -1; exit 0`)
	if st.Code != 0 {
		t.Fatalf("exit %d: %s", st.Code, out)
	}
	got := lines(out)
	if got["bomb"] == "0" {
		t.Errorf("the fork bomb was not stopped; output:\n%s", out)
	}
	// The shell counts with builtins only, so the tasks it sees are exactly
	// those the limit let in.
	n, err := strconv.Atoi(got["procs"])
	if err != nil || n > int(limit) || n < int(limit)-2 {
		t.Errorf("processes inside = %q (limit %d); output:\n%s", got["procs"], limit, out)
	}
}

func TestPauseResume(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	c, _ := h.create("pause", func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/out", Type: "bind", Source: dir, Options: []string{"rbind", "rw"}})
	}, "sh", "-c", `i=0; while true; do i=$((i+1)); echo $i > /out/n; usleep 10000; done`)
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	read := func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "n"))
		return strings.TrimSpace(string(b))
	}
	waitFor(t, func() bool { n, _ := strconv.Atoi(read()); return n > 3 })
	if err := c.Pause(); err != nil {
		t.Fatal(err)
	}
	if s, _ := c.State(); s.Status != "paused" {
		t.Errorf("status after pause = %s", s.Status)
	}
	before := read()
	time.Sleep(200 * time.Millisecond)
	if after := read(); after != before {
		t.Errorf("counter moved while paused: %s -> %s", before, after)
	}
	if err := c.Resume(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return read() != before })
	if s, _ := c.State(); s.Status != specs.StateRunning {
		t.Errorf("status after resume = %s", s.Status)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 10s")
}

func TestLifecycleStateAndExec(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	c, _ := h.create("life", func(s *specs.Spec) { s.Hostname = "lifebox" }, "sleep", "1000")
	st, err := c.State()
	if err != nil || st.Status != specs.StateCreated || st.Pid <= 0 {
		t.Fatalf("state after create = %+v, %v", st, err)
	}
	// The init waits before the user program: its command line is still ours.
	if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", st.Pid)); bytes.Contains(cmdline, []byte("sleep")) {
		t.Errorf("user program started before Start: %q", cmdline)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ = c.State(); st.Status != specs.StateRunning {
		t.Fatalf("state after start = %s", st.Status)
	}
	if err := c.Start(ctx); err == nil {
		t.Error("second start accepted")
	}
	if err := c.Delete(ctx, false); err == nil {
		t.Error("delete of a running container accepted without force")
	}

	// exec lands in the same namespaces: same hostname, sees PID 1, same ns.
	outPath := filepath.Join(t.TempDir(), "exec")
	out, _ := os.Create(outPath)
	p := *c.Spec().Process
	p.Args = []string{"sh", "-c", `echo hostname=$(hostname); echo pid1=$(cat /proc/1/cmdline | tr '\0' ' '); echo uts=$(readlink /proc/1/ns/uts)-$(readlink /proc/self/ns/uts); echo mnt=$(readlink /proc/1/ns/mnt)-$(readlink /proc/self/ns/mnt); exit 3`}
	proc, err := c.Exec(ctx, &p, runtime.ExecOpts{IO: runtime.IO{Stdout: out, Stderr: out}})
	out.Close()
	if err != nil {
		t.Fatal(err)
	}
	es, err := proc.Wait(ctx)
	if err != nil || es.Code != 3 {
		t.Fatalf("exec exit = %+v, %v", es, err)
	}
	data, _ := os.ReadFile(outPath)
	got := lines(string(data))
	if got["hostname"] != "lifebox" || got["pid1"] != "sleep 1000" {
		t.Errorf("exec output: %s", data)
	}
	for _, k := range []string{"uts", "mnt"} {
		a, b, _ := strings.Cut(got[k], "-")
		if a == "" || a != b {
			t.Errorf("exec %s namespace differs from the container's: %q", k, got[k])
		}
	}

	if err := c.Kill(unix.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { s, _ := c.State(); return s.Status == specs.StateStopped })
	if err := c.Kill(unix.SIGTERM, false); err == nil {
		t.Error("kill of a stopped container accepted")
	}
	if err := c.Delete(ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, err := h.rt.Load("life"); err == nil {
		t.Error("container still loadable after delete")
	}
}

func TestHooksRunInOrder(t *testing.T) {
	h := newHarness(t)
	log := filepath.Join(t.TempDir(), "hooks")
	hook := func(name string) specs.Hook {
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "echo " + name + " >> " + log}}
	}
	ctx := context.Background()
	var rootfs string
	c, _ := h.create("hooks", func(s *specs.Spec) {
		rootfs = s.Root.Path
		s.Hooks = &specs.Hooks{
			Prestart:        []specs.Hook{hook("prestart")},
			CreateRuntime:   []specs.Hook{hook("createRuntime")},
			CreateContainer: []specs.Hook{hook("createContainer")},
			// Runs in the container after pivot_root: only its files are there.
			StartContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo startContainer $(hostname) > /hooklog"}}},
			Poststart:      []specs.Hook{hook("poststart")},
			Poststop:       []specs.Hook{hook("poststop")},
		}
	}, "true")
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, false); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(log)
	if got := strings.Fields(string(data)); strings.Join(got, ",") != "prestart,createRuntime,createContainer,poststart,poststop" {
		t.Errorf("hooks ran as %q", got)
	}
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(c.Bundle(), rootfs)
	}
	inside, err := os.ReadFile(filepath.Join(rootfs, "hooklog"))
	if err != nil || strings.TrimSpace(string(inside)) != "startContainer berth" {
		t.Errorf("startContainer hook inside the container: %q, %v", inside, err)
	}
}

func TestTerminalThroughConsoleSocket(t *testing.T) {
	h := newHarness(t)
	sockPath := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.Listen("unix", sockPath)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	masterCh := make(chan *os.File, 1)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			masterCh <- nil
			return
		}
		defer conn.Close()
		f, _ := conn.(*net.UnixConn).File()
		defer f.Close()
		m, err := runtime.RecvFd(f)
		if err != nil {
			m = nil
		}
		masterCh <- m
	}()
	bundle := h.bundle(func(s *specs.Spec) { s.Process.Terminal = true }, "sh")
	ctx := context.Background()
	c, err := h.rt.Create(ctx, "tty", bundle, runtime.CreateOpts{ConsoleSocket: sockPath})
	if err != nil {
		t.Fatal(err)
	}
	master := <-masterCh
	if master == nil {
		t.Fatal("no pty master received")
	}
	defer master.Close()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := master.Write([]byte("echo tty=$(tty) ok=$((6*7)); exit 5\n")); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() { _, _ = buf.ReadFrom(master); close(done) }()
	es, err := c.Wait(ctx)
	if err != nil || es.Code != 5 {
		t.Fatalf("exit = %+v, %v", es, err)
	}
	master.Close()
	<-done
	if !strings.Contains(buf.String(), "tty=/dev/pts/0 ok=42") {
		t.Errorf("terminal output: %q", buf.String())
	}
}

func TestUserNamespace(t *testing.T) {
	h := newHarness(t)
	out, st := h.run("userns", func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	}, "sh", "-c", `echo uidmap=$(cat /proc/self/uid_map | tr -s ' ' | sed 's/^ //'); echo userns=$(readlink /proc/self/ns/user); echo id=$(id -u)`)
	if st.Code != 0 {
		t.Fatalf("exit %d: %s", st.Code, out)
	}
	got := lines(out)
	if got["uidmap"] != "0 100000 65536" || got["id"] != "0" {
		t.Errorf("inside a user namespace: %s", out)
	}
	host, _ := os.Readlink("/proc/self/ns/user")
	if got["userns"] == "" || got["userns"] == host {
		t.Errorf("user namespace %q is the host's %q", got["userns"], host)
	}
}

func TestJoinNamespaceByPath(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	// The first container's network and UTS namespaces are joined by the
	// second through /proc/<pid>/ns paths, as the engine does for
	// --network container:NAME.
	first, _ := h.create("owner", func(s *specs.Spec) { s.Hostname = "shared-uts" }, "sleep", "1000")
	if err := first.Start(ctx); err != nil {
		t.Fatal(err)
	}
	netns := fmt.Sprintf("/proc/%d/ns/net", first.Pid())
	utsns := fmt.Sprintf("/proc/%d/ns/uts", first.Pid())
	want, err := os.Readlink(netns)
	if err != nil {
		t.Fatal(err)
	}
	out, st := h.run("joiner", func(s *specs.Spec) {
		s.Hostname = "" // keep the joined namespace's name
		for i, ns := range s.Linux.Namespaces {
			switch ns.Type {
			case specs.NetworkNamespace:
				s.Linux.Namespaces[i].Path = netns
			case specs.UTSNamespace:
				s.Linux.Namespaces[i].Path = utsns
			}
		}
	}, "sh", "-c", `echo net=$(readlink /proc/self/ns/net); echo hostname=$(hostname)`)
	if st.Code != 0 {
		t.Fatalf("exit %d: %s", st.Code, out)
	}
	got := lines(out)
	if got["net"] != want || got["hostname"] != "shared-uts" {
		t.Errorf("joined namespaces: %s (want net=%s)", out, want)
	}
}

func TestHostileImageCannotMountOnHost(t *testing.T) {
	h := newHarness(t)
	victim := t.TempDir() // a host directory the image tries to reach
	if err := os.WriteFile(filepath.Join(victim, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir, spec := testutil.NewBundle(t, "true")
	rootfs := filepath.Join(dir, "rootfs")
	// The image's /data is a symlink climbing out of the rootfs to the
	// victim, and the spec mounts a tmpfs on /data.
	rel, err := filepath.Rel(rootfs, victim)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../../../"+strings.TrimLeft(rel, "./"), filepath.Join(rootfs, "data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(rootfs, "abs")); err != nil {
		t.Fatal(err)
	}
	spec.Mounts = append(spec.Mounts,
		specs.Mount{Destination: "/data", Type: "tmpfs", Source: "tmpfs"},
		specs.Mount{Destination: "/abs/sub", Type: "tmpfs", Source: "tmpfs"},
	)
	testutil.WriteSpec(t, dir, spec)
	ctx := context.Background()
	c, err := h.rt.Create(ctx, "hostile", dir, runtime.CreateOpts{})
	if err == nil {
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Whatever happened inside, the host's directory is untouched and no
	// mount landed on it.
	entries, _ := os.ReadDir(victim)
	if len(entries) != 1 || entries[0].Name() != "keep" {
		t.Errorf("host directory changed: %v", entries)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), victim) {
		t.Errorf("a mount landed on the host directory %s", victim)
	}
}

func TestExecWithTerminalInProcess(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	c, _ := h.create("exectty", nil, "sleep", "1000")
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	p := *c.Spec().Process
	p.Args = []string{"sh", "-c", "echo tty=$(tty); stty size"}
	p.Terminal = true
	p.ConsoleSize = &specs.Box{Height: 33, Width: 101}
	masters := make(chan *os.File, 1)
	proc, err := c.Exec(ctx, &p, runtime.ExecOpts{Console: func(m *os.File) { masters <- m }})
	if err != nil {
		t.Fatal(err)
	}
	master := <-masters
	defer master.Close()
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() { _, _ = buf.ReadFrom(master); close(done) }()
	if es, err := proc.Wait(ctx); err != nil || es.Code != 0 {
		t.Fatalf("exec exit %+v, %v", es, err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("terminal output did not end")
	}
	out := strings.ReplaceAll(buf.String(), "\r", "")
	if !strings.Contains(out, "tty=/dev/pts/") || !strings.Contains(out, "33 101") {
		t.Errorf("exec terminal output %q", out)
	}
}

func TestTimeNamespaceOffsets(t *testing.T) {
	if _, err := os.Stat("/proc/self/ns/time"); err != nil {
		t.Skip("kernel without time namespaces")
	}
	h := newHarness(t)
	const tenDays = 10 * 86400
	out, st := h.run("timens", func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
		s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: tenDays}}
	}, "cat", "/proc/uptime")
	if st.Code != 0 {
		t.Fatalf("exit %d: %s", st.Code, out)
	}
	var up float64
	if _, err := fmt.Sscan(out, &up); err != nil {
		t.Fatalf("uptime %q: %v", out, err)
	}
	host, _ := os.ReadFile("/proc/uptime")
	var hostUp float64
	fmt.Sscan(string(host), &hostUp)
	if d := up - hostUp; d < tenDays-60 || d > tenDays+60 {
		t.Errorf("uptime inside %.0f s, host %.0f s: offset %.0f, want %d", up, hostUp, d, tenDays)
	}
}

func TestRefusesToExecuteTheRuntimeBinary(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	// An image whose entrypoint is /proc/self/exe would run the runtime's
	// own binary (here: the test binary) inside the container.
	outPath := filepath.Join(t.TempDir(), "out")
	out, _ := os.Create(outPath)
	defer out.Close()
	c, err := h.rt.Create(ctx, "selfexe", h.bundle(nil, "/proc/self/exe"), runtime.CreateOpts{IO: runtime.IO{Stdout: out, Stderr: out}})
	if err == nil {
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if es, _ := c.Wait(ctx); es.Code == 0 {
			t.Errorf("the runtime binary ran inside the container")
		}
	}
	data, _ := os.ReadFile(outPath)
	if err == nil && !strings.Contains(string(data), "refusing to run the container runtime's own binary") {
		t.Errorf("no refusal reported: %q", data)
	}
}

func TestSeccompWithoutNoNewPrivileges(t *testing.T) {
	h := newHarness(t)
	// Without no_new_privs the filter is loaded while the init still holds
	// CAP_SYS_ADMIN, before the user and capabilities change: that must
	// still work under Docker's profile.
	out, st := h.run("seccomp-nnp0", func(s *specs.Spec) {
		s.Process.NoNewPrivileges = false
		s.Process.User = specs.User{UID: 1000, GID: 1000}
		prof, err := seccomp.GetDefaultProfile(s)
		if err != nil {
			t.Fatal(err)
		}
		s.Linux.Seccomp = prof
	}, "sh", "-c", `grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status | sed 's/:\s*/=/'; id -u`)
	got := lines(out)
	if st.Code != 0 || got["Seccomp"] != "2" || got["NoNewPrivs"] != "0" || !strings.Contains(out, "1000") {
		t.Errorf("exit %d, output:\n%s", st.Code, out)
	}
}

// TestCgroupV2Container runs a container whose cgroup is on cgroup v2. The
// host of the test suite may be a v1 "hybrid" host: then the unified
// hierarchy mounted next to the v1 ones is used, where the core v2 features
// (membership, freezer, device filter) work without controllers.
func TestCgroupV2Container(t *testing.T) {
	h := newHarness(t)
	mountpoint := "/sys/fs/cgroup"
	var st unix.Statfs_t
	if unix.Statfs(mountpoint, &st) != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
		mountpoint = "/sys/fs/cgroup/unified"
		if unix.Statfs(mountpoint, &st) != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
			t.Skip("no cgroup v2 hierarchy on this host")
		}
	}
	h.rt.Cgroups = func(_, id string) (cgroups.Manager, error) {
		return cgroups.NewV2(mountpoint, "/berth-v2test-"+id)
	}
	dir := filepath.Join(mountpoint, "berth-v2test-v2")
	ctx := context.Background()
	outDir := t.TempDir()
	c, _ := h.create("v2", func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/out", Type: "bind", Source: outDir, Options: []string{"rbind", "rw"}})
	}, "sh", "-c", `cat /proc/self/cgroup > /out/cgroup
mknod /dev/loopx b 7 0 && (head -c 1 /dev/loopx >/dev/null 2>/out/loop.err; echo $? > /out/loop)
echo x > /dev/null && echo ok > /out/null
exec sleep 1000`)
	procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil || strings.TrimSpace(string(procs)) != strconv.Itoa(c.Pid()) {
		t.Fatalf("v2 cgroup.procs = %q, %v; want the init %d (cloned into its cgroup)", procs, err, c.Pid())
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, err := os.Stat(filepath.Join(outDir, "null")); return err == nil })
	if data, _ := os.ReadFile(filepath.Join(outDir, "cgroup")); !strings.Contains(string(data), "0::/\n") {
		t.Errorf("/proc/self/cgroup inside (own cgroup namespace) = %q, want 0::/", data)
	}
	// mknod is allowed (b *:* m), opening the node is not (b 7:0 is not in
	// the allowed list), while /dev/null (allowed) works.
	if data, err := os.ReadFile(filepath.Join(outDir, "loop")); err != nil || strings.TrimSpace(string(data)) == "0" {
		msg, _ := os.ReadFile(filepath.Join(outDir, "loop.err"))
		t.Errorf("open of a device outside the allowed list: status %q (%v), %q; want a failure from the eBPF device filter", data, err, msg)
	}
	if err := c.Pause(); err != nil {
		t.Fatal(err)
	}
	if s, _ := c.State(); s.Status != "paused" {
		t.Errorf("status after pause on v2: %s", s.Status)
	}
	if frozen, _ := os.ReadFile(filepath.Join(dir, "cgroup.freeze")); strings.TrimSpace(string(frozen)) != "1" {
		t.Errorf("cgroup.freeze = %q", frozen)
	}
	if err := c.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("v2 cgroup %s left after delete: %v", dir, err)
	}
}

func TestFailedCreateLeavesNothing(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		mutate func(*specs.Spec)
		args   []string
		want   string
	}{
		{"bind source missing", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "/nonexistent/berth", Options: []string{"rbind"}})
		}, []string{"true"}, "/nonexistent/berth"},
		{"program missing", nil, []string{"/no/such/program"}, "no/such/program"},
		{"unknown capability", func(s *specs.Spec) {
			s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_NOT_A_CAP")
		}, []string{"true"}, "CAP_NOT_A_CAP"},
		{"bad sysctl", func(s *specs.Spec) {
			s.Linux.Sysctl = map[string]string{"kernel.no_such_knob": "1"}
		}, []string{"true"}, "no_such_knob"},
		{"failing createRuntime hook", func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/false"}}}
		}, []string{"true"}, "/bin/false"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("fail%d", i)
			_, err := h.rt.Create(ctx, id, h.bundle(tt.mutate, tt.args...), runtime.CreateOpts{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("create error = %v, want one naming %q", err, tt.want)
			}
			if _, err := h.rt.Load(id); err == nil {
				t.Error("a failed create left its state behind")
			}
			if _, err := os.Stat(filepath.Join(h.rt.Root, id)); !os.IsNotExist(err) {
				t.Errorf("state directory left: %v", err)
			}
			// LeakCheck (at the end of the test) covers cgroups, mounts and
			// processes.
		})
	}
}

// TestForceDeleteRightAfterCreate deletes created containers at once: the
// init of a PID namespace is a zombie, still listed in its cgroup, for a
// moment after SIGKILL, and neither the zombie nor the cgroup may stay.
func TestForceDeleteRightAfterCreate(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	for i := 0; i < 8; i++ {
		c, err := h.rt.Create(ctx, fmt.Sprint("quick", i), h.bundle(nil, "sleep", "1000"), runtime.CreateOpts{})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Delete(ctx, true); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
	}
}

func TestWithoutMountNamespace(t *testing.T) {
	h := newHarness(t)
	// No mount namespace: nothing is mounted, the init changes root into
	// the rootfs (and finds the exec fifo without /proc).
	out, st := h.run("nomntns", func(s *specs.Spec) {
		var ns []specs.LinuxNamespace
		for _, n := range s.Linux.Namespaces {
			if n.Type != specs.MountNamespace && n.Type != specs.CgroupNamespace {
				ns = append(ns, n)
			}
		}
		s.Linux.Namespaces = ns
		s.Mounts = nil
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
	}, "/bin/sh", "-c", `grep -c '^berth:' /etc/passwd; ls /proc | wc -l`)
	if st.Code != 0 || !strings.HasPrefix(out, "1\n0\n") {
		t.Errorf("exit %d, output %q: want the rootfs' /etc/passwd and an empty /proc", st.Code, out)
	}
}
