package shim_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/logger/jsonfile"
	"github.com/berth-dev/berth/internal/runtime"
	_ "github.com/berth-dev/berth/internal/runtime/nsenter"
	"github.com/berth-dev/berth/internal/shim"
	"github.com/berth-dev/berth/internal/testutil"
	"github.com/moby/moby/api/pkg/stdcopy"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestMain(m *testing.M) {
	if runtime.IsInit() {
		runtime.Init()
	}
	if len(os.Args) > 1 && os.Args[1] == "shim" {
		os.Exit(shim.Main(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// box is one container run by a shim started from the test binary.
type box struct {
	t   *testing.T
	cfg shim.Config
	c   *shim.Client
}

// newBox starts a shim for a busybox container running args; adjust
// changes the configuration and the spec first.
func newBox(t *testing.T, adjust func(*shim.Config, *specs.Spec), args ...string) *box {
	t.Helper()
	testutil.RequiresRoot(t)
	testutil.LeakCheck(t)
	bundle, spec := testutil.NewBundle(t, args...)
	state := t.TempDir()
	cfg := shim.Config{
		ID:          "shimtest-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 10),
		Bundle:      bundle,
		RuntimeRoot: t.TempDir(),
		StateDir:    state,
		LogPath:     filepath.Join(state, "container.log"),
	}
	if adjust != nil {
		adjust(&cfg, spec)
	}
	testutil.WriteSpec(t, bundle, spec)
	b := &box{t: t, cfg: cfg}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := shim.New(ctx, cfg, shim.Spawn{Exe: "/proc/self/exe", Args: []string{"shim"}})
	if err != nil {
		t.Fatalf("shim.New: %v", err)
	}
	b.c = c
	shimPid := c.ShimPid()
	t.Cleanup(func() {
		b.c.Close()
		// Whatever the test did, the container goes and its shim exits.
		if rt, err := runtime.New(cfg.RuntimeRoot); err == nil {
			if ctr, err := rt.Load(cfg.ID); err == nil {
				_ = ctr.Kill(syscall.SIGKILL, true)
			}
		}
		if !waitGone(shimPid, 15*time.Second) {
			t.Errorf("shim %d still running after the container was killed", shimPid)
			_ = syscall.Kill(shimPid, syscall.SIGKILL)
			waitGone(shimPid, 5*time.Second)
		}
	})
	return b
}

// waitGone waits until pid no longer exists (the test process reaps its
// shims in the background).
func waitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

func (b *box) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	b.t.Cleanup(cancel)
	return ctx
}

func (b *box) start() {
	b.t.Helper()
	if err := b.c.Start(b.ctx()); err != nil {
		b.t.Fatalf("start: %v", err)
	}
}

func (b *box) attach(stdin, stdout, stderr bool) shim.Stream {
	b.t.Helper()
	s, err := b.c.Attach(b.ctx(), stdin, stdout, stderr)
	if err != nil {
		b.t.Fatalf("attach: %v", err)
	}
	b.t.Cleanup(func() { s.Close() })
	return s
}

func (b *box) wait() shim.ExitStatus {
	b.t.Helper()
	st, err := b.c.Wait(b.ctx())
	if err != nil {
		b.t.Fatalf("wait: %v", err)
	}
	return st
}

// runtimeContainer loads the container the way the daemon does for kill.
func (b *box) runtimeContainer() *runtime.Container {
	b.t.Helper()
	rt, err := runtime.New(b.cfg.RuntimeRoot)
	if err != nil {
		b.t.Fatal(err)
	}
	ctr, err := rt.Load(b.cfg.ID)
	if err != nil {
		b.t.Fatal(err)
	}
	return ctr
}

// logEntries reads the container's json-file log as "stream:text" lines.
func (b *box) logEntries() []string {
	b.t.Helper()
	var out []string
	err := jsonfile.Read(context.Background(), b.cfg.LogPath, jsonfile.ReadOptions{Stdout: true, Stderr: true, Tail: -1}, nil,
		func(m jsonfile.Message) error {
			out = append(out, m.Stream+":"+string(m.Line))
			return nil
		})
	if err != nil {
		b.t.Fatalf("read log: %v", err)
	}
	return out
}

// waitLog waits until the log holds entry.
func (b *box) waitLog(entry string) {
	b.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, e := range b.logEntries() {
			if e == entry {
				return
			}
		}
	}
	b.t.Fatalf("log never got %q", entry)
}

// demux reads a framed stream to its end.
func demux(t *testing.T, r io.Reader) (stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	if _, err := stdcopy.StdCopy(&o, &e, r); err != nil {
		t.Fatalf("reading framed stream: %v", err)
	}
	return o.String(), e.String()
}

// exitEventually polls exit.json, as a daemon that was away would.
func exitEventually(t *testing.T, stateDir string) *shim.ExitStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := shim.ReadExit(stateDir)
		if err == nil {
			return st
		}
		if !errors.Is(err, fs.ErrNotExist) || time.Now().After(deadline) {
			t.Fatalf("exit.json: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOutputToLogAndFramedAttach(t *testing.T) {
	const n = 2000
	b := newBox(t, nil, "sh", "-c", fmt.Sprintf(`i=1; while [ $i -le %d ]; do echo out $i; i=$((i+1)); done; echo err >&2; echo last`, n))
	all := b.attach(false, true, true)
	errOnly := b.attach(false, false, true)
	b.start()

	var want strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&want, "out %d\n", i)
	}
	want.WriteString("last\n")
	stdout, stderr := demux(t, all)
	if stdout != want.String() {
		t.Errorf("attached stdout: %d bytes, want %d (first difference matters)", len(stdout), want.Len())
	}
	if stderr != "err\n" {
		t.Errorf("attached stderr = %q, want %q", stderr, "err\n")
	}
	o, e := demux(t, errOnly)
	if o != "" || e != "err\n" {
		t.Errorf("stderr-only attach got stdout %q, stderr %q", o, e)
	}
	if st := b.wait(); st.ExitCode != 0 || st.OOMKilled || st.FinishedAt.IsZero() {
		t.Errorf("exit status = %+v, want 0 with a finish time", st)
	}
	// Each stream is in order; how they interleave is up to the pipes.
	var logOut, logErr strings.Builder
	for _, e := range b.logEntries() {
		if text, ok := strings.CutPrefix(e, "stdout:"); ok {
			logOut.WriteString(text)
		} else {
			logErr.WriteString(strings.TrimPrefix(e, "stderr:"))
		}
	}
	if logOut.String() != want.String() {
		t.Errorf("logged stdout: %d bytes, want %d", logOut.Len(), want.Len())
	}
	if logErr.String() != "err\n" {
		t.Errorf("logged stderr = %q, want %q", logErr.String(), "err\n")
	}
	// The shim is gone: the status is on disk, and attaching fails.
	st := exitEventually(t, b.cfg.StateDir)
	if st.ExitCode != 0 {
		t.Errorf("exit.json: %+v", st)
	}
	if !waitRemoved(filepath.Join(b.cfg.StateDir, "shim.sock")) {
		t.Error("shim.sock left behind")
	}
}

func waitRemoved(path string) bool {
	for i := 0; i < 500; i++ {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

func TestStdinOnce(t *testing.T) {
	b := newBox(t, func(c *shim.Config, _ *specs.Spec) { c.OpenStdin, c.StdinOnce = true, true }, "cat")
	s := b.attach(true, true, true)
	b.start()
	if _, err := io.WriteString(s, "hello through stdin\n"); err != nil {
		t.Fatal(err)
	}
	if err := s.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	stdout, stderr := demux(t, s) // ends only when cat saw EOF and exited
	if stdout != "hello through stdin\n" || stderr != "" {
		t.Errorf("got stdout %q, stderr %q", stdout, stderr)
	}
	if st := b.wait(); st.ExitCode != 0 {
		t.Errorf("exit code %d", st.ExitCode)
	}
}

func TestStdinStaysOpenWithoutStdinOnce(t *testing.T) {
	// The shell's echo writes at once (head or cat would buffer a pipe).
	b := newBox(t, func(c *shim.Config, _ *specs.Spec) { c.OpenStdin = true }, "sh", "-c", `read a; echo "$a"; read b; echo "$b"`)
	b.start()
	first := b.attach(true, false, false)
	io.WriteString(first, "one\n")
	first.CloseWrite()
	first.Close()
	b.waitLog("stdout:one\n")
	second := b.attach(true, true, false)
	io.WriteString(second, "two\n")
	stdout, _ := demux(t, second)
	if stdout != "two\n" {
		t.Errorf("second attach saw %q, want %q", stdout, "two\n")
	}
	if st := b.wait(); st.ExitCode != 0 {
		t.Errorf("exit code %d", st.ExitCode)
	}
	if got := strings.Join(b.logEntries(), ""); got != "stdout:one\nstdout:two\n" {
		t.Errorf("log = %q", got)
	}
}

func TestTerminal(t *testing.T) {
	b := newBox(t, func(c *shim.Config, _ *specs.Spec) { c.Terminal, c.OpenStdin, c.StdinOnce = true, true, true },
		"sh", "-c", `stty size; read line; echo "got:$line"`)
	s := b.attach(true, true, true)
	if err := b.c.Resize(b.ctx(), "", 33, 77); err != nil {
		t.Fatalf("resize: %v", err)
	}
	b.start()
	br := bufio.NewReader(s)
	var seen strings.Builder
	readUntil := func(what string) {
		t.Helper()
		for !strings.Contains(seen.String(), what) {
			c, err := br.ReadByte()
			if err != nil {
				t.Fatalf("waiting for %q: %v (got %q)", what, err, seen.String())
			}
			seen.WriteByte(c)
		}
	}
	readUntil("33 77\r\n") // raw pty output: onlcr turns \n into \r\n, no framing
	if err := b.c.Resize(b.ctx(), "nosuch", 1, 1); err == nil || !strings.Contains(err.Error(), "No such exec instance") {
		t.Errorf("resize of an unknown exec: %v", err)
	}
	io.WriteString(s, "hi\n")
	readUntil("got:hi\r\n")
	rest, _ := io.ReadAll(br)
	seen.Write(rest)
	if seen.String()[0] == 1 {
		t.Errorf("terminal output is framed: %q", seen.String())
	}
	if st := b.wait(); st.ExitCode != 0 {
		t.Errorf("exit code %d", st.ExitCode)
	}
	var log strings.Builder
	for _, e := range b.logEntries() {
		if !strings.HasPrefix(e, "stdout:") {
			t.Errorf("terminal output logged as %q", e)
		}
		log.WriteString(strings.TrimPrefix(e, "stdout:"))
	}
	if !strings.Contains(log.String(), "got:hi\r\n") {
		t.Errorf("log = %q", log.String())
	}
}

func TestExec(t *testing.T) {
	b := newBox(t, nil, "sleep", "1000")
	b.start()
	proc := func(args ...string) *specs.Process {
		return &specs.Process{Args: args, Cwd: "/", Env: []string{"PATH=/bin:/usr/bin"}}
	}

	s, pid, err := b.c.Exec(b.ctx(), shim.ExecOpts{ID: "e1", Process: proc("sh", "-c", "echo to-out; echo to-err >&2; exit 3"), Stdout: true, Stderr: true})
	if err != nil {
		t.Fatalf("exec: %v", err)
	}
	if pid <= 0 {
		t.Errorf("exec pid %d", pid)
	}
	stdout, stderr := demux(t, s)
	s.Close()
	if stdout != "to-out\n" || stderr != "to-err\n" {
		t.Errorf("exec output %q / %q", stdout, stderr)
	}
	if code, err := b.c.ExecWait(b.ctx(), "e1"); err != nil || code != 3 {
		t.Errorf("exec-wait = %d, %v; want 3", code, err)
	}

	s, _, err = b.c.Exec(b.ctx(), shim.ExecOpts{ID: "e2", Process: proc("cat"), Stdin: true, Stdout: true})
	if err != nil {
		t.Fatalf("exec cat: %v", err)
	}
	io.WriteString(s, "round trip\n")
	s.CloseWrite()
	if stdout, _ := demux(t, s); stdout != "round trip\n" {
		t.Errorf("exec cat echoed %q", stdout)
	}
	s.Close()
	if code, err := b.c.ExecWait(b.ctx(), "e2"); err != nil || code != 0 {
		t.Errorf("exec-wait cat = %d, %v", code, err)
	}

	tp := proc("sh", "-c", "stty size")
	tp.Terminal = true
	s, _, err = b.c.Exec(b.ctx(), shim.ExecOpts{ID: "e3", Process: tp, Stdout: true})
	if err != nil {
		t.Fatalf("exec with terminal: %v", err)
	}
	if out, _ := io.ReadAll(s); !bytes.Contains(out, []byte("\r\n")) || out[0] == 1 {
		t.Errorf("terminal exec output %q", out)
	}
	s.Close()

	if _, _, err := b.c.Exec(b.ctx(), shim.ExecOpts{ID: "e4", Process: proc("no-such-binary"), Stdout: true}); err == nil ||
		!(strings.Contains(err.Error(), "executable file not found") || strings.Contains(err.Error(), "no such file or directory")) {
		t.Errorf("exec of a missing binary: %v", err)
	}
	if _, _, err := b.c.Exec(b.ctx(), shim.ExecOpts{ID: "e1", Process: proc("true")}); err == nil {
		t.Error("exec with a used ID succeeded")
	}
	if _, err := b.c.ExecWait(b.ctx(), "e4"); err == nil || !strings.Contains(err.Error(), "No such exec instance") {
		t.Errorf("exec-wait of a failed exec: %v", err)
	}

	// A detached exec keeps running after its stream is closed.
	s, _, err = b.c.Exec(b.ctx(), shim.ExecOpts{ID: "e5", Process: proc("sh", "-c", "sleep 0.3; exit 5")})
	if err != nil {
		t.Fatalf("detached exec: %v", err)
	}
	s.Close()
	if code, err := b.c.ExecWait(b.ctx(), "e5"); err != nil || code != 5 {
		t.Errorf("detached exec-wait = %d, %v", code, err)
	}

	if err := b.runtimeContainer().Kill(syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	if st := b.wait(); st.ExitCode != 137 {
		t.Errorf("exit code after SIGKILL = %d, want 137", st.ExitCode)
	}
}

func TestWaitAfterExit(t *testing.T) {
	b := newBox(t, nil, "sh", "-c", "exit 4")
	b.start()
	if st := b.wait(); st.ExitCode != 4 {
		t.Fatalf("exit code %d, want 4", st.ExitCode)
	}
	began := time.Now()
	st := b.wait() // the shim may be gone: exit.json answers
	if st.ExitCode != 4 {
		t.Errorf("second wait: %+v", st)
	}
	if d := time.Since(began); d > time.Second {
		t.Errorf("wait after exit took %v", d)
	}
	if !waitRemoved(filepath.Join(b.cfg.StateDir, "shim.sock")) {
		t.Fatal("shim.sock left behind")
	}
	if _, err := shim.Connect(b.cfg.StateDir); err == nil {
		t.Error("Connect succeeded after the shim exited")
	}
}

func TestDaemonDeath(t *testing.T) {
	const lines = 40
	b := newBox(t, nil, "sh", "-c", fmt.Sprintf(`i=0; while [ $i -lt %d ]; do echo line $i; i=$((i+1)); sleep 0.05; done; exit 7`, lines))
	s := b.attach(false, true, true)
	b.start()
	shimPid, initPid := b.c.ShimPid(), b.c.Pid()
	// The daemon goes away mid-run: its connections close, and signals
	// meant for it (or its process group) reach the shim too.
	b.c.Close()
	s.Close()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		if err := syscall.Kill(shimPid, sig); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if err := syscall.Kill(shimPid, 0); err != nil {
		t.Fatalf("shim died: %v", err)
	}

	c, err := shim.Connect(b.cfg.StateDir)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if c.Pid() != initPid || c.ShimPid() != shimPid {
		t.Errorf("Connect: pid %d shim %d, want %d and %d", c.Pid(), c.ShimPid(), initPid, shimPid)
	}
	if _, err := shim.ReadExit(b.cfg.StateDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadExit while running: %v", err)
	}
	// Away again: the container exits with nobody connected.
	c.Close()
	st := exitEventually(t, b.cfg.StateDir)
	if st.ExitCode != 7 || st.FinishedAt.IsZero() || st.Error != "" {
		t.Errorf("exit.json = %+v, want code 7", st)
	}
	entries := b.logEntries()
	if len(entries) != lines {
		t.Fatalf("log has %d entries, want %d: %q", len(entries), lines, entries)
	}
	for i, e := range entries {
		if want := fmt.Sprintf("stdout:line %d\n", i); e != want {
			t.Errorf("log entry %d = %q, want %q", i, e, want)
		}
	}
}

func TestKilledWhileDisconnected(t *testing.T) {
	b := newBox(t, nil, "sleep", "1000")
	b.start()
	b.c.Close()
	if err := b.runtimeContainer().Kill(syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	if st := exitEventually(t, b.cfg.StateDir); st.ExitCode != 137 || st.OOMKilled {
		t.Errorf("exit.json = %+v, want 137", st)
	}
}

func TestOOMKilled(t *testing.T) {
	b := newBox(t, func(_ *shim.Config, s *specs.Spec) {
		limit := int64(32 << 20)
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &limit}
	}, "sh", "-c", `x=0123456789abcdef; while true; do x=$x$x; done`)
	b.start()
	st := b.wait()
	if !st.OOMKilled || st.ExitCode != 137 {
		t.Errorf("exit status = %+v, want OOM-killed with 137", st)
	}
}

func TestCreateErrorIsReported(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.LeakCheck(t)
	bundle, _ := testutil.NewBundle(t, "no-such-program")
	_, err := shim.New(context.Background(), shim.Config{
		ID: "shimtest-missing", Bundle: bundle, RuntimeRoot: t.TempDir(), StateDir: t.TempDir(),
	}, shim.Spawn{Exe: "/proc/self/exe", Args: []string{"shim"}})
	if err == nil || !(strings.Contains(err.Error(), "no such file or directory") || strings.Contains(err.Error(), "executable file not found")) {
		t.Errorf("New with a missing program: %v", err)
	}
}

// memoryKB reads the "Key:   N kB" lines of a /proc/<pid> file.
func memoryKB(t *testing.T, path string) map[string]int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	kB := map[string]int{}
	for _, l := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.HasSuffix(v, " kB") {
			kB[k], _ = strconv.Atoi(strings.Fields(v)[0])
		}
	}
	return kB
}

// TestShimMemory measures a shim with one idle container. VmRSS counts the
// pages of the binary the shim has mapped, which it shares with the
// daemon and every other shim through the page cache; what a shim costs on
// its own is its private memory.
func TestShimMemory(t *testing.T) {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "-race" && s.Value == "true" {
				t.Skip("the race detector's memory is not the shim's")
			}
		}
	}
	b := newBox(t, nil, "sleep", "1000")
	b.start()
	time.Sleep(200 * time.Millisecond)
	status := memoryKB(t, fmt.Sprintf("/proc/%d/status", b.c.ShimPid()))
	rollup := memoryKB(t, fmt.Sprintf("/proc/%d/smaps_rollup", b.c.ShimPid()))
	rss, private := status["VmRSS"], rollup["Private_Clean"]+rollup["Private_Dirty"]
	t.Logf("shim with one idle container: VmRSS %d kB (file-backed %d kB, anonymous %d kB), Pss %d kB, private %d kB",
		rss, status["RssFile"], status["RssAnon"], rollup["Pss"], private)
	if rss == 0 || rss > 15*1024 {
		t.Errorf("shim VmRSS = %d kB, want at most 15 MiB", rss)
	}
	if private == 0 || private > 6*1024 {
		t.Errorf("shim private memory = %d kB, want at most 6 MiB", private)
	}
}

