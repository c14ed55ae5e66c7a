package containers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"

	"github.com/berth-dev/berth/internal/shim"
	"github.com/containerd/errdefs"
	"github.com/moby/term"
)

// DefaultDetachKeys is Docker's detach sequence: ctrl-p, ctrl-q.
const DefaultDetachKeys = "ctrl-p,ctrl-q"

// Conn is the client's side of a hijacked attach or exec connection.
type Conn interface {
	io.ReadWriteCloser
}

// AttachOpts are the parameters of POST /containers/{id}/attach.
type AttachOpts struct {
	Stdin, Stdout, Stderr bool
	Stream, Logs          bool
	DetachKeys            string
	// Hijack takes over the client's connection once the request is
	// valid; multiplexed tells whether output is stdcopy-framed.
	Hijack func(multiplexed bool) (Conn, error)
}

// pendingAttach is an attach to a container that has not started yet.
type pendingAttach struct {
	o AttachOpts
	// closeStdin: the client's stdin EOF closes the container's stdin
	// (StdinOnce without a TTY); otherwise it ends the attach, as in Docker.
	closeStdin bool
	conn       Conn
	keys       []byte
	done       chan error
}

func (p *pendingAttach) fail(err error) {
	p.conn.Close()
	p.done <- err
}

// Attach connects a client to the container's standard streams: replays
// the log first with logs=1, then follows the live streams with stream=1
// until the container exits, the client goes or it detaches.
func (s *Service) Attach(ctx context.Context, ref string, o AttachOpts) error {
	c, err := s.store.Get(ref)
	if err != nil {
		return err
	}
	keys, err := detachKeys(o.DetachKeys)
	if err != nil {
		return err
	}
	c.Lock()
	tty, openStdin := c.Config.Tty, c.Config.OpenStdin
	stdinOnce := c.Config.StdinOnce
	paused := c.State.Paused
	c.Unlock()
	// A stopped container can be attached to: the attach waits for its
	// next start (docker start -a attaches first, then starts).
	if o.Stream && paused {
		return errdefs.ErrConflict.WithMessage("You cannot attach to a paused container, unpause it first")
	}
	o.Stdin = o.Stdin && openStdin
	conn, err := o.Hijack(!tty)
	if err != nil {
		return err
	}
	if o.Logs {
		if err := s.replayLogs(ctx, c.ID, tty, o.Stdout, o.Stderr, conn); err != nil {
			conn.Close()
			return err
		}
	}
	if !o.Stream {
		return conn.Close()
	}
	p := &pendingAttach{o: o, conn: conn, keys: keys, done: make(chan error, 1), closeStdin: stdinOnce && !tty}
	l := s.live(c.ID)
	s.mu.Lock()
	cl := l.shim
	if cl == nil {
		l.pending = append(l.pending, p)
	}
	s.mu.Unlock()
	if cl != nil {
		s.connectAttach(cl, p)
	}
	select {
	case err := <-p.done:
		if errors.Is(err, errDetached) {
			return nil
		}
		return err
	case <-ctx.Done():
		conn.Close()
		return nil
	}
}

// connectAttach joins a client connection to the monitor's streams and
// returns at once; p.done receives the outcome.
func (s *Service) connectAttach(cl *shim.Client, p *pendingAttach) {
	st, err := cl.Attach(context.Background(), p.o.Stdin, p.o.Stdout, p.o.Stderr)
	if err != nil {
		p.fail(err)
		return
	}
	go func() { p.done <- pipe(p.conn, st, p.o.Stdin, p.closeStdin, p.keys) }()
}

// errDetached is what pipe returns when the client detached.
var errDetached = errors.New("detached")

// pipe copies the monitor's output to the client and, with stdin, the
// client's input to the monitor through the detach-key filter. It returns
// when the output ends or the client detaches. At the client's stdin EOF,
// closeStdin passes the EOF on; otherwise the stream ends.
func pipe(conn Conn, st shim.Stream, stdin, closeStdin bool, keys []byte) error {
	var once sync.Once
	closeAll := func() {
		once.Do(func() {
			st.Close()
			conn.Close()
		})
	}
	outDone := make(chan struct{})
	detached := make(chan struct{})
	if stdin {
		go func() {
			var in io.Reader = conn
			if len(keys) > 0 {
				in = term.NewEscapeProxy(conn, keys)
			}
			_, err := io.Copy(st, in)
			var esc term.EscapeError
			switch {
			case errors.As(err, &esc):
				close(detached)
				closeAll()
			case err == nil && closeStdin:
				// The client closed its input: pass the EOF on.
				if cerr := st.CloseWrite(); cerr != nil {
					slog.Debug("closing container stdin", "err", cerr)
				}
			case err == nil:
				closeAll()
			default:
				select {
				case <-outDone:
				default:
					closeAll()
				}
			}
		}()
	}
	_, err := io.Copy(conn, st)
	close(outDone)
	closeAll()
	select {
	case <-detached:
		return errDetached
	default:
	}
	if err != nil && !isClosedErr(err) {
		return err
	}
	return nil
}

// isClosedErr tells whether a copy ended because one side went away.
func isClosedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, context.Canceled) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// detachKeys parses Docker's detach-key syntax ("ctrl-p,ctrl-q", "a").
func detachKeys(s string) ([]byte, error) {
	if s == "" {
		s = DefaultDetachKeys
	}
	b, err := term.ToBytes(s)
	if err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Invalid detach keys (%s) provided", s))
	}
	return b, nil
}
