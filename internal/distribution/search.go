package distribution

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/registry"
)

// SearchFilters are the filters of GET /images/search.
type SearchFilters struct {
	// MinStars keeps results with at least that many stars.
	MinStars int
	// Official and Automated, when not nil, keep the results whose flag
	// has that value.
	Official, Automated *bool
}

// Search queries a registry's /v1/search API, as dockerd: term is
// "[registry/]text", Docker Hub's index when no registry is named.
func (r *Registries) Search(ctx context.Context, term string, limit int, f SearchFilters, ac *registry.AuthConfig) ([]registry.SearchResult, error) {
	if limit == 0 {
		limit = 25
	}
	if limit < 1 || limit > 100 {
		return nil, fmt.Errorf("limit %d is outside the range of [1, 100]: %w", limit, errdefs.ErrInvalidArgument)
	}
	domain, text := dockerHub, term
	if i := strings.IndexRune(term, '/'); i > 0 {
		if first := term[:i]; strings.ContainsAny(first, ".:") || first == "localhost" {
			domain, text = first, term[i+1:]
		}
	}
	if text == "" {
		return nil, fmt.Errorf("search term is empty: %w", errdefs.ErrInvalidArgument)
	}
	ep, err := r.endpointFor(domain)
	if err != nil {
		return nil, err
	}
	// Docker Hub's index keeps library images under their short name.
	if domain == dockerHub {
		text = strings.TrimPrefix(text, "library/")
	}
	schemes := []string{"https"}
	if !ep.secure {
		schemes = append(schemes, "http")
	}
	client := &http.Client{Transport: ep.transport}
	var lastErr error
	for _, scheme := range schemes {
		u := url.URL{Scheme: scheme, Host: ep.host, Path: "/v1/search",
			RawQuery: url.Values{"q": {text}, "n": {strconv.Itoa(limit)}}.Encode()}
		results, err := searchOnce(ctx, client, u.String(), ac)
		if err == nil {
			return filterResults(results, f, limit), nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func searchOnce(ctx context.Context, client *http.Client, u string, ac *registry.AuthConfig) ([]registry.SearchResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if ac != nil && ac.Username != "" {
		req.SetBasicAuth(ac.Username, ac.Password)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("unexpected status code %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	var res registry.SearchResults
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return nil, fmt.Errorf("error decoding search results: %w", err)
	}
	return res.Results, nil
}

func filterResults(in []registry.SearchResult, f SearchFilters, limit int) []registry.SearchResult {
	out := []registry.SearchResult{}
	for _, r := range in {
		if r.StarCount < f.MinStars {
			continue
		}
		if f.Official != nil && r.IsOfficial != *f.Official {
			continue
		}
		if f.Automated != nil && r.IsAutomated != *f.Automated { //nolint:staticcheck // the API still filters on it
			continue
		}
		out = append(out, r)
		if len(out) == limit {
			break
		}
	}
	return out
}
