// Package image routes the image endpoints of the Docker Engine API:
// create (import; pull answers through the backend), list, inspect,
// history, tag and delete. API-version differences are handled here.
package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/api/httputil"
	"github.com/berth-dev/berth/internal/api/server"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Router serves the image routes.
type Router struct {
	Backend Backend
	// HTTPClient fetches import sources given by URL; nil means
	// http.DefaultClient.
	HTTPClient *http.Client
}

// Routes implements server.Router. Image names may contain slashes and a
// registry port ("127.0.0.1:5000/a/b:tag"), hence the greedy {name:.*}.
func (r *Router) Routes() []server.Route {
	return []server.Route{
		{Method: http.MethodGet, Path: "/images/json", Handler: r.getImagesJSON},
		{Method: http.MethodGet, Path: "/images/get", Handler: r.getImagesGet},
		{Method: http.MethodGet, Path: "/images/{name:.*}/get", Handler: r.getImagesGet},
		{Method: http.MethodPost, Path: "/images/load", Handler: r.postImagesLoad},
		{Method: http.MethodPost, Path: "/images/prune", Handler: r.postImagesPrune},
		{Method: http.MethodGet, Path: "/images/{name:.*}/history", Handler: r.getImagesHistory},
		{Method: http.MethodGet, Path: "/images/{name:.*}/json", Handler: r.getImagesByName},
		{Method: http.MethodPost, Path: "/images/create", Handler: r.postImagesCreate},
		{Method: http.MethodPost, Path: "/images/{name:.*}/tag", Handler: r.postImagesTag},
		{Method: http.MethodPost, Path: "/images/{name:.*}/push", Handler: r.postImagesPush},
		{Method: http.MethodGet, Path: "/images/search", Handler: r.getImagesSearch},
		{Method: http.MethodDelete, Path: "/images/{name:.*}", Handler: r.deleteImages},
	}
}

func invalid(err error) error {
	if err == nil || errdefs.IsInvalidArgument(err) {
		return err
	}
	return fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
}

func parseForm(req *http.Request) error {
	if err := req.ParseForm(); err != nil {
		return invalid(err)
	}
	return nil
}

// boolValue reads a boolean query parameter as dockerd: anything but
// "", "0", "no", "false" and "none" is true.
func boolValue(req *http.Request, key string) bool {
	switch strings.ToLower(strings.TrimSpace(req.FormValue(key))) {
	case "", "0", "no", "false", "none":
		return false
	}
	return true
}

func versionBefore(ctx context.Context, v string) bool {
	return server.CompareVersions(server.APIVersion(ctx), v) < 0
}

// repoTagReference builds the reference of ?repo=&tag= ("latest" when no
// tag is given); nil when repo is empty.
func repoTagReference(repo, tag string) (reference.NamedTagged, error) {
	if repo == "" {
		return nil, nil
	}
	ref, err := reference.ParseNormalizedNamed(repo)
	if err != nil {
		return nil, err
	}
	if _, ok := ref.(reference.Digested); ok {
		return nil, errors.New("cannot import digest reference")
	}
	if tag != "" {
		return reference.WithTag(ref, tag)
	}
	tagged, ok := reference.TagNameOnly(ref).(reference.NamedTagged)
	if !ok {
		return nil, fmt.Errorf("unexpected reference: %q", ref.String())
	}
	return tagged, nil
}

// postImagesCreate pulls (?fromImage=) or imports (?fromSrc=- or a URL).
func (r *Router) postImagesCreate(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := parseForm(req); err != nil {
		return err
	}
	var platform *ocispec.Platform
	if p := req.Form.Get("platform"); p != "" && !versionBefore(ctx, "1.32") {
		pl, err := parsePlatform(p)
		if err != nil {
			return err
		}
		platform = &pl
	}
	w.Header().Set("Content-Type", "application/json")
	out := &httputil.JSONStream{W: w}

	var err error
	if img := req.Form.Get("fromImage"); img != "" {
		err = r.pull(ctx, req, img, req.Form.Get("tag"), platform, out)
	} else {
		err = r.importImage(ctx, req, platform, out)
	}
	if err != nil {
		if !out.Started {
			return err
		}
		out.Error(err.Error(), 0)
	}
	return nil
}

