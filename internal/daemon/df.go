package daemon

import (
	"context"

	systemrouter "github.com/berth-dev/berth/internal/api/router/system"
	"github.com/berth-dev/berth/internal/daemon/containers"
	"github.com/moby/moby/api/types/build"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/volume"
)

// SystemDiskUsage answers GET /system/df: the images with the size of
// the layers they use, the containers with the size of their writable
// layer and of their whole file system. berth has no volume store and no
// build cache yet: those lists are empty.
func (d *Daemon) SystemDiskUsage(ctx context.Context, o systemrouter.DiskUsageOptions) (*systemrouter.DiskUsage, error) {
	du := &systemrouter.DiskUsage{}
	var err error
	if o.Images {
		if du.LayersSize, du.Images, err = d.Images.DiskUsage(ctx); err != nil {
			return nil, err
		}
	}
	if o.Containers {
		if du.Containers, err = d.Containers.List(ctx, containers.ListOptions{All: true, Size: true}); err != nil {
			return nil, err
		}
		if du.Containers == nil {
			du.Containers = []containertypes.Summary{}
		}
	}
	if o.Volumes {
		du.Volumes = []volume.Volume{}
	}
	if o.BuildCache {
		du.BuildCache = []build.CacheRecord{}
	}
	return du, nil
}
