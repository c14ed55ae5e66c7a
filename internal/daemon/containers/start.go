package containers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/daemon/networks"
	"github.com/berth-dev/berth/internal/oci"
	"github.com/berth-dev/berth/internal/shim"
	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	containertypes "github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// errNotModified is returned by Start for a container that already runs;
// the API answers 304 as dockerd does.
var errNotModified = errors.New("container already started")

// IsNotModified tells whether err means "nothing to do" (HTTP 304).
func IsNotModified(err error) bool { return errors.Is(err, errNotModified) }

// Start starts a created or stopped container.
func (s *Service) Start(ctx context.Context, ref string) error {
	c, err := s.store.Get(ref)
	if err != nil {
		return err
	}
	c.Lock()
	defer c.Unlock()
	switch st := &c.State; {
	case st.Paused:
		return errdefs.ErrConflict.WithMessage("cannot start a paused container, try unpause instead")
	case st.Running:
		return errNotModified
	case st.RemovalInProgress || st.Dead:
		return errdefs.ErrConflict.WithMessage("container is marked for removal and cannot be started")
	}
	c.ManuallyStopped = false
	err = s.startLocked(ctx, c)
	if err != nil && c.HostConfig.AutoRemove {
		// As dockerd: a --rm container that cannot start is removed, so a
		// client waiting for its removal is released.
		go func() {
			if rerr := s.Remove(context.Background(), c.ID, RemoveOpts{Force: true}); rerr != nil && !errdefs.IsNotFound(rerr) {
				slog.Warn("auto-removing a container that failed to start", "container", c.ID[:12], "err", rerr)
			}
		}()
	}
	return err
}

// startLocked starts c's process under a new monitor; c is locked.
func (s *Service) startLocked(ctx context.Context, c *container.Container) (retErr error) {
	rw, err := s.cfg.Layers.GetRW(c.ID)
	if err != nil {
		return fmt.Errorf("container's writable layer: %w", err)
	}
	rootfs, err := rw.Mount(ctx)
	if err != nil {
		return fmt.Errorf("mounting the container's root filesystem: %w", err)
	}
	runDir := s.runDir(c.ID)
	defer func() {
		if retErr != nil {
			if err := rw.Unmount(context.WithoutCancel(ctx)); err != nil {
				slog.Warn("unmounting after a failed start", "container", c.ID, "err", err)
			}
			os.RemoveAll(runDir)
			c.State.Error = retErr.Error()
			c.State.ExitCode = startExitCode(retErr.Error())
			_ = s.store.Save(c)
		}
	}()

	var sb *networks.Sandbox
	if s.usesNetns(c) {
		if sb, err = s.cfg.Networks.Join(s.joinRequest(c)); err != nil {
			return err
		}
		defer func() {
			if retErr != nil {
				s.cfg.Networks.Leave(c.ID)
			}
		}()
	}
	spec, err := s.spec(c, rootfs, sb)
	if err != nil {
		return err
	}
	if err := checkExecStrings(spec.Process); err != nil {
		return err
	}
	os.RemoveAll(runDir)
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return err
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(runDir, "config.json"), data, 0o600); err != nil {
		return err
	}
	logPath := c.LogPath
	if c.HostConfig.LogConfig.Type == "none" {
		logPath = ""
	}
	cfg := c.Config
	cl, err := shim.New(ctx, shim.Config{
		ID: c.ID, Bundle: runDir, RuntimeRoot: s.rt.Root, StateDir: runDir, LogPath: logPath,
		Terminal: cfg.Tty, OpenStdin: cfg.OpenStdin,
		// As in Docker, closing the attached stdin closes the container's
		// stdin only without a TTY.
		StdinOnce: cfg.StdinOnce && !cfg.Tty,
	}, s.cfg.Shim)
	if err != nil {
		return startError(err)
	}
	l := s.live(c.ID)
	s.mu.Lock()
	l.shim = cl
	pending := l.pending
	l.pending = nil
	s.mu.Unlock()
	for _, p := range pending {
		s.connectAttach(cl, p)
	}
	if err := cl.Start(ctx); err != nil {
		s.killShim(ctx, c.ID, cl)
		return startError(err)
	}
	if err := c.SetRunning(cl.Pid()); err != nil {
		return err
	}
	c.State.Error = ""
	if err := s.store.Save(c); err != nil {
		slog.Error("saving container state", "container", c.ID, "err", err)
	}
	go s.monitor(c, cl)
	for _, n := range s.sandboxNetworks(sb) {
		s.emitNetwork(eventtypes.ActionConnect, n, c.ID)
	}
	go s.emit(c, eventtypes.ActionStart, nil)
	return nil
}

