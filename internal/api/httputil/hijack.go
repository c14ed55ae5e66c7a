// Package httputil holds the HTTP helpers the API routers share: request
// decoding, query parsing, filters and hijacked streams.
package httputil

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
)

// Content types of hijacked streams.
const (
	RawStream         = "application/vnd.docker.raw-stream"
	MultiplexedStream = "application/vnd.docker.multiplexed-stream"
)

// HijackedConn is a taken-over client connection. Reads return the bytes
// the client sends after its request (stdin); Close ends the stream.
type HijackedConn struct {
	net.Conn
	r *bufio.Reader
}

// Read reads what the client sends, starting with anything the HTTP
// server had already buffered.
func (c *HijackedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite half-closes the connection when the transport allows it.
func (c *HijackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Hijack takes over the connection of an attach or exec request and
// answers it the way dockerd does: "101 UPGRADED" when the client asked
// for `Upgrade: tcp`, a plain 200 otherwise. The HTTP response is
// finished; the connection then carries the stream in both directions.
func Hijack(w http.ResponseWriter, r *http.Request, multiplexed bool) (*HijackedConn, error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, errors.New("connection cannot be hijacked")
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	ct := RawStream
	if multiplexed {
		ct = MultiplexedStream
	}
	var head string
	if strings.EqualFold(r.Header.Get("Upgrade"), "tcp") || strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") {
		head = "HTTP/1.1 101 UPGRADED\r\nContent-Type: " + ct + "\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
	} else {
		head = "HTTP/1.1 200 OK\r\nContent-Type: " + ct + "\r\n\r\n"
	}
	if _, err := rw.Writer.WriteString(head); err != nil {
		conn.Close()
		return nil, err
	}
	if err := rw.Writer.Flush(); err != nil {
		conn.Close()
		return nil, err
	}
	return &HijackedConn{Conn: conn, r: rw.Reader}, nil
}

// ReadJSON decodes a JSON request body into v; an empty body leaves v as
// it is. Malformed JSON is a 400, as in dockerd.
func ReadJSON(r *http.Request, v any) error {
	if r.Body == nil || r.ContentLength == 0 && r.Header.Get("Transfer-Encoding") == "" {
		return nil
	}
	ct := r.Header.Get("Content-Type")
	if ct != "" && !strings.HasPrefix(ct, "application/json") {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("unsupported Content-Type header (%s): must be 'application/json'", ct))
	}
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return errdefs.ErrInvalidArgument.WithMessage("invalid JSON: " + err.Error())
	}
	return nil
}

// BoolValue reads a boolean query parameter the way dockerd does: absent,
// "", "0", "no", "false" and "none" are false.
func BoolValue(r *http.Request, k string) bool {
	switch strings.ToLower(strings.TrimSpace(r.Form.Get(k))) {
	case "", "0", "no", "false", "none":
		return false
	}
	return true
}

// IntValue reads an integer query parameter; absent gives def.
func IntValue(r *http.Request, k string, def int) (int, error) {
	v := r.Form.Get(k)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid value for %s: %q", k, v))
	}
	return n, nil
}

// FlushWriter flushes after every write, for streamed responses.
type FlushWriter struct {
	W io.Writer
	F http.Flusher
}

func (f *FlushWriter) Write(p []byte) (int, error) {
	n, err := f.W.Write(p)
	f.F.Flush()
	return n, err
}

// Flush implements http.Flusher.
func (f *FlushWriter) Flush() { f.F.Flush() }

// NewFlushWriter wraps w so each write reaches the client at once.
func NewFlushWriter(w http.ResponseWriter) *FlushWriter {
	f, _ := w.(http.Flusher)
	if f == nil {
		f = noFlush{}
	}
	return &FlushWriter{W: w, F: f}
}

type noFlush struct{}

func (noFlush) Flush() {}
