package initreaper

import (
	"bufio"
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

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/creack/pty"
)

// reaperEnv makes the test binary run Main with its arguments instead of
// the tests.
const reaperEnv = "BERTH_TEST_INITREAPER"

func TestMain(m *testing.M) {
	if os.Getenv(reaperEnv) == "1" {
		os.Exit(Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// reaper returns a command running the test binary as the init with args,
// in a temporary working directory (where a core dump would land).
func reaper(t *testing.T, newPID bool, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), reaperEnv+"=1")
	cmd.Dir = t.TempDir()
	if newPID {
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	}
	return cmd
}

// startReaper starts the init with its stdout as a line scanner, and kills
// it when the test ends.
func startReaper(t *testing.T, cmd *exec.Cmd) *bufio.Scanner {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killTree(t, cmd) })
	return bufio.NewScanner(out)
}

// killTree kills the init and its children, which outside a pid namespace
// would outlive it and keep the test's output open.
func killTree(t *testing.T, cmd *exec.Cmd) {
	for _, k := range children(t, cmd.Process.Pid) {
		syscall.Kill(k.pid, syscall.SIGKILL)
	}
	cmd.Process.Kill()
	cmd.Wait()
}

// expectLine reads the next line and fails unless it starts with prefix.
func expectLine(t *testing.T, sc *bufio.Scanner, prefix string) string {
	t.Helper()
	if !sc.Scan() {
		t.Fatalf("no line %q: %v", prefix, sc.Err())
	}
	if !strings.HasPrefix(sc.Text(), prefix) {
		t.Fatalf("line %q, want %q…", sc.Text(), prefix)
	}
	return sc.Text()
}

// exitCode waits for the init and returns its exit code, failing if it was
// killed by a signal itself.
func exitCode(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signaled() {
			t.Fatalf("the init was killed by %v", ws.Signal())
		}
		return cmd.ProcessState.ExitCode()
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the init did not exit")
		return 0
	}
}

func TestExitCode(t *testing.T) {
	notExec := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"success", []string{"true"}, 0, ""},
		{"exit status", []string{"sh", "-c", "exit 3"}, 3, ""},
		{"exit status 255", []string{"/bin/sh", "-c", "exit 255"}, 255, ""},
		{"killed by a signal", []string{"sh", "-c", "kill -KILL $$"}, 128 + 9, ""},
		{"missing path", []string{"/no/such/cmd"}, 127, "berth-init: exec /no/such/cmd: no such file or directory\n"},
		{"not in PATH", []string{"no-such-cmd-berth"}, 127, "berth-init: exec no-such-cmd-berth: executable file not found in $PATH\n"},
		{"not executable", []string{notExec}, 126, "berth-init: exec " + notExec + ": permission denied\n"},
		{"no command", nil, 2, "berth-init: usage: berth-init command [arg...]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := reaper(t, false, tt.args...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if code := exitCode(t, cmd); code != tt.code {
				t.Errorf("exit code %d, want %d", code, tt.code)
			}
			if stderr.String() != tt.stderr {
				t.Errorf("stderr %q, want %q", stderr.String(), tt.stderr)
			}
		})
	}
}

// TestForwardFatalSignals sends the init a signal whose default action
// kills the child, which must then die of it.
func TestForwardFatalSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := reaper(t, false, "sh", "-c", "echo ready; exec sleep 100")
			sc := startReaper(t, cmd)
			expectLine(t, sc, "ready")
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if code, want := exitCode(t, cmd), 128+int(sig); code != want {
				t.Errorf("exit code %d, want %d", code, want)
			}
		})
	}
}

// TestForwardHandledSignals checks that signals the child handles reach it
// and leave the init running.
func TestForwardHandledSignals(t *testing.T) {
	cmd := reaper(t, false, "sh", "-c", `
		trap 'echo got USR1' USR1
		trap 'echo got WINCH' WINCH
		trap 'echo got HUP' HUP
		trap 'exit 42' TERM
		echo ready
		while :; do sleep 0.05; done`)
	sc := startReaper(t, cmd)
	expectLine(t, sc, "ready")
	for _, sig := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGWINCH, syscall.SIGHUP} {
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		expectLine(t, sc, "got "+strings.TrimPrefix(strings.ToUpper(unixName(sig)), "SIG"))
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd); code != 42 {
		t.Errorf("exit code %d, want 42 from the child's TERM trap", code)
	}
}

func unixName(sig syscall.Signal) string {
	return map[syscall.Signal]string{syscall.SIGUSR1: "USR1", syscall.SIGWINCH: "WINCH", syscall.SIGHUP: "HUP"}[sig]
}

