package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/moby/moby/api/pkg/stdcopy"
	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/moby/term"
	"golang.org/x/sys/unix"
)

// defaultDetachKeys is ctrl-p,ctrl-q.
var defaultDetachKeys = []byte{16, 17}

func validateDetachKeys(keys string) error {
	if keys == "" {
		return nil
	}
	if _, err := term.ToBytes(keys); err != nil {
		return fmt.Errorf("invalid detach keys (%s): %w", keys, err)
	}
	return nil
}

// streamer copies the local streams to and from a hijacked attach or exec
// connection. With a TTY the local terminal is put in raw mode and stdin is
// watched for the detach keys; without one the output is demultiplexed.
type streamer struct {
	cli        *command.Cli
	in         io.ReadCloser
	out, errw  io.Writer
	resp       client.HijackedResponse
	tty        bool
	detachKeys string
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// stream runs until the output ends, stdin ends without output attached,
// the user detaches (a term.EscapeError) or ctx is done.
func (s *streamer) stream(ctx context.Context) error {
	restore, err := s.setupInput()
	if err != nil {
		return fmt.Errorf("unable to setup input stream: %s", err)
	}
	defer restore()

	var outputDone chan error
	if s.out != nil || s.errw != nil {
		outputDone = make(chan error, 1)
		go func() {
			var err error
			if s.out != nil && s.tty {
				_, err = io.Copy(s.out, s.resp.Reader)
				restore()
			} else {
				_, err = stdcopy.StdCopy(orDiscard(s.out), orDiscard(s.errw), s.resp.Reader)
			}
			outputDone <- err
		}()
	}
	inputDone := make(chan struct{})
	detached := make(chan error, 1)
	go func() {
		if s.in != nil {
			_, err := io.Copy(s.resp.Conn, s.in)
			restore()
			var esc term.EscapeError
			if errors.As(err, &esc) {
				detached <- err
				return
			}
		}
		_ = s.resp.CloseWrite()
		close(inputDone)
	}()

	select {
	case err := <-outputDone:
		return err
	case <-inputDone:
		if outputDone == nil {
			return nil
		}
		select {
		case err := <-outputDone:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	case err := <-detached:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// setupInput puts the terminal in raw mode and wraps stdin in an escape
// proxy for the detach keys; the returned function restores the terminal
// once.
func (s *streamer) setupInput() (func(), error) {
	if s.in == nil || !s.tty {
		return func() {}, nil
	}
	keys := defaultDetachKeys
	if s.detachKeys != "" {
		var err error
		if keys, err = term.ToBytes(s.detachKeys); err != nil {
			return nil, fmt.Errorf("invalid detach keys (%s): %w", s.detachKeys, err)
		}
	}
	if err := s.cli.In().SetRawTerminal(); err != nil {
		return nil, fmt.Errorf("unable to set IO streams as raw terminal: %s", err)
	}
	if err := s.cli.Out().SetRawTerminal(); err != nil {
		s.cli.In().RestoreTerminal()
		return nil, fmt.Errorf("unable to set IO streams as raw terminal: %s", err)
	}
	in := s.in
	restore := sync.OnceFunc(func() {
		s.cli.In().RestoreTerminal()
		s.cli.Out().RestoreTerminal()
		_ = in.Close()
	})
	s.in = readCloser{Reader: term.NewEscapeProxy(in, keys), close: in.Close}
	return restore, nil
}

// isDetach reports whether err is the user detaching.
func isDetach(err error) bool {
	var esc term.EscapeError
	return errors.As(err, &esc)
}

// resizer sends the terminal size of a container or an exec process.
type resizer func(ctx context.Context, height, width uint) error

func containerResizer(c *client.Client, id string) resizer {
	return func(ctx context.Context, h, w uint) error {
		_, err := c.ContainerResize(ctx, id, client.ContainerResizeOptions{Height: h, Width: w})
		return err
	}
}

func execResizer(c *client.Client, id string) resizer {
	return func(ctx context.Context, h, w uint) error {
		_, err := c.ExecResize(ctx, id, client.ExecResizeOptions{Height: h, Width: w})
		return err
	}
}

// monitorTTYSize sends the initial size (retrying while the process starts)
// and the new size on every SIGWINCH until ctx is done.
func monitorTTYSize(ctx context.Context, cli *command.Cli, resize resizer) {
	send := func() error {
		h, w := cli.Out().TtySize()
		if h == 0 && w == 0 {
			return nil
		}
		return resize(ctx, h, w)
	}
	if err := send(); err != nil {
		go func() {
			var err error
			for i := range 10 {
				time.Sleep(time.Duration(i+1) * 10 * time.Millisecond)
				if err = send(); err == nil {
					return
				}
			}
			fmt.Fprintln(cli.Err(), "failed to resize tty, using default size")
		}()
	}
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	go func() {
		defer signal.Stop(winch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-winch:
				_ = send()
			}
		}
	}()
}

// forwardSignals sends every signal the CLI receives to the container
// until the returned function is called.
func forwardSignals(ctx context.Context, c *client.Client, id string) func() {
	sigc := make(chan os.Signal, 128)
	signal.Notify(sigc)
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-sigc:
				sig, ok := s.(syscall.Signal)
				if !ok || sig == unix.SIGCHLD || sig == unix.SIGPIPE || sig == unix.SIGURG {
					continue
				}
				name := strings.TrimPrefix(unix.SignalName(sig), "SIG")
				if name == "" {
					continue
				}
				if _, err := c.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: name}); err != nil {
					slog.Debug("error sending signal", "signal", name, "error", err)
				}
			}
		}
	}()
	return func() {
		signal.Stop(sigc)
		cancel()
	}
}

// waitExit waits for the container's next exit (or its removal with
// --rm) and sends the exit status; 125 when waiting fails.
func waitExit(ctx context.Context, c *client.Client, id string, removed bool) <-chan int {
	cond := ctypes.WaitConditionNextExit
	if removed {
		cond = ctypes.WaitConditionRemoved
	}
	res := c.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: cond})
	status := make(chan int, 1)
	go func() {
		defer close(status)
		select {
		case <-ctx.Done():
		case r := <-res.Result:
			if r.Error != nil {
				slog.Error("Error waiting for container: " + r.Error.Message)
				status <- 125
				return
			}
			status <- int(r.StatusCode)
		case err := <-res.Error:
			if errors.Is(err, context.Canceled) {
				return
			}
			slog.Error("error waiting for container: " + err.Error())
			status <- 125
		}
	}()
	return status
}
