package images

import (
	"context"
	"fmt"
	"io"

	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/layer"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	eventtypes "github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/registry"
	"github.com/opencontainers/go-digest"
)

// PushImage pushes the image ref names to its registry, or every tag of
// the repository when ref has no tag, writing Docker's progress messages
// to out. The layers are sent gzip-compressed from their exact tars, the
// manifest as Docker schema 2 with the stored configuration.
func (s *Service) PushImage(ctx context.Context, ref reference.Named, auth *registry.AuthConfig, out io.Writer) error {
	if s.dist == nil {
		return fmt.Errorf("cannot push %s: no registry client configured: %w", reference.FamiliarString(ref), errdefs.ErrNotImplemented)
	}
	if _, ok := ref.(reference.Digested); ok {
		return fmt.Errorf("cannot push a digest reference: %w", errdefs.ErrInvalidArgument)
	}
	repo := reference.TrimNamed(ref)
	var tags []reference.NamedTagged
	if tagged, ok := ref.(reference.NamedTagged); ok {
		tags = append(tags, tagged)
	} else {
		for _, a := range s.refs.ReferencesByName(repo) {
			if t, ok := a.Ref.(reference.NamedTagged); ok {
				tags = append(tags, t)
			}
		}
	}
	var imgs []distribution.PushImage
	for _, t := range tags {
		id, err := s.refs.Get(t)
		if err != nil {
			continue
		}
		img, err := s.images.Get(id)
		if err != nil {
			return err
		}
		pi := distribution.PushImage{Tag: t.Tag(), RawConfig: img.RawConfig}
		chains := layer.ChainIDs(img.Config.RootFS.DiffIDs)
		for i, diffID := range img.Config.RootFS.DiffIDs {
			chain := chains[i]
			l, err := s.layers.Get(chain)
			if err != nil {
				return fmt.Errorf("layer %s of %s: %w", diffID, reference.FamiliarString(t), err)
			}
			pi.Layers = append(pi.Layers, distribution.PushLayer{
				DiffID: diffID, Size: l.Size(),
				Open: func(ctx context.Context) (io.ReadCloser, error) { return s.layers.TarStream(ctx, chain) },
			})
		}
		imgs = append(imgs, pi)
	}
	if len(imgs) == 0 {
		return fmt.Errorf("An image does not exist locally with the tag: %s: %w", reference.FamiliarString(ref), errdefs.ErrNotFound)
	}
	return s.dist.Push(ctx, repo, imgs, distribution.PushOptions{
		Auth: auth, Progress: distribution.NewProgress(out),
		Pushed: func(tag string, manifest digest.Digest) {
			s.mu.Lock()
			defer s.mu.Unlock()
			tagged, err := reference.WithTag(repo, tag)
			if err != nil {
				return
			}
			id, err := s.refs.Get(tagged)
			if err != nil {
				return
			}
			if canonical, err := reference.WithDigest(repo, manifest); err == nil {
				_ = s.addDigestLocked(canonical, id)
			}
			s.emit(eventtypes.ActionPush, id, reference.FamiliarString(tagged))
		},
	})
}
