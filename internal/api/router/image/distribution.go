package image

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/berth-dev/berth/internal/api/httputil"
	"github.com/berth-dev/berth/internal/api/server"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/pkg/authconfig"
	"github.com/moby/moby/api/types/registry"
)

// SearchFilters are the filters of GET /images/search.
type SearchFilters struct {
	// MinStars keeps the results with at least that many stars.
	MinStars int
	// Official and Automated, when not nil, keep the results whose flag
	// has that value.
	Official, Automated *bool
}

// registryAuth decodes the X-Registry-Auth header (base64url JSON of
// registry.AuthConfig); nil when the request carries none.
func registryAuth(req *http.Request) (*registry.AuthConfig, error) {
	h := req.Header.Get(registry.AuthHeader)
	if h == "" {
		return nil, nil
	}
	ac, err := authconfig.Decode(h)
	if err != nil {
		return nil, invalid(err)
	}
	return ac, nil
}

// postImagesPush pushes an image, or every tag of a repository when
// ?tag= is empty (docker push -a).
func (r *Router) postImagesPush(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := parseForm(req); err != nil {
		return err
	}
	auth, err := registryAuth(req)
	if err != nil {
		return err
	}
	ref, err := reference.ParseNormalizedNamed(vars["name"])
	if err != nil {
		return invalid(err)
	}
	if tag := req.Form.Get("tag"); tag != "" {
		if ref, err = reference.WithTag(reference.TrimNamed(ref), tag); err != nil {
			return invalid(err)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	out := &httputil.JSONStream{W: w}
	if err := r.Backend.PushImage(ctx, ref, auth, out); err != nil {
		if !out.Started {
			return err
		}
		out.Error(err.Error(), 0)
	}
	return nil
}

// getImagesSearch searches a registry's index (Docker Hub's by default).
func (r *Router) getImagesSearch(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := parseForm(req); err != nil {
		return err
	}
	auth, err := registryAuth(req)
	if err != nil {
		return err
	}
	limit := 0
	if s := req.Form.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil {
			return invalid(fmt.Errorf("invalid limit %q: %w", s, err))
		}
	}
	f, err := httputil.ParseFilters(req.Form.Get("filters"))
	if err != nil {
		return err
	}
	sf, err := searchFilters(f)
	if err != nil {
		return err
	}
	results, err := r.Backend.SearchImages(ctx, req.Form.Get("term"), limit, sf, auth)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, results)
	return nil
}

// searchFilters reads the stars, is-official and is-automated filters
// with dockerd's validation and wording.
func searchFilters(f httputil.Filters) (SearchFilters, error) {
	var sf SearchFilters
	if err := f.Validate("stars", "is-official", "is-automated"); err != nil {
		return sf, err
	}
	err := f.WalkValues("stars", func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return invalid(fmt.Errorf("invalid filter 'stars=%s'", v))
		}
		sf.MinStars = max(sf.MinStars, n)
		return nil
	})
	if err != nil {
		return sf, err
	}
	for key, dst := range map[string]**bool{"is-official": &sf.Official, "is-automated": &sf.Automated} {
		if !f.Contains(key) {
			continue
		}
		b, err := f.GetBoolOrDefault(key, false)
		if err != nil {
			return sf, err
		}
		*dst = &b
	}
	return sf, nil
}
