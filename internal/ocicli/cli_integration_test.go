package ocicli_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/ocicli"
	"github.com/berth-dev/berth/internal/runtime"
	_ "github.com/berth-dev/berth/internal/runtime/nsenter"
	"github.com/berth-dev/berth/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"golang.org/x/sys/unix"
)

// The test binary doubles as berth-runtime: with BERTH_TEST_CLI set it runs
// the CLI, and as "init" it is the container init.
func TestMain(m *testing.M) {
	if runtime.IsInit() {
		runtime.Init()
	}
	if os.Getenv("BERTH_TEST_CLI") == "1" {
		os.Exit(ocicli.Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}

type cli struct {
	t    *testing.T
	root string
}

func newCLI(t *testing.T) *cli {
	testutil.RequiresRoot(t)
	testutil.LeakCheck(t)
	c := &cli{t: t, root: t.TempDir()}
	t.Cleanup(func() {
		out, _, _ := c.run("list", "-q")
		for _, id := range strings.Fields(out) {
			if _, stderr, code := c.run("delete", "-f", id); code != 0 {
				t.Errorf("cleanup delete %s: %s", id, stderr)
			}
		}
	})
	return c
}

// run executes the CLI with --root and returns stdout, stderr and the exit code.
func (c *cli) run(args ...string) (string, string, int) {
	c.t.Helper()
	return c.runIn(nil, args...)
}

func (c *cli) runIn(stdin []byte, args ...string) (string, string, int) {
	c.t.Helper()
	self, err := os.Executable()
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(self, append([]string{"--root", c.root}, args...)...)
	cmd.Env = append(os.Environ(), "BERTH_TEST_CLI=1")
	// Files, not pipes: a container started by create or run -d inherits
	// them and outlives the command.
	dir := c.t.TempDir()
	stdout, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		c.t.Fatal(err)
	}
	defer stdout.Close()
	stderr, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		c.t.Fatal(err)
	}
	defer stderr.Close()
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	o, _ := os.ReadFile(stdout.Name())
	e, _ := os.ReadFile(stderr.Name())
	return string(o), string(e), code
}

func (c *cli) must(args ...string) string {
	c.t.Helper()
	out, stderr, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("berth-runtime %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	return out
}

func (c *cli) state(id string) specs.State {
	c.t.Helper()
	var st specs.State
	if err := json.Unmarshal([]byte(c.must("state", id)), &st); err != nil {
		c.t.Fatal(err)
	}
	return st
}

func bundle(t *testing.T, mutate func(*specs.Spec), args ...string) string {
	dir, spec := testutil.NewBundle(t, args...)
	if mutate != nil {
		mutate(spec)
	}
	testutil.WriteSpec(t, dir, spec)
	return dir
}

func TestCLILifecycle(t *testing.T) {
	c := newCLI(t)
	b := bundle(t, nil, "sleep", "1000")
	pidFile := filepath.Join(t.TempDir(), "pid")
	c.must("create", "--bundle", b, "--pid-file", pidFile, "c1")
	st := c.state("c1")
	pidData, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != specs.StateCreated || st.ID != "c1" || st.Bundle != b || strconv.Itoa(st.Pid) != string(pidData) {
		t.Errorf("state after create: %+v (pid file %q)", st, pidData)
	}
	if _, stderr, code := c.run("create", "--bundle", b, "c1"); code == 0 || !strings.Contains(stderr, "already exists") {
		t.Errorf("second create with the same ID: exit %d, %q", code, stderr)
	}
	c.must("start", "c1")
	if st := c.state("c1"); st.Status != specs.StateRunning {
		t.Errorf("state after start: %s", st.Status)
	}
	var pids []int
	if err := json.Unmarshal([]byte(c.must("ps", "--format", "json", "c1")), &pids); err != nil || len(pids) != 1 || pids[0] != st.Pid {
		t.Errorf("ps --format json = %v, %v; want [%d]", pids, err, st.Pid)
	}
	if out := c.must("ps", "c1"); !strings.Contains(out, "sleep 1000") || !strings.Contains(out, "PID") {
		t.Errorf("ps table:\n%s", out)
	}

	out, stderr, code := c.run("exec", "c1", "sh", "-c", "echo in=$(hostname); exit 7")
	if code != 7 || !strings.Contains(out, "in=") {
		t.Errorf("exec: exit %d, out %q, err %q", code, out, stderr)
	}
	var ev struct {
		Type string
		Data struct {
			Memory struct{ Usage, Limit uint64 }
			Pids   struct{ Current uint64 }
		}
	}
	if err := json.Unmarshal([]byte(c.must("events", "--stats", "c1")), &ev); err != nil || ev.Type != "stats" ||
		ev.Data.Memory.Usage == 0 || ev.Data.Pids.Current != 1 {
		t.Errorf("events --stats = %+v, %v", ev, err)
	}
	// update: a new memory limit reaches the cgroup.
	if _, stderr, code := c.runIn([]byte(`{"memory":{"limit":33554432},"pids":{"limit":42}}`), "update", "-r", "-", "c1"); code != 0 {
		t.Fatalf("update: %s", stderr)
	}
	if err := json.Unmarshal([]byte(c.must("events", "--stats", "c1")), &ev); err != nil || ev.Data.Memory.Limit != 33554432 {
		t.Errorf("memory limit after update = %d, %v", ev.Data.Memory.Limit, err)
	}
	c.must("pause", "c1")
	if st := c.state("c1"); st.Status != "paused" {
		t.Errorf("state after pause: %s", st.Status)
	}
	c.must("resume", "c1")
	if _, _, code := c.run("delete", "c1"); code == 0 {
		t.Error("delete of a running container succeeded without --force")
	}
	c.must("kill", "c1", "KILL")
	waitStatus(t, c, "c1", specs.StateStopped)
	if _, _, code := c.run("kill", "c1"); code == 0 {
		t.Error("kill of a stopped container succeeded")
	}
	c.must("delete", "c1")
	if _, stderr, code := c.run("state", "c1"); code == 0 || !strings.Contains(stderr, "does not exist") {
		t.Errorf("state after delete: exit %d, %q", code, stderr)
	}
}

func waitStatus(t *testing.T, c *cli, id string, want specs.ContainerState) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c.state(id).Status == want {
			return
		}
	}
	t.Fatalf("%s never became %s", id, want)
}

