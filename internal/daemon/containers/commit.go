package containers

import (
	"context"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/daemon/images"
	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	containertypes "github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	"github.com/opencontainers/go-digest"
)

// ImageCommitter stores committed images: the image service.
type ImageCommitter interface {
	CommitLayer(ctx context.Context, c images.Commit, diff io.Reader) (digest.Digest, error)
	TagImage(ctx context.Context, id digest.Digest, ref reference.Named) error
}

// CommitOpts are the parameters of POST /commit.
type CommitOpts struct {
	// Ref tags the new image when not nil.
	Ref             reference.NamedTagged
	Author, Comment string
	// Pause freezes a running container while its layer is read.
	Pause bool
	// Changes are Dockerfile instructions applied to Config.
	Changes []string
	// Config is the configuration asked for; what it leaves unset comes
	// from the container's.
	Config *containertypes.Config
}

// Commit implements POST /commit as dockerd: the container's read-write
// layer becomes a new layer on its image, in an image whose configuration
// is the requested one with the changes applied, completed from the
// container's configuration, and whose history gains the container's
// command. It returns the new image's ID.
func (s *Service) Commit(ctx context.Context, ref string, o CommitOpts) (digest.Digest, error) {
	c, err := s.usableLayer(ref, "commit")
	if err != nil {
		return "", err
	}
	cfg := imageConfigOf(o.Config)
	if cfg, err = images.ApplyChanges(cfg, o.Changes); err != nil {
		return "", err
	}
	c.Lock()
	running, paused := c.State.Running, c.State.Paused
	ctrCfg := *c.Config
	parent := digest.Digest(c.Image)
	c.Unlock()
	merged := containerConfigOf(cfg)
	fill := imageConfigOf(&ctrCfg)
	mergeImageConfig(&merged, &fill)

	if o.Pause && running && !paused {
		if err := s.freeze(c.ID, true); err != nil {
			return "", err
		}
		defer s.freeze(c.ID, false)
	}
	rw, err := s.cfg.Layers.GetRW(c.ID)
	if err != nil {
		return "", err
	}
	diff, err := rw.Diff(ctx)
	if err != nil {
		return "", err
	}
	defer diff.Close()
	id, err := s.cfg.Commits.CommitLayer(ctx, images.Commit{
		Parent: parent, Config: imageConfigOf(&merged), Author: o.Author, Comment: o.Comment,
		CreatedBy: strings.Join(ctrCfg.Cmd, " "), ContainerID: c.ID,
	}, diff)
	if err != nil {
		return "", err
	}
	imageRef := ""
	if o.Ref != nil {
		if err := s.cfg.Commits.TagImage(ctx, id, o.Ref); err != nil {
			return "", err
		}
		imageRef = reference.FamiliarString(o.Ref)
	}
	s.emit(c, eventtypes.ActionCommit, map[string]string{"comment": o.Comment, "imageID": id.String(), "imageRef": imageRef})
	return id, nil
}

// imageConfigOf is the image side of a container configuration.
func imageConfigOf(c *containertypes.Config) dockerspec.DockerOCIImageConfig {
	var out dockerspec.DockerOCIImageConfig
	if c == nil {
		return out
	}
	out.User, out.WorkingDir, out.StopSignal = c.User, c.WorkingDir, c.StopSignal
	out.Env, out.Entrypoint, out.Cmd = slices.Clone(c.Env), slices.Clone(c.Entrypoint), slices.Clone(c.Cmd)
	out.Labels, out.Volumes = maps.Clone(c.Labels), maps.Clone(c.Volumes)
	out.ArgsEscaped = c.ArgsEscaped //nolint:staticcheck // Docker keeps the field for Windows images.
	out.OnBuild, out.Shell = slices.Clone(c.OnBuild), slices.Clone(c.Shell)
	if len(c.ExposedPorts) > 0 {
		out.ExposedPorts = map[string]struct{}{}
		for p := range c.ExposedPorts {
			out.ExposedPorts[p.String()] = struct{}{}
		}
	}
	if h := c.Healthcheck; h != nil {
		out.Healthcheck = &dockerspec.HealthcheckConfig{
			Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries,
		}
	}
	return out
}

// containerConfigOf is an image configuration as a container one.
func containerConfigOf(i dockerspec.DockerOCIImageConfig) containertypes.Config {
	out := containertypes.Config{
		User: i.User, WorkingDir: i.WorkingDir, StopSignal: i.StopSignal,
		Env: i.Env, Entrypoint: i.Entrypoint, Cmd: i.Cmd, Labels: i.Labels, Volumes: i.Volumes,
		ArgsEscaped: i.ArgsEscaped, //nolint:staticcheck // Docker keeps the field for Windows images.
		OnBuild:     i.OnBuild, Shell: i.Shell,
	}
	if len(i.ExposedPorts) > 0 {
		out.ExposedPorts = network.PortSet{}
		for p := range i.ExposedPorts {
			if port, err := network.ParsePort(p); err == nil {
				out.ExposedPorts[port] = struct{}{}
			}
		}
	}
	if h := i.Healthcheck; h != nil {
		out.Healthcheck = &containertypes.HealthConfig{
			Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries,
		}
	}
	return out
}
