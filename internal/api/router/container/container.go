// Package container routes /containers/... and /exec/...: the container
// lifecycle, logs, attach and exec.
package container

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/api/httputil"
	"github.com/berth-dev/berth/internal/api/server"
	"github.com/berth-dev/berth/internal/daemon/containers"
	"github.com/containerd/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/opencontainers/go-digest"
)

// Backend is what the container routes need from the daemon.
type Backend interface {
	Create(ctx context.Context, o containers.CreateOpts) (containertypes.CreateResponse, error)
	Start(ctx context.Context, ref string) error
	Stop(ctx context.Context, ref, signal string, timeout *int) error
	Restart(ctx context.Context, ref, signal string, timeout *int) error
	Kill(ctx context.Context, ref, signal string) error
	Wait(ctx context.Context, ref string, cond containertypes.WaitCondition) (<-chan containertypes.WaitResponse, error)
	Remove(ctx context.Context, ref string, o containers.RemoveOpts) error
	Inspect(ctx context.Context, ref string, size bool) (*containertypes.InspectResponse, error)
	List(ctx context.Context, o containers.ListOptions) ([]containertypes.Summary, error)
	Logs(ctx context.Context, ref string, o containers.LogsOpts) (bool, func(io.Writer) error, error)
	Attach(ctx context.Context, ref string, o containers.AttachOpts) error
	Resize(ctx context.Context, ref string, h, w uint) error
	Top(ctx context.Context, ref, psArgs string) (*containertypes.TopResponse, error)
	Stats(ctx context.Context, ref string, stream, oneShot bool, emit func(*containertypes.StatsResponse) error) error
	Rename(ctx context.Context, ref, name string) error
	Pause(ctx context.Context, ref string) error
	Unpause(ctx context.Context, ref string) error
	Prune(ctx context.Context, filters map[string][]string) ([]string, uint64, error)
	ExecCreate(ctx context.Context, ref string, req containertypes.ExecCreateRequest) (string, error)
	ExecStart(ctx context.Context, execID string, o containers.ExecStartOpts) error
	ExecResize(ctx context.Context, execID string, h, w uint) error
	ExecInspect(ctx context.Context, execID string) (*containertypes.ExecInspectResponse, error)
	Export(ctx context.Context, ref string, out io.Writer) error
	Commit(ctx context.Context, ref string, o containers.CommitOpts) (digest.Digest, error)
}

// Router serves the container and exec routes.
type Router struct {
	Backend Backend
}

// Routes implements server.Router.
func (r *Router) Routes() []server.Route {
	return []server.Route{
		{Method: http.MethodPost, Path: "/containers/create", Handler: r.create},
		{Method: http.MethodGet, Path: "/containers/json", Handler: r.list},
		{Method: http.MethodPost, Path: "/containers/prune", Handler: r.prune},
		{Method: http.MethodGet, Path: "/containers/{name:.*}/json", Handler: r.inspect},
		{Method: http.MethodGet, Path: "/containers/{name:.*}/logs", Handler: r.logs},
		{Method: http.MethodGet, Path: "/containers/{name:.*}/top", Handler: r.top},
		{Method: http.MethodGet, Path: "/containers/{name:.*}/stats", Handler: r.stats},
		{Method: http.MethodGet, Path: "/containers/{name:.*}/export", Handler: r.export},
		{Method: http.MethodPost, Path: "/commit", Handler: r.commit},
		{Method: http.MethodPost, Path: "/containers/{name:.*}/start", Handler: r.start},
		{Method: http.MethodPost, Path: "/containers/{name:.*}/stop", Handler: r.stop},
		{Method: http.MethodPost, Path: "/containers/{name:.*}/restart", Handler: r.restart},
		{Method: http.MethodPost, Path: "/containers/{name:.*}/kill", Handler: r.kill},
		{Method: http.MethodPost, Path: "/containers/{name:.*}/wait", Handler: r.wait},
		{Method: http.MethodPost, Path: "/containers/{name:.*}/pause", Handler: r.pause},
		{Method: http.MethodPost, Path: "/containers/{name:.*}/unpause", Handler: r.unpause},
		{Method: http.MethodPost, Path: "/containers/{name:.*}/rename", Handler: r.rename},
		{Method: http.MethodPost, Path: "/containers/{name:.*}/resize", Handler: r.resize},
		{Method: http.MethodPost, Path: "/containers/{name:.*}/attach", Handler: r.attach},
		{Method: http.MethodPost, Path: "/containers/{name:.*}/exec", Handler: r.execCreate},
		{Method: http.MethodDelete, Path: "/containers/{name:.*}", Handler: r.remove},
		{Method: http.MethodPost, Path: "/exec/{id:.*}/start", Handler: r.execStart},
		{Method: http.MethodPost, Path: "/exec/{id:.*}/resize", Handler: r.execResize},
		{Method: http.MethodGet, Path: "/exec/{id:.*}/json", Handler: r.execInspect},
	}
}

