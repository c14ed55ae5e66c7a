package command

import (
	"errors"
	"io"
	"os"

	"github.com/moby/term"
)

// stream is the terminal state shared by the input and output streams.
type stream struct {
	fd         uintptr
	isTerminal bool
	state      *term.State
}

func newStream(v any) stream {
	fd, isTerminal := term.GetFdInfo(v)
	return stream{fd: fd, isTerminal: isTerminal}
}

// FD returns the file descriptor of the stream (meaningful only for files).
func (s *stream) FD() uintptr { return s.fd }

// IsTerminal reports whether the stream is a terminal.
func (s *stream) IsTerminal() bool { return s.isTerminal }

// RestoreTerminal restores the state saved by SetRawTerminal.
func (s *stream) RestoreTerminal() {
	if s.state != nil {
		_ = term.RestoreTerminal(s.fd, s.state)
		s.state = nil
	}
}

// In is the CLI's standard input.
type In struct {
	io.ReadCloser
	stream
}

// NewIn wraps r; terminal features are enabled when r is a terminal file.
func NewIn(r io.ReadCloser) *In {
	return &In{ReadCloser: r, stream: newStream(r)}
}

// SetRawTerminal puts a terminal input in raw mode.
func (i *In) SetRawTerminal() error {
	if !i.isTerminal || os.Getenv("NORAW") != "" {
		return nil
	}
	state, err := term.SetRawTerminal(i.fd)
	if err != nil {
		return err
	}
	i.state = state
	return nil
}

// CheckTty refuses to attach a non-terminal stdin to a container with a TTY.
func (i *In) CheckTty(attachStdin, tty bool) error {
	if !tty || !attachStdin || i.isTerminal {
		return nil
	}
	return errors.New("the input device is not a TTY")
}

// Out is the CLI's standard output.
type Out struct {
	io.Writer
	stream
}

// NewOut wraps w; terminal features are enabled when w is a terminal file.
func NewOut(w io.Writer) *Out {
	return &Out{Writer: w, stream: newStream(w)}
}

// SetRawTerminal puts a terminal output in raw mode.
func (o *Out) SetRawTerminal() error {
	if !o.isTerminal || os.Getenv("NORAW") != "" {
		return nil
	}
	state, err := term.SetRawTerminalOutput(o.fd)
	if err != nil {
		return err
	}
	o.state = state
	return nil
}

// TtySize returns the terminal's height and width, or zeros when the output
// is not a terminal.
func (o *Out) TtySize() (height, width uint) {
	if !o.isTerminal {
		return 0, 0
	}
	ws, err := term.GetWinsize(o.fd)
	if err != nil || ws == nil {
		return 0, 0
	}
	return uint(ws.Height), uint(ws.Width)
}
