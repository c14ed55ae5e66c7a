package images

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/berth-dev/berth/internal/api/httputil"
	"github.com/berth-dev/berth/internal/image"
	"github.com/distribution/reference"
	eventtypes "github.com/moby/moby/api/types/events"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/opencontainers/go-digest"
)

// pruneFilters are the filters POST /images/prune accepts.
var pruneFilters = []string{"dangling", "label", "label!", "until"}

// ImagesPrune implements POST /images/prune as dockerd: with dangling=true
// (the default) the images without tags and without children go; with
// dangling=false every image no container uses, through its tags. until,
// label and label! narrow the choice. Each image is deleted as `rmi` would
// (parents left unused go too); an image a container uses is never
// removed. SpaceReclaimed is the size of the layers that left the disk.
func (s *Service) ImagesPrune(ctx context.Context, f httputil.Filters) (*imagetypes.PruneReport, error) {
	if err := f.Validate(pruneFilters...); err != nil {
		return nil, err
	}
	danglingOnly, err := f.GetBoolOrDefault("dangling", true)
	if err != nil {
		return nil, err
	}
	var until time.Time
	now := time.Now()
	err = f.WalkValues("until", func(v string) error {
		t, err := parseTimestamp(v, now)
		if err == nil && (until.IsZero() || t.Before(until)) {
			until = t
		}
		return err
	})
	if err != nil {
		return nil, err
	}

	sizes := map[digest.Digest]int64{}
	for _, l := range s.layers.Layers() {
		sizes[l.ChainID()] = l.Size()
	}
	rep := &imagetypes.PruneReport{ImagesDeleted: []imagetypes.DeleteResponse{}}
	for _, img := range s.pruneCandidates(danglingOnly, until, f) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// Through the references: untag, and delete when the last goes.
		names := []string{img.ID.Encoded()}
		if refs := s.refs.References(img.ID); len(refs) > 0 {
			names = names[:0]
			for _, r := range refs {
				names = append(names, r.String())
			}
		}
		for _, name := range names {
			deleted, err := s.ImageDelete(ctx, name, false, true)
			if err != nil {
				// In use meanwhile, or already gone: not an error.
				slog.Debug("image prune", "image", name, "err", err)
				continue
			}
			rep.ImagesDeleted = append(rep.ImagesDeleted, deleted...)
		}
	}
	for _, d := range rep.ImagesDeleted {
		if d.Deleted != "" {
			rep.SpaceReclaimed += uint64(sizes[digest.Digest(d.Deleted)])
		}
	}
	if s.events != nil {
		s.events.Publish(eventtypes.ImageEventType, eventtypes.ActionPrune, "",
			map[string]string{"reclaimed": strconv.FormatUint(rep.SpaceReclaimed, 10)})
	}
	return rep, nil
}

// pruneCandidates lists the images a prune may delete: not used by a
// container, created before until (when set), matching the label
// filters, and with danglingOnly without children and without tags.
func (s *Service) pruneCandidates(danglingOnly bool, until time.Time, f httputil.Filters) []*image.Image {
	var out []*image.Image
	for _, img := range s.images.List() {
		if running, stopped := s.imageUsers(img.ID); len(running)+len(stopped) > 0 {
			continue
		}
		if danglingOnly && (len(s.images.Children(img.ID)) > 0 || hasTag(s.refs.References(img.ID))) {
			continue
		}
		if c := created(img); !until.IsZero() && c.After(until) {
			continue
		}
		labels := img.Config.Config.Labels
		if !f.MatchKVList("label", labels) || f.Contains("label!") && f.MatchKVList("label!", labels) {
			continue
		}
		out = append(out, img)
	}
	return out
}

func hasTag(refs []reference.Named) bool {
	for _, r := range refs {
		if _, ok := r.(reference.NamedTagged); ok {
			return true
		}
	}
	return false
}
