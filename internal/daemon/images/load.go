package images

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/berth-dev/berth/internal/api/httputil"
	"github.com/berth-dev/berth/internal/imagearchive"
	"github.com/berth-dev/berth/internal/layer"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	eventtypes "github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client/pkg/stringid"
	"github.com/opencontainers/go-digest"
)

// messages writes a JSON message stream.
type messages struct{ w io.Writer }

func (m messages) write(msg jsonstream.Message) {
	b, _ := json.Marshal(msg)
	_, _ = m.w.Write(append(b, '\r', '\n'))
}

// stream writes {"stream": line + "\n"}.
func (m messages) stream(line string) { m.write(jsonstream.Message{Stream: line + "\n"}) }

// LoadImage implements POST /images/load: it reads an image archive
// (plain or compressed; see package imagearchive for the layouts) and
// stores its images and tags, writing dockerd's messages to out: "Loaded
// image: NAME" per tag, "Loaded image ID: ID" for an untagged image, and,
// unless quiet, "Loading layer" progress. A tag that named another image
// moves, the old image keeping its ID. Each layer is checked against the
// config's DiffID; an image whose layers do not match is not stored.
func (s *Service) LoadImage(ctx context.Context, src io.Reader, out io.Writer, quiet bool) error {
	tmp := s.tmpDir
	if tmp == "" {
		tmp = os.TempDir()
	}
	a, err := imagearchive.Extract(ctx, src, tmp)
	if err != nil {
		return err
	}
	defer a.Close()
	entries, err := a.Images()
	if err != nil {
		return err
	}
	msgs := messages{out}
	for _, e := range entries {
		tags, err := loadTags(e.RepoTags)
		if err != nil {
			return err
		}
		cfg, err := parseImage(e.Config)
		if err != nil {
			return fmt.Errorf("invalid image JSON: %v: %w", err, errdefs.ErrInvalidArgument)
		}
		if cfg.OS != "" && cfg.OS != "linux" {
			return fmt.Errorf("cannot load %s image on linux: %w", cfg.OS, errdefs.ErrInvalidArgument)
		}
		var progress messages
		if !quiet {
			progress = msgs
		}
		id, err := s.loadImage(ctx, a, e, progress)
		if err != nil {
			return err
		}
		if err := s.loadedTags(id, tags, msgs); err != nil {
			return err
		}
	}
	return nil
}

// loadTags parses the names an archive gives an image.
func loadTags(names []string) ([]reference.NamedTagged, error) {
	var out []reference.NamedTagged
	for _, n := range names {
		ref, err := reference.ParseNormalizedNamed(n)
		if err != nil {
			return nil, fmt.Errorf("invalid tag %q in the archive: %v: %w", n, err, errdefs.ErrInvalidArgument)
		}
		tagged, ok := reference.TagNameOnly(ref).(reference.NamedTagged)
		if !ok {
			return nil, fmt.Errorf("invalid tag %q in the archive: not a tag: %w", n, errdefs.ErrInvalidArgument)
		}
		out = append(out, tagged)
	}
	return out, nil
}

// loadedTags points the tags at id, as dockerd does: a tag of another
// image moves ("renaming the old one ... to empty string").
func (s *Service) loadedTags(id digest.Digest, tags []reference.NamedTagged, msgs messages) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ref := range tags {
		name := reference.FamiliarString(ref)
		if old, err := s.refs.Get(ref); err == nil && old != id {
			msgs.stream(fmt.Sprintf("The image %s already exists, renaming the old one with ID %s to empty string", name, old))
		}
		if err := s.tagLocked(id, ref); err != nil {
			return err
		}
		msgs.stream("Loaded image: " + name)
	}
	if len(tags) == 0 {
		msgs.stream("Loaded image ID: " + id.String())
	}
	return nil
}

// loadImage stores one image of the archive: its missing layers, then its
// config. Layers already on disk are reused.
func (s *Service) loadImage(ctx context.Context, a *imagearchive.Archive, e *imagearchive.Entry, progress messages) (digest.Digest, error) {
	chain := layer.ChainIDs(e.DiffIDs)
	top := topChainID(e.DiffIDs)

	s.mu.Lock()
	if _, err := s.images.Get(e.ID); err == nil {
		s.mu.Unlock()
		return e.ID, nil
	}
	if top == "" || s.topHolders(top) > 0 {
		// No layer, or one another image already holds: no layer
		// reference to hand over.
		id, err := s.createHeldLocked(e.Config, "")
		if err == nil {
			s.setLoadedParent(id, e)
			s.emit(eventtypes.ActionLoad, id, "")
		}
		s.mu.Unlock()
		return id, err
	}
	s.mu.Unlock()

	// held are the layers this load holds a reference on, bottom first.
	var held []digest.Digest
	release := func(keepTop bool) {
		for i := len(held) - 1; i >= 0; i-- {
			if keepTop && held[i] == top {
				continue
			}
			_ = s.layers.Release(held[i])
		}
	}
	var parent digest.Digest
	for i, c := range chain {
		// An existing lower layer is kept by the layer registered on it;
		// the top one is registered again for the reference the image
		// takes over.
		if c != top {
			if _, err := s.layers.Get(c); err == nil {
				parent = c
				continue
			}
		}
		l, err := s.registerLayer(ctx, a, e, i, parent, progress)
		if err != nil {
			release(false)
			return "", err
		}
		held = append(held, l.ChainID())
		if l.ChainID() != c {
			release(false)
			return "", fmt.Errorf("layer %d of image %s: registered as %s, expected %s", i, e.ID, l.ChainID(), c)
		}
		parent = c
	}
	// The top layer keeps its parents: only its reference is needed.
	release(true)

	s.mu.Lock()
	defer s.mu.Unlock()
	id, err := s.createLocked(e.Config, "")
	if err != nil {
		return "", err
	}
	s.setLoadedParent(id, e)
	s.emit(eventtypes.ActionLoad, id, "")
	return id, nil
}

func (s *Service) registerLayer(ctx context.Context, a *imagearchive.Archive, e *imagearchive.Entry, i int, parent digest.Digest, progress messages) (layer.Layer, error) {
	rc, err := a.OpenLayer(e, i)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var r io.Reader = rc
	if progress.w != nil {
		r = &httputil.ProgressReader{
			R: rc, Out: progress.w, Action: "Loading layer", Total: a.LayerSize(e, i), Start: time.Now(),
			ID: stringid.TruncateID(layer.ChainIDs(e.DiffIDs[:i+1])[i].String()),
		}
	}
	return s.layers.Register(ctx, r, parent)
}

// setLoadedParent records the parent an archive names for an image when
// that image is here and its layers are a prefix of the image's.
func (s *Service) setLoadedParent(id digest.Digest, e *imagearchive.Entry) {
	if e.Parent == "" {
		return
	}
	p, err := s.images.Get(e.Parent)
	if err != nil {
		return
	}
	pd := p.Config.RootFS.DiffIDs
	if len(pd) > len(e.DiffIDs) || !slices.Equal(pd, e.DiffIDs[:len(pd)]) {
		return
	}
	_ = s.images.SetParent(id, e.Parent)
}
