// Package containers is the container half of berthd: create, start, stop,
// remove, inspect, logs, attach and exec, on top of the container store,
// the layer store and one monitor process (internal/shim) per running
// container. berthd itself holds no container process: it can restart or
// crash and reconnect to the monitors (see Restore).
package containers

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/daemon/networks"
	"github.com/berth-dev/berth/internal/events"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/layer"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/shim"
	eventtypes "github.com/moby/moby/api/types/events"
	"github.com/opencontainers/go-digest"
)

// Images is what containers need from the image service.
type Images interface {
	Get(nameOrID string) (*image.Image, error)
	ChainID(img *image.Image) digest.Digest
}

// Config wires a Service.
type Config struct {
	Store  *container.Store
	Images Images
	Layers layer.Store
	// ExecRoot holds the runtime state and one directory per running
	// container (bundle, monitor socket, exit status).
	ExecRoot string
	// Shim is how monitors are started (berthd: its own binary with "shim").
	Shim shim.Spawn
	// InitBinary returns the host path of the --init reaper.
	InitBinary func() (string, error)
	// HostCapabilities is what --privileged grants.
	HostCapabilities []string
	// CgroupParent for containers ("/berth" when empty).
	CgroupParent string
	// Events receives the containers' lifecycle events (nil: none).
	Events *events.Bus
	// Networks wires containers to bridge networks (nil: every network
	// mode but host is a namespace with only lo).
	Networks *networks.Service
	// Commits stores the images of POST /commit.
	Commits ImageCommitter
}

// Service manages containers.
type Service struct {
	cfg   Config
	store *container.Store
	// ctx ends with the daemon; monitors outlive it.
	ctx     context.Context
	cancel  context.CancelFunc
	rt      *runtime.Runtime
	runRoot string

	mu    sync.Mutex
	state map[string]*live // by container ID
	execs *execStore
}

// live is the daemon's in-memory view of one container: its monitor and
// the channels its waiters block on.
type live struct {
	shim *shim.Client
	// exited is closed (and replaced) at every exit.
	exited chan struct{}
	// removed is closed when the container is removed.
	removed chan struct{}
	// pending holds attach requests for a container that is not yet
	// running; Start connects them before the process starts.
	pending []*pendingAttach
}

// New builds the service; call Restore before serving requests.
func New(cfg Config) (*Service, error) {
	rt, err := runtime.New(filepath.Join(cfg.ExecRoot, "runtime"))
	if err != nil {
		return nil, err
	}
	runRoot := filepath.Join(cfg.ExecRoot, "containers")
	if err := os.MkdirAll(runRoot, 0o711); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{
		cfg: cfg, store: cfg.Store, rt: rt, runRoot: runRoot, ctx: ctx, cancel: cancel,
		state: map[string]*live{},
		execs: newExecStore(),
	}, nil
}

// runDir is where a running container's bundle and monitor live.
func (s *Service) runDir(id string) string { return filepath.Join(s.runRoot, id) }

// live returns (creating it) the in-memory state of container id.
func (s *Service) live(id string) *live {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.state[id]
	if !ok {
		l = &live{exited: make(chan struct{}), removed: make(chan struct{})}
		s.state[id] = l
	}
	return l
}

// Restore reconciles the store with the monitors after a daemon start:
// containers whose monitor still runs are reconnected; those that exited
// while the daemon was down get their recorded exit status.
func (s *Service) Restore(ctx context.Context) {
	for _, c := range s.store.List() {
		c.Lock()
		running := c.State.Running
		if c.State.Restarting {
			// The back-off died with the daemon; the policy's start at
			// daemon start applies instead.
			c.CancelRestart()
			_ = s.store.Save(c)
		}
		c.Unlock()
		if !running {
			s.cleanupRunDir(c.ID)
			continue
		}
		dir := s.runDir(c.ID)
		cl, err := shim.Connect(dir)
		if err == nil {
			if s.usesNetns(c) {
				if _, err := s.cfg.Networks.Restore(c.ID); err != nil {
					slog.Warn("restoring the container's network", "container", c.ID[:12], "err", err)
				}
			}
			l := s.live(c.ID)
			s.mu.Lock()
			l.shim = cl
			s.mu.Unlock()
			go s.monitor(c, cl)
			slog.Info("reconnected to container monitor", "container", c.ID[:12], "pid", cl.Pid())
			continue
		}
		st, rerr := shim.ReadExit(dir)
		if rerr != nil {
			msg := "container monitor disappeared while the daemon was down"
			if !errors.Is(rerr, fs.ErrNotExist) {
				msg = fmt.Sprintf("reading exit status: %v", rerr)
			}
			st = &shim.ExitStatus{ExitCode: 255, Error: msg}
			// A container whose monitor died may still be running
			// unsupervised: stop it.
			if rc, lerr := s.rt.Load(c.ID); lerr == nil {
				_ = rc.Delete(ctx, true)
			}
		}
		s.finishExit(c, *st)
		slog.Info("container exited while the daemon was down", "container", c.ID[:12], "exitCode", st.ExitCode)
	}
	if s.cfg.Networks != nil {
		s.cfg.Networks.Reconcile(func(id string) bool {
			c, err := s.store.Get(id)
			if err != nil {
				return false
			}
			c.Lock()
			defer c.Unlock()
			return c.State.Running
		})
	}
	go s.startOnBoot()
}

// ImageUsers implements the image service's ContainerUsage.
func (s *Service) ImageUsers(id digest.Digest) (running, stopped []string) {
	for _, c := range s.store.List() {
		c.Lock()
		img, run := c.Image, c.State.Running
		c.Unlock()
		if img != id.String() {
			continue
		}
		if run {
			running = append(running, c.ID)
		} else {
			stopped = append(stopped, c.ID)
		}
	}
	return running, stopped
}

// Counts returns the numbers /info reports.
func (s *Service) Counts() (total, running, paused, stopped int) {
	for _, c := range s.store.List() {
		c.Lock()
		st := c.State
		c.Unlock()
		total++
		switch {
		case st.Running && st.Paused:
			paused++
		case st.Running:
			running++
		default:
			stopped++
		}
	}
	return total, running, paused, stopped
}

// Shutdown is called when berthd stops: containers keep running under
// their monitors; only the daemon's connections go.
func (s *Service) Shutdown() { s.cancel() }

// emit publishes a container event with Docker's attributes: the name,
// the image, the container's labels, and extra.
func (s *Service) emit(c *container.Container, action eventtypes.Action, extra map[string]string) {
	if s.cfg.Events == nil {
		return
	}
	c.Lock()
	attrs := make(map[string]string, len(c.Config.Labels)+2+len(extra))
	for k, v := range c.Config.Labels {
		attrs[k] = v
	}
	attrs["name"] = c.Name
	attrs["image"] = c.ImageRef
	id := c.ID
	c.Unlock()
	for k, v := range extra {
		attrs[k] = v
	}
	s.cfg.Events.Publish(eventtypes.ContainerEventType, action, id, attrs)
}

func (s *Service) cleanupRunDir(id string) {
	dir := s.runDir(id)
	if _, err := os.Stat(dir); err != nil {
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		slog.Warn("removing container run directory", "container", id, "err", err)
	}
}