func (r *Router) create(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := req.ParseForm(); err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	var body containertypes.CreateRequest
	if err := httputil.ReadJSON(req, &body); err != nil {
		return err
	}
	if body.Config == nil {
		return errdefs.ErrInvalidArgument.WithMessage("config cannot be empty in order to create a container")
	}
	if p := req.Form.Get("platform"); p != "" && p != "linux" && !strings.HasPrefix(p, "linux/amd64") {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("platform %s is not supported: berth runs linux/amd64 images", p))
	}
	resp, err := r.Backend.Create(ctx, containers.CreateOpts{
		Name: req.Form.Get("name"), Config: body.Config, HostConfig: body.HostConfig, Networking: body.NetworkingConfig,
	})
	if err != nil {
		return err
	}
	if resp.Warnings == nil {
		resp.Warnings = []string{}
	}
	server.WriteJSON(w, http.StatusCreated, resp)
	return nil
}

func (r *Router) list(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := req.ParseForm(); err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	filters, err := filterMap(req.Form.Get("filters"))
	if err != nil {
		return err
	}
	limit, err := httputil.IntValue(req, "limit", 0)
	if err != nil {
		return err
	}
	list, err := r.Backend.List(ctx, containers.ListOptions{
		All: httputil.BoolValue(req, "all"), Limit: limit, Size: httputil.BoolValue(req, "size"), Filters: filters,
	})
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, list)
	return nil
}

// filterMap parses the filters parameter into key → values.
func filterMap(param string) (map[string][]string, error) {
	f, err := httputil.ParseFilters(param)
	if err != nil {
		return nil, err
	}
	m := map[string][]string{}
	for _, k := range f.Keys() {
		m[k] = f.Get(k)
	}
	return m, nil
}

func (r *Router) prune(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := req.ParseForm(); err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	filters, err := filterMap(req.Form.Get("filters"))
	if err != nil {
		return err
	}
	deleted, space, err := r.Backend.Prune(ctx, filters)
	if err != nil {
		return err
	}
	if deleted == nil {
		deleted = []string{}
	}
	server.WriteJSON(w, http.StatusOK, containertypes.PruneReport{ContainersDeleted: deleted, SpaceReclaimed: space})
	return nil
}

func (r *Router) inspect(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := req.ParseForm(); err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	c, err := r.Backend.Inspect(ctx, vars["name"], httputil.BoolValue(req, "size"))
	if err != nil {
		return err
	}
	if v := server.APIVersion(ctx); v != "" && server.CompareVersions(v, "1.52") < 0 && c.NetworkSettings != nil {
		server.WriteJSON(w, http.StatusOK, withLegacyNetwork(c))
		return nil
	}
	server.WriteJSON(w, http.StatusOK, c)
	return nil
}

// legacyNetworkSettings adds the default network's fields that the API
// returned at the top of NetworkSettings before v1.52 (what
// `inspect -f '{{.NetworkSettings.IPAddress}}'` reads).
type legacyNetworkSettings struct {
	*containertypes.NetworkSettings
	Bridge                 string
	HairpinMode            bool
	LinkLocalIPv6Address   string
	LinkLocalIPv6PrefixLen int
	SecondaryIPAddresses   []any
	SecondaryIPv6Addresses []any
	EndpointID             string
	Gateway                string
	GlobalIPv6Address      string
	GlobalIPv6PrefixLen    int
	IPAddress              string
	IPPrefixLen            int
	IPv6Gateway            string
	MacAddress             string
}

type legacyInspect struct {
	*containertypes.InspectResponse
	NetworkSettings *legacyNetworkSettings
}

func withLegacyNetwork(c *containertypes.InspectResponse) legacyInspect {
	ns := &legacyNetworkSettings{NetworkSettings: c.NetworkSettings}
	if ep := c.NetworkSettings.Networks["bridge"]; ep != nil {
		ns.EndpointID = ep.EndpointID
		if ep.IPAddress.IsValid() {
			ns.IPAddress, ns.IPPrefixLen = ep.IPAddress.String(), ep.IPPrefixLen
		}
		if ep.Gateway.IsValid() {
			ns.Gateway = ep.Gateway.String()
		}
		ns.MacAddress = ep.MacAddress.String()
	}
	return legacyInspect{InspectResponse: c, NetworkSettings: ns}
}

