package command

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/moby/term"
)

// ReadLine reads one line from r a byte at a time, so that nothing past
// the newline is consumed (the next prompt reads the next line). The line
// is returned without its line ending; io.EOF is returned only when
// nothing was read.
func ReadLine(r io.Reader) (string, error) {
	var b strings.Builder
	buf := make([]byte, 1)
	for {
		n, err := r.Read(buf)
		if n == 1 {
			if buf[0] == '\n' {
				return strings.TrimSuffix(b.String(), "\r"), nil
			}
			b.WriteByte(buf[0])
		}
		if err != nil {
			if errors.Is(err, io.EOF) && b.Len() > 0 {
				return strings.TrimSuffix(b.String(), "\r"), nil
			}
			return b.String(), err
		}
	}
}

// Confirm prints the question with docker's " [y/N] " and reports whether
// the answer is y or Y; anything else, or no answer, declines.
func Confirm(in io.Reader, out io.Writer, question string) bool {
	fmt.Fprint(out, question+" [y/N] ")
	answer, err := ReadLine(in)
	if err != nil && answer == "" {
		return false
	}
	return strings.EqualFold(strings.TrimSpace(answer), "y")
}

// Prompt prints msg and reads a line of input, trimmed of spaces.
func Prompt(in io.Reader, out io.Writer, msg string) (string, error) {
	fmt.Fprint(out, msg)
	line, err := ReadLine(in)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

// PromptSecret is Prompt with the terminal's echo turned off while the
// answer is typed; a newline follows the answer on out, as the user's own
// newline is not echoed.
func (i *In) PromptSecret(out io.Writer, msg string) (string, error) {
	if i.isTerminal {
		state, err := term.SaveState(i.fd)
		if err != nil {
			return "", err
		}
		if err := term.DisableEcho(i.fd, state); err != nil {
			return "", err
		}
		defer func() { _ = term.RestoreTerminal(i.fd, state) }()
	}
	answer, err := Prompt(i, out, msg)
	fmt.Fprintln(out)
	return answer, err
}
