package httputil

import (
	"encoding/binary"
	"io"
	"sync"

	"github.com/moby/moby/api/pkg/stdcopy"
)

// StdWriter frames each write with Docker's 8-byte stream header (stream
// type, three zero bytes, big-endian length), the format of non-TTY logs,
// attach and exec streams.
type StdWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	stream stdcopy.StdType
	buf    []byte
}

// NewStdWriters returns framing writers for stdout and stderr that share
// w and never interleave their frames.
func NewStdWriters(w io.Writer) (stdout, stderr *StdWriter) {
	mu := &sync.Mutex{}
	return &StdWriter{mu: mu, w: w, stream: stdcopy.Stdout}, &StdWriter{mu: mu, w: w, stream: stdcopy.Stderr}
}

// Write sends p as one frame.
func (s *StdWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf[:0], byte(s.stream), 0, 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(s.buf[4:8], uint32(len(p)))
	s.buf = append(s.buf, p...)
	if _, err := s.w.Write(s.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}
