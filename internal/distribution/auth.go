package distribution

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/moby/moby/api/types/registry"
)

// authenticator turns the credentials of X-Registry-Auth or POST /auth
// into go-containerregistry's; none means anonymous.
func authenticator(ac *registry.AuthConfig) authn.Authenticator {
	if ac == nil {
		return authn.Anonymous
	}
	cfg := authn.AuthConfig{
		Username: ac.Username, Password: ac.Password, Auth: ac.Auth,
		IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken,
	}
	if cfg == (authn.AuthConfig{}) {
		return authn.Anonymous
	}
	return authn.FromConfig(cfg)
}

// classed is an error with its own message that errors.Is matches
// against an errdefs class.
type classed struct {
	msg   string
	class error
}

func (c *classed) Error() string { return c.msg }
func (c *classed) Unwrap() error { return c.class }

// client returns an HTTP client authenticated for scopes of repo on e:
// the registry's challenge answered with Basic or Bearer credentials.
func (e endpoint) client(ctx context.Context, repo name.Repository, auth authn.Authenticator, scopes ...string) (*http.Client, error) {
	t, err := transport.NewWithContext(ctx, repo.Registry, auth, e.transport, scopes)
	if err != nil {
		return nil, asRegistryError(err)
	}
	return &http.Client{Transport: t}, nil
}

// loginDomain is the registry a login's server address names: Docker
// Hub for "" and Docker's index URL, else the host of the address.
func loginDomain(addr string) string {
	addr = strings.TrimSpace(addr)
	if addr == "" || addr == indexServer || addr == dockerHub || addr == dockerHubHost ||
		strings.HasPrefix(addr, "https://index.docker.io/") || strings.HasPrefix(addr, "https://registry-1.docker.io/") {
		return dockerHub
	}
	addr = strings.TrimPrefix(strings.TrimPrefix(addr, "https://"), "http://")
	host, _, _ := strings.Cut(addr, "/")
	return host
}

// Login checks credentials against a registry as dockerd's POST /auth:
// ping /v2/, answer its challenge, and GET /v2/ with the result. Nothing
// is stored. The status is "Login Succeeded".
func (r *Registries) Login(ctx context.Context, ac registry.AuthConfig) (string, error) {
	domain := loginDomain(ac.ServerAddress)
	if err := validateIndexName(domain); err != nil {
		return "", err
	}
	ep, err := r.endpointFor(domain)
	if err != nil {
		return "", err
	}
	reg, err := ep.registry()
	if err != nil {
		return "", fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	}
	ch, err := transport.Ping(ctx, reg, ep.transport)
	if err != nil {
		return "", asRegistryError(err)
	}
	scheme := "https"
	if ch.Insecure {
		scheme = "http"
	}
	endpointURL := scheme + "://" + reg.RegistryStr() + "/v2/"
	t, err := transport.NewWithContext(ctx, reg, authenticator(&ac), ep.transport, nil)
	if err != nil {
		err = asRegistryError(err)
		var re *registryError
		if errors.As(err, &re) && (re.status == http.StatusUnauthorized || re.status == http.StatusForbidden) {
			return "", &classed{msg: fmt.Sprintf("Get %q: %s", endpointURL, re.msg), class: errdefs.ErrUnauthenticated}
		}
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpointURL, nil)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{Transport: t}).Do(req)
	if err != nil {
		return "", asRegistryError(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode == http.StatusOK {
		return "Login Succeeded", nil
	}
	msg := fmt.Sprintf("login attempt to %s failed with status: %d %s", endpointURL, resp.StatusCode, http.StatusText(resp.StatusCode))
	return "", &classed{msg: msg, class: errdefs.ErrUnauthenticated}
}

// path is a reference's repository path on its registry
// ("library/busybox").
func path(ref reference.Named) string { return reference.Path(ref) }
