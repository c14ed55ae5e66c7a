package cgroups

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// helperEnv selects a helper mode when the test binary re-executes itself
// to have a process to put into a cgroup.
const helperEnv = "BERTH_CGROUPS_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	os.Exit(m.Run())
}

// runHelper is the body of a helper process. Each mode first waits for a
// line on stdin, so that the test can move the process into a cgroup
// before it does its work.
func runHelper(mode string) int {
	in := bufio.NewReader(os.Stdin)
	line, err := in.ReadString('\n')
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	line = strings.TrimSpace(line)
	switch mode {
	case "work":
		// Allocate and touch the given number of MiB, report, then burn CPU.
		mib, _ := strconv.Atoi(line)
		buf := make([]byte, mib<<20)
		for i := 0; i < len(buf); i += 4096 {
			buf[i] = 1
		}
		fmt.Println("ready")
		x := 0
		for {
			x += int(buf[x%len(buf)])
		}
	case "devices":
		json.NewEncoder(os.Stdout).Encode(deviceProbe(line))
		return 0
	case "relative":
		out := map[string]any{}
		m, err := New(line, "unused")
		if err == nil {
			err = m.Apply(os.Getpid(), nil)
			out["paths"] = m.Paths()
		}
		if err != nil {
			out["error"] = err.Error()
		}
		json.NewEncoder(os.Stdout).Encode(out)
		io.Copy(io.Discard, in) // stay alive until killed
		return 0
	}
	fmt.Fprintln(os.Stderr, "helper: unknown mode", mode)
	return 2
}

// deviceProbe tries device accesses and reports "ok" or the error for each.
func deviceProbe(dir string) map[string]string {
	res := map[string]string{}
	try := func(name string, err error) {
		if err == nil {
			res[name] = "ok"
		} else if errors.Is(err, unix.EPERM) {
			res[name] = "EPERM"
		} else {
			res[name] = err.Error()
		}
	}
	open := func(path string, flag int) error {
		f, err := os.OpenFile(path, flag, 0)
		if err == nil {
			f.Close()
		}
		return err
	}
	try("null_rw", open("/dev/null", os.O_RDWR))
	try("zero_r", open("/dev/zero", os.O_RDONLY))
	try("zero_rw", open("/dev/zero", os.O_RDWR))
	try("full_r", open("/dev/full", os.O_RDONLY))
	try("mknod_null", unix.Mknod(filepath.Join(dir, "null"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))))
	try("mknod_full", unix.Mknod(filepath.Join(dir, "full"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 7))))
	return res
}

// helper is a running helper process.
type helper struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

// startHelper starts the test binary in a helper mode. The process is
// killed and reaped when the test ends.
func startHelper(t *testing.T, mode string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, in: in, out: bufio.NewReader(out)}
	t.Cleanup(func() { h.kill() })
	return h
}

func (h *helper) pid() int { return h.cmd.Process.Pid }

// kill kills the helper and reaps it; it is safe to call more than once.
func (h *helper) kill() {
	if h.cmd.ProcessState != nil {
		return
	}
	_ = h.cmd.Process.Kill()
	_ = h.cmd.Wait()
}

// send gives the helper its go-ahead line.
func (h *helper) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(h.in, line+"\n"); err != nil {
		t.Fatalf("write to helper: %v", err)
	}
}

// readLine reads one line of helper output, failing after timeout.
func (h *helper) readLine(t *testing.T, timeout time.Duration) string {
	t.Helper()
	type result struct {
		s   string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := h.out.ReadString('\n')
		ch <- result{s, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("read from helper: %v", r.err)
		}
		return strings.TrimSpace(r.s)
	case <-time.After(timeout):
		t.Fatalf("helper said nothing within %v", timeout)
		return ""
	}
}

// startSleep starts "sleep 100", killed and reaped when the test ends.
func startSleep(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "100")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// cpuTicks returns utime+stime of a process, in clock ticks.
func cpuTicks(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseUint(f[11], 10, 64)
	stime, _ := strconv.ParseUint(f[12], 10, 64)
	return utime + stime
}

// procCgroups returns the cgroup membership of a process, keyed by the
// controller list of each /proc/<pid>/cgroup line ("" for cgroup v2).
func procCgroups(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 {
			out[parts[1]] = parts[2]
		}
	}
	return out
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// testGroupName returns a cgroup name no other test run uses.
func testGroupName() string {
	var b [4]byte
	f, err := os.Open("/dev/urandom")
	if err == nil {
		io.ReadFull(f, b[:])
		f.Close()
	}
	return fmt.Sprintf("berth-cgtest-%d-%x", os.Getpid(), b)
}

// emptyAndDestroy kills whatever is left in the cgroup of m and removes it,
// reporting failures on t. It is meant for t.Cleanup.
func emptyAndDestroy(t *testing.T, m Manager) {
	t.Helper()
	_ = m.Thaw()
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids, err := m.Pids()
		if err != nil || len(pids) == 0 {
			break
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		if time.Now().After(deadline) {
			t.Errorf("processes %v survive in %v", pids, m.Paths())
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := m.Destroy(); err != nil {
		t.Errorf("cleanup: %v", err)
	}
}

// assertGone checks that every directory of m has been removed.
func assertGone(t *testing.T, m Manager) {
	t.Helper()
	for ctrl, dir := range m.Paths() {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s directory %s still there (%v)", ctrl, dir, err)
		}
	}
}

// readCgroupFile reads one interface file, trimmed.
func readCgroupFile(t *testing.T, dir, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
