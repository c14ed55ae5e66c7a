package images

import (
	"context"
	"fmt"
	"io"

	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/imagearchive"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	eventtypes "github.com/moby/moby/api/types/events"
	"github.com/opencontainers/go-digest"
)

// SaveImages implements GET /images/get and /images/{name}/get: the images
// names refer to as one archive (see package imagearchive), streamed to
// out. Names resolve as dockerd resolves them: a tag saves that tag, a
// bare repository name every tag of the repository, an ID (or prefix) the
// image without tags. Every name is resolved before anything is written,
// so an unknown one fails the request cleanly.
func (s *Service) SaveImages(ctx context.Context, names []string, out io.Writer) error {
	if len(names) == 0 {
		return fmt.Errorf("no image name given: %w", errdefs.ErrInvalidArgument)
	}
	list, err := s.saveList(names)
	if err != nil {
		return err
	}
	if err := imagearchive.Write(ctx, out, list, s.layers.TarStream); err != nil {
		return err
	}
	for _, img := range list {
		s.emit(eventtypes.ActionSave, digest.SHA256.FromBytes(img.Config), "")
	}
	return nil
}

// saveList resolves the names into the images to write, in the order
// given, each once with all the tags asked for.
func (s *Service) saveList(names []string) ([]imagearchive.Image, error) {
	var list []imagearchive.Image
	at := map[digest.Digest]int{}
	add := func(img *image.Image, ref reference.Named) {
		i, ok := at[img.ID]
		if !ok {
			i = len(list)
			at[img.ID] = i
			list = append(list, imagearchive.Image{Config: img.RawConfig, Parent: img.Parent})
		}
		tagged, ok := ref.(reference.NamedTagged)
		if !ok {
			return
		}
		for _, t := range list[i].Tags {
			if t.String() == tagged.String() {
				return
			}
		}
		list[i].Tags = append(list[i].Tags, tagged)
	}
	for _, name := range names {
		ref, perr := reference.ParseNormalizedNamed(name)
		if perr == nil && reference.IsNameOnly(ref) && s.addRepository(ref, add) {
			continue
		}
		img, err := s.Get(name)
		if err != nil {
			return nil, err
		}
		if perr != nil || isImageIDPrefix(img.ID.String(), name) {
			// An ID, or an ID prefix.
			add(img, nil)
			continue
		}
		if _, ok := ref.(reference.Canonical); ok {
			add(img, nil)
			continue
		}
		add(img, reference.TagNameOnly(ref))
	}
	return list, nil
}

// addRepository adds every tagged image of the repository ref names;
// false when it has none.
func (s *Service) addRepository(ref reference.Named, add func(*image.Image, reference.Named)) bool {
	found := false
	for _, as := range s.refs.ReferencesByName(ref) {
		if _, ok := as.Ref.(reference.NamedTagged); !ok {
			continue
		}
		img, err := s.images.Get(as.ID)
		if err != nil {
			continue
		}
		add(img, as.Ref)
		found = true
	}
	return found
}
