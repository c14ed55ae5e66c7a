package builder

import (
	"encoding/json"
	"io"
	"sync"

	"github.com/moby/moby/api/types/jsonstream"
	"github.com/opencontainers/go-digest"
)

// stream writes Docker's JSON message stream of a build: one message per
// line of text, the image ID as "aux" at the end. Quiet builds write only
// the final ID.
type stream struct {
	mu    sync.Mutex
	w     io.Writer
	enc   *json.Encoder
	quiet bool
	err   error
}

func newStream(w io.Writer, quiet bool) *stream {
	return &stream{w: w, enc: json.NewEncoder(w), quiet: quiet}
}

func (s *stream) write(m jsonstream.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = s.enc.Encode(m)
	}
}

// line writes text (with its newline) unless the build is quiet.
func (s *stream) line(text string) {
	if !s.quiet {
		s.write(jsonstream.Message{Stream: text})
	}
}

// forceLine writes text even in a quiet build.
func (s *stream) forceLine(text string) { s.write(jsonstream.Message{Stream: text}) }

func (s *stream) aux(id digest.Digest) {
	raw := marshalAux(id)
	s.write(jsonstream.Message{Aux: &raw})
}

// output is an io.Writer for a RUN's output: each write becomes one
// stream message, as dockerd forwards it.
func (s *stream) output() io.Writer { return streamWriter{s} }

type streamWriter struct{ s *stream }

func (w streamWriter) Write(p []byte) (int, error) {
	w.s.line(string(p))
	return len(p), nil
}

// pullOutput passes the JSON progress of a pull of a base image through
// as it is, so the client draws its bars.
func (s *stream) pullOutput() io.Writer { return rawWriter{s} }

type rawWriter struct{ s *stream }

func (w rawWriter) Write(p []byte) (int, error) {
	if w.s.quiet {
		return len(p), nil
	}
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	if w.s.err == nil {
		_, w.s.err = w.s.w.Write(p)
	}
	return len(p), nil
}
