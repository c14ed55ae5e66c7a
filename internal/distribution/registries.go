// Package distribution is berthd's registry client: it pulls images from
// and pushes images to registries speaking the OCI distribution protocol
// (Docker Hub, distribution, ...), logs in, searches, and holds the
// registry configuration (mirrors, insecure registries, per-registry
// certificates). The protocol is go-containerregistry's; what berth adds
// is Docker's behaviour on top of it: endpoint selection, progress
// messages, verified downloads unpacked into the layer store, and the
// distribution metadata that lets pushes skip or mount blobs.
package distribution

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/moby/moby/api/types/registry"
)

// DefaultCertsDir holds one directory per registry ("host:port") with its
// CA certificates (*.crt) and client certificates (*.cert + *.key).
const DefaultCertsDir = "/etc/berth/certs.d"

// dockerHub is the domain of Docker Hub references; IndexName is how
// Docker names its index in configurations and /info.
const (
	dockerHub     = "docker.io"
	dockerHubHost = "index.docker.io"
	indexServer   = "https://index.docker.io/v1/"
)

// Config is the registry part of the daemon configuration.
type Config struct {
	// Mirrors are Docker Hub mirrors ("https://mirror.example:5000").
	Mirrors []string
	// Insecure are registries reached over HTTP or unverified TLS:
	// "host:port" entries or CIDRs.
	Insecure []string
	// CertsDir is where per-registry certificates are; "" means
	// DefaultCertsDir.
	CertsDir string
}

// Registries is the registry configuration in force.
type Registries struct {
	mirrors       []*url.URL
	insecureCIDRs []netip.Prefix
	insecureHosts []string
	certsDir      string
}

// defaultInsecureCIDRs are insecure whatever the configuration says, as in
// Docker: registries on the loopback.
var defaultInsecureCIDRs = []netip.Prefix{
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("127.0.0.0/8"),
}

// NewRegistries validates c as dockerd validates registry-mirrors and
// insecure-registries.
func NewRegistries(c Config) (*Registries, error) {
	r := &Registries{certsDir: c.CertsDir, insecureCIDRs: slices.Clone(defaultInsecureCIDRs)}
	if r.certsDir == "" {
		r.certsDir = DefaultCertsDir
	}
	for _, m := range c.Mirrors {
		u, err := validateMirror(m)
		if err != nil {
			return nil, err
		}
		r.mirrors = append(r.mirrors, u)
	}
	for _, entry := range c.Insecure {
		if strings.Contains(entry, "://") {
			return nil, fmt.Errorf("insecure registry %s should not contain '://': %w", entry, errdefs.ErrInvalidArgument)
		}
		if p, err := netip.ParsePrefix(entry); err == nil {
			p = p.Masked()
			if !slices.Contains(r.insecureCIDRs, p) {
				r.insecureCIDRs = append(r.insecureCIDRs, p)
			}
			continue
		}
		if err := validateIndexName(entry); err != nil {
			return nil, fmt.Errorf("insecure registry %s is not valid: %w", entry, err)
		}
		if entry == dockerHub || entry == dockerHubHost {
			return nil, fmt.Errorf("cannot mark the official registry %s insecure: %w", entry, errdefs.ErrInvalidArgument)
		}
		if !slices.Contains(r.insecureHosts, entry) {
			r.insecureHosts = append(r.insecureHosts, entry)
		}
	}
	return r, nil
}

func validateMirror(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("invalid mirror: %q is not a valid URI: %w", s, errdefs.ErrInvalidArgument)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("invalid mirror: unsupported scheme %q in %q: %w", u.Scheme, s, errdefs.ErrInvalidArgument)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("invalid mirror: path, query, or fragment at end of the URI %q: %w", s, errdefs.ErrInvalidArgument)
	}
	if u.User != nil {
		return nil, fmt.Errorf("invalid mirror: username/password not allowed in URI %q: %w", s, errdefs.ErrInvalidArgument)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("invalid mirror: no host in %q: %w", s, errdefs.ErrInvalidArgument)
	}
	u.Path = "/"
	return u, nil
}

func validateIndexName(s string) error {
	if s == "" || strings.ContainsAny(s, "/ ") || strings.HasPrefix(s, "-") || strings.HasSuffix(s, "-") {
		return fmt.Errorf("invalid index name (%s): %w", s, errdefs.ErrInvalidArgument)
	}
	return nil
}

// ServiceConfig is the registry configuration as /info shows it.
func (r *Registries) ServiceConfig() *registry.ServiceConfig {
	mirrors := make([]string, 0, len(r.mirrors))
	for _, m := range r.mirrors {
		mirrors = append(mirrors, m.String())
	}
	cfg := &registry.ServiceConfig{
		InsecureRegistryCIDRs: slices.Clone(r.insecureCIDRs),
		IndexConfigs: map[string]*registry.IndexInfo{
			dockerHub: {Name: dockerHub, Mirrors: mirrors, Secure: true, Official: true},
		},
		Mirrors: mirrors,
	}
	for _, h := range r.insecureHosts {
		cfg.IndexConfigs[h] = &registry.IndexInfo{Name: h, Mirrors: []string{}, Secure: false}
	}
	return cfg
}