func (r *Router) logs(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := req.ParseForm(); err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	o := containers.LogsOpts{
		Stdout: httputil.BoolValue(req, "stdout"), Stderr: httputil.BoolValue(req, "stderr"),
		Follow: httputil.BoolValue(req, "follow"), Timestamps: httputil.BoolValue(req, "timestamps"),
		Details: httputil.BoolValue(req, "details"), Tail: -1,
	}
	if t := req.Form.Get("tail"); t != "" && t != "all" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			n = -1 // dockerd treats an invalid tail as "all"
		}
		o.Tail = n
	}
	var err error
	if o.Since, err = unixTime(req.Form.Get("since")); err != nil {
		return err
	}
	if o.Until, err = unixTime(req.Form.Get("until")); err != nil {
		return err
	}
	tty, write, err := r.Backend.Logs(ctx, vars["name"], o)
	if err != nil {
		return err
	}
	ct := httputil.MultiplexedStream
	if tty {
		ct = httputil.RawStream
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	fw := httputil.NewFlushWriter(w)
	fw.Flush()
	if err := write(fw); err != nil && ctx.Err() == nil {
		// The status is sent; the stream just ends.
		return nil
	}
	return nil
}

// unixTime parses the since/until parameters: seconds with an optional
// fraction ("1700000000.123456789"); 0 or empty is unbounded.
func unixTime(v string) (time.Time, error) {
	if v == "" || v == "0" {
		return time.Time{}, nil
	}
	sec, frac, _ := strings.Cut(v, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid timestamp: %q", v))
	}
	var ns int64
	if frac != "" {
		frac = (frac + "000000000")[:9]
		if ns, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return time.Time{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid timestamp: %q", v))
		}
	}
	return time.Unix(s, ns), nil
}

func (r *Router) top(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := req.ParseForm(); err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	t, err := r.Backend.Top(ctx, vars["name"], req.Form.Get("ps_args"))
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, t)
	return nil
}

// stats streams one JSON document per sample (stream=1, the default) or
// answers with one.
func (r *Router) stats(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := req.ParseForm(); err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	stream := req.Form.Get("stream") == "" || httputil.BoolValue(req, "stream")
	oneShot := httputil.BoolValue(req, "one-shot")
	if oneShot && stream {
		return errdefs.ErrInvalidArgument.WithMessage("cannot have stream=true and one-shot=true")
	}
	started := false
	enc := json.NewEncoder(httputil.NewFlushWriter(w))
	err := r.Backend.Stats(ctx, vars["name"], stream, oneShot, func(s *containertypes.StatsResponse) error {
		if !started {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			started = true
		}
		return enc.Encode(s)
	})
	if started {
		return nil
	}
	return err
}

