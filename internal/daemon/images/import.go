package images

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	goruntime "runtime"
	"time"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/go-archive/compression"
	eventtypes "github.com/moby/moby/api/types/events"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// imageConfig is the image JSON berth writes: the OCI config with Docker's
// extensions and the legacy fields of Docker's image JSON the OCI type
// lacks.
type imageConfig struct {
	dockerspec.DockerOCIImage
	configExtras
}

// configExtras are fields of Docker's image JSON outside the OCI config.
type configExtras struct {
	Comment       string `json:"comment,omitempty"`
	DockerVersion string `json:"docker_version,omitempty"`
}

func parseImage(raw []byte) (*imageConfig, error) {
	var c imageConfig
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// HostPlatform is the platform of images imported without one.
func HostPlatform() ocispec.Platform {
	p := ocispec.Platform{OS: "linux", Architecture: goruntime.GOARCH}
	if p.Architecture == "arm64" {
		p.Variant = "v8"
	}
	return p
}

// ImportImage registers the tar read from src (plain, gzip, bzip2, xz or
// zstd) as a one-layer image and tags it ref when ref is not nil, as
// dockerd's import: platform defaults to the host's, comment is the
// history comment, changes are Dockerfile instructions applied to the
// config (CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD,
// STOPSIGNAL, USER, VOLUME, WORKDIR).
func (s *Service) ImportImage(ctx context.Context, src io.Reader, ref reference.Named, platform *ocispec.Platform, comment string, changes []string) (digest.Digest, error) {
	p := HostPlatform()
	if platform != nil {
		p = *platform
	}
	if p.OS != "linux" {
		return "", fmt.Errorf("operating system is not supported: %w", errdefs.ErrInvalidArgument)
	}
	cfg, err := applyChanges(dockerspec.DockerOCIImageConfig{}, changes)
	if err != nil {
		return "", err
	}

	tar, err := compression.DecompressStream(src)
	if err != nil {
		return "", err
	}
	defer tar.Close()
	l, err := s.layers.Register(ctx, tar, "")
	if err != nil {
		return "", err
	}

	created := time.Now().UTC()
	raw, err := json.Marshal(imageConfig{
		DockerOCIImage: dockerspec.DockerOCIImage{
			Image: ocispec.Image{
				Created:  &created,
				Platform: p,
				RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{l.DiffID()}},
				History:  []ocispec.History{{Created: &created, Comment: comment}},
			},
			Config: cfg,
		},
		configExtras: configExtras{Comment: comment},
	})
	if err != nil {
		_ = s.layers.Release(l.ChainID())
		return "", err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	id, err := s.createLocked(raw, "")
	if err != nil {
		return "", err
	}
	s.emit(eventtypes.ActionImport, id, "")
	if ref != nil {
		if err := s.tagLocked(id, ref); err != nil {
			return "", err
		}
	}
	return id, nil
}
