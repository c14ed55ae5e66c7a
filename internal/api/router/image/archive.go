package image

import (
	"context"
	"io"
	"net/http"

	"github.com/berth-dev/berth/internal/api/httputil"
	"github.com/berth-dev/berth/internal/api/server"
	imagetypes "github.com/moby/moby/api/types/image"
)

// ArchiveBackend is what the save, load and prune routes need.
type ArchiveBackend interface {
	// SaveImages writes the archive of the images names refer to to out;
	// an unknown name fails before anything is written.
	SaveImages(ctx context.Context, names []string, out io.Writer) error
	// LoadImage stores the images of the archive read from src, writing
	// JSON messages to out ("Loaded image: ...", progress unless quiet).
	LoadImage(ctx context.Context, src io.Reader, out io.Writer, quiet bool) error
	// ImagesPrune deletes unused images as the filters select them.
	ImagesPrune(ctx context.Context, filters httputil.Filters) (*imagetypes.PruneReport, error)
}

// getImagesGet answers GET /images/get?names=a&names=b and
// GET /images/{name}/get with an image archive.
func (r *Router) getImagesGet(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := parseForm(req); err != nil {
		return err
	}
	names := req.Form["names"]
	if n, ok := vars["name"]; ok {
		names = []string{n}
	}
	w.Header().Set("Content-Type", "application/x-tar")
	out := &httputil.RawStreamWriter{W: w}
	err := r.Backend.SaveImages(ctx, names, out)
	if err != nil && out.Started {
		httputil.Abort(w)
		return nil
	}
	return err
}

// postImagesLoad answers POST /images/load?quiet=: the body is an image
// archive, the answer dockerd's JSON message stream, errors included.
func (r *Router) postImagesLoad(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := parseForm(req); err != nil {
		return err
	}
	quiet := true
	if v := req.Form.Get("quiet"); v != "" {
		quiet = boolValue(req, "quiet")
	}
	w.Header().Set("Content-Type", "application/json")
	out := &httputil.JSONStream{W: w}
	if err := r.Backend.LoadImage(ctx, req.Body, out, quiet); err != nil {
		out.Error(err.Error(), 0)
	}
	return nil
}

// postImagesPrune answers POST /images/prune?filters=.
func (r *Router) postImagesPrune(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := parseForm(req); err != nil {
		return err
	}
	f, err := httputil.ParseFilters(req.Form.Get("filters"))
	if err != nil {
		return err
	}
	rep, err := r.Backend.ImagesPrune(ctx, f)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, rep)
	return nil
}