func noContent(w http.ResponseWriter, err error) error {
	if containers.IsNotModified(err) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (r *Router) start(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	// A body (the pre-1.24 HostConfig) is refused, as by dockerd.
	if req.ContentLength > 0 {
		var hc json.RawMessage
		if err := httputil.ReadJSON(req, &hc); err == nil && len(hc) > 0 && string(hc) != "null" && string(hc) != "{}" {
			return errdefs.ErrInvalidArgument.WithMessage("starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24")
		}
	}
	return noContent(w, r.Backend.Start(ctx, vars["name"]))
}

// stopParams reads signal and t (seconds).
func stopParams(req *http.Request) (string, *int, error) {
	if err := req.ParseForm(); err != nil {
		return "", nil, errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	var timeout *int
	if t := req.Form.Get("t"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil {
			return "", nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid value for t: %q", t))
		}
		timeout = &n
	}
	return req.Form.Get("signal"), timeout, nil
}

func (r *Router) stop(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	sig, t, err := stopParams(req)
	if err != nil {
		return err
	}
	return noContent(w, r.Backend.Stop(ctx, vars["name"], sig, t))
}

func (r *Router) restart(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	sig, t, err := stopParams(req)
	if err != nil {
		return err
	}
	if err := r.Backend.Restart(ctx, vars["name"], sig, t); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (r *Router) kill(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := req.ParseForm(); err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	if err := r.Backend.Kill(ctx, vars["name"], req.Form.Get("signal")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// wait answers at once with the headers, so the client knows the wait is
// registered, and sends the body when the condition is met.
func (r *Router) wait(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := req.ParseForm(); err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	ch, err := r.Backend.Wait(ctx, vars["name"], containertypes.WaitCondition(req.Form.Get("condition")))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	httputil.NewFlushWriter(w).Flush()
	select {
	case res := <-ch:
		return json.NewEncoder(w).Encode(res)
	case <-ctx.Done():
		return nil
	}
}

func (r *Router) pause(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	return noContent(w, r.Backend.Pause(ctx, vars["name"]))
}

func (r *Router) unpause(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	return noContent(w, r.Backend.Unpause(ctx, vars["name"]))
}

func (r *Router) rename(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := req.ParseForm(); err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	return noContent(w, r.Backend.Rename(ctx, vars["name"], req.Form.Get("name")))
}

// size reads h and w.
func size(req *http.Request) (uint, uint, error) {
	if err := req.ParseForm(); err != nil {
		return 0, 0, errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	h, err1 := strconv.ParseUint(req.Form.Get("h"), 10, 16)
	wd, err2 := strconv.ParseUint(req.Form.Get("w"), 10, 16)
	if err1 != nil || err2 != nil {
		return 0, 0, errdefs.ErrInvalidArgument.WithMessage("invalid resize parameters: h and w must be numbers")
	}
	return uint(h), uint(wd), nil
}

func (r *Router) resize(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	h, wd, err := size(req)
	if err != nil {
		return err
	}
	if err := r.Backend.Resize(ctx, vars["name"], h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// hijacker returns the function that takes over the connection, and a
// report of whether it did: once hijacked, an error can no longer be sent
// as an HTTP response.
func hijacker(w http.ResponseWriter, req *http.Request) (func(bool) (containers.Conn, error), func() bool) {
	done := false
	return func(multiplexed bool) (containers.Conn, error) {
			c, err := httputil.Hijack(w, req, multiplexed)
			done = err == nil
			return c, err
		}, func() bool {
			return done
		}
}

// afterHijack drops an error that came after the connection was taken
// over: the stream has simply ended for the client.
func afterHijack(err error, hijacked func() bool) error {
	if err != nil && hijacked() {
		slog.Debug("stream ended with an error", "err", err)
		return nil
	}
	return err
}

func (r *Router) attach(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := req.ParseForm(); err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	hijack, hijacked := hijacker(w, req)
	o := containers.AttachOpts{
		Stdin: httputil.BoolValue(req, "stdin"), Stdout: httputil.BoolValue(req, "stdout"),
		Stderr: httputil.BoolValue(req, "stderr"), Stream: httputil.BoolValue(req, "stream"),
		Logs: httputil.BoolValue(req, "logs"), DetachKeys: req.Form.Get("detachKeys"),
		Hijack: hijack,
	}
	return afterHijack(r.Backend.Attach(context.WithoutCancel(ctx), vars["name"], o), hijacked)
}

func (r *Router) remove(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := req.ParseForm(); err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	err := r.Backend.Remove(ctx, vars["name"], containers.RemoveOpts{
		Force: httputil.BoolValue(req, "force"), Volumes: httputil.BoolValue(req, "v"), Link: httputil.BoolValue(req, "link"),
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (r *Router) execCreate(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	var body containertypes.ExecCreateRequest
	if err := httputil.ReadJSON(req, &body); err != nil {
		return err
	}
	id, err := r.Backend.ExecCreate(ctx, vars["name"], body)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusCreated, containertypes.ExecCreateResponse{ID: id})
	return nil
}

func (r *Router) execStart(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	var body containertypes.ExecStartRequest
	if err := httputil.ReadJSON(req, &body); err != nil {
		return err
	}
	hijack, hijacked := hijacker(w, req)
	o := containers.ExecStartOpts{Detach: body.Detach, ConsoleSize: body.ConsoleSize, Hijack: hijack}
	if body.Detach {
		if err := r.Backend.ExecStart(ctx, vars["id"], o); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
	return afterHijack(r.Backend.ExecStart(context.WithoutCancel(ctx), vars["id"], o), hijacked)
}

func (r *Router) execResize(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	h, wd, err := size(req)
	if err != nil {
		return err
	}
	if err := r.Backend.ExecResize(ctx, vars["id"], h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (r *Router) execInspect(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	e, err := r.Backend.ExecInspect(ctx, vars["id"])
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, e)
	return nil
}
