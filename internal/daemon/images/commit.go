package images

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Commit describes an image made from a parent image and one more step:
// a layer (commit, a builder's RUN or COPY) or none (a builder's
// metadata-only instruction).
type Commit struct {
	// Parent is the image built on; "" for scratch.
	Parent digest.Digest
	// Config is the new image's runtime configuration.
	Config dockerspec.DockerOCIImageConfig
	// Author and Comment go into the config and the history entry.
	Author, Comment string
	// CreatedBy is the history entry's command.
	CreatedBy string
	// EmptyLayer records the step without a layer: the diff is ignored.
	EmptyLayer bool
	// ContainerID is the container committed, if any.
	ContainerID string
}

// commitConfig is the image JSON of a commit: berth's image config plus
// the container it came from, as dockerd records it.
type commitConfig struct {
	imageConfig
	Container string `json:"container,omitempty"`
}

// ApplyChanges returns cfg with Dockerfile instructions applied (CMD,
// ENTRYPOINT, ENV, EXPOSE, ...), as commit --change and import --change.
func ApplyChanges(cfg dockerspec.DockerOCIImageConfig, changes []string) (dockerspec.DockerOCIImageConfig, error) {
	return applyChanges(cfg, changes)
}

// CommitLayer stores a new image: c.Parent's layers, plus diff (an
// uncompressed tar) registered as a new layer on top unless c.EmptyLayer;
// the parent's platform and history, plus one history entry. It returns
// the new image's ID; its parent is c.Parent.
func (s *Service) CommitLayer(ctx context.Context, c Commit, diff io.Reader) (digest.Digest, error) {
	var base imageConfig
	if c.Parent != "" {
		p, err := s.images.Get(c.Parent)
		if err != nil {
			return "", err
		}
		if err := json.Unmarshal(p.RawConfig, &base); err != nil {
			return "", fmt.Errorf("image %s: %w", c.Parent, err)
		}
	} else {
		base.Platform = HostPlatform()
		base.RootFS.Type = "layers"
	}
	diffIDs := slices.Clone(base.RootFS.DiffIDs)
	if diffIDs == nil {
		diffIDs = []digest.Digest{}
	}

	var added digest.Digest // the ChainID of the new layer
	if !c.EmptyLayer {
		if diff == nil {
			return "", fmt.Errorf("commit: no layer given")
		}
		l, err := s.layers.Register(ctx, diff, topChainID(diffIDs))
		if err != nil {
			return "", err
		}
		added = l.ChainID()
		diffIDs = append(diffIDs, l.DiffID())
	}

	created := time.Now().UTC()
	cfg := commitConfig{imageConfig: base, Container: c.ContainerID}
	cfg.Created = &created
	cfg.Author = c.Author
	cfg.Config = c.Config
	cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: diffIDs}
	cfg.History = append(slices.Clone(base.History), ocispec.History{
		Created: &created, CreatedBy: c.CreatedBy, Author: c.Author, Comment: c.Comment, EmptyLayer: c.EmptyLayer,
	})
	cfg.Comment = c.Comment
	cfg.DockerVersion = ""
	raw, err := json.Marshal(cfg)
	if err != nil {
		if added != "" {
			_ = s.layers.Release(added)
		}
		return "", err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if added == "" {
		// No new layer: the parent holds the top layer already.
		return s.createHeldLocked(raw, c.Parent)
	}
	return s.createLocked(raw, c.Parent)
}

// createHeldLocked stores an image whose top layer an image already holds
// (or that has no layer): no layer reference changes hands.
func (s *Service) createHeldLocked(raw []byte, parent digest.Digest) (digest.Digest, error) {
	if cfg, err := parseImage(raw); err == nil {
		if top := topChainID(cfg.RootFS.DiffIDs); top != "" && s.topHolders(top) == 0 {
			return "", fmt.Errorf("image config %s: its top layer %s is not held by an image", digest.SHA256.FromBytes(raw), top)
		}
	}
	return s.storeLocked(raw, parent)
}
