package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/internal/runtime/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Start lets a created container's init process execute the user program,
// then runs the poststart hooks.
func (c *Container) Start(ctx context.Context) error {
	st, err := c.status()
	if err != nil {
		return err
	}
	if st != specs.StateCreated {
		return fmt.Errorf("cannot start container %q: it is %s, not created", c.rec.ID, st)
	}
	fifoPath := filepath.Join(c.dir, fifoFile)
	fd, err := unix.Open(fifoPath, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	defer unix.Close(fd)
	// The init process is blocked opening the fifo for writing; our open
	// releases it, and it writes one byte right after. A fifo opened for
	// reading polls as readable once data arrives, and as hung up only
	// after a writer has come and gone; until then poll just waits.
	buf := make([]byte, 1)
	if n, err := c.readFifo(ctx, fd, buf); err != nil {
		return err
	} else if n != 1 {
		return fmt.Errorf("cannot start container %q: its init process has exited", c.rec.ID)
	}
	if err := os.Remove(fifoPath); err != nil {
		return err
	}
	if c.spec.Hooks != nil && len(c.spec.Hooks.Poststart) > 0 {
		// Poststart hooks run after the program has been executed: the
		// init's end of the fifo closes on exec.
		if _, err := c.readFifo(ctx, fd, buf); err != nil {
			return err
		}
	}
	if c.spec.Hooks != nil {
		state := stateOf(&c.rec, specs.StateRunning)
		for _, h := range c.spec.Hooks.Poststart {
			if err := runHook(ctx, h, state); err != nil {
				logWarn("poststart hook failed", err)
			}
		}
	}
	return nil
}

// readFifo waits for data or the writer's close on the exec fifo, checking
// that the init process is still there; it returns what read returned.
func (c *Container) readFifo(ctx context.Context, fd int, buf []byte) (int, error) {
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 10)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return 0, fmt.Errorf("poll exec fifo: %w", err)
		}
		if n > 0 {
			r, _ := unix.Read(fd, buf)
			return r, nil
		}
		if !c.rec.alive() {
			return 0, nil
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
	}
}

// ExitStatus is how a process ended.
type ExitStatus struct {
	Code      int  // shell-style: 128+signal when killed by a signal
	Signaled  bool // killed by a signal
	OOMKilled bool // the kernel's OOM killer fired in the container's cgroup
}

// Wait waits for the init process to exit. Only the process that created the
// container is its parent and can collect the status; others get an error.
func (c *Container) Wait(ctx context.Context) (ExitStatus, error) {
	return c.waitPid(ctx, c.rec.Pid)
}

func (c *Container) waitPid(ctx context.Context, pid int) (ExitStatus, error) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == nil {
			break
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return ExitStatus{}, fmt.Errorf("wait for %d: %w", pid, err)
	}
	es := ExitStatus{Code: exitCode(ws), Signaled: ws.Signaled()}
	if cg, err := c.cgroup(); err == nil {
		es.OOMKilled, _ = cg.OOMKilled()
	}
	return es, nil
}

// waitGone polls until the recorded process no longer exists (used when the
// caller is not the parent and cannot wait for it).
func waitGone(ctx context.Context, r *record) error {
	for delay := 100 * time.Microsecond; r.alive(); {
		select {
		case <-ctx.Done():
			return fmt.Errorf("container %q did not exit: %w", r.ID, ctx.Err())
		case <-time.After(delay):
		}
		if delay < 10*time.Millisecond {
			delay *= 2
		}
	}
	return nil
}

// ExecOpts controls Exec.
type ExecOpts struct {
	IO
	ConsoleSocket string
	Console       func(master *os.File)
	PidFile       string
}

// Exec starts p inside the running container: same namespaces, same cgroup,
// the container's seccomp profile, and p's own user, capabilities, rlimits,
// environment and working directory. It returns the PID once the program
// has been executed; the caller is its parent and can Wait for it.
func (c *Container) Exec(ctx context.Context, p *specs.Process, o ExecOpts) (*Process, error) {
	st, err := c.status()
	if err != nil {
		return nil, err
	}
	if st != specs.StateRunning && st != specs.StateCreated {
		return nil, fmt.Errorf("cannot exec in container %q: it is %s", c.rec.ID, st)
	}
	if p == nil || len(p.Args) == 0 {
		return nil, errors.New("exec: process.args must not be empty")
	}
	cg, err := c.cgroup()
	if err != nil {
		return nil, err
	}
	consoleDone, consoleSock, err := consoleFor(p, o.ConsoleSocket, o.Console)
	if err != nil {
		return nil, err
	}
	// Descriptor 4 is unused by exec (no fifo): pass /dev/null to keep the
	// numbering fixed.
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	extra := []*os.File{devnull}
	if consoleSock != nil {
		defer consoleSock.Close()
		extra = append(extra, consoleSock)
	}
	plan := planJoin(c.rec.Pid)
	plan.cgroup = cgroupJoinFor(cg)
	var filter *seccomp.Program
	ip, err := c.rt.spawn(plan, o.IO, extra, func() (err error) {
		filter, err = prepareSeccomp(c.spec)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("exec: %w", err)
	}
	cfg := initConfig{Mode: "exec", Spec: forInit(c.spec), Process: p, Console: consoleSock != nil, Seccomp: filter}
	if err := ip.send(cfg); err != nil {
		ip.kill()
		return nil, ip.exitError(fmt.Sprintf("exec: send config: %v", err))
	}
	// The sync socket is close-on-exec: EOF means the program runs.
	m, err := ip.recv(json.NewDecoder(ip.rd))
	if !errors.Is(err, io.EOF) {
		ip.kill()
		if err == nil {
			err = fmt.Errorf("init sync: unexpected message %q", m.Type)
		}
		// As runc words it: the cause already says "exec: ..." when the
		// program could not be found or run.
		return nil, fmt.Errorf("exec failed: unable to start container process: %w", err)
	}
	ip.sock.Close()
	if consoleDone != nil {
		if err := <-consoleDone; err != nil {
			ip.kill()
			return nil, err
		}
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, ip.pid); err != nil {
			return nil, err
		}
	}
	return &Process{c: c, Pid: ip.pid}, nil
}

// Process is a process started by Exec.
type Process struct {
	c   *Container
	Pid int
}

// Wait waits for the exec'd process to exit.
func (p *Process) Wait(ctx context.Context) (ExitStatus, error) {
	return p.c.waitPid(ctx, p.Pid)
}

// Signal sends sig to the process.
func (p *Process) Signal(sig unix.Signal) error { return unix.Kill(p.Pid, sig) }
