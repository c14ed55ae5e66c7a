package opts

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// VolumeSpec is a parsed -v value: [SOURCE:]TARGET[:MODE].
type VolumeSpec struct {
	Source, Target, Mode string
}

// IsBind reports whether the source is a host path rather than a volume
// name.
func (v VolumeSpec) IsBind() bool {
	return strings.HasPrefix(v.Source, "/") || strings.HasPrefix(v.Source, ".") || strings.HasPrefix(v.Source, "~")
}

func validVolumeMode(mode string) bool {
	for _, m := range strings.Split(mode, ",") {
		switch m {
		case "ro", "rw", "z", "Z", "nocopy", "shared", "rshared", "slave", "rslave", "private", "rprivate",
			"consistent", "cached", "delegated":
		default:
			return false
		}
	}
	return mode != ""
}

// ParseVolume parses a -v value.
func ParseVolume(spec string) (VolumeSpec, error) {
	parts := strings.Split(spec, ":")
	var v VolumeSpec
	switch len(parts) {
	case 1:
		v.Target = parts[0]
	case 2:
		if validVolumeMode(parts[1]) {
			v.Target, v.Mode = parts[0], parts[1]
		} else {
			v.Source, v.Target = parts[0], parts[1]
		}
	case 3:
		v.Source, v.Target, v.Mode = parts[0], parts[1], parts[2]
		if !validVolumeMode(v.Mode) {
			return v, fmt.Errorf("invalid mode: %s", v.Mode)
		}
	default:
		return v, fmt.Errorf("invalid spec: %s: too many colons", spec)
	}
	if v.Target == "" {
		return v, fmt.Errorf("invalid spec: %s: empty section between colons", spec)
	}
	if !filepath.IsAbs(v.Target) {
		return v, fmt.Errorf("invalid volume specification: '%s': invalid mount config for type \"volume\": invalid mount path: '%s' mount path must be absolute", spec, v.Target)
	}
	return v, nil
}

// ParsePlatform parses os[/arch[/variant]] (or a bare architecture) into
// an OCI platform with normalised names.
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(strings.ToLower(s), "/")
	var p ocispec.Platform
	switch len(parts) {
	case 1:
		if isOS(parts[0]) {
			p.OS, p.Architecture = parts[0], runtime.GOARCH
		} else {
			p.OS, p.Architecture = "linux", parts[0]
		}
	case 2, 3:
		p.OS, p.Architecture = parts[0], parts[1]
		if len(parts) == 3 {
			p.Variant = parts[2]
		}
	default:
		return p, fmt.Errorf("%q: unknown operating system or architecture: invalid argument", s)
	}
	if p.OS == "" || p.Architecture == "" {
		return p, fmt.Errorf("%q: unknown operating system or architecture: invalid argument", s)
	}
	switch p.Architecture {
	case "x86_64", "x86-64":
		p.Architecture = "amd64"
	case "aarch64":
		p.Architecture = "arm64"
		if p.Variant == "v8" {
			p.Variant = ""
		}
	case "i386", "i686":
		p.Architecture = "386"
	case "armhf":
		p.Architecture, p.Variant = "arm", "v7"
	}
	return p, nil
}

func isOS(s string) bool {
	switch s {
	case "linux", "windows", "darwin", "freebsd":
		return true
	}
	return false
}
