package httputil

import (
	"fmt"
	"regexp"
	goruntime "runtime"
	"strings"

	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var platformPart = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// knownOS are the operating systems a one-part platform may name.
var knownOS = map[string]bool{
	"aix": true, "android": true, "darwin": true, "dragonfly": true, "freebsd": true, "illumos": true, "ios": true,
	"js": true, "linux": true, "netbsd": true, "openbsd": true, "plan9": true, "solaris": true, "wasip1": true, "windows": true,
}

// ParsePlatform reads a platform as "os", "arch", "os/arch" or
// "os/arch/variant", normalizing common architecture names as containerd
// does (x86_64 is amd64, aarch64 is arm64).
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(strings.ToLower(s), "/")
	for _, p := range parts {
		if !platformPart.MatchString(p) {
			return ocispec.Platform{}, fmt.Errorf("%q: invalid platform component %q: %w", s, p, errdefs.ErrInvalidArgument)
		}
	}
	var p ocispec.Platform
	switch len(parts) {
	case 1:
		if knownOS[parts[0]] {
			p = ocispec.Platform{OS: parts[0], Architecture: goruntime.GOARCH}
		} else {
			p = ocispec.Platform{OS: "linux", Architecture: parts[0]}
		}
	case 2:
		p = ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	case 3:
		p = ocispec.Platform{OS: parts[0], Architecture: parts[1], Variant: parts[2]}
	default:
		return ocispec.Platform{}, fmt.Errorf("%q: cannot parse platform: too many components: %w", s, errdefs.ErrInvalidArgument)
	}
	switch p.Architecture {
	case "x86_64", "x86-64":
		p.Architecture = "amd64"
	case "aarch64":
		p.Architecture = "arm64"
	case "i386", "i686":
		p.Architecture = "386"
	case "armhf":
		p.Architecture, p.Variant = "arm", "v7"
	case "armel":
		p.Architecture, p.Variant = "arm", "v6"
	}
	return p, nil
}
