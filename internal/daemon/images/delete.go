package images

import (
	"context"
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	eventtypes "github.com/moby/moby/api/types/events"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client/pkg/stringid"
	"github.com/opencontainers/go-digest"
)

// conflictType is a bit set of the reasons an image may not be deleted.
type conflictType int

const (
	conflictDependentChild conflictType = 1 << iota
	conflictRunningContainer
	conflictActiveReference
	conflictStoppedContainer

	// Hard conflicts cannot be forced; soft ones need force.
	conflictHard = conflictDependentChild | conflictRunningContainer
	conflictSoft = conflictActiveReference | conflictStoppedContainer
)

// deleteConflict is dockerd's image delete conflict (409).
type deleteConflict struct {
	hard    bool
	used    bool // by a container
	ref     string
	message string
}

func (c *deleteConflict) Error() string {
	force := "must be forced"
	if c.hard {
		force = "cannot be forced"
	}
	return fmt.Sprintf("conflict: unable to delete %s (%s) - %s", c.ref, force, c.message)
}

func (*deleteConflict) Conflict() {}

func (*deleteConflict) Is(target error) bool { return target == errdefs.ErrConflict }

// ImageDelete implements DELETE /images/{name} with dockerd's semantics.
//
// A reference (tag or digest) is removed first. A container using the
// image blocks that when it is the image's last repository, unless forced.
// Other references remaining, the untag is all that happens; otherwise the
// image goes too, quietly keeping it on conflicts.
//
// An ID (or ID prefix) deletes the image: its references are removed when
// they are all of one repository (several repositories need force).
// Hard conflicts (child images, running containers) cannot be forced; soft
// ones (stopped containers, references) need force.
//
// With prune, the parents left without references, children or containers
// are deleted too. Deleting an image releases its layers; the layers that
// leave the disk are reported as deleted after the image.
func (s *Service) ImageDelete(_ context.Context, name string, force, prune bool) ([]imagetypes.DeleteResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, err := s.Get(name)
	if err != nil {
		return nil, err
	}
	id := img.ID
	records := []imagetypes.DeleteResponse{}
	repoRefs := s.refs.References(id)
	removedRepositoryRef := false

	if !isImageIDPrefix(id.String(), name) {
		parsed, err := reference.ParseNormalizedNamed(name)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
		}
		parsed = reference.TagNameOnly(parsed)
		if !force && isSingleReference(repoRefs) {
			if ctr := s.firstUser(id); ctr != "" {
				// Untagging would leave the image dangling under a
				// container: that takes force.
				return nil, &deleteConflict{
					used: true,
					ref:  reference.FamiliarString(parsed),
					message: fmt.Sprintf("container %s is using its referenced image %s",
						stringid.TruncateID(ctr), stringid.TruncateID(id.String())),
				}
			}
		}
		if _, err := s.refs.Delete(parsed); err != nil {
			return nil, err
		}
		records = append(records, imagetypes.DeleteResponse{Untagged: reference.FamiliarString(parsed)})

		repoRefs = s.refs.References(id)
		if _, canonical := parsed.(reference.Canonical); !canonical {
			// The last tag of a repository takes its digests along.
			tagLeft := false
			for _, r := range repoRefs {
				if _, c := r.(reference.Canonical); !c && r.Name() == parsed.Name() {
					tagLeft = true
					break
				}
			}
			if !tagLeft {
				var remaining []reference.Named
				for _, r := range repoRefs {
					if _, c := r.(reference.Canonical); c && r.Name() == parsed.Name() {
						if _, err := s.refs.Delete(r); err != nil {
							return records, err
						}
						records = append(records, imagetypes.DeleteResponse{Untagged: reference.FamiliarString(r)})
						continue
					}
					remaining = append(remaining, r)
				}
				repoRefs = remaining
			}
		}
		if len(repoRefs) > 0 {
			return records, nil
		}
		removedRepositoryRef = true
	} else if isSingleReference(repoRefs) {
		mask := conflictHard
		if !force {
			mask |= conflictSoft &^ conflictActiveReference
		}
		if c := s.checkConflict(id, mask); c != nil {
			return nil, c
		}
		for _, r := range repoRefs {
			if _, err := s.refs.Delete(r); err != nil {
				return nil, err
			}
			records = append(records, imagetypes.DeleteResponse{Untagged: reference.FamiliarString(r)})
		}
	}

	if err := s.deleteImage(id, &records, force, prune, removedRepositoryRef); err != nil {
		return nil, err
	}
	s.emitDeletes(id, records)
	return records, nil
}