func (r *Router) pull(ctx context.Context, req *http.Request, img, tag string, platform *ocispec.Platform, out *httputil.JSONStream) error {
	// "pull -a" may send a name with a trailing ":".
	ref, err := reference.ParseNormalizedNamed(strings.TrimSuffix(img, ":"))
	if err != nil {
		return invalid(err)
	}
	if tag != "" {
		if d, derr := digest.Parse(tag); derr == nil {
			ref, err = reference.WithDigest(reference.TrimNamed(ref), d)
		} else {
			ref, err = reference.WithTag(ref, tag)
		}
		if err != nil {
			return invalid(err)
		}
	}
	if reference.FamiliarName(ref) == "scratch" {
		return fmt.Errorf("'scratch' is a reserved name: %w", errdefs.ErrPermissionDenied)
	}
	auth, err := registryAuth(req)
	if err != nil {
		return err
	}
	return r.Backend.PullImage(ctx, ref, platform, auth, out)
}

func (r *Router) importImage(ctx context.Context, req *http.Request, platform *ocispec.Platform, out *httputil.JSONStream) error {
	src := req.Form.Get("fromSrc")
	ref, err := repoTagReference(req.Form.Get("repo"), req.Form.Get("tag"))
	if err != nil {
		return invalid(err)
	}
	comment := req.Form.Get("message")
	if comment == "" {
		comment = "Imported from " + src
	}
	var layer io.Reader = req.Body
	if src != "-" {
		if src == "" {
			return invalid(errors.New("fromImage or fromSrc must be given"))
		}
		if !strings.Contains(src, "://") {
			src = "http://" + src
		}
		u, err := url.Parse(src)
		if err != nil {
			return invalid(err)
		}
		resp, err := r.fetch(ctx, u.String())
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		out.Status("Downloading from " + u.String())
		layer = &httputil.ProgressReader{R: resp.Body, Out: out, Action: "Importing", Total: max(resp.ContentLength, 0), Start: time.Now()}
	}
	id, err := r.Backend.ImportImage(ctx, layer, ref, platform, comment, req.Form["changes"])
	if err != nil {
		return err
	}
	out.Status(id.String())
	return nil
}

// fetch GETs an import source; error statuses become errors classed as
// dockerd classes them.
func (r *Router) fetch(ctx context.Context, address string) (*http.Response, error) {
	client := r.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, address, nil)
	if err != nil {
		return nil, invalid(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < http.StatusBadRequest {
		return resp, nil
	}
	defer resp.Body.Close()
	msg := fmt.Sprintf("failed to GET %s with status %s", address, resp.Status)
	if body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024)); len(strings.TrimSpace(string(body))) > 0 {
		msg += ": " + strings.TrimSpace(string(body))
	}
	switch resp.StatusCode {
	case http.StatusNotFound:
		return nil, fmt.Errorf("%s: %w", msg, errdefs.ErrNotFound)
	case http.StatusBadRequest:
		return nil, fmt.Errorf("%s: %w", msg, errdefs.ErrInvalidArgument)
	case http.StatusUnauthorized:
		return nil, fmt.Errorf("%s: %w", msg, errdefs.ErrUnauthenticated)
	case http.StatusForbidden:
		return nil, fmt.Errorf("%s: %w", msg, errdefs.ErrPermissionDenied)
	}
	return nil, errors.New(msg)
}

func (r *Router) getImagesJSON(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := parseForm(req); err != nil {
		return err
	}
	f, err := httputil.ParseFilters(req.Form.Get("filters"))
	if err != nil {
		return err
	}
	images, err := r.Backend.Images(ctx, ListOptions{
		All:        boolValue(req, "all"),
		Filters:    f,
		SharedSize: !versionBefore(ctx, "1.42") && boolValue(req, "shared-size"),
	})
	if err != nil {
		return err
	}
	useNone := versionBefore(ctx, "1.43")
	noContainers := versionBefore(ctx, "1.51")
	for i := range images {
		img := &images[i]
		switch {
		case useNone && len(img.RepoTags) == 0 && len(img.RepoDigests) == 0:
			img.RepoTags = []string{"<none>:<none>"}
			img.RepoDigests = []string{"<none>@<none>"}
		case !useNone:
			if img.RepoTags == nil {
				img.RepoTags = []string{}
			}
			if img.RepoDigests == nil {
				img.RepoDigests = []string{}
			}
		}
		if noContainers {
			img.Containers = -1
		}
	}
	if versionBefore(ctx, "1.44") {
		out := make([]map[string]any, len(images))
		for i := range images {
			if out[i], err = withExtraFields(images[i], map[string]any{"VirtualSize": images[i].Size}); err != nil {
				return err
			}
		}
		server.WriteJSON(w, http.StatusOK, out)
		return nil
	}
	if images == nil {
		server.WriteJSON(w, http.StatusOK, []any{})
		return nil
	}
	server.WriteJSON(w, http.StatusOK, images)
	return nil
}

