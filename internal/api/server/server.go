// Package server is berthd's HTTP side of the Docker Engine API: routing
// (paths with and without a /vX.Y prefix), API version negotiation, the
// headers dockerd sends, and the one mapping from errors to status codes.
// Routers (internal/api/router/...) provide the routes; the daemon provides
// the backends they declare.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/gorilla/mux"
)

// HandlerFunc handles one API call. vars are the path variables; an error
// becomes Docker's JSON error response with the status mapped by Status.
type HandlerFunc func(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error

// Route is one method and path (without the version prefix).
type Route struct {
	Method  string
	Path    string
	Handler HandlerFunc
}

// Router is a group of routes.
type Router interface {
	Routes() []Route
}

// Options configure the server.
type Options struct {
	// MinAPIVersion and MaxAPIVersion bound the versions clients may use;
	// MaxAPIVersion is also the default for unversioned paths.
	MinAPIVersion, MaxAPIVersion string
	// ServerVersion is berth's version, for the Server header.
	ServerVersion string
}

// Server serves the API.
type Server struct {
	cancel context.CancelFunc
	opts   Options
	mux    *mux.Router
	http   *http.Server
}

type ctxKey struct{}

// APIVersion returns the API version of the request being served.
func APIVersion(ctx context.Context) string {
	v, _ := ctx.Value(ctxKey{}).(string)
	return v
}

// New builds a server with the routes of routers.
func New(opts Options, routers ...Router) *Server {
	s := &Server{opts: opts, mux: mux.NewRouter()}
	for _, rt := range routers {
		for _, r := range rt.Routes() {
			h := s.wrap(r.Handler)
			s.mux.Path("/v{version:[0-9.]+}" + r.Path).Methods(r.Method).Handler(h)
			s.mux.Path(r.Path).Methods(r.Method).Handler(h)
		}
	}
	notFound := s.wrap(func(context.Context, http.ResponseWriter, *http.Request, map[string]string) error {
		return fmt.Errorf("page not found: %w", errdefs.ErrNotFound)
	})
	s.mux.NotFoundHandler = notFound
	s.mux.MethodNotAllowedHandler = notFound
	base, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.http = &http.Server{Handler: s.mux, ReadHeaderTimeout: 30 * time.Second,
		BaseContext: func(net.Listener) context.Context { return base }}
	return s
}

// ServeHTTP makes the server usable in tests without a listener.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Serve accepts connections on l until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	err := s.http.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections, ends the requests that only wait
// (wait, logs --follow, attach) and waits for the others in flight.
func (s *Server) Shutdown(ctx context.Context) error {
	s.cancel()
	return s.http.Shutdown(ctx)
}

// wrap adds version negotiation, the common headers, panic recovery and
// error rendering to a handler.
func (s *Server) wrap(h HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		vars := mux.Vars(r)
		w.Header().Set("Server", "Docker/"+s.opts.ServerVersion+" (linux)")
		w.Header().Set("Api-Version", s.opts.MaxAPIVersion)
		w.Header().Set("Ostype", "linux")
		w.Header().Set("Docker-Experimental", "false")
		version := vars["version"]
		if version == "" {
			version = s.opts.MaxAPIVersion
		}
		defer func() {
			if p := recover(); p != nil {
				slog.Error("panic serving API request", "method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
				writeError(w, fmt.Errorf("internal error: %v", p))
			}
		}()
		if err := s.checkVersion(version); err != nil {
			writeError(w, err)
			return
		}
		ctx := context.WithValue(r.Context(), ctxKey{}, version)
		if err := h(ctx, w, r.WithContext(ctx), vars); err != nil {
			slog.Debug("API error", "method", r.Method, "path", r.URL.Path, "error", err)
			writeError(w, err)
		}
	})
}

func (s *Server) checkVersion(v string) error {
	if CompareVersions(v, s.opts.MinAPIVersion) < 0 {
		return fmt.Errorf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version: %w",
			v, s.opts.MinAPIVersion, errdefs.ErrInvalidArgument)
	}
	if CompareVersions(v, s.opts.MaxAPIVersion) > 0 {
		return fmt.Errorf("client version %s is too new. Maximum supported API version is %s: %w", v, s.opts.MaxAPIVersion, errdefs.ErrInvalidArgument)
	}
	return nil
}

// CompareVersions compares dotted API versions numerically ("1.9" < "1.10").
func CompareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// Status maps an error to the HTTP status Docker uses for it.
func Status(err error) int {
	switch {
	case errdefs.IsInvalidArgument(err):
		return http.StatusBadRequest
	case errdefs.IsNotFound(err):
		return http.StatusNotFound
	case errdefs.IsAlreadyExists(err), errdefs.IsConflict(err), errdefs.IsFailedPrecondition(err):
		return http.StatusConflict
	case errdefs.IsPermissionDenied(err):
		return http.StatusForbidden
	case errdefs.IsUnauthorized(err):
		return http.StatusUnauthorized
	case errdefs.IsNotModified(err):
		return http.StatusNotModified
	case errdefs.IsNotImplemented(err):
		return http.StatusNotImplemented
	case errdefs.IsUnavailable(err):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// errorMessage strips the errdefs sentinel's text that %w appended.
func errorMessage(err error) string {
	msg := err.Error()
	for _, sentinel := range []error{
		errdefs.ErrInvalidArgument, errdefs.ErrNotFound, errdefs.ErrAlreadyExists, errdefs.ErrConflict,
		errdefs.ErrFailedPrecondition, errdefs.ErrPermissionDenied, errdefs.ErrUnauthenticated,
		errdefs.ErrNotModified, errdefs.ErrNotImplemented, errdefs.ErrUnavailable,
	} {
		// Only the sentinel the error wraps: a runtime's own text may end
		// with the same words ("exec: ...: permission denied").
		if errors.Is(err, sentinel) {
			msg = strings.TrimSuffix(msg, ": "+sentinel.Error())
		}
	}
	return msg
}

func writeError(w http.ResponseWriter, err error) {
	status := Status(err)
	if status == http.StatusNotModified {
		w.WriteHeader(status)
		return
	}
	WriteJSON(w, status, map[string]string{"message": errorMessage(err)})
}

// WriteJSON writes v as a JSON response with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ErrorMessage is the message of err as the API reports it, for errors
// that go into a response stream.
func ErrorMessage(err error) string { return errorMessage(err) }