// hostPID removes the PID namespace: the container's orphans then go to
// the shim, and its processes do not all die with its init.
func hostPID(_ *shim.Config, s *specs.Spec) {
	var keep []specs.LinuxNamespace
	for _, ns := range s.Linux.Namespaces {
		if ns.Type != specs.PIDNamespace {
			keep = append(keep, ns)
		}
	}
	s.Linux.Namespaces = keep
}

// children lists the PIDs and states of pid's children.
func children(t *testing.T, pid int) map[int]string {
	t.Helper()
	out := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			out[child] = fields[0]
		}
	}
	return out
}

func TestOrphansAreReaped(t *testing.T) {
	b := newBox(t, hostPID, "sh", "-c", `(sleep 0.1 &); (sleep 0.1 &); exec sleep 1000`)
	b.start()
	shimPid := b.c.ShimPid()
	deadline := time.Now().Add(10 * time.Second)
	for {
		kids := children(t, shimPid)
		zombies := 0
		for _, state := range kids {
			if state == "Z" {
				zombies++
			}
		}
		// Left: the container's init (sleep 1000), nothing else.
		if len(kids) == 1 && zombies == 0 {
			if _, ok := kids[b.c.Pid()]; !ok {
				t.Fatalf("the shim's child is not the container's init: %v", kids)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("children of the shim: %v (the orphans' zombies stay)", kids)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStrayOutputHolder(t *testing.T) {
	// The background sleep keeps stdout open after the init exits: the shim
	// gives up on it, records the exit, and the runtime's delete kills it.
	b := newBox(t, hostPID, "sh", "-c", `sleep 100 & echo hi; exit 2`)
	s := b.attach(false, true, false)
	b.start()
	began := time.Now()
	st := b.wait()
	if d := time.Since(began); d < 1500*time.Millisecond || d > 10*time.Second {
		t.Errorf("wait took %v, want about the 2 s drain limit", d)
	}
	if st.ExitCode != 2 {
		t.Errorf("exit code %d, want 2", st.ExitCode)
	}
	if out, _ := demux(t, s); out != "hi\n" {
		t.Errorf("attached stdout %q", out)
	}
	if got := strings.Join(b.logEntries(), ""); got != "stdout:hi\n" {
		t.Errorf("log = %q", got)
	}
}

func TestStalledClient(t *testing.T) {
	// A client that stops reading holds the output back (as Docker's attach
	// does), but not the record of the container's end.
	b := newBox(t, nil, "dd", "if=/dev/zero", "bs=1024k", "count=16")
	b.attach(false, true, true) // never read
	b.start()
	time.Sleep(300 * time.Millisecond)
	if err := b.runtimeContainer().Kill(syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := b.c.Wait(ctx)
	if err != nil || st.ExitCode != 137 {
		t.Errorf("wait = %+v, %v; want 137", st, err)
	}
}

func TestNewCancelled(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.LeakCheck(t)
	bundle, _ := testutil.NewBundle(t, "sleep", "1000")
	root, state := t.TempDir(), t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := shim.New(ctx, shim.Config{ID: "shimtest-cancelled", Bundle: bundle, RuntimeRoot: root, StateDir: state},
		shim.Spawn{Exe: "/proc/self/exe", Args: []string{"shim"}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("New with a cancelled context: %v", err)
	}
	// The shim, unable to report, removes the container it made.
	rt, err := runtime.New(root)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		log, _ := os.ReadFile(filepath.Join(state, "shim.log"))
		cs, err := rt.List()
		if bytes.Contains(log, []byte("report ready")) && err == nil && len(cs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("containers left: %d (%v); shim.log: %s", len(cs), err, log)
		}
	}
}
