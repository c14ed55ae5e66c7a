package httputil

import (
	"encoding/json"
	"net/http"

	"github.com/moby/moby/api/types/jsonstream"
)

// JSONStream writes a JSON message stream (pull, push, import, load,
// build), flushing each message. Once something was written the status
// line has gone out: errors must then go into the stream (Error).
type JSONStream struct {
	W http.ResponseWriter
	// Started tells whether anything was written yet.
	Started bool
}

func (s *JSONStream) Write(p []byte) (int, error) {
	n, err := s.W.Write(p)
	s.Started = true
	if f, ok := s.W.(http.Flusher); ok {
		f.Flush()
	}
	return n, err
}

// Status writes {"status": msg}.
func (s *JSONStream) Status(msg string) {
	b, _ := json.Marshal(jsonstream.Message{Status: msg})
	_, _ = s.Write(append(b, '\r', '\n'))
}

// Error writes an error message that both old ("error") and new
// ("errorDetail") clients read; code, when not 0, is the exit code the
// docker CLI takes (a failed build step's).
func (s *JSONStream) Error(msg string, code int) {
	b, _ := json.Marshal(struct {
		ErrorDetail *jsonstream.Error `json:"errorDetail"`
		Error       string            `json:"error"`
	}{&jsonstream.Error{Code: code, Message: msg}, msg})
	_, _ = s.Write(append(b, '\r', '\n'))
}
