package images

import (
	"context"

	imagerouter "github.com/berth-dev/berth/internal/api/router/image"
	"github.com/berth-dev/berth/internal/layer"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/opencontainers/go-digest"
)

// DiskUsage reports the images' part of GET /system/df as dockerd: the
// size of the layers images use (each layer once), and the images of
// `docker images` with their size, the size they share with other images
// and the number of containers using them.
func (s *Service) DiskUsage(ctx context.Context) (layersSize int64, images []imagetypes.Summary, err error) {
	images, err = s.Images(ctx, imagerouter.ListOptions{SharedSize: true})
	if err != nil {
		return 0, nil, err
	}
	sizes := map[digest.Digest]int64{}
	for _, l := range s.layers.Layers() {
		sizes[l.ChainID()] = l.Size()
	}
	used := map[digest.Digest]bool{}
	for _, img := range s.images.List() {
		for _, c := range layer.ChainIDs(img.Config.RootFS.DiffIDs) {
			used[c] = true
		}
	}
	for c := range used {
		layersSize += sizes[c]
	}
	if images == nil {
		images = []imagetypes.Summary{}
	}
	for i := range images {
		if images[i].RepoTags == nil {
			images[i].RepoTags = []string{}
		}
		if images[i].RepoDigests == nil {
			images[i].RepoDigests = []string{}
		}
	}
	return layersSize, images, nil
}