func TestCLIRunExitCodeAndStdio(t *testing.T) {
	c := newCLI(t)
	b := bundle(t, nil, "sh", "-c", "read line; echo got:$line; echo err >&2; exit 42")
	out, stderr, code := c.runIn([]byte("hello\n"), "run", "--bundle", b, "r1")
	if code != 42 || out != "got:hello\n" || stderr != "err\n" {
		t.Errorf("run: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if ids, _, _ := c.run("list", "-q"); strings.TrimSpace(ids) != "" {
		t.Errorf("run left a container behind: %q", ids)
	}
	// Detached: the container keeps running after the CLI returns.
	b2 := bundle(t, nil, "sleep", "1000")
	c.must("run", "-d", "--bundle", b2, "r2")
	if st := c.state("r2"); st.Status != specs.StateRunning {
		t.Errorf("detached run: %s", st.Status)
	}
	c.must("delete", "--force", "r2")
}

func TestCLIConsoleSocket(t *testing.T) {
	c := newCLI(t)
	sock := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan *os.File, 1)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer conn.Close()
		f, _ := conn.(*net.UnixConn).File()
		defer f.Close()
		m, _ := runtime.RecvFd(f)
		got <- m
	}()
	b := bundle(t, func(s *specs.Spec) { s.Process.Terminal = true }, "sh", "-c", "tty; stty size")
	if _, stderr, code := c.run("create", "--bundle", b, "--console-socket", sock, "t1"); code != 0 {
		t.Fatalf("create: %s", stderr)
	}
	master := <-got
	if master == nil {
		t.Fatal("no pty master on the console socket")
	}
	defer master.Close()
	c.must("start", "t1")
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() { _, _ = buf.ReadFrom(master); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("terminal output did not end")
	}
	if !strings.Contains(buf.String(), "/dev/pts/0") {
		t.Errorf("terminal output %q", buf.String())
	}
}

func TestCLISpecFeaturesAndErrors(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	c.must("spec", "--bundle", dir)
	spec, err := runtime.LoadSpec(dir)
	if err != nil {
		t.Fatalf("spec wrote an invalid config.json: %v", err)
	}
	if spec.Process.Args[0] != "sh" || spec.Root.Path != "rootfs" {
		t.Errorf("default spec: args %v root %q", spec.Process.Args, spec.Root.Path)
	}
	if _, _, code := c.run("spec", "--bundle", dir); code == 0 {
		t.Error("spec overwrote an existing config.json")
	}
	if spec.Linux.Seccomp != nil {
		t.Error("default spec has a seccomp profile; runc's has none")
	}
	dir2 := t.TempDir()
	c.must("spec", "--bundle", dir2, "--seccomp", "default")
	if spec, err := runtime.LoadSpec(dir2); err != nil || spec.Linux.Seccomp == nil || len(spec.Linux.Seccomp.Syscalls) < 10 {
		t.Errorf("spec --seccomp default: %v", err)
	}
	var f features.Features
	if err := json.Unmarshal([]byte(c.must("features")), &f); err != nil {
		t.Fatal(err)
	}
	if f.OCIVersionMax != specs.Version || f.Linux == nil || len(f.Linux.Namespaces) != 8 || !*f.Linux.Seccomp.Enabled {
		t.Errorf("features: %+v", f)
	}
	logFile := filepath.Join(t.TempDir(), "log.json")
	_, _, code := c.run("--log", logFile, "--log-format", "json", "start", "nope")
	if code == 0 {
		t.Fatal("start of an unknown container succeeded")
	}
	data, _ := os.ReadFile(logFile)
	var entry map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(data), &entry); err != nil || entry["level"] != "ERROR" ||
		!strings.Contains(fmt.Sprint(entry["msg"]), "does not exist") {
		t.Errorf("json log: %q (%v)", data, err)
	}
	if _, stderr, code := c.run("kill", "nope", "NOTASIGNAL"); code == 0 || !strings.Contains(stderr, "signal") {
		t.Errorf("bad signal: exit %d %q", code, stderr)
	}
}

func TestCLIRunForwardsSignals(t *testing.T) {
	c := newCLI(t)
	ready := filepath.Join(t.TempDir(), "ready")
	b := bundle(t, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/ready", Type: "bind", Source: filepath.Dir(ready), Options: []string{"rbind"}})
	}, "sh", "-c", `trap "exit 7" TERM; touch /ready/ready; while true; do sleep 0.05; done`)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "--root", c.root, "run", "--bundle", b, "sig1")
	cmd.Env = append(os.Environ(), "BERTH_TEST_CLI=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatal("container did not start")
		}
	}
	if err := cmd.Process.Signal(unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
		t.Errorf("run after SIGTERM: %v, want exit status 7 from the container's trap", err)
	}
}
