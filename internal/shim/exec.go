package shim

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"

	"github.com/berth-dev/berth/internal/runtime"
	"golang.org/x/sys/unix"
)

// execProc is a process started by the exec op.
type execProc struct {
	out   *output
	stdin *stdin
	tty   *os.File
	code  int
	ready chan struct{} // closed once its output is being copied (or it failed)
	done  chan struct{} // closed once it exited and its output is drained
}

// exec starts a process in the container and streams its stdio over conn.
func (s *shim) exec(conn *net.UnixConn, br *bufio.Reader, req request) {
	if req.ID == "" || req.Process == nil {
		_ = writeLine(conn, reply{Error: "exec: an id and a process are required"})
		return
	}
	tty := req.Process.Terminal
	p := &execProc{out: newOutput(!tty), ready: make(chan struct{}), done: make(chan struct{})}
	if err := s.addExec(req.ID, p); err != nil {
		_ = writeLine(conn, reply{Error: err.Error()})
		return
	}
	// The client subscribes before the process starts: a short-lived
	// process's output must not go out before anyone listens.
	sub, attached := subscribe(conn, p.out, req)
	pid, err := s.startExec(p, req)
	close(p.ready)
	if err != nil {
		sub.wmu.Unlock()
		p.out.remove(sub)
		s.mu.Lock()
		delete(s.execs, req.ID)
		s.mu.Unlock()
		_ = writeLine(conn, reply{Error: err.Error()})
		return
	}
	serve(conn, br, p.out, sub, attached, p.stdin, req, reply{Pid: pid})
}

// startExec runs the process with pipes for the requested streams (or a
// pty) and starts copying its output.
func (s *shim) startExec(p *execProc, req request) (int, error) {
	tty := req.Process.Terminal
	pp, err := newPipes(req.Stdin && !tty, req.Stdout && !tty, req.Stderr && !tty)
	if err != nil {
		return 0, err
	}
	defer pp.closeTheirs()
	var master *os.File
	var proc *runtime.Process
	opts := runtime.ExecOpts{IO: pp.theirs, Console: func(m *os.File) { master = m }}
	s.reap.spawn(func() {
		proc, err = s.ctr.Exec(context.Background(), req.Process, opts)
		if err == nil {
			s.reap.track(proc.Pid, func() {
				st, err := proc.Wait(context.Background())
				go s.execExited(p, st, err)
			})
		}
	})
	if err != nil {
		pp.closeOurs()
		return 0, err
	}
	if master != nil {
		if p.tty, err = pollable(master); err != nil {
			_ = proc.Signal(unix.SIGKILL)
			return 0, err
		}
	}
	switch {
	case p.tty != nil && req.Stdin:
		p.stdin = &stdin{f: p.tty, tty: true}
	case pp.stdin != nil:
		p.stdin = &stdin{f: pp.stdin, once: true}
	}
	p.out.pumpAll(p.tty, pp, nil, nil)
	return proc.Pid, nil
}

// stream answers ok and then copies out's requested streams to conn, and
// conn to in when stdin was requested, until out ends or conn fails.
func (s *shim) stream(conn net.Conn, br io.Reader, out *output, in *stdin, req request, ok reply) {
	sub, attached := subscribe(conn, out, req)
	serve(conn, br, out, sub, attached, in, req, ok)
}

// subscribe attaches a client to out. The subscriber's write lock is
// held on return, so output waits until serve has sent the reply.
func subscribe(conn net.Conn, out *output, req request) (*subscriber, bool) {
	sub := newSubscriber(conn, out.framed, req.Stdout, req.Stderr)
	sub.wmu.Lock()
	return sub, out.add(sub)
}

// serve sends the reply, lets output flow, copies stdin when requested and
// returns when the stream ends.
func serve(conn net.Conn, br io.Reader, out *output, sub *subscriber, attached bool, in *stdin, req request, ok reply) {
	err := writeLine(conn, ok)
	sub.wmu.Unlock()
	if err != nil || !attached {
		out.remove(sub)
		return
	}
	if req.Stdin {
		go in.copyFrom(br)
	}
	<-sub.gone
}

// addExec registers a new exec'd process under id.
func (s *shim) addExec(id string, p *execProc) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.exited:
		return fmt.Errorf("container %s is not running", s.cfg.ID)
	default:
	}
	if _, dup := s.execs[id]; dup {
		return fmt.Errorf("exec %s already exists", id)
	}
	s.execs[id] = p
	return nil
}

// execExited records the exit of an exec'd process once its output is
// drained, then ends its streams.
func (s *shim) execExited(p *execProc, st runtime.ExitStatus, err error) {
	<-p.ready
	p.out.drain(drainTimeout)
	p.stdin.close()
	p.code = st.Code
	if err != nil {
		slog.Error("shim: wait for exec'd process", "error", err)
		p.code = 255
	}
	close(p.done)
	p.out.close()
}

// execWait answers once the exec'd process id has exited.
func (s *shim) execWait(conn net.Conn, br io.Reader, id string) {
	s.mu.Lock()
	p := s.execs[id]
	s.mu.Unlock()
	if p == nil {
		_ = writeLine(conn, reply{Error: fmt.Sprintf("No such exec instance: %s", id)})
		return
	}
	select {
	case <-p.done:
		code := p.code
		_ = writeLine(conn, reply{ExitCode: &code})
	case <-clientGone(br):
	}
}
