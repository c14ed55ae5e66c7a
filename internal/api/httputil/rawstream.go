package httputil

import (
	"io"
	"net/http"
)

// RawStreamWriter writes a raw response body (a tar) and notes whether
// anything was written: before that an error can still become a JSON
// error response; after it, only Abort is left.
type RawStreamWriter struct {
	W       io.Writer
	Started bool
}

func (s *RawStreamWriter) Write(p []byte) (int, error) {
	s.Started = true
	return s.W.Write(p)
}

// Abort closes the connection of a response already under way, so that
// a body cut short by an error does not look complete to the client.
func Abort(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
		}
	}
}
