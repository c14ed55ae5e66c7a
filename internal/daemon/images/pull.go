package images

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/berth-dev/berth/internal/distribution"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	eventtypes "github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PullImage pulls ref from its registry (Docker Hub's mirrors first for
// Docker Hub images), writing Docker's progress messages to out. A
// reference without tag or digest pulls every tag of the repository.
func (s *Service) PullImage(ctx context.Context, ref reference.Named, platform *ocispec.Platform, auth *registry.AuthConfig, out io.Writer) error {
	if s.dist == nil {
		return fmt.Errorf("cannot pull %s: no registry client configured: %w", reference.FamiliarString(ref), errdefs.ErrNotImplemented)
	}
	return s.dist.Pull(ctx, ref, distribution.PullOptions{
		Platform: platform, Host: HostPlatform(), Auth: auth, Progress: distribution.NewProgress(out),
	}, pulled{s})
}

// pulled is where the registry client registers what it pulled.
type pulled struct{ s *Service }

// HasTop implements distribution.Images.
func (p pulled) HasTop(chain digest.Digest) bool { return p.s.HasTopLayer(chain) }

// HasImage implements distribution.Images.
func (p pulled) HasImage(id digest.Digest) bool {
	_, err := p.s.images.Get(id)
	return err == nil
}

// HasTopLayer reports whether an image has the layer chain as its top
// layer (and so holds a reference on it).
func (s *Service) HasTopLayer(chain digest.Digest) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.topHolders(chain) > 0
}

// CommitPulled implements distribution.Images: the image is created (or
// found), ref is pointed at it, and canonical is recorded as one of its
// repository digests.
func (p pulled) CommitPulled(rawConfig []byte, ref reference.Named, canonical reference.Canonical, heldTop bool) (bool, error) {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	id := digest.SHA256.FromBytes(rawConfig)
	_, err := s.images.Get(id)
	updated := err != nil
	if heldTop {
		if _, err := s.createLocked(rawConfig, ""); err != nil {
			return false, err
		}
	} else {
		cfg, err := parseImage(rawConfig)
		if err != nil {
			return false, err
		}
		// The pull skipped every layer because an image holds the top
		// one; it must still be there.
		if chain := topChainID(cfg.RootFS.DiffIDs); chain != "" && s.topHolders(chain) == 0 {
			return false, fmt.Errorf("layer %s was removed during the pull: pull again: %w", chain, errdefs.ErrAborted)
		}
		if _, err := s.images.Create(rawConfig); err != nil {
			return false, err
		}
	}
	if _, ok := ref.(reference.NamedTagged); ok {
		if old, err := s.refs.Get(ref); err != nil || old != id {
			if err := s.refs.AddTag(ref, id, true); err != nil {
				return false, err
			}
			_ = s.images.SetLastUpdated(id, time.Now().UTC())
			updated = true
		}
	}
	if canonical != nil {
		if err := s.addDigestLocked(canonical, id); err != nil {
			return false, err
		}
	}
	s.emit(eventtypes.ActionPull, id, reference.FamiliarString(ref))
	return updated, nil
}

// addDigestLocked records a repository digest of image id; a digest of a
// multi-platform index moves to the platform pulled last, as in dockerd.
func (s *Service) addDigestLocked(canonical reference.Canonical, id digest.Digest) error {
	if old, err := s.refs.Get(canonical); err == nil && old != id {
		if _, err := s.refs.Delete(canonical); err != nil {
			return err
		}
	}
	return s.refs.AddDigest(canonical, id)
}
