package shim

import (
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/moby/moby/api/pkg/stdcopy"
	"golang.org/x/sys/unix"
)

// output copies a process' stdout and stderr (or its pty) to a log and to
// the attached clients, until the sources are drained.
type output struct {
	framed bool // stdcopy frames to clients (no terminal)

	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool

	pumps sync.WaitGroup
	srcs  []*os.File
}

func newOutput(framed bool) *output {
	return &output{framed: framed, subs: map[*subscriber]struct{}{}}
}

// subscriber is one attached client.
type subscriber struct {
	conn           net.Conn
	stdout, stderr bool
	framed         bool
	wmu            sync.Mutex // one write at a time; held while the reply goes out
	buf            []byte
	gone           chan struct{}
	once           sync.Once
}

func newSubscriber(conn net.Conn, framed, stdout, stderr bool) *subscriber {
	return &subscriber{conn: conn, framed: framed, stdout: stdout, stderr: stderr, gone: make(chan struct{})}
}

func (s *subscriber) end() { s.once.Do(func() { close(s.gone) }) }

func (s *subscriber) wants(stream stdcopy.StdType) bool {
	return stream == stdcopy.Stdout && s.stdout || stream == stdcopy.Stderr && s.stderr
}

func (s *subscriber) send(stream stdcopy.StdType, p []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if !s.framed {
		_, err := s.conn.Write(p)
		return err
	}
	s.buf = append(frame(s.buf[:0], stream, len(p)), p...)
	_, err := s.conn.Write(s.buf)
	return err
}

// add attaches s; false once the output has ended.
func (o *output) add(s *subscriber) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return false
	}
	o.subs[s] = struct{}{}
	return true
}

func (o *output) remove(s *subscriber) {
	o.mu.Lock()
	delete(o.subs, s)
	o.mu.Unlock()
	s.end()
}

// broadcast sends p to every client that asked for stream; a client that
// cannot take it is dropped.
func (o *output) broadcast(stream stdcopy.StdType, p []byte) {
	o.mu.Lock()
	subs := make([]*subscriber, 0, len(o.subs))
	for s := range o.subs {
		if s.wants(stream) {
			subs = append(subs, s)
		}
	}
	o.mu.Unlock()
	for _, s := range subs {
		if err := s.send(stream, p); err != nil {
			o.remove(s)
		}
	}
}

// pump copies src to log (when not nil) and to the clients until EOF.
func (o *output) pump(src *os.File, stream stdcopy.StdType, log io.Writer) {
	o.srcs = append(o.srcs, src)
	o.pumps.Add(1)
	go func() {
		defer o.pumps.Done()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if log != nil {
					_, _ = log.Write(buf[:n])
				}
				o.broadcast(stream, buf[:n])
			}
			if err != nil {
				// A pty master reads EIO once no process holds the
				// slave: its EOF.
				return
			}
		}
	}()
}

// drain waits until the sources reach EOF, or for at most timeout (a stray
// process may hold them open, a client may have stopped reading), and
// closes them. Call it after the process has exited.
func (o *output) drain(timeout time.Duration) {
	done := make(chan struct{})
	go func() {
		o.pumps.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		// Stop reading, and stop waiting for clients that do not read.
		for _, f := range o.srcs {
			_ = f.SetReadDeadline(time.Now())
		}
		o.mu.Lock()
		for s := range o.subs {
			_ = s.conn.SetWriteDeadline(time.Now())
		}
		o.mu.Unlock()
		<-done
	}
	for _, f := range o.srcs {
		f.Close()
	}
}

// close ends every client's stream.
func (o *output) close() {
	o.mu.Lock()
	o.closed = true
	subs := o.subs
	o.subs = nil
	o.mu.Unlock()
	for s := range subs {
		s.end()
	}
}

// stdin is the writing end of a process' standard input: a pipe, or the
// pty master.
type stdin struct {
	mu     sync.Mutex
	f      *os.File // nil when the process has no stdin to write
	tty    bool
	once   bool // EOF from a client closes it
	closed bool
}

// copyFrom writes r to the process' stdin until r ends; with once (and no
// terminal) the process' stdin is closed then.
func (s *stdin) copyFrom(r io.Reader) {
	if s == nil || s.f == nil {
		return
	}
	_, _ = io.Copy(s.f, r)
	if s.once && !s.tty {
		s.close()
	}
}

func (s *stdin) close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil && !s.closed {
		s.closed = true
		s.f.Close()
	}
}

// pollable returns a non-blocking duplicate of f (a pty master received
// from the runtime), so that reads can be interrupted with a deadline, and
// closes f.
func pollable(f *os.File) (*os.File, error) {
	defer f.Close()
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// resize sets the window size of a pty master.
func resize(master *os.File, h, w uint) error {
	rc, err := master.SyscallConn()
	if err != nil {
		return err
	}
	ws := &unix.Winsize{Row: uint16(h), Col: uint16(w)}
	var ioErr error
	if err := rc.Control(func(fd uintptr) {
		ioErr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, ws)
	}); err != nil {
		return err
	}
	return ioErr
}

// pipes are the stdio pipes of a process, for the streams asked for.
type pipes struct {
	theirs runtime.IO  // the process' ends
	stdin  *os.File    // our end of its stdin
	out    [2]*os.File // our ends of its stdout and stderr
}

func newPipes(in, out, errw bool) (*pipes, error) {
	p := &pipes{}
	var err error
	if in {
		if p.theirs.Stdin, p.stdin, err = os.Pipe(); err != nil {
			return nil, err
		}
	}
	for i, want := range []bool{out, errw} {
		if !want {
			continue
		}
		var w *os.File
		if p.out[i], w, err = os.Pipe(); err != nil {
			p.closeTheirs()
			p.closeOurs()
			return nil, err
		}
		if i == 0 {
			p.theirs.Stdout = w
		} else {
			p.theirs.Stderr = w
		}
	}
	return p, nil
}

// closeTheirs closes the process' ends, once it has them (or on failure).
func (p *pipes) closeTheirs() {
	for _, f := range []*os.File{p.theirs.Stdin, p.theirs.Stdout, p.theirs.Stderr} {
		if f != nil {
			f.Close()
		}
	}
}

// closeOurs closes our ends, when the process could not be started.
func (p *pipes) closeOurs() {
	for _, f := range []*os.File{p.stdin, p.out[0], p.out[1]} {
		if f != nil {
			f.Close()
		}
	}
}

// pumpAll starts copying the process' output: the pty master when there
// is one, the pipes otherwise.
func (o *output) pumpAll(tty *os.File, p *pipes, stdout, stderr io.Writer) {
	if tty != nil {
		o.pump(tty, stdcopy.Stdout, stdout)
		return
	}
	if p.out[0] != nil {
		o.pump(p.out[0], stdcopy.Stdout, stdout)
	}
	if p.out[1] != nil {
		o.pump(p.out[1], stdcopy.Stderr, stderr)
	}
}
