package ocicli

import (
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"

	"github.com/containerd/console"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// terminal connects the caller's terminal (or plain stdio) to a container's
// pty master, for run/exec in the foreground without --console-socket.
type terminal struct {
	mu      sync.Mutex
	master  *os.File
	current console.Console // the caller's terminal, nil when stdin is not one
	copied  sync.WaitGroup
}

func newTerminal() *terminal { return &terminal{} }

// attach receives the pty master from the runtime.
func (t *terminal) attach(master *os.File) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.master = master
	if c, err := console.ConsoleFromFile(os.Stdin); err == nil {
		if err := c.SetRaw(); err == nil {
			t.current = c
			if m, err := console.ConsoleFromFile(master); err == nil {
				_ = m.ResizeFrom(c)
			}
		}
	}
	go func() { _, _ = io.Copy(master, os.Stdin) }()
	t.copied.Add(1)
	go func() {
		defer t.copied.Done()
		_, _ = io.Copy(os.Stdout, master)
	}()
}

func (t *terminal) resize() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.current == nil || t.master == nil {
		return
	}
	if m, err := console.ConsoleFromFile(t.master); err == nil {
		_ = m.ResizeFrom(t.current)
	}
}

// close waits for the container's output to drain and restores the caller's
// terminal.
func (t *terminal) close() {
	t.copied.Wait()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.current != nil {
		_ = t.current.Reset()
	}
	if t.master != nil {
		t.master.Close()
	}
}

// forwardedSignals are relayed to the container's process by run and exec.
// (Asking for every signal costs milliseconds at start and at stop.)
var forwardedSignals = []os.Signal{
	unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM, unix.SIGUSR1, unix.SIGUSR2,
	unix.SIGALRM, unix.SIGCONT, unix.SIGWINCH,
}

// forwardSignals relays the signals the caller receives to pid, and window
// size changes to the terminal, until the returned function is called.
// After that they are ignored until the CLI exits, which it does right
// after: un-registering the handlers would only cost time.
func forwardSignals(pid int, t *terminal) func() {
	ch := make(chan os.Signal, 32)
	signal.Notify(ch, forwardedSignals...)
	var stopped atomic.Bool
	go func() {
		for s := range ch {
			sig, ok := s.(unix.Signal)
			if !ok || stopped.Load() {
				continue
			}
			if sig == unix.SIGWINCH {
				if t != nil {
					t.resize()
				}
				continue
			}
			_ = unix.Kill(pid, sig)
		}
	}()
	return func() { stopped.Store(true) }
}

// toRootless adapts a spec for an unprivileged caller: a user namespace that
// maps the caller to root, no network namespace, no cgroup limits, and the
// mounts an unprivileged user may make.
func toRootless(spec *specs.Spec, uid, gid int) {
	var ns []specs.LinuxNamespace
	for _, n := range spec.Linux.Namespaces {
		if n.Type != specs.NetworkNamespace && n.Type != specs.UserNamespace {
			ns = append(ns, n)
		}
	}
	spec.Linux.Namespaces = append(ns, specs.LinuxNamespace{Type: specs.UserNamespace})
	spec.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: uint32(uid), ContainerID: 0, Size: 1}}
	spec.Linux.GIDMappings = []specs.LinuxIDMapping{{HostID: uint32(gid), ContainerID: 0, Size: 1}}
	spec.Linux.Resources = nil
	var mounts []specs.Mount
	for _, m := range spec.Mounts {
		switch m.Destination {
		case "/sys":
			m = specs.Mount{Destination: "/sys", Type: "none", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
		case "/sys/fs/cgroup":
			continue
		}
		var opts []string
		for _, o := range m.Options {
			if o != "gid=5" {
				opts = append(opts, o)
			}
		}
		m.Options = opts
		mounts = append(mounts, m)
	}
	spec.Mounts = mounts
}
