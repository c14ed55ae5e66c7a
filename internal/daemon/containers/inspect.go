package containers

import (
	"context"
	"fmt"
	"os/exec"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/container"
	"github.com/containerd/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/storage"
)

// Inspect returns the container in the form of GET /containers/{id}/json.
func (s *Service) Inspect(ctx context.Context, ref string, size bool) (*containertypes.InspectResponse, error) {
	c, err := s.store.Get(ref)
	if err != nil {
		return nil, err
	}
	c.Lock()
	defer c.Unlock()
	st := c.State.API()
	dir := s.store.Dir(c.ID)
	cfg := *c.Config
	hc := *c.HostConfig
	ns, _ := s.networkSettings(c)
	r := &containertypes.InspectResponse{
		ID:              c.ID,
		Created:         c.Created.UTC().Format(time.RFC3339Nano),
		Path:            c.Path,
		Args:            nonNil(c.Args),
		State:           &st,
		Image:           c.Image,
		LogPath:         c.LogPath,
		Name:            c.InspectName(),
		RestartCount:    c.RestartCount,
		Driver:          c.Driver,
		Platform:        "linux",
		ExecIDs:         s.execs.idsOf(c.ID),
		HostConfig:      &hc,
		Mounts:          mountPoints(&hc),
		Config:          &cfg,
		NetworkSettings: ns,
		GraphDriver:     &storage.DriverData{Name: c.Driver, Data: s.layerPaths(c.ID)},
	}
	if size {
		rw, rootfs := s.sizes(c.ID)
		r.SizeRw, r.SizeRootFs = &rw, &rootfs
	}
	if !c.State.StartedAt.IsZero() {
		r.ResolvConfPath = path.Join(dir, "resolv.conf")
		r.HostnamePath = path.Join(dir, "hostname")
		r.HostsPath = path.Join(dir, "hosts")
	}
	return r, nil
}

// sizes returns the size of the container's writable layer and of its
// whole root filesystem (writable layer plus image layers).
func (s *Service) sizes(id string) (rw, rootfs int64) {
	l, err := s.cfg.Layers.GetRW(id)
	if err != nil {
		return 0, 0
	}
	if sz, ok := l.(interface{ Size() (int64, error) }); ok {
		rw, _ = sz.Size()
	}
	rootfs = rw
	for chain := l.Parent(); chain != ""; {
		ly, err := s.cfg.Layers.Get(chain)
		if err != nil {
			break
		}
		rootfs += ly.Size()
		chain = ly.Parent()
	}
	return rw, rootfs
}

// layerPaths reports the overlay2 directories of a container's writable
// layer when the layer store can tell them.
func (s *Service) layerPaths(id string) map[string]string {
	type pather interface{ Paths() map[string]string }
	rw, err := s.cfg.Layers.GetRW(id)
	if err != nil {
		return nil
	}
	if p, ok := rw.(pather); ok {
		return p.Paths()
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func mountPoints(hc *containertypes.HostConfig) []containertypes.MountPoint {
	mps := []containertypes.MountPoint{}
	for _, b := range hc.Binds {
		parts := strings.Split(b, ":")
		if len(parts) < 2 {
			continue
		}
		mp := containertypes.MountPoint{Type: mount.TypeBind, Source: parts[0], Destination: parts[1], RW: true, Propagation: mount.PropagationRPrivate}
		if len(parts) == 3 {
			mp.Mode = parts[2]
			if slices.Contains(strings.Split(parts[2], ","), "ro") {
				mp.RW = false
			}
		}
		mps = append(mps, mp)
	}
	for d := range hc.Tmpfs {
		mps = append(mps, containertypes.MountPoint{Type: mount.TypeTmpfs, Destination: d, RW: true})
	}
	return mps
}

// ListOptions are the parameters of GET /containers/json.
type ListOptions struct {
	All    bool
	Limit  int
	Size   bool
	Latest bool
	// Filters maps a filter name to its values (already validated).
	Filters map[string][]string
}

// List returns containers as GET /containers/json does: running ones by
// default, newest first.
func (s *Service) List(ctx context.Context, o ListOptions) ([]containertypes.Summary, error) {
	all := s.store.List()
	f, err := newListFilter(s, o.Filters)
	if err != nil {
		return nil, err
	}
	// A limit (ps -n, ps -l) counts containers in every state, as in Docker.
	if f.needsAll() || o.Limit > 0 {
		o.All = true
	}
	out := []containertypes.Summary{}
	for _, c := range all {
		if o.Limit > 0 && len(out) >= o.Limit {
			break
		}
		c.Lock()
		sum, ok := s.summary(c, o.All, f)
		c.Unlock()
		if ok && o.Size {
			sum.SizeRw, sum.SizeRootFs = s.sizes(c.ID)
		}
		if ok {
			out = append(out, sum)
		}
	}
	return out, nil
}

func (s *Service) summary(c *container.Container, all bool, f *listFilter) (containertypes.Summary, bool) {
	if !all && !c.State.Running && !c.State.Restarting {
		return containertypes.Summary{}, false
	}
	if !f.match(c) {
		return containertypes.Summary{}, false
	}
	image := c.ImageRef
	if image == "" {
		image = c.Image
	}
	cmd := c.Path
	if len(c.Args) > 0 {
		cmd += " " + strings.Join(c.Args, " ")
	}
	ns, ports := s.networkSettings(c)
	if ports == nil {
		ports = []containertypes.PortSummary{}
	}
	sum := containertypes.Summary{
		ID: c.ID, Names: []string{c.InspectName()}, Image: image, ImageID: c.Image,
		Command: cmd, Created: c.Created.Unix(), Labels: c.Config.Labels,
		State: c.State.API().Status, Status: statusString(&c.State),
		Ports: ports, Mounts: mountPoints(c.HostConfig),
		NetworkSettings: &containertypes.NetworkSettingsSummary{Networks: ns.Networks},
	}
	if sum.Labels == nil {
		sum.Labels = map[string]string{}
	}
	sum.HostConfig.NetworkMode = string(c.HostConfig.NetworkMode)
	return sum, true
}

// statusString is the human STATUS column of `docker ps`.
func statusString(st *container.State) string {
	switch {
	case st.Running && st.Paused:
		return "Up " + humanDuration(time.Since(st.StartedAt)) + " (Paused)"
	case st.Restarting:
		return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, humanDuration(time.Since(st.FinishedAt)))
	case st.Running:
		return "Up " + humanDuration(time.Since(st.StartedAt))
	case st.RemovalInProgress:
		return "Removal In Progress"
	case st.Dead:
		return "Dead"
	case st.StartedAt.IsZero():
		return "Created"
	case st.FinishedAt.IsZero():
		return ""
	}
	return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, humanDuration(time.Since(st.FinishedAt)))
}

