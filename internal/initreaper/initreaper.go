// Package initreaper is the small init process of `run --init`: PID 1 of the
// container's pid namespace, it runs the container's command as its child,
// forwards signals to it, reaps every zombie, and exits with the command's
// status. It runs inside every such container, so it imports only the
// standard library's basics and x/sys/unix.
package initreaper

import (
	"errors"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// defaultPath is searched for the command when PATH is not set.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Main runs args as a child with the same stdio and environment, and returns
// the exit code to exit with once the child exits: its exit status, or
// 128+n when signal n killed it. It returns 127 when the command is not
// found and 126 when it cannot be executed, after printing
// "berth-init: exec X: reason" to stderr.
//
// The child runs in a process group of its own. When stdin is the
// controlling terminal, that group is made the terminal's foreground group,
// so keys like ^C and ^Z signal the command's group, once, and never the
// init; without a terminal it changes nothing for the command. Every
// catchable signal that reaches the init (SIGTERM, SIGINT, SIGHUP, SIGQUIT,
// SIGUSR1/2, SIGWINCH, SIGCONT, SIGTSTP, real-time signals, ...) is sent on
// to the child process alone, as tini does by default.
//
// The init also makes itself a child subreaper, so that orphaned
// descendants are reparented to it, and reaped, even when it is not PID 1.
func Main(args []string) int {
	if len(args) == 0 {
		warn("usage: berth-init command [arg...]")
		return 2
	}
	// Best effort: as PID 1 of a pid namespace the kernel already
	// reparents orphans here.
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

	// Listen before the child exists, so that no signal and no exit is
	// missed. SIGCHLD has a channel of its own: one pending wake-up is
	// enough, and a flood of other signals must not crowd it out.
	children := make(chan os.Signal, 1)
	signal.Notify(children, syscall.SIGCHLD)
	forward := make(chan os.Signal, 64)
	signal.Notify(forward, forwarded()...)

	pid, err := start(args)
	if err != nil {
		warn("exec " + args[0] + ": " + err.Error())
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, errNotFound) {
			return 127
		}
		return 126
	}
	for {
		select {
		case <-children:
			if code, exited := reap(pid); exited {
				return code
			}
		case sig := <-forward:
			// The child may have exited and not been reaped yet; the
			// signal is then lost with it, as it would have been anyway.
			_ = syscall.Kill(pid, sig.(syscall.Signal))
		}
	}
}

var errNotFound = errors.New("executable file not found in $PATH")

// start starts the child and returns its pid.
func start(args []string) (int, error) {
	path, err := lookPath(args[0])
	if err != nil {
		return 0, err
	}
	sys := &syscall.SysProcAttr{Setpgid: true}
	if _, err := unix.IoctlGetInt(0, unix.TIOCGPGRP); err == nil {
		// stdin is our controlling terminal.
		sys.Foreground = true
		sys.Ctty = 0
	}
	return syscall.ForkExec(path, args, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
		Sys:   sys,
	})
}

// lookPath finds name in PATH as a shell does when it has no slash.
func lookPath(name string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path, ok := os.LookupEnv("PATH")
	if !ok {
		path = defaultPath
	}
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + name
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errNotFound
}

// reap waits for every child that has exited, without blocking, and
// reports the exit code once the main child is among them.
func reap(child int) (code int, exited bool) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return code, exited
		}
		if pid != child {
			continue
		}
		switch {
		case ws.Exited():
			code, exited = ws.ExitStatus(), true
		case ws.Signaled():
			code, exited = 128+int(ws.Signal()), true
		}
	}
}

// forwarded lists the signals sent on to the child: all of them but those
// that cannot be caught, SIGCHLD, SIGURG (the Go runtime's preemption
// signal), the faults that only a crash raises, and the two real-time
// signals that C libraries reserve.
func forwarded() []os.Signal {
	skip := map[syscall.Signal]bool{
		unix.SIGKILL: true, unix.SIGSTOP: true, unix.SIGCHLD: true, unix.SIGURG: true,
		unix.SIGSEGV: true, unix.SIGBUS: true, unix.SIGFPE: true, unix.SIGILL: true,
		32: true, 33: true,
	}
	var sigs []os.Signal
	for s := syscall.Signal(1); s <= 64; s++ {
		if !skip[s] {
			sigs = append(sigs, s)
		}
	}
	return sigs
}

func warn(msg string) {
	os.Stderr.WriteString("berth-init: " + msg + "\n")
}
