package images

import (
	"context"
	"fmt"

	imagerouter "github.com/berth-dev/berth/internal/api/router/image"
	"github.com/berth-dev/berth/internal/distribution"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/registry"
)

// SearchImages searches a registry's index: Docker Hub's, or the registry
// the term starts with ("127.0.0.1:5000/busybox").
func (s *Service) SearchImages(ctx context.Context, term string, limit int, f imagerouter.SearchFilters, auth *registry.AuthConfig) ([]registry.SearchResult, error) {
	if s.dist == nil {
		return nil, fmt.Errorf("no registry client configured: %w", errdefs.ErrNotImplemented)
	}
	return s.dist.Registries().Search(ctx, term, limit, distribution.SearchFilters(f), auth)
}