// TestReapsOrphans makes the child orphan a few grandchildren and checks,
// from outside, that they were reparented to the init and reaped when they
// exited. Two settings: without root, the init is an ordinary process and
// adopts orphans because it made itself a child subreaper; with root it is
// PID 1 of a new pid namespace, exactly as in a container, where the kernel
// reparents orphans to it. Either way an init that did not wait for
// processes it did not start would leave zombies behind.
func TestReapsOrphans(t *testing.T) {
	for _, tc := range []struct {
		name   string
		newPID bool
	}{{"subreaper", false}, {"pid namespace", true}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.newPID {
				testutil.RequiresRoot(t)
			}
			cmd := reaper(t, tc.newPID, "sh", "-c", `
				for i in 1 2 3 4 5; do (sleep 0.5 &); done
				echo ready $PPID
				exec sleep 100`)
			sc := startReaper(t, cmd)
			line := expectLine(t, sc, "ready")
			if tc.newPID && line != "ready 1" {
				t.Errorf("the child's parent is %q, want pid 1", line)
			}
			init := cmd.Process.Pid
			// The orphans are first adopted by the init…
			adopted := waitChildren(t, init, func(kids []proc) bool { return len(kids) > 1 })
			t.Logf("the init has %d children", len(adopted))
			// …then reaped when they exit, leaving only the child.
			left := waitChildren(t, init, func(kids []proc) bool { return len(kids) == 1 && kids[0].state != "Z" })
			if left[0].pid == 0 {
				t.Fatal("no child left")
			}
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if code := exitCode(t, cmd); code != 143 {
				t.Errorf("exit code %d, want 143", code)
			}
		})
	}
}

type proc struct {
	pid   int
	state string
}

// waitChildren polls the children of ppid until ok accepts them.
func waitChildren(t *testing.T, ppid int, ok func([]proc) bool) []proc {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var kids []proc
	for time.Now().Before(deadline) {
		kids = children(t, ppid)
		if ok(kids) {
			return kids
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("children of %d: %v", ppid, kids)
	return nil
}

// children lists the processes whose parent is ppid, from /proc.
func children(t *testing.T, ppid int) []proc {
	t.Helper()
	dirs, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var out []proc
	for _, path := range dirs {
		st, err := readStat(path)
		if err != nil {
			continue // gone
		}
		if st.ppid == ppid {
			out = append(out, proc{pid: st.pid, state: st.state})
		}
	}
	return out
}

type stat struct {
	pid, ppid, pgrp, tpgid int
	state                  string
}

// readStat parses the fields of /proc/PID/stat that the tests use.
func readStat(path string) (stat, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return stat{}, err
	}
	return parseStat(string(data))
}

func parseStat(s string) (stat, error) {
	// pid (comm) state ppid pgrp session tty_nr tpgid ...
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return stat{}, fmt.Errorf("bad stat %q", s)
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 6 {
		return stat{}, fmt.Errorf("bad stat %q", s)
	}
	var st stat
	var err error
	nums := []*int{&st.pid, &st.ppid, &st.pgrp, &st.tpgid}
	for i, field := range []string{strings.TrimSpace(s[:open]), f[1], f[2], f[5]} {
		if *nums[i], err = strconv.Atoi(field); err != nil {
			return stat{}, fmt.Errorf("bad stat %q", s)
		}
	}
	st.state = f[0]
	return st, nil
}

// TestProcessGroup checks the documented choice: the child leads a process
// group of its own, which is the terminal's foreground group when the init
// has a controlling terminal.
func TestProcessGroup(t *testing.T) {
	script := `read -r s < /proc/$$/stat; echo "stat $s"`
	t.Run("no terminal", func(t *testing.T) {
		cmd := reaper(t, false, "sh", "-c", script)
		sc := startReaper(t, cmd)
		st, err := parseStat(strings.TrimPrefix(expectLine(t, sc, "stat "), "stat "))
		if err != nil {
			t.Fatal(err)
		}
		if st.pgrp != st.pid {
			t.Errorf("child %d in process group %d, want its own", st.pid, st.pgrp)
		}
		if code := exitCode(t, cmd); code != 0 {
			t.Errorf("exit code %d", code)
		}
	})
	t.Run("terminal", func(t *testing.T) {
		ptmx, tty, err := pty.Open()
		if err != nil {
			t.Skipf("no pty: %v", err)
		}
		defer ptmx.Close()
		cmd := reaper(t, false, "sh", "-c", script)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		tty.Close()
		t.Cleanup(func() { killTree(t, cmd) })
		code := exitCode(t, cmd)
		out, _ := io.ReadAll(ptmx) // EIO once the terminal is closed
		i := strings.Index(string(out), "stat ")
		if i < 0 {
			t.Fatalf("output %q", out)
		}
		st, err := parseStat(strings.TrimSpace(strings.SplitN(string(out[i+5:]), "\n", 2)[0]))
		if err != nil {
			t.Fatal(err)
		}
		if st.pgrp != st.pid || st.tpgid != st.pgrp {
			t.Errorf("child %d: process group %d, terminal foreground group %d; want both %d", st.pid, st.pgrp, st.tpgid, st.pid)
		}
		if code != 0 {
			t.Errorf("exit code %d", code)
		}
	})
}
