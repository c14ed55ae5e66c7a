package system

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/berth-dev/berth/internal/api/server"
	"github.com/moby/moby/api/types/system"
)

type fakeBackend struct{}

func (fakeBackend) SystemInfo(context.Context) (*system.Info, error) {
	return &system.Info{ID: "id1", Driver: "overlay2", NCPU: 2}, nil
}
func (fakeBackend) SystemVersion(context.Context) (*system.VersionResponse, error) {
	return &system.VersionResponse{Version: "v", APIVersion: "1.56", MinAPIVersion: "1.40"}, nil
}

func TestPingVersionInfo(t *testing.T) {
	s := server.New(server.Options{MinAPIVersion: "1.40", MaxAPIVersion: "1.56", ServerVersion: "v"},
		&Router{Backend: fakeBackend{}, MaxAPIVersion: "1.56"})
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(method, "/_ping", nil))
		h := rec.Header()
		if rec.Code != 200 || h.Get("Api-Version") != "1.56" || h.Get("Builder-Version") != "1" || h.Get("Cache-Control") == "" {
			t.Errorf("%s /_ping: %d %v", method, rec.Code, h)
		}
		if want := map[string]string{http.MethodGet: "OK", http.MethodHead: ""}[method]; rec.Body.String() != want {
			t.Errorf("%s /_ping body %q, want %q", method, rec.Body, want)
		}
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1.41/version", nil))
	var v system.VersionResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || v.APIVersion != "1.56" || v.MinAPIVersion != "1.40" {
		t.Errorf("/version: %s (%v)", rec.Body, err)
	}
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/info", nil))
	var info system.Info
	if err := json.Unmarshal(rec.Body.Bytes(), &info); err != nil || info.ID != "id1" || info.Driver != "overlay2" {
		t.Errorf("/info: %s (%v)", rec.Body, err)
	}
}
