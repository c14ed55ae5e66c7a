package images

import (
	"context"
	"fmt"
	"time"

	imagerouter "github.com/berth-dev/berth/internal/api/router/image"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/layer"
	"github.com/distribution/reference"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/storage"
	"github.com/opencontainers/go-digest"
)

// repoRefs splits the references of image id into tags and digests, in
// their familiar form.
func (s *Service) repoRefs(id digest.Digest) (tags, digests []string) {
	for _, ref := range s.refs.References(id) {
		if _, ok := ref.(reference.Canonical); ok {
			digests = append(digests, reference.FamiliarString(ref))
		}
		if _, ok := ref.(reference.NamedTagged); ok {
			tags = append(tags, reference.FamiliarString(ref))
		}
	}
	return tags, digests
}

// layerOf returns the layer chainID of an image; a missing one is an error
// naming the image.
func (s *Service) layerOf(img *image.Image, chainID digest.Digest) (layer.Layer, error) {
	l, err := s.layers.Get(chainID)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.ID, err)
	}
	return l, nil
}

// ImageInspect describes an image as dockerd's GET /images/{name}/json.
func (s *Service) ImageInspect(_ context.Context, name string) (*imagerouter.InspectData, error) {
	img, err := s.Get(name)
	if err != nil {
		return nil, err
	}
	extras, err := parseImage(img.RawConfig)
	if err != nil {
		return nil, err
	}
	var size int64
	diffIDs := img.Config.RootFS.DiffIDs
	for _, c := range layer.ChainIDs(diffIDs) {
		l, err := s.layerOf(img, c)
		if err != nil {
			return nil, err
		}
		size += l.Size()
	}
	driver := &storage.DriverData{Name: "overlay2"}
	if top := s.ChainID(img); top != "" {
		if driver.Data, err = layer.DriverData(s.layers, top); err != nil {
			return nil, fmt.Errorf("image %s: %w", img.ID, err)
		}
	}
	layers := make([]string, len(diffIDs))
	for i, d := range diffIDs {
		layers[i] = d.String()
	}
	tags, digests := s.repoRefs(img.ID)
	cfg := img.Config.Config
	resp := imagetypes.InspectResponse{
		ID:           img.ID.String(),
		RepoTags:     tags,
		RepoDigests:  digests,
		Comment:      extras.Comment,
		Author:       img.Config.Author,
		Config:       &cfg,
		Architecture: img.Config.Architecture,
		Variant:      img.Config.Variant,
		Os:           img.Config.OS,
		OsVersion:    img.Config.OSVersion,
		Size:         size,
		GraphDriver:  driver,
		RootFS:       imagetypes.RootFS{Type: "layers", Layers: layers},
		Metadata:     imagetypes.Metadata{LastTagTime: img.LastUpdated},
	}
	if c := created(img); !c.IsZero() {
		resp.Created = c.Format(time.RFC3339Nano)
	}
	return &imagerouter.InspectData{InspectResponse: resp, Parent: img.Parent.String(), DockerVersion: extras.DockerVersion}, nil
}

// ImageHistory lists an image's history newest first, as dockerd: the
// layer size for entries that made a layer, the image's ID on the newest
// entry and its ancestors' IDs on the next ones while there are parents,
// "<missing>" on the rest.
func (s *Service) ImageHistory(_ context.Context, name string) ([]imagetypes.HistoryResponseItem, error) {
	img, err := s.Get(name)
	if err != nil {
		return nil, err
	}
	diffIDs := img.Config.RootFS.DiffIDs
	chain := layer.ChainIDs(diffIDs)
	var out []imagetypes.HistoryResponseItem
	n := 0
	for _, h := range img.Config.History {
		var size int64
		if !h.EmptyLayer {
			if n >= len(chain) {
				return nil, fmt.Errorf("too many non-empty layers in History section")
			}
			l, err := s.layerOf(img, chain[n])
			if err != nil {
				return nil, err
			}
			size = l.Size()
			n++
		}
		var createdAt int64
		if h.Created != nil {
			createdAt = h.Created.Unix()
		}
		out = append(out, imagetypes.HistoryResponseItem{
			ID: "<missing>", Created: createdAt, CreatedBy: h.CreatedBy, Comment: h.Comment, Size: size,
		})
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	cur := img
	for i := range out {
		out[i].ID = cur.ID.String()
		for _, ref := range s.refs.References(cur.ID) {
			if _, ok := ref.(reference.NamedTagged); ok {
				out[i].Tags = append(out[i].Tags, reference.FamiliarString(ref))
			}
		}
		if cur.Parent == "" {
			break
		}
		if cur, err = s.images.Get(cur.Parent); err != nil {
			break
		}
	}
	if out == nil {
		out = []imagetypes.HistoryResponseItem{}
	}
	return out, nil
}
