package registry

import (
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/registry"
)

// hubDomain is Docker Hub's domain in normalized references.
const hubDomain = "docker.io"

// Key returns the config.json key of a registry (a domain or a URL):
// IndexServer for Docker Hub, the host[:port] for any other registry.
func Key(domain string) string {
	host := convertToHostname(domain)
	switch host {
	case hubDomain, "index.docker.io", "":
		return IndexServer
	}
	return host
}

// Encode renders a as the X-Registry-Auth header value: base64url of its
// JSON.
func Encode(a registry.AuthConfig) (string, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return "", err
	}
	return base64.URLEncoding.EncodeToString(b), nil
}

// ImageAuth returns the X-Registry-Auth value for the registry hosting
// image, from the credentials of cli's config directory. A reference
// that does not parse gets no header (the daemon reports the reference).
func ImageAuth(cli *command.Cli, image string) (string, error) {
	ref, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return "", nil
	}
	return Encode(Open(cli.Options.ConfigDir, cli.Err()).Get(Key(reference.Domain(ref))))
}

// SearchAuth returns the X-Registry-Auth value for a search term: the
// registry is the term's first component when it looks like a host
// ("localhost", or with a dot or a port), else Docker Hub.
func SearchAuth(cli *command.Cli, term string) (string, error) {
	domain := hubDomain
	if first, _, ok := strings.Cut(term, "/"); ok && (first == "localhost" || strings.ContainsAny(first, ".:")) {
		domain = first
	}
	return Encode(Open(cli.Options.ConfigDir, cli.Err()).Get(Key(domain)))
}
