// Package network routes /networks: create, list, inspect, remove, prune,
// connect and disconnect.
package network

import (
	"context"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/internal/api/httputil"
	"github.com/berth-dev/berth/internal/api/server"
	"github.com/berth-dev/berth/internal/daemon/networks"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
)

// Backend is what the network routes need.
type Backend interface {
	Create(req network.CreateRequest) (network.CreateResponse, error)
	Get(ref string) (*networks.Network, error)
	List() []*networks.Network
	Summary(n *networks.Network) network.Inspect
	Remove(ref string) error
	InUse(netID string) []string
}

// Connector connects containers to networks and disconnects them: the
// container side of /networks/{id}/connect and /disconnect.
type Connector interface {
	ConnectNetwork(ctx context.Context, netRef, containerRef string, ep *network.EndpointSettings) error
	DisconnectNetwork(ctx context.Context, netRef, containerRef string, force bool) error
}

// Router serves the network routes.
type Router struct {
	Backend   Backend
	Connector Connector
}

// Routes implements server.Router.
func (r *Router) Routes() []server.Route {
	return []server.Route{
		{Method: http.MethodGet, Path: "/networks", Handler: r.list},
		{Method: http.MethodGet, Path: "/networks/", Handler: r.list},
		{Method: http.MethodPost, Path: "/networks/create", Handler: r.create},
		{Method: http.MethodPost, Path: "/networks/prune", Handler: r.prune},
		{Method: http.MethodGet, Path: "/networks/{id:.*}", Handler: r.inspect},
		{Method: http.MethodDelete, Path: "/networks/{id:.*}", Handler: r.remove},
		{Method: http.MethodPost, Path: "/networks/{id:.*}/connect", Handler: r.connect},
		{Method: http.MethodPost, Path: "/networks/{id:.*}/disconnect", Handler: r.disconnect},
	}
}

var listFilters = []string{"dangling", "driver", "id", "label", "name", "scope", "type"}

func (r *Router) list(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := req.ParseForm(); err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	f, err := httputil.ParseFilters(req.Form.Get("filters"))
	if err != nil {
		return err
	}
	if err := f.Validate(listFilters...); err != nil {
		return err
	}
	out := []network.Inspect{}
	for _, n := range r.Backend.List() {
		if !match(f, n, len(r.Backend.InUse(n.ID)) > 0) {
			continue
		}
		out = append(out, r.Backend.Summary(n))
	}
	server.WriteJSON(w, http.StatusOK, out)
	return nil
}

// match applies dockerd's network filters.
func match(f httputil.Filters, n *networks.Network, used bool) bool {
	if f.Contains("driver") && !f.ExactMatch("driver", n.Driver) {
		return false
	}
	if f.Contains("name") && !f.Match("name", n.Name) {
		return false
	}
	if f.Contains("id") && !f.Match("id", n.ID) {
		return false
	}
	if f.Contains("label") && !f.MatchKVList("label", n.Labels) {
		return false
	}
	if f.Contains("scope") && !f.ExactMatch("scope", "local") {
		return false
	}
	if f.Contains("type") {
		typ := "builtin"
		if n.UserDefined {
			typ = "custom"
		}
		if !f.ExactMatch("type", typ) {
			return false
		}
	}
	if f.Contains("dangling") {
		dangling := n.UserDefined && !used
		if (f.ExactMatch("dangling", "true") || f.ExactMatch("dangling", "1")) != dangling {
			return false
		}
	}
	return true
}

func (r *Router) create(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	var body network.CreateRequest
	if err := httputil.ReadJSON(req, &body); err != nil {
		return err
	}
	resp, err := r.Backend.Create(body)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusCreated, resp)
	return nil
}

func (r *Router) inspect(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	n, err := r.Backend.Get(strings.TrimSuffix(vars["id"], "/"))
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, r.Backend.Summary(n))
	return nil
}

func (r *Router) remove(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := r.Backend.Remove(vars["id"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (r *Router) prune(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	deleted := []string{}
	for _, n := range r.Backend.List() {
		if !n.UserDefined || len(r.Backend.InUse(n.ID)) > 0 {
			continue
		}
		if err := r.Backend.Remove(n.ID); err == nil {
			deleted = append(deleted, n.Name)
		}
	}
	server.WriteJSON(w, http.StatusOK, network.PruneReport{NetworksDeleted: deleted})
	return nil
}

func (r *Router) connect(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	var body network.ConnectRequest
	if err := httputil.ReadJSON(req, &body); err != nil {
		return err
	}
	if err := r.Connector.ConnectNetwork(ctx, vars["id"], body.Container, body.EndpointConfig); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (r *Router) disconnect(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	var body network.DisconnectRequest
	if err := httputil.ReadJSON(req, &body); err != nil {
		return err
	}
	if err := r.Connector.DisconnectNetwork(ctx, vars["id"], body.Container, body.Force); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