// checkExecStrings refuses, before anything runs, an argument or
// environment variable longer than the kernel takes in one execve string
// (MAX_ARG_STRLEN, 32 pages): the exec would fail with E2BIG only inside
// the started container.
func checkExecStrings(p *specs.Process) error {
	if p == nil {
		return nil
	}
	limit := 32 * os.Getpagesize()
	tooLong := func(what string, n int) error {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(
			"failed to create task for container: %s is %d bytes, longer than the %d bytes one exec argument can hold: argument list too long", what, n, limit-1))
	}
	for i, a := range p.Args {
		if len(a) >= limit {
			return tooLong(fmt.Sprintf("argument %d", i), len(a))
		}
	}
	for _, e := range p.Env {
		if len(e) >= limit {
			name, _, _ := strings.Cut(e, "=")
			if len(name) > 64 {
				name = name[:64] + "..."
			}
			return tooLong(fmt.Sprintf("environment variable %q", name), len(e))
		}
	}
	return nil
}

// killShim ends a container whose start failed after its monitor came up.
func (s *Service) killShim(ctx context.Context, id string, cl *shim.Client) {
	if rc, err := s.rt.Load(id); err == nil {
		_ = rc.Delete(ctx, true)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, _ = cl.Wait(wctx)
}

// startError wraps a runtime error the way dockerd reports start failures:
// the docker CLI derives its exit code 126/127 from the message.
func startError(err error) error {
	msg := "failed to create task for container: " + err.Error()
	if startExitCode(msg) != 128 {
		return errdefs.ErrInvalidArgument.WithMessage(msg)
	}
	return errdefs.ErrUnknown.WithMessage(msg)
}

func startExitCode(msg string) int {
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return 127
	case strings.Contains(msg, "permission denied"), strings.Contains(msg, "is a directory"):
		return 126
	}
	return 128
}

// spec writes the container's /etc files and builds its runtime config.
func (s *Service) spec(c *container.Container, rootfs string, sb *networks.Sandbox) (*specs.Spec, error) {
	files, err := s.writeEtcFiles(c, sb)
	if err != nil {
		return nil, err
	}
	cfg := c.Config
	user, err := oci.ResolveUser(rootfs, cfg.User, c.HostConfig.GroupAdd)
	if err != nil {
		return nil, err
	}
	if cfg.WorkingDir != "" {
		if err := mkdirInRoot(rootfs, cfg.WorkingDir, int(user.UID), int(user.GID)); err != nil {
			return nil, err
		}
	}
	o := oci.Opts{
		ID: c.ID, Rootfs: rootfs, User: user,
		HostnamePath: files.hostname, HostsPath: files.hosts, ResolvConfPath: files.resolv,
		HostCapabilities: s.cfg.HostCapabilities, CgroupParent: s.cfg.CgroupParent,
	}
	if sb != nil {
		o.NetnsPath = sb.NetnsPath
	}
	if ref, ok := strings.CutPrefix(string(c.HostConfig.NetworkMode), "container:"); ok {
		// The other container's network namespace, and its view of
		// names and resolvers, as in Docker.
		other, err := s.runningOther(c, ref)
		if err != nil {
			return nil, err
		}
		o.NetnsPath = fmt.Sprintf("/proc/%d/ns/net", other.pid)
		o.HostsPath, o.ResolvConfPath = other.hosts, other.resolv
	}
	if c.HostConfig.Init != nil && *c.HostConfig.Init {
		if s.cfg.InitBinary == nil {
			return nil, errdefs.ErrNotImplemented.WithMessage("--init is not available")
		}
		if o.InitBinary, err = s.cfg.InitBinary(); err != nil {
			return nil, err
		}
	}
	return oci.Spec(cfg, c.HostConfig, o)
}