// secure reports whether host ("name[:port]") must be reached over
// verified TLS: not when it is listed as insecure, or when one of its
// addresses is in an insecure CIDR.
func (r *Registries) secure(host string) bool {
	if slices.Contains(r.insecureHosts, host) {
		return false
	}
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.Trim(h, "[]")
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(h); err == nil {
		addrs = []netip.Addr{a}
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		addrs, _ = net.DefaultResolver.LookupNetIP(ctx, "ip", h)
		cancel()
	}
	for _, a := range addrs {
		a = a.Unmap()
		for _, p := range r.insecureCIDRs {
			if p.Contains(a) {
				return false
			}
		}
	}
	return true
}

// endpoint is one place a repository is reached at.
type endpoint struct {
	// host is the registry's "name[:port]".
	host   string
	secure bool
	mirror bool
	// transport carries the TLS configuration of host.
	transport http.RoundTripper
}

// registry returns the go-containerregistry registry of e.
func (e endpoint) registry() (name.Registry, error) {
	var opts []name.Option
	if !e.secure {
		opts = append(opts, name.Insecure)
	}
	return name.NewRegistry(e.host, opts...)
}

// repository returns path ("library/busybox") on e.
func (e endpoint) repository(path string) (name.Repository, error) {
	reg, err := e.registry()
	if err != nil {
		return name.Repository{}, err
	}
	return reg.Repo(path), nil
}

// hostOf returns the registry host references to domain go to.
func hostOf(domain string) string {
	if domain == dockerHub {
		return dockerHubHost
	}
	return domain
}

// pullEndpoints lists where ref is pulled from: Docker Hub's mirrors
// first, then the registry itself.
func (r *Registries) pullEndpoints(ref reference.Named) ([]endpoint, error) {
	var out []endpoint
	domain := reference.Domain(ref)
	if domain == dockerHub {
		for _, m := range r.mirrors {
			secure := m.Scheme == "https" && r.secure(m.Host)
			t, err := r.newTransport(m.Host, secure, m.Scheme == "https")
			if err != nil {
				return nil, err
			}
			out = append(out, endpoint{host: m.Host, secure: secure, mirror: true, transport: t})
		}
	}
	e, err := r.endpointFor(domain)
	if err != nil {
		return nil, err
	}
	return append(out, e), nil
}

// endpointFor is the registry of domain itself.
func (r *Registries) endpointFor(domain string) (endpoint, error) {
	host := hostOf(domain)
	secure := domain == dockerHub || r.secure(host)
	t, err := r.newTransport(host, secure, true)
	if err != nil {
		return endpoint{}, err
	}
	return endpoint{host: host, secure: secure, transport: t}, nil
}

// newTransport returns the HTTP transport for host: the CAs and client
// certificates of its certs.d directory, TLS verification unless the host
// is insecure. A secure host is always reached over HTTPS, so that a
// registry answering in plain HTTP gives Go's "http: server gave HTTP
// response to HTTPS client".
func (r *Registries) newTransport(host string, secure, tlsFirst bool) (http.RoundTripper, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if err := loadCertsDir(tlsCfg, filepath.Join(r.certsDir, host)); err != nil {
		return nil, err
	}
	if !secure {
		tlsCfg.InsecureSkipVerify = true
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = tlsCfg
	base.MaxIdleConnsPerHost = 16
	var t http.RoundTripper = base
	if secure && tlsFirst {
		t = &httpsOnly{host: host, inner: t}
	}
	return t, nil
}

// loadCertsDir adds the certificates of dir, Docker's certs.d layout: CA
// certificates "*.crt", client key pairs "NAME.cert" + "NAME.key".
func loadCertsDir(cfg *tls.Config, dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		switch {
		case strings.HasSuffix(e.Name(), ".crt"):
			if cfg.RootCAs == nil {
				if cfg.RootCAs, err = x509.SystemCertPool(); err != nil || cfg.RootCAs == nil {
					cfg.RootCAs = x509.NewCertPool()
				}
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if !cfg.RootCAs.AppendCertsFromPEM(data) {
				return fmt.Errorf("no certificate found in %s", path)
			}
		case strings.HasSuffix(e.Name(), ".cert"):
			keyPath := strings.TrimSuffix(path, ".cert") + ".key"
			if _, err := os.Stat(keyPath); err != nil {
				return fmt.Errorf("missing key %s for client certificate %s. CA certificates must use the extension .crt", filepath.Base(keyPath), e.Name())
			}
			pair, err := tls.LoadX509KeyPair(path, keyPath)
			if err != nil {
				return err
			}
			cfg.Certificates = append(cfg.Certificates, pair)
		case strings.HasSuffix(e.Name(), ".key"):
			certPath := strings.TrimSuffix(path, ".key") + ".cert"
			if _, err := os.Stat(certPath); err != nil {
				return fmt.Errorf("missing client certificate %s for key %s", filepath.Base(certPath), e.Name())
			}
		}
	}
	return nil
}

// httpsOnly upgrades plain HTTP requests to host to HTTPS:
// go-containerregistry tries HTTP on its own for private addresses, which
// Docker allows only for insecure registries.
type httpsOnly struct {
	host  string
	inner http.RoundTripper
}

func (h *httpsOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && req.URL.Host == h.host {
		req = req.Clone(req.Context())
		req.URL.Scheme = "https"
	}
	return h.inner.RoundTrip(req)
}
