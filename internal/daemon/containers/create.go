package containers

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/container"
	"github.com/containerd/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	containertypes "github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
)

// CreateOpts is a container create request.
type CreateOpts struct {
	Name       string
	Config     *containertypes.Config
	HostConfig *containertypes.HostConfig
	Networking *network.NetworkingConfig
}

// Create makes a container from an image: its record and its writable
// layer. The process starts with Start.
func (s *Service) Create(ctx context.Context, o CreateOpts) (containertypes.CreateResponse, error) {
	cfg, hc := o.Config, o.HostConfig
	if cfg == nil {
		return containertypes.CreateResponse{}, errdefs.ErrInvalidArgument.WithMessage("config cannot be empty in order to create a container")
	}
	if hc == nil {
		hc = &containertypes.HostConfig{}
	}
	if o.Name != "" {
		if err := container.ValidName(o.Name); err != nil {
			return containertypes.CreateResponse{}, err
		}
	}
	if cfg.Image == "" {
		return containertypes.CreateResponse{}, errdefs.ErrInvalidArgument.WithMessage("no image specified")
	}
	warnings, err := validateHostConfig(hc)
	if err != nil {
		return containertypes.CreateResponse{}, err
	}
	img, err := s.cfg.Images.Get(cfg.Image)
	if err != nil {
		return containertypes.CreateResponse{}, err
	}
	merged := *cfg
	mergeImageConfig(&merged, &img.Config.Config)
	if len(merged.Entrypoint) == 0 && len(merged.Cmd) == 0 {
		return containertypes.CreateResponse{}, errdefs.ErrInvalidArgument.WithMessage("no command specified")
	}
	if hc.NetworkMode == "" {
		hc.NetworkMode = "bridge"
	}
	// An unknown network fails the create, not the start, as in dockerd
	// (the modes are those the OCI spec generation knows).
	switch m := string(hc.NetworkMode); {
	// A missing network (or network container) is a bad request, not a
	// 404: the docker CLI takes a 404 from create for a missing image and
	// would try to pull it.
	case strings.HasPrefix(m, "container:"):
		if _, err := s.store.Get(strings.TrimPrefix(m, "container:")); err != nil {
			return containertypes.CreateResponse{}, errdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
	case s.cfg.Networks != nil:
		if err := s.cfg.Networks.Validate(m); err != nil {
			return containertypes.CreateResponse{}, errdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
	case m == "bridge", m == "host", m == "none", m == "default", strings.HasPrefix(m, "container:"):
	default:
		return containertypes.CreateResponse{}, errdefs.ErrNotFound.WithMessage("network " + m + " not found")
	}
	// The daemon's default log driver is recorded, as dockerd does:
	// clients (docker-py's run) read it to decide whether logs can be read.
	if hc.LogConfig.Type == "" {
		hc.LogConfig.Type = "json-file"
	}
	if hc.LogConfig.Config == nil {
		hc.LogConfig.Config = map[string]string{}
	}

	c := container.NewContainer(o.Name)
	c.Config = &merged
	c.HostConfig = hc
	c.Image = img.ID.String()
	var asked map[string]*network.EndpointSettings
	if o.Networking != nil {
		asked = o.Networking.EndpointsConfig
	}
	if err := s.normalizeNetworks(c, asked); err != nil {
		return containertypes.CreateResponse{}, err
	}
	c.ImageRef = cfg.Image
	args := slices.Concat([]string(merged.Entrypoint), []string(merged.Cmd))
	c.Path, c.Args = args[0], args[1:]
	if merged.Hostname == "" {
		if hc.NetworkMode == "host" {
			merged.Hostname = hostHostname()
		} else {
			merged.Hostname = c.ID[:12]
		}
	}
	if _, err := s.cfg.Layers.CreateRW(ctx, c.ID, s.cfg.Images.ChainID(img)); err != nil {
		return containertypes.CreateResponse{}, fmt.Errorf("creating the container's writable layer: %w", err)
	}
	if err := s.store.Add(c); err != nil {
		_ = s.cfg.Layers.ReleaseRW(c.ID)
		return containertypes.CreateResponse{}, err
	}
	c.LogPath = s.logPath(c.ID)
	c.Lock()
	err = s.store.Save(c)
	c.Unlock()
	if err != nil {
		return containertypes.CreateResponse{}, err
	}
	s.live(c.ID)
	s.emit(c, eventtypes.ActionCreate, nil)
	return containertypes.CreateResponse{ID: c.ID, Warnings: warnings}, nil
}

// mergeImageConfig fills the container's configuration with its image's
// defaults, as dockerd does at create: the environment is merged (the
// container's variables win), Cmd comes from the image only when neither
// Cmd nor Entrypoint is given, and the rest is copied when unset.
func mergeImageConfig(cfg *containertypes.Config, img *dockerspec.DockerOCIImageConfig) {
	if cfg.User == "" {
		cfg.User = img.User
	}
	if len(cfg.ExposedPorts) == 0 && len(img.ExposedPorts) > 0 {
		cfg.ExposedPorts = make(network.PortSet, len(img.ExposedPorts))
		for p := range img.ExposedPorts {
			if port, err := network.ParsePort(p); err == nil {
				cfg.ExposedPorts[port] = struct{}{}
			}
		}
	}
	if len(cfg.Env) == 0 {
		cfg.Env = slices.Clone(img.Env)
	} else {
		env := slices.Clone(img.Env)
		for _, e := range cfg.Env {
			key, _, _ := strings.Cut(e, "=")
			env = slices.DeleteFunc(env, func(ie string) bool { k, _, _ := strings.Cut(ie, "="); return k == key })
			env = append(env, e)
		}
		cfg.Env = env
	}
	if len(cfg.Labels) == 0 && len(img.Labels) > 0 {
		cfg.Labels = maps.Clone(img.Labels)
	} else {
		for k, v := range img.Labels {
			if _, ok := cfg.Labels[k]; !ok {
				cfg.Labels[k] = v
			}
		}
	}
	if len(cfg.Entrypoint) == 1 && cfg.Entrypoint[0] == "" {
		// --entrypoint "": no entrypoint, not the image's.
		cfg.Entrypoint = []string{}
	}
	if len(cfg.Entrypoint) == 0 {
		if len(cfg.Cmd) == 0 {
			cfg.Cmd = slices.Clone(img.Cmd)
		}
		if cfg.Entrypoint == nil {
			cfg.Entrypoint = slices.Clone(img.Entrypoint)
		}
	}
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = img.WorkingDir
	}
	if len(cfg.Volumes) == 0 && len(img.Volumes) > 0 {
		cfg.Volumes = maps.Clone(img.Volumes)
	}
	if cfg.StopSignal == "" {
		cfg.StopSignal = img.StopSignal
	}
	if cfg.Healthcheck == nil && img.Healthcheck != nil {
		hc := *img.Healthcheck
		cfg.Healthcheck = &containertypes.HealthConfig{
			Test: hc.Test, Interval: hc.Interval, Timeout: hc.Timeout,
			StartPeriod: hc.StartPeriod, StartInterval: hc.StartInterval, Retries: hc.Retries,
		}
	}
	if len(cfg.OnBuild) == 0 {
		cfg.OnBuild = slices.Clone(img.OnBuild)
	}
	if len(cfg.Shell) == 0 {
		cfg.Shell = slices.Clone(img.Shell)
	}
}

// validateHostConfig rejects what berth cannot honour, with Docker's
// messages where Docker has one.
func validateHostConfig(hc *containertypes.HostConfig) ([]string, error) {
	var warnings []string
	r := &hc.Resources
	if r.Memory > 0 && r.Memory < 6*1024*1024 {
		return nil, errdefs.ErrInvalidArgument.WithMessage("Minimum memory limit allowed is 6MB")
	}
	if r.MemorySwap > 0 && r.Memory > 0 && r.MemorySwap < r.Memory {
		return nil, errdefs.ErrInvalidArgument.WithMessage("Minimum memoryswap limit should be larger than memory limit, see usage")
	}
	if r.NanoCPUs > 0 && r.CPUQuota > 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
	}
	if r.NanoCPUs < 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage("Range of CPUs is from 0.01 to the number of CPUs available")
	}
	if hc.AutoRemove && hc.RestartPolicy.Name != "" && hc.RestartPolicy.Name != containertypes.RestartPolicyDisabled {
		return nil, errdefs.ErrInvalidArgument.WithMessage("can't create 'AutoRemove' container with restart policy")
	}
	switch hc.RestartPolicy.Name {
	case "", containertypes.RestartPolicyDisabled, containertypes.RestartPolicyAlways,
		containertypes.RestartPolicyUnlessStopped, containertypes.RestartPolicyOnFailure:
	default:
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid restart policy: unknown policy '%s'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'", hc.RestartPolicy.Name))
	}
	if hc.LogConfig.Type != "" && hc.LogConfig.Type != "json-file" && hc.LogConfig.Type != "none" {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("failed to create logging driver: logger: no log driver named '%s' is registered", hc.LogConfig.Type))
	}
	return warnings, nil
}
