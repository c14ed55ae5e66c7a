// Package system routes /_ping, /version, /info, /events and /system/df.
package system

import (
	"context"
	"net/http"

	"github.com/berth-dev/berth/internal/api/server"
	berthevents "github.com/berth-dev/berth/internal/events"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/system"
)

// Backend is what the system routes need from the daemon.
type Backend interface {
	SystemInfo(ctx context.Context) (*system.Info, error)
	SystemVersion(ctx context.Context) (*system.VersionResponse, error)
	DiskUsageBackend
	// AuthenticateToRegistry checks credentials against a registry and
	// returns the status to show ("Login Succeeded").
	AuthenticateToRegistry(ctx context.Context, auth *registry.AuthConfig) (string, error)
}

// Router serves the system routes.
type Router struct {
	Backend Backend
	// MaxAPIVersion is announced by /_ping; the docker CLI negotiates down
	// to it only when the ping carries it.
	MaxAPIVersion string
	// Events feeds GET /events.
	Events *berthevents.Bus
	// Experimental is daemon.json's "experimental": the docker CLI offers
	// experimental flags (build --squash) only to a daemon that says so.
	Experimental bool
}

// Routes implements server.Router.
func (r *Router) Routes() []server.Route {
	return []server.Route{
		{Method: http.MethodGet, Path: "/_ping", Handler: r.ping},
		{Method: http.MethodHead, Path: "/_ping", Handler: r.ping},
		{Method: http.MethodGet, Path: "/version", Handler: r.version},
		{Method: http.MethodGet, Path: "/info", Handler: r.info},
		{Method: http.MethodGet, Path: "/system/df", Handler: r.systemDF},
		{Method: http.MethodGet, Path: "/events", Handler: r.events},
		{Method: http.MethodPost, Path: "/auth", Handler: r.postAuth},
	}
}

func (r *Router) ping(_ context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	h := w.Header()
	h.Set("Api-Version", r.MaxAPIVersion)
	// The classic builder: the docker CLI then builds through POST /build.
	h.Set("Builder-Version", "1")
	if r.Experimental {
		h.Set("Docker-Experimental", "true")
	}
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if req.Method == http.MethodHead {
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	w.WriteHeader(http.StatusOK)
	_, err := w.Write([]byte("OK"))
	return err
}

func (r *Router) version(ctx context.Context, w http.ResponseWriter, _ *http.Request, _ map[string]string) error {
	v, err := r.Backend.SystemVersion(ctx)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, v)
	return nil
}

func (r *Router) info(ctx context.Context, w http.ResponseWriter, _ *http.Request, _ map[string]string) error {
	info, err := r.Backend.SystemInfo(ctx)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, info)
	return nil
}
