package container

import (
	"context"
	"fmt"
	"net/http"

	"github.com/berth-dev/berth/internal/api/httputil"
	"github.com/berth-dev/berth/internal/api/server"
	"github.com/berth-dev/berth/internal/daemon/containers"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	containertypes "github.com/moby/moby/api/types/container"
)

// export answers GET /containers/{id}/export with a tar of the
// container's file system.
func (r *Router) export(ctx context.Context, w http.ResponseWriter, _ *http.Request, vars map[string]string) error {
	w.Header().Set("Content-Type", "application/x-tar")
	out := &httputil.RawStreamWriter{W: w}
	err := r.Backend.Export(ctx, vars["name"], out)
	if err != nil && out.Started {
		httputil.Abort(w)
		return nil
	}
	return err
}

// commit answers POST /commit?container=&repo=&tag=&comment=&author=
// &pause=&changes= with an optional container configuration as body.
func (r *Router) commit(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := req.ParseForm(); err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	var cfg *containertypes.Config
	var body containertypes.Config
	if req.ContentLength != 0 {
		if err := httputil.ReadJSON(req, &body); err != nil {
			return err
		}
		cfg = &body
	}
	o := containers.CommitOpts{
		Author: req.Form.Get("author"), Comment: req.Form.Get("comment"),
		Changes: req.Form["changes"], Config: cfg, Pause: true,
	}
	if v := req.Form.Get("pause"); v != "" {
		o.Pause = httputil.BoolValue(req, "pause")
	} else if v := server.APIVersion(ctx); v != "" && server.CompareVersions(v, "1.13") < 0 {
		o.Pause = false
	}
	if repo := req.Form.Get("repo"); repo != "" {
		ref, err := reference.ParseNormalizedNamed(repo)
		if err != nil {
			return errdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
		if _, ok := ref.(reference.Canonical); ok {
			return errdefs.ErrInvalidArgument.WithMessage("cannot commit to digest reference")
		}
		if tag := req.Form.Get("tag"); tag != "" {
			if ref, err = reference.WithTag(reference.TrimNamed(ref), tag); err != nil {
				return errdefs.ErrInvalidArgument.WithMessage(err.Error())
			}
		}
		tagged, ok := reference.TagNameOnly(ref).(reference.NamedTagged)
		if !ok {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid reference %q", repo))
		}
		o.Ref = tagged
	} else if req.Form.Get("tag") != "" {
		return errdefs.ErrInvalidArgument.WithMessage("tag cannot be set without repo")
	}
	id, err := r.Backend.Commit(ctx, req.Form.Get("container"), o)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusCreated, containertypes.CommitResponse{ID: id.String()})
	return nil
}