// deleteImage deletes image id, its references and the layers only it
// used, then its parents when prune is set. With quiet, conflicts keep the
// image without error unless it is dangling and unused.
func (s *Service) deleteImage(id digest.Digest, records *[]imagetypes.DeleteResponse, force, prune, quiet bool) error {
	mask := conflictHard
	if !force {
		mask |= conflictSoft
	}
	if c := s.checkConflict(id, mask); c != nil {
		if quiet && (!s.isDangling(id) || c.used) {
			return nil
		}
		return c
	}
	img, err := s.images.Get(id)
	if err != nil {
		return err
	}
	for _, r := range s.refs.References(id) {
		if _, err := s.refs.Delete(r); err != nil {
			return err
		}
		*records = append(*records, imagetypes.DeleteResponse{Untagged: reference.FamiliarString(r)})
	}
	if err := s.images.Delete(id); err != nil {
		return err
	}
	*records = append(*records, imagetypes.DeleteResponse{Deleted: id.String()})
	removed, err := s.releaseTop(img.Config.RootFS.DiffIDs)
	if err != nil {
		return err
	}
	for _, l := range removed {
		*records = append(*records, imagetypes.DeleteResponse{Deleted: l.String()})
	}
	if !prune || img.Parent == "" {
		return nil
	}
	return s.deleteImage(img.Parent, records, false, true, true)
}

// checkConflict returns what, among the conflicts in mask, keeps image id.
func (s *Service) checkConflict(id digest.Digest, mask conflictType) *deleteConflict {
	short := stringid.TruncateID(id.String())
	if mask&conflictDependentChild != 0 && len(s.images.Children(id)) > 0 {
		return &deleteConflict{hard: true, ref: short, message: "image has dependent child images"}
	}
	running, stopped := s.imageUsers(id)
	if mask&conflictRunningContainer != 0 && len(running) > 0 {
		return &deleteConflict{hard: true, used: true, ref: short,
			message: "image is being used by running container " + stringid.TruncateID(running[0])}
	}
	if mask&conflictActiveReference != 0 && len(s.refs.References(id)) > 0 {
		return &deleteConflict{ref: short, message: "image is referenced in multiple repositories"}
	}
	if mask&conflictStoppedContainer != 0 && len(stopped) > 0 {
		return &deleteConflict{used: true, ref: short,
			message: "image is being used by stopped container " + stringid.TruncateID(stopped[0])}
	}
	return nil
}

// firstUser returns a container using image id, running ones first.
func (s *Service) firstUser(id digest.Digest) string {
	running, stopped := s.imageUsers(id)
	if len(running) > 0 {
		return running[0]
	}
	if len(stopped) > 0 {
		return stopped[0]
	}
	return ""
}

// isDangling reports whether image id has no references and no children.
func (s *Service) isDangling(id digest.Digest) bool {
	return len(s.refs.References(id)) == 0 && len(s.images.Children(id)) == 0
}

// isSingleReference reports whether refs are all of one repository with at
// most one tag; false for none.
func isSingleReference(refs []reference.Named) bool {
	if len(refs) <= 1 {
		return len(refs) == 1
	}
	var tagged reference.Named
	canonical := map[string]bool{}
	for _, r := range refs {
		if _, ok := r.(reference.Canonical); ok {
			canonical[r.Name()] = true
		} else if tagged == nil {
			tagged = r
		} else {
			return false
		}
	}
	if tagged == nil {
		tagged = refs[0]
	}
	return len(canonical) == 1 && canonical[tagged.Name()]
}

// isImageIDPrefix reports whether name is a prefix of the image ID, with or
// without its algorithm.
func isImageIDPrefix(id, name string) bool {
	if strings.HasPrefix(id, name) {
		return true
	}
	_, hex, ok := strings.Cut(id, ":")
	return ok && strings.HasPrefix(hex, name)
}

// emitDeletes publishes an untag event per removed reference and a delete
// event when the image itself went.
func (s *Service) emitDeletes(id digest.Digest, records []imagetypes.DeleteResponse) {
	for _, r := range records {
		switch {
		case r.Untagged != "":
			s.emit(eventtypes.ActionUnTag, id, r.Untagged)
		case r.Deleted == id.String():
			s.emit(eventtypes.ActionDelete, id, "")
		}
	}
}
