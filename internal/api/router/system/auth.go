package system

import (
	"context"
	"fmt"
	"net/http"

	"github.com/berth-dev/berth/internal/api/server"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/authconfig"
	"github.com/moby/moby/api/types/registry"
)

// postAuth checks the credentials of the body against a registry; nothing
// is stored daemon-side.
func (r *Router) postAuth(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	ac, err := authconfig.DecodeRequestBody(req.Body)
	if err != nil {
		return fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	}
	status, err := r.Backend.AuthenticateToRegistry(ctx, ac)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, registry.AuthResponse{Status: status})
	return nil
}
