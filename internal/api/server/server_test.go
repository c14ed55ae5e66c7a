package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/containerd/errdefs"
)

type testRouter []Route

func (r testRouter) Routes() []Route { return r }

func newTestServer() *Server {
	return New(Options{MinAPIVersion: "1.40", MaxAPIVersion: "1.56", ServerVersion: "test"}, testRouter{
		{Method: http.MethodGet, Path: "/echo", Handler: func(ctx context.Context, w http.ResponseWriter, _ *http.Request, _ map[string]string) error {
			WriteJSON(w, http.StatusOK, map[string]string{"version": APIVersion(ctx)})
			return nil
		}},
		{Method: http.MethodGet, Path: "/things/{name:.*}/json", Handler: func(_ context.Context, w http.ResponseWriter, _ *http.Request, vars map[string]string) error {
			WriteJSON(w, http.StatusOK, map[string]string{"name": vars["name"]})
			return nil
		}},
		{Method: http.MethodGet, Path: "/fail/{kind}", Handler: func(_ context.Context, _ http.ResponseWriter, _ *http.Request, vars map[string]string) error {
			switch vars["kind"] {
			case "notfound":
				return fmt.Errorf("No such container: x: %w", errdefs.ErrNotFound)
			case "conflict":
				return fmt.Errorf("name in use: %w", errdefs.ErrConflict)
			case "invalid":
				return fmt.Errorf("bad: %w", errdefs.ErrInvalidArgument)
			case "panic":
				panic("boom")
			}
			return errors.New("plain failure")
		}},
	})
}

func TestRoutingVersionsAndErrors(t *testing.T) {
	s := newTestServer()
	tests := []struct {
		path       string
		wantStatus int
		wantBody   map[string]string
	}{
		{"/echo", 200, map[string]string{"version": "1.56"}},
		{"/v1.41/echo", 200, map[string]string{"version": "1.41"}},
		{"/v1.56/echo", 200, map[string]string{"version": "1.56"}},
		{"/v1.39/echo", 400, map[string]string{"message": "client version 1.39 is too old. Minimum supported API version is 1.40, please upgrade your client to a newer version"}},
		{"/v1.57/echo", 400, map[string]string{"message": "client version 1.57 is too new. Maximum supported API version is 1.56"}},
		{"/v1.45/things/docker.io/library/busybox:latest/json", 200, map[string]string{"name": "docker.io/library/busybox:latest"}},
		{"/fail/notfound", 404, map[string]string{"message": "No such container: x"}},
		{"/fail/conflict", 409, map[string]string{"message": "name in use"}},
		{"/fail/invalid", 400, map[string]string{"message": "bad"}},
		{"/fail/other", 500, map[string]string{"message": "plain failure"}},
		{"/fail/panic", 500, map[string]string{"message": "internal error: boom"}},
		{"/nope", 404, map[string]string{"message": "page not found"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			if rec.Code != tt.wantStatus {
				t.Errorf("status %d, want %d (%s)", rec.Code, tt.wantStatus, rec.Body)
			}
			var got map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			for k, v := range tt.wantBody {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			if rec.Header().Get("Api-Version") != "1.56" || rec.Header().Get("Server") != "Docker/test (linux)" {
				t.Errorf("headers: %v", rec.Header())
			}
		})
	}
}

func TestCompareVersions(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{{"1.40", "1.40", 0}, {"1.9", "1.10", -1}, {"1.56", "1.41", 1}, {"2", "1.99", 1}, {"1.4", "1.40", -1}} {
		if got := CompareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareVersions(%s, %s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestListenRefusesPlainTCP(t *testing.T) {
	if _, err := Listen("tcp://127.0.0.1:0", "", TLSOptions{}); err == nil {
		t.Fatal("plain TCP accepted")
	}
	if _, err := Listen("fd://", "", TLSOptions{}); err == nil {
		t.Fatal("unknown protocol accepted")
	}
}

func TestErrorMessageStripsOnlyWrappedSentinels(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("no such thing: %w", errdefs.ErrNotFound), "no such thing"},
		{fmt.Errorf("scratch is reserved: %w", errdefs.ErrPermissionDenied), "scratch is reserved"},
		// A message that merely ends with a sentinel's words keeps them.
		{errdefs.ErrInvalidArgument.WithMessage(`exec: "/etc/passwd": permission denied`), `exec: "/etc/passwd": permission denied`},
		{errors.New("open /x: not found"), "open /x: not found"},
	} {
		if got := errorMessage(tc.err); got != tc.want {
			t.Errorf("errorMessage(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