// legacyConfigV149 are the image Config fields API 1.49 and older always
// carry (container.Config fields images no longer have).
var legacyConfigV149 = map[string]any{
	"AttachStderr": false, "AttachStdin": false, "AttachStdout": false, "Cmd": nil, "Domainname": "",
	"Entrypoint": nil, "Env": nil, "Hostname": "", "Image": "", "Labels": nil, "OnBuild": nil,
	"OpenStdin": false, "StdinOnce": false, "Tty": false, "User": "", "Volumes": nil, "WorkingDir": "",
}

// legacyConfigV150 are the image Config fields APIs 1.50 and 1.51 always
// carry.
var legacyConfigV150 = map[string]any{
	"Cmd": nil, "Entrypoint": nil, "Env": nil, "Labels": nil, "OnBuild": nil, "User": "", "Volumes": nil, "WorkingDir": "",
}

func (r *Router) getImagesByName(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := parseForm(req); err != nil {
		return err
	}
	data, err := r.Backend.ImageInspect(ctx, vars["name"])
	if err != nil {
		return err
	}
	resp := data.InspectResponse
	if resp.RepoTags == nil {
		resp.RepoTags = []string{}
	}
	if resp.RepoDigests == nil {
		resp.RepoDigests = []string{}
	}
	extra := map[string]any{}
	if versionBefore(ctx, "1.44") {
		extra["VirtualSize"] = resp.Size
		if resp.Created == "" {
			resp.Created = time.Time{}.Format(time.RFC3339Nano)
		}
	}
	if versionBefore(ctx, "1.45") {
		extra["Container"] = ""
		extra["ContainerConfig"] = legacyConfigV149
	}
	if versionBefore(ctx, "1.48") {
		resp.Descriptor = nil
	}
	if versionBefore(ctx, "1.52") {
		extra["Parent"] = data.Parent
		extra["Comment"] = resp.Comment
		extra["DockerVersion"] = data.DockerVersion
		extra["Author"] = resp.Author
		if versionBefore(ctx, "1.50") {
			extra["Config"] = legacyConfigV149
		} else {
			extra["Config"] = legacyConfigV150
		}
	} else {
		if data.Parent != "" {
			extra["Parent"] = data.Parent
		}
		if data.DockerVersion != "" {
			extra["DockerVersion"] = data.DockerVersion
		}
	}
	if len(extra) == 0 {
		server.WriteJSON(w, http.StatusOK, resp)
		return nil
	}
	out, err := withExtraFields(resp, extra)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (r *Router) getImagesHistory(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := parseForm(req); err != nil {
		return err
	}
	history, err := r.Backend.ImageHistory(ctx, vars["name"])
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, history)
	return nil
}

func (r *Router) postImagesTag(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := parseForm(req); err != nil {
		return err
	}
	ref, err := repoTagReference(req.Form.Get("repo"), req.Form.Get("tag"))
	if err != nil {
		return invalid(err)
	}
	if ref == nil {
		return invalid(errors.New("repository name must have at least one component"))
	}
	if reference.FamiliarName(ref) == string(digest.Canonical) {
		return invalid(errors.New("refusing to create an ambiguous tag using digest algorithm as name"))
	}
	id, err := r.Backend.ResolveImageID(ctx, vars["name"])
	if err != nil {
		return err
	}
	if err := r.Backend.TagImage(ctx, id, ref); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (r *Router) deleteImages(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := parseForm(req); err != nil {
		return err
	}
	name := vars["name"]
	if strings.TrimSpace(name) == "" {
		return invalid(errors.New("image name cannot be blank"))
	}
	if len(req.Form["platforms"]) > 0 && !versionBefore(ctx, "1.50") {
		return fmt.Errorf("deleting single platforms of an image is not supported: %w", errdefs.ErrNotImplemented)
	}
	list, err := r.Backend.ImageDelete(ctx, name, boolValue(req, "force"), !boolValue(req, "noprune"))
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, list)
	return nil
}
