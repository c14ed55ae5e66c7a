// Package clitest is a fake Engine API for the CLI's tests: an HTTP server
// on a temporary unix socket that answers Docker JSON, records requests
// and can hijack connections the way attach and exec do.
package clitest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"sync"
	"testing"

	"github.com/moby/moby/api/types/common"
)

// APIVersion is the version the fake daemon announces.
const APIVersion = "1.51"

// Request is one request the server received.
type Request struct {
	Method string
	Path   string // without the /vX.Y prefix
	Query  url.Values
	Header http.Header
	Body   []byte
}

// Server is a fake daemon.
type Server struct {
	Host    string // unix://…
	mux     *http.ServeMux
	mu      sync.Mutex
	reqs    []Request
	version string
}

var versionPrefix = regexp.MustCompile(`^/v[0-9.]+`)

// New starts a server that answers /_ping; register the routes a test needs
// with Handle, JSON or Error. It is stopped when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{mux: http.NewServeMux(), version: APIVersion}
	s.mux.HandleFunc("/_ping", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		v := s.version
		s.mu.Unlock()
		w.Header().Set("Api-Version", v)
		w.Header().Set("Ostype", "linux")
		_, _ = io.WriteString(w, "OK")
	})
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	s.Host = "unix://" + sock
	return s
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.URL.Path = versionPrefix.ReplaceAllString(r.URL.Path, "")
	if r.URL.Path != "/_ping" {
		s.mu.Lock()
		s.reqs = append(s.reqs, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body})
		s.mu.Unlock()
	}
	s.mux.ServeHTTP(w, r)
}

// SetAPIVersion changes the version the server announces (APIVersion by
// default), for responses whose shape depends on it.
func (s *Server) SetAPIVersion(v string) {
	s.mu.Lock()
	s.version = v
	s.mu.Unlock()
}

// Handle registers a handler for a ServeMux pattern such as
// "POST /containers/{id}/start".
func (s *Server) Handle(pattern string, h http.HandlerFunc) { s.mux.HandleFunc(pattern, h) }

// JSON registers a route answering v as JSON with the status.
func (s *Server) JSON(pattern string, status int, v any) {
	s.Handle(pattern, func(w http.ResponseWriter, _ *http.Request) { WriteJSON(w, status, v) })
}

// Error registers a route answering a daemon error.
func (s *Server) Error(pattern string, status int, msg string) {
	s.JSON(pattern, status, common.ErrorResponse{Message: msg})
}

// Requests returns the requests received so far, /_ping excepted.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Find returns the first request with the method and path.
func (s *Server) Find(method, path string) (Request, bool) {
	for _, r := range s.Requests() {
		if r.Method == method && r.Path == path {
			return r, true
		}
	}
	return Request{}, false
}

// WriteJSON writes v as a JSON response.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Hijack upgrades the request to a raw stream like the daemon's attach and
// exec start; the caller owns the connection.
func Hijack(w http.ResponseWriter, tty bool) (net.Conn, *bufio.ReadWriter) {
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	ct := "application/vnd.docker.multiplexed-stream"
	if tty {
		ct = "application/vnd.docker.raw-stream"
	}
	_, _ = rw.WriteString("HTTP/1.1 101 UPGRADED\r\nContent-Type: " + ct + "\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	_ = rw.Flush()
	return conn, rw
}

// Frame returns p framed for a multiplexed stream (1 stdout, 2 stderr).
func Frame(stream byte, p string) []byte {
	h := make([]byte, 8, 8+len(p))
	h[0] = stream
	binary.BigEndian.PutUint32(h[4:], uint32(len(p)))
	return append(h, p...)
}
