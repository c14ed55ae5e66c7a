package system

import (
	"context"
	"fmt"
	"net/http"

	"github.com/berth-dev/berth/internal/api/httputil"
	"github.com/berth-dev/berth/internal/api/server"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/build"
	containertypes "github.com/moby/moby/api/types/container"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/api/types/volume"
)

// DiskUsageBackend computes GET /system/df.
type DiskUsageBackend interface {
	SystemDiskUsage(ctx context.Context, o DiskUsageOptions) (*DiskUsage, error)
}

// DiskUsageOptions select the kinds of objects to report.
type DiskUsageOptions struct {
	Images, Containers, Volumes, BuildCache bool
}

// DiskUsage is the backend's report; the route shapes it for the API
// version. Kinds not asked for are nil.
type DiskUsage struct {
	// LayersSize is the size of the layers images use, each counted once.
	LayersSize int64
	Images     []imagetypes.Summary
	Containers []containertypes.Summary
	Volumes    []volume.Volume
	BuildCache []build.CacheRecord
}

// legacyDiskUsage is the answer of API versions before 1.52.
type legacyDiskUsage struct {
	LayersSize int64                    `json:"LayersSize,omitzero"`
	Images     []imagetypes.Summary     `json:"Images,omitzero"`
	Containers []containertypes.Summary `json:"Containers,omitzero"`
	Volumes    []volume.Volume          `json:"Volumes,omitzero"`
	BuildCache []build.CacheRecord      `json:"BuildCache,omitzero"`
}

func (r *Router) systemDF(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := req.ParseForm(); err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	version := server.APIVersion(ctx)
	var o DiskUsageOptions
	types := req.Form["type"]
	if server.CompareVersions(version, "1.42") < 0 {
		types = nil
	}
	for _, t := range types {
		switch system.DiskUsageObject(t) {
		case system.ImageObject:
			o.Images = true
		case system.ContainerObject:
			o.Containers = true
		case system.VolumeObject:
			o.Volumes = true
		case system.BuildCacheObject:
			o.BuildCache = true
		default:
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("unknown object type: %s", t))
		}
	}
	if len(types) == 0 {
		o = DiskUsageOptions{Images: true, Containers: true, Volumes: true, BuildCache: true}
	}
	du, err := r.Backend.SystemDiskUsage(ctx, o)
	if err != nil {
		return err
	}
	if server.CompareVersions(version, "1.52") < 0 {
		server.WriteJSON(w, http.StatusOK, legacyDiskUsage{
			LayersSize: du.LayersSize, Images: du.Images, Containers: du.Containers, Volumes: du.Volumes, BuildCache: du.BuildCache,
		})
		return nil
	}
	server.WriteJSON(w, http.StatusOK, diskUsage(du, o, httputil.BoolValue(req, "verbose")))
	return nil
}

// diskUsage is the answer of API 1.52 and later: counts and sizes per
// kind, the objects themselves only when verbose.
func diskUsage(du *DiskUsage, o DiskUsageOptions, verbose bool) system.DiskUsage {
	var out system.DiskUsage
	if o.Images {
		u := &imagetypes.DiskUsage{TotalSize: du.LayersSize, TotalCount: int64(len(du.Images))}
		for _, img := range du.Images {
			if img.Containers > 0 {
				u.ActiveCount++
			} else if img.Containers == 0 && img.Size >= 0 && img.SharedSize >= 0 {
				u.Reclaimable += img.Size - img.SharedSize
			}
		}
		if verbose {
			u.Items = du.Images
		}
		out.ImageUsage = u
	}
	if o.Containers {
		u := &containertypes.DiskUsage{TotalCount: int64(len(du.Containers))}
		var used int64
		for _, c := range du.Containers {
			u.TotalSize += c.SizeRw
			switch c.State {
			case containertypes.StateRunning, containertypes.StatePaused, containertypes.StateRestarting:
				u.ActiveCount++
				used += c.SizeRw
			}
		}
		u.Reclaimable = u.TotalSize - used
		if verbose {
			u.Items = du.Containers
		}
		out.ContainerUsage = u
	}
	if o.Volumes {
		out.VolumeUsage = &volume.DiskUsage{TotalCount: int64(len(du.Volumes))}
	}
	if o.BuildCache {
		out.BuildCacheUsage = &build.DiskUsage{TotalCount: int64(len(du.BuildCache))}
	}
	return out
}