// humanDuration renders a duration the way Docker's status column does.
func humanDuration(d time.Duration) string {
	sec := int(d.Seconds())
	switch {
	case sec < 1:
		return "Less than a second"
	case sec == 1:
		return "1 second"
	case sec < 60:
		return fmt.Sprintf("%d seconds", sec)
	}
	min := int(d.Minutes())
	switch {
	case min == 1:
		return "About a minute"
	case min < 60:
		return fmt.Sprintf("%d minutes", min)
	}
	h := int(d.Hours() + 0.5)
	switch {
	case h == 1:
		return "About an hour"
	case h < 48:
		return fmt.Sprintf("%d hours", h)
	case h < 24*7*2:
		return fmt.Sprintf("%d days", h/24)
	case h < 24*30*2:
		return fmt.Sprintf("%d weeks", h/24/7)
	case h < 24*365*2:
		return fmt.Sprintf("%d months", h/24/30)
	}
	return fmt.Sprintf("%d years", h/24/365)
}

// Top lists the container's processes with ps(1) run on the host, keeping
// the rows whose PID belongs to the container.
func (s *Service) Top(ctx context.Context, ref, psArgs string) (*containertypes.TopResponse, error) {
	c, err := s.store.Get(ref)
	if err != nil {
		return nil, err
	}
	c.Lock()
	running, paused := c.State.Running, c.State.Paused
	c.Unlock()
	if !running {
		return nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is not running", c.ID))
	}
	if paused {
		return nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is paused", c.ID))
	}
	rc, err := s.rt.Load(c.ID)
	if err != nil {
		return nil, err
	}
	pids, err := rc.Processes()
	if err != nil {
		return nil, err
	}
	if psArgs == "" {
		psArgs = "-ef"
	}
	args := strings.Fields(psArgs)
	out, err := exec.CommandContext(ctx, "ps", args...).Output()
	if err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("ps: %v", err))
	}
	return parsePS(string(out), pids)
}

func parsePS(out string, pids []int) (*containertypes.TopResponse, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage("ps printed nothing")
	}
	titles := strings.Fields(lines[0])
	pidCol := slices.Index(titles, "PID")
	if pidCol < 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage("Couldn't find PID field in ps output")
	}
	r := &containertypes.TopResponse{Titles: titles, Processes: [][]string{}}
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) <= pidCol {
			continue
		}
		pid, err := strconv.Atoi(f[pidCol])
		if err != nil || !slices.Contains(pids, pid) {
			continue
		}
		// The last column (the command) may contain spaces.
		row := append(f[:len(titles)-1:len(titles)-1], strings.Join(f[len(titles)-1:], " "))
		r.Processes = append(r.Processes, row)
	}
	return r, nil
}
