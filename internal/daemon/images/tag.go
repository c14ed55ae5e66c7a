package images

import (
	"context"
	eventtypes "github.com/moby/moby/api/types/events"
	"time"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// ResolveImageID returns the ID of the image name refers to.
func (s *Service) ResolveImageID(_ context.Context, name string) (digest.Digest, error) {
	img, err := s.Get(name)
	if err != nil {
		return "", err
	}
	return img.ID, nil
}

// TagImage points ref ("busybox" meaning "busybox:latest") at image id,
// moving the tag if it pointed elsewhere, and records the tag time.
func (s *Service) TagImage(_ context.Context, id digest.Digest, ref reference.Named) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tagLocked(id, ref)
}

func (s *Service) tagLocked(id digest.Digest, ref reference.Named) error {
	if _, err := s.images.Get(id); err != nil {
		return err
	}
	if err := s.refs.AddTag(ref, id, true); err != nil {
		return err
	}
	s.emit(eventtypes.ActionTag, id, reference.FamiliarString(reference.TagNameOnly(ref)))
	return s.images.SetLastUpdated(id, time.Now().UTC())
}
