// Package build routes POST /build (the classic builder's API) and POST
// /build/prune.
package build

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/api/httputil"
	"github.com/berth-dev/berth/internal/api/server"
	"github.com/berth-dev/berth/internal/builder"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	buildtypes "github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/registry"
	"github.com/opencontainers/go-digest"
)

// Backend is what the build routes need.
type Backend interface {
	Build(ctx context.Context, src io.Reader, o builder.Options, out io.Writer) (digest.Digest, error)
	PruneCache(ctx context.Context) (*buildtypes.CachePruneReport, error)
	// HaveContextFiles tells which files of earlier contexts berthd
	// keeps, by digest.
	HaveContextFiles(ctx context.Context, ds []digest.Digest) []digest.Digest
}

// Router serves the build routes.
type Router struct {
	Backend Backend
}

// Routes implements server.Router.
func (r *Router) Routes() []server.Route {
	return []server.Route{
		{Method: http.MethodPost, Path: "/build", Handler: r.postBuild},
		{Method: http.MethodPost, Path: "/build/prune", Handler: r.postPrune},
		{Method: http.MethodPost, Path: "/build/context/have", Handler: r.postContextHave},
	}
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
}

// options reads the query of POST /build.
func options(req *http.Request) (builder.Options, error) {
	o := builder.Options{
		Dockerfile:  req.Form.Get("dockerfile"),
		NoCache:     httputil.BoolValue(req, "nocache"),
		Pull:        httputil.BoolValue(req, "pull"),
		Quiet:       httputil.BoolValue(req, "q"),
		Remove:      req.Form.Get("rm") == "" || httputil.BoolValue(req, "rm"),
		ForceRemove: httputil.BoolValue(req, "forcerm"),
		NetworkMode: req.Form.Get("networkmode"),
		Target:      req.Form.Get("target"),
		Squash:      httputil.BoolValue(req, "squash"),
		ExtraHosts:  req.Form["extrahosts"],
	}
	if v := req.Form.Get("version"); v != "" && v != "1" {
		return o, invalid("unsupported builder version %q: berth has the classic builder only (version 1)", v)
	}
	if r := req.Form.Get("remote"); r != "" {
		if !strings.HasPrefix(r, "http://") && !strings.HasPrefix(r, "https://") {
			return o, invalid("remote context %q: only http:// and https:// URLs (a tar archive or a Dockerfile) are supported; git repositories are not", r)
		}
		o.Remote = r
	}
	for _, t := range req.Form["t"] {
		ref, err := reference.ParseNormalizedNamed(t)
		if err != nil {
			return o, invalid("invalid reference format: %v", err)
		}
		if _, ok := ref.(reference.Digested); ok {
			return o, invalid("invalid reference format: tags cannot carry a digest")
		}
		o.Tags = append(o.Tags, reference.TagNameOnly(ref))
	}
	if s := req.Form.Get("buildargs"); s != "" {
		if err := json.Unmarshal([]byte(s), &o.BuildArgs); err != nil {
			return o, invalid("invalid buildargs: %v", err)
		}
	}
	if s := req.Form.Get("labels"); s != "" {
		if err := json.Unmarshal([]byte(s), &o.Labels); err != nil {
			return o, invalid("invalid labels: %v", err)
		}
	}
	if s := req.Form.Get("cachefrom"); s != "" {
		if err := json.Unmarshal([]byte(s), &o.CacheFrom); err != nil {
			return o, invalid("invalid cachefrom: %v", err)
		}
	}
	if s := req.Form.Get("platform"); s != "" {
		p, err := httputil.ParsePlatform(s)
		if err != nil {
			return o, err
		}
		o.Platform = &p
	}
	ints := map[string]*int64{
		"memory": &o.Resources.Memory, "memswap": &o.Resources.MemorySwap, "cpushares": &o.Resources.CPUShares,
		"cpuperiod": &o.Resources.CPUPeriod, "cpuquota": &o.Resources.CPUQuota,
	}
	for k, p := range ints {
		if v := req.Form.Get(k); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return o, invalid("invalid value for %s: %q", k, v)
			}
			*p = n
		}
	}
	if h := req.Header.Get("X-Registry-Config"); h != "" {
		auths, err := registryConfig(h)
		if err != nil {
			return o, err
		}
		o.AuthConfigs = auths
	}
	o.Resources.CpusetCpus = req.Form.Get("cpusetcpus")
	o.Resources.CpusetMems = req.Form.Get("cpusetmems")
	return o, nil
}

func (r *Router) postBuild(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := req.ParseForm(); err != nil {
		return invalid("%v", err)
	}
	o, err := options(req)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	out := &httputil.JSONStream{W: w}
	_, err = r.Backend.Build(ctx, req.Body, o, out)
	if err == nil {
		return nil
	}
	if !out.Started {
		return err
	}
	// Once the stream started, the error goes into it; the docker CLI
	// exits with its code.
	out.Error(server.ErrorMessage(err), builder.ExitCode(err))
	return nil
}

func (r *Router) postPrune(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	rep, err := r.Backend.PruneCache(ctx)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, rep)
	return nil
}

// registryConfig decodes X-Registry-Config: the client's credentials for
// every registry it knows, base64 JSON keyed by registry.
func registryConfig(h string) (map[string]registry.AuthConfig, error) {
	raw, err := base64.URLEncoding.DecodeString(h)
	if err != nil {
		if raw, err = base64.StdEncoding.DecodeString(h); err != nil {
			return nil, invalid("invalid X-Registry-Config header: %v", err)
		}
	}
	var auths map[string]registry.AuthConfig
	if err := json.Unmarshal(raw, &auths); err != nil {
		return nil, invalid("invalid X-Registry-Config header: %v", err)
	}
	return auths, nil
}

// ContextHave is the body of POST /build/context/have, a berth extension:
// the digests of the files of a context the client is about to send, and
// in the answer those berthd keeps. The client then sends each of those
// as a stub entry (size 0, PAX records BERTH.digest and BERTH.size).
type ContextHave struct {
	Digests []digest.Digest `json:"Digests"`
}

func (r *Router) postContextHave(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	var in ContextHave
	if err := httputil.ReadJSON(req, &in); err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, ContextHave{Digests: r.Backend.HaveContextFiles(ctx, in.Digests)})
	return nil
}