// mkdirInRoot creates the working directory inside the container's root
// (Docker creates a missing WORKDIR), never following symlinks out of it.
func mkdirInRoot(rootfs, dir string, uid, gid int) error {
	p, err := securejoin.SecureJoin(rootfs, dir)
	if err != nil {
		return err
	}
	if _, err := os.Stat(p); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		return fmt.Errorf("creating working directory %s: %w", dir, err)
	}
	return os.Lchown(p, uid, gid)
}

// monitor waits for the container's exit through its monitor process.
func (s *Service) monitor(c *container.Container, cl *shim.Client) {
	st, err := cl.Wait(s.ctx)
	if err != nil {
		if s.ctx.Err() != nil {
			return // daemon shutting down: the monitor keeps the container
		}
		rst, rerr := s.readExitAfterLoss(c.ID)
		if rerr != nil {
			slog.Warn("lost the container monitor", "container", c.ID[:12], "err", err)
		}
		st = rst
	}
	s.finishExit(c, st)
}

// readExitAfterLoss reads the exit status of a container whose monitor
// connection broke: the monitor writes it before it goes away.
func (s *Service) readExitAfterLoss(id string) (shim.ExitStatus, error) {
	dir := s.runDir(id)
	for range 50 {
		if st, err := shim.ReadExit(dir); err == nil {
			return *st, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return shim.ExitStatus{ExitCode: 255, Error: "container monitor exited without an exit status"}, errors.New("no exit status")
}

// finishExit records an exit: state, unmounted root, waiters woken, and
// auto-removal.
func (s *Service) finishExit(c *container.Container, st shim.ExitStatus) {
	c.Lock()
	ranFor := time.Since(c.State.StartedAt)
	if c.State.Running {
		_ = c.SetStopped(st.ExitCode, st.OOMKilled)
		if !st.FinishedAt.IsZero() {
			c.State.FinishedAt = st.FinishedAt.UTC()
		}
		c.State.Error = st.Error
	}
	if rw, err := s.cfg.Layers.GetRW(c.ID); err == nil {
		if err := rw.Unmount(context.Background()); err != nil {
			slog.Warn("unmounting the container's root filesystem", "container", c.ID[:12], "err", err)
		}
	}
	if err := s.store.Save(c); err != nil {
		slog.Error("saving container state", "container", c.ID[:12], "err", err)
	}
	s.cleanupRunDir(c.ID)
	var left []*networks.Network // for their events, after "die"
	if s.cfg.Networks != nil {
		left = s.sandboxNetworks(s.cfg.Networks.Sandbox(c.ID))
		s.cfg.Networks.Leave(c.ID)
	}
	autoRemove := c.HostConfig.AutoRemove
	restart := shouldRestart(c.HostConfig.RestartPolicy, st.ExitCode, c.RestartCount, c.ManuallyStopped) && !c.State.RemovalInProgress &&
		!autoRemove && s.ctx.Err() == nil
	count := c.RestartCount
	if restart {
		c.SetBackoff()
		if err := s.store.Save(c); err != nil {
			slog.Error("saving container state", "container", c.ID[:12], "err", err)
		}
	}
	c.Unlock()
	if st.OOMKilled {
		s.emit(c, eventtypes.ActionOOM, nil)
	}
	s.emit(c, eventtypes.ActionDie, map[string]string{"exitCode": strconv.Itoa(st.ExitCode)})
	for _, n := range left {
		s.emitNetwork(eventtypes.ActionDisconnect, n, c.ID)
	}

	l := s.live(c.ID)
	s.mu.Lock()
	l.shim = nil
	close(l.exited)
	l.exited = make(chan struct{})
	s.mu.Unlock()
	if autoRemove {
		if err := s.Remove(context.Background(), c.ID, RemoveOpts{Force: true}); err != nil && !errdefs.IsNotFound(err) {
			slog.Warn("auto-removing container", "container", c.ID[:12], "err", err)
		}
		return
	}
	if restart {
		go s.restartAfter(c, restartDelay(count, ranFor))
	}
}

// shouldRestart applies a restart policy to an exit.
func shouldRestart(p containertypes.RestartPolicy, exitCode, restarts int, manuallyStopped bool) bool {
	switch p.Name {
	case containertypes.RestartPolicyAlways:
		return !manuallyStopped
	case containertypes.RestartPolicyUnlessStopped:
		return !manuallyStopped
	case containertypes.RestartPolicyOnFailure:
		return !manuallyStopped && exitCode != 0 && (p.MaximumRetryCount == 0 || restarts < p.MaximumRetryCount)
	}
	return false
}

// restartDelay is Docker's back-off: 100 ms doubling per restart up to a
// minute, back to 100 ms after a run of 10 seconds or more.
func restartDelay(restarts int, ranFor time.Duration) time.Duration {
	if ranFor >= 10*time.Second {
		return 100 * time.Millisecond
	}
	d := 100 * time.Millisecond << min(restarts, 10)
	return min(d, time.Minute)
}

// restartAfter starts c again after delay unless something else happened
// to it meanwhile (started, stopped by hand, removed).
func (s *Service) restartAfter(c *container.Container, delay time.Duration) {
	select {
	case <-time.After(delay):
	case <-s.ctx.Done():
		return
	}
	c.Lock()
	defer c.Unlock()
	if !c.State.Restarting || c.State.Running {
		return // stopped, started or removed meanwhile
	}
	if _, err := s.store.Get(c.ID); err != nil {
		return // removed
	}
	if c.State.RemovalInProgress || c.State.Dead || c.ManuallyStopped {
		c.CancelRestart()
		_ = s.store.Save(c)
		return
	}
	c.RestartCount++
	if err := s.startLocked(s.ctx, c); err != nil {
		slog.Warn("restart policy: start failed", "container", c.ID[:12], "err", err)
		c.CancelRestart()
		_ = s.store.Save(c)
		return
	}
	go s.emit(c, eventtypes.ActionRestart, nil)
}

// startOnBoot starts, after a daemon start, the stopped containers whose
// policy says so: "always", and "unless-stopped" unless stopped by hand.
func (s *Service) startOnBoot() {
	for _, c := range s.store.List() {
		c.Lock()
		p := c.HostConfig.RestartPolicy.Name
		run := !c.State.Running && !c.State.StartedAt.IsZero() && !c.State.RemovalInProgress && !c.State.Dead &&
			(p == containertypes.RestartPolicyAlways || (p == containertypes.RestartPolicyUnlessStopped && !c.ManuallyStopped))
		if run {
			if err := s.startLocked(s.ctx, c); err != nil {
				slog.Warn("restart policy: start at daemon start failed", "container", c.ID[:12], "err", err)
			}
		}
		c.Unlock()
	}
}

// netOwner is the running container whose network another one joins.
type netOwner struct {
	pid           int
	hosts, resolv string
}

// runningOther finds the container named by --network container:REF; it
// must run (Docker's message otherwise).
func (s *Service) runningOther(c *container.Container, ref string) (netOwner, error) {
	other, err := s.store.Get(ref)
	if err != nil {
		return netOwner{}, err
	}
	if other.ID == c.ID {
		return netOwner{}, errdefs.ErrInvalidArgument.WithMessage("cannot join own network")
	}
	other.Lock()
	defer other.Unlock()
	if !other.State.Running {
		return netOwner{}, errdefs.ErrConflict.WithMessage(fmt.Sprintf("cannot join network namespace of a non running container: container %s is exited", other.ID))
	}
	dir := s.store.Dir(other.ID)
	return netOwner{pid: other.State.Pid, hosts: filepath.Join(dir, "hosts"), resolv: filepath.Join(dir, "resolv.conf")}, nil
}
