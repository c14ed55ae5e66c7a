package images

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	imagerouter "github.com/berth-dev/berth/internal/api/router/image"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/layer"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/opencontainers/go-digest"
)

// listFilters are the filters GET /images/json accepts.
var listFilters = []string{"before", "dangling", "label", "reference", "since", "until"}

func created(img *image.Image) time.Time {
	if c := img.Config.Created; c != nil {
		return *c
	}
	return time.Time{}
}

// Images lists images as dockerd's GET /images/json, newest first:
// untagged images with children only with All, RepoTags and RepoDigests
// nil when empty (the router applies the API version's form), Containers
// counted for every image, SharedSize -1 unless asked for.
func (s *Service) Images(ctx context.Context, opts imagerouter.ListOptions) ([]imagetypes.Summary, error) {
	f := opts.Filters
	if err := f.Validate(listFilters...); err != nil {
		return nil, err
	}
	danglingOnly, err := f.GetBoolOrDefault("dangling", false)
	if err != nil {
		return nil, err
	}
	// Several values of before/until/since narrow the window, as if ANDed.
	var before, since time.Time
	err = f.WalkValues("before", func(v string) error {
		img, err := s.Get(v)
		if err != nil {
			return err
		}
		if c := created(img); !c.IsZero() && (before.IsZero() || c.Before(before)) {
			before = c
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	now := time.Now()
	err = f.WalkValues("until", func(v string) error {
		t, err := parseTimestamp(v, now)
		if err != nil {
			return err
		}
		if before.IsZero() || t.Before(before) {
			before = t
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = f.WalkValues("since", func(v string) error {
		img, err := s.Get(v)
		if err != nil {
			return err
		}
		if c := created(img); c.After(since) {
			since = c
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	layers := map[digest.Digest]layer.Layer{}
	for _, l := range s.layers.Layers() {
		layers[l.ChainID()] = l
	}
	all := s.images.List()
	var out []imagetypes.Summary
	createdAt := map[string]time.Time{} // full precision, for the order
	for _, img := range all {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		children := len(s.images.Children(img.ID))
		if danglingOnly && children > 0 {
			continue
		}
		c := created(img)
		if !before.IsZero() && (c.IsZero() || !c.Before(before)) {
			continue
		}
		if !since.IsZero() && (c.IsZero() || !c.After(since)) {
			continue
		}
		if f.Contains("label") && !f.MatchKVList("label", img.Config.Config.Labels) {
			continue
		}
		size, ok := chainSize(layers, img.Config.RootFS.DiffIDs)
		if !ok {
			continue // deleted meanwhile
		}
		sum := imagetypes.Summary{
			ID:         img.ID.String(),
			ParentID:   img.Parent.String(),
			Created:    c.Unix(),
			Size:       size,
			SharedSize: -1,
			Labels:     img.Config.Config.Labels,
		}
		if c.IsZero() {
			sum.Created = 0
		}
		for _, ref := range s.refs.References(img.ID) {
			if f.Contains("reference") {
				match, err := matchReference(f.Get("reference"), ref)
				if err != nil {
					return nil, err
				}
				if !match {
					continue
				}
			}
			if _, ok := ref.(reference.Canonical); ok {
				sum.RepoDigests = append(sum.RepoDigests, reference.FamiliarString(ref))
			}
			if _, ok := ref.(reference.NamedTagged); ok {
				sum.RepoTags = append(sum.RepoTags, reference.FamiliarString(ref))
			}
		}
		if sum.RepoTags == nil && sum.RepoDigests == nil {
			if !opts.All && children > 0 {
				continue // an intermediate image
			}
			if f.Contains("dangling") && !danglingOnly {
				continue
			}
			if f.Contains("reference") {
				continue
			}
		} else if danglingOnly && len(sum.RepoTags) > 0 {
			continue
		}
		running, stopped := s.imageUsers(img.ID)
		sum.Containers = int64(len(running) + len(stopped))
		createdAt[sum.ID] = c
		out = append(out, sum)
	}
	if opts.SharedSize {
		sharedSizes(out, all, layers)
	}
	slices.SortFunc(out, func(a, b imagetypes.Summary) int {
		if c := createdAt[b.ID].Compare(createdAt[a.ID]); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// matchReference matches ref against shell-glob patterns on its familiar
// form, as "docker images busybox*" does.
func matchReference(patterns []string, ref reference.Named) (bool, error) {
	for _, p := range patterns {
		ok, err := reference.FamiliarMatch(p, ref)
		if err != nil {
			return false, fmt.Errorf("invalid reference filter %q: %w: %w", p, err, errdefs.ErrInvalidArgument)
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

// chainSize sums the sizes of the layers of an image; false when one of
// them is missing.
func chainSize(layers map[digest.Digest]layer.Layer, diffIDs []digest.Digest) (int64, bool) {
	var size int64
	for _, c := range layer.ChainIDs(diffIDs) {
		l, ok := layers[c]
		if !ok {
			return 0, false
		}
		size += l.Size()
	}
	return size, true
}

// sharedSizes sets SharedSize of each summary: the size of its layers that
// another image also uses.
func sharedSizes(out []imagetypes.Summary, all []*image.Image, layers map[digest.Digest]layer.Layer) {
	users := map[digest.Digest]int{}
	chains := map[string][]digest.Digest{}
	for _, img := range all {
		chain := layer.ChainIDs(img.Config.RootFS.DiffIDs)
		chains[img.ID.String()] = chain
		for _, c := range chain {
			users[c]++
		}
	}
	for i := range out {
		out[i].SharedSize = 0
		for _, c := range chains[out[i].ID] {
			if l, ok := layers[c]; ok && users[c] > 1 {
				out[i].SharedSize += l.Size()
			}
		}
	}
}

// parseTimestamp reads an "until" value as dockerd does: a Go duration
// before now ("10m"), Unix seconds with optional fraction, or an RFC 3339
// date-time or date (local time when the zone is left out).
func parseTimestamp(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	if sec, frac, ok := strings.Cut(v, "."); !strings.ContainsAny(v, "-:TZ") {
		s, err := strconv.ParseInt(sec, 10, 64)
		if err == nil {
			var ns int64
			if ok {
				frac = (frac + "000000000")[:9]
				if ns, err = strconv.ParseInt(frac, 10, 64); err != nil {
					return time.Time{}, badTimestamp(v)
				}
			}
			return time.Unix(s, ns), nil
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02T15", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, badTimestamp(v)
}

func badTimestamp(v string) error {
	return fmt.Errorf("failed to parse value as time or duration: %q: %w", v, errdefs.ErrInvalidArgument)
}
