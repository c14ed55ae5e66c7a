package containers

import (
	"context"
	"fmt"
	"github.com/berth-dev/berth/internal/signals"
	"log/slog"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/oci"
	"github.com/containerd/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
)

// defaultStopTimeout is Docker's grace period before SIGKILL.
const defaultStopTimeout = 10

// exitChan returns the channel closed at the container's next exit.
func (s *Service) exitChan(id string) <-chan struct{} {
	l := s.live(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	return l.exited
}

// signal sends sig to the container's init process.
func (s *Service) signal(c *container.Container, sig syscall.Signal) error {
	rc, err := s.rt.Load(c.ID)
	if err != nil {
		return fmt.Errorf("container %s: %w", c.ID, err)
	}
	return rc.Kill(sig, false)
}

// Stop sends the container's stop signal, waits up to the timeout, then
// kills it.
func (s *Service) Stop(ctx context.Context, ref, signal string, timeout *int) error {
	c, err := s.store.Get(ref)
	if err != nil {
		return err
	}
	c.Lock()
	if !c.State.Running {
		if c.State.Restarting {
			// Waiting out its restart back-off: the restart is off.
			c.ManuallyStopped = true
			c.CancelRestart()
			err := s.store.Save(c)
			c.Unlock()
			s.emit(c, eventtypes.ActionStop, nil)
			return err
		}
		c.Unlock()
		return errNotModified
	}
	if signal == "" {
		signal = c.Config.StopSignal
	}
	if signal == "" {
		signal = oci.DefaultStopSignal
	}
	t := defaultStopTimeout
	if c.Config.StopTimeout != nil {
		t = *c.Config.StopTimeout
	}
	if timeout != nil {
		t = *timeout
	}
	paused := c.State.Paused
	c.ManuallyStopped = true
	_ = s.store.Save(c)
	c.Unlock()
	sig, err := signals.Parse(signal)
	if err != nil {
		return err
	}
	exited := s.exitChan(c.ID)
	defer s.emit(c, eventtypes.ActionStop, nil)
	s.emit(c, eventtypes.ActionKill, map[string]string{"signal": strconv.Itoa(int(sig))})
	if err := s.signal(c, sig); err != nil {
		slog.Debug("stop signal", "container", c.ID[:12], "err", err)
	}
	if paused {
		// A frozen process cannot handle its signal: thaw it.
		s.thaw(c)
	}
	if t >= 0 {
		select {
		case <-exited:
			return nil
		case <-time.After(time.Duration(t) * time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
	} else {
		select {
		case <-exited:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.killAndWait(ctx, c, exited)
}

func (s *Service) thaw(c *container.Container) {
	if rc, err := s.rt.Load(c.ID); err == nil {
		_ = rc.Resume()
	}
	c.Lock()
	if c.State.Paused {
		_ = c.SetUnpaused()
		_ = s.store.Save(c)
	}
	c.Unlock()
}

// killAndWait sends SIGKILL to every process of the container and waits
// for the exit to be recorded.
func (s *Service) killAndWait(ctx context.Context, c *container.Container, exited <-chan struct{}) error {
	if rc, err := s.rt.Load(c.ID); err == nil {
		if err := rc.Kill(syscall.SIGKILL, true); err != nil {
			slog.Debug("kill", "container", c.ID[:12], "err", err)
		}
	}
	select {
	case <-exited:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("container %s did not exit 30 seconds after SIGKILL", c.ID[:12])
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Kill sends a signal (SIGKILL by default) to the container.
func (s *Service) Kill(ctx context.Context, ref, signal string) error {
	c, err := s.store.Get(ref)
	if err != nil {
		return err
	}
	sig := syscall.SIGKILL
	if signal != "" {
		if sig, err = signals.Parse(signal); err != nil {
			return err
		}
	}
	c.Lock()
	running := c.State.Running
	if running {
		c.ManuallyStopped = true
		_ = s.store.Save(c)
	}
	c.Unlock()
	if !running {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Cannot kill container: %s: container %s is not running", ref, c.ID))
	}
	exited := s.exitChan(c.ID)
	s.emit(c, eventtypes.ActionKill, map[string]string{"signal": strconv.Itoa(int(sig))})
	if sig == syscall.SIGKILL {
		return s.killAndWait(ctx, c, exited)
	}
	return s.signal(c, sig)
}

// Restart stops the container if it runs and starts it again.
func (s *Service) Restart(ctx context.Context, ref, signal string, timeout *int) error {
	if err := s.Stop(ctx, ref, signal, timeout); err != nil && !IsNotModified(err) {
		return fmt.Errorf("cannot restart container %s: %w", ref, err)
	}
	if err := s.Start(ctx, ref); err != nil && !IsNotModified(err) {
		return fmt.Errorf("cannot restart container %s: %w", ref, err)
	}
	c, err := s.store.Get(ref)
	if err == nil {
		c.Lock()
		c.RestartCount = 0
		_ = s.store.Save(c)
		c.Unlock()
		s.emit(c, eventtypes.ActionRestart, nil)
	}
	return nil
}

// Wait returns a channel that receives the container's exit once the
// condition holds: "not-running" (default), "next-exit" or "removed".
func (s *Service) Wait(ctx context.Context, ref string, cond containertypes.WaitCondition) (<-chan containertypes.WaitResponse, error) {
	c, err := s.store.Get(ref)
	if err != nil {
		return nil, err
	}
	switch cond {
	case "", containertypes.WaitConditionNotRunning, containertypes.WaitConditionNextExit, containertypes.WaitConditionRemoved:
	default:
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid condition: %q", cond))
	}
	l := s.live(c.ID)
	s.mu.Lock()
	exited, removed := l.exited, l.removed
	s.mu.Unlock()
	c.Lock()
	running := c.State.Running
	c.Unlock()

	out := make(chan containertypes.WaitResponse, 1)
	result := func() containertypes.WaitResponse {
		c.Lock()
		defer c.Unlock()
		r := containertypes.WaitResponse{StatusCode: int64(c.State.ExitCode)}
		if c.State.Error != "" {
			r.Error = &containertypes.WaitExitError{Message: c.State.Error}
		}
		return r
	}
	go func() {
		switch {
		case cond == containertypes.WaitConditionRemoved:
			select {
			case <-removed:
			case <-ctx.Done():
				return
			}
		case cond == containertypes.WaitConditionNextExit || running:
			select {
			case <-exited:
			case <-removed:
			case <-ctx.Done():
				return
			}
		}
		out <- result()
	}()
	return out, nil
}

// Pause freezes every process of the container.
func (s *Service) Pause(ctx context.Context, ref string) error {
	return s.freeze(ref, true)
}

// Unpause thaws a paused container.
func (s *Service) Unpause(ctx context.Context, ref string) error {
	return s.freeze(ref, false)
}

func (s *Service) freeze(ref string, pause bool) error {
	c, err := s.store.Get(ref)
	if err != nil {
		return err
	}
	c.Lock()
	defer c.Unlock()
	switch {
	case !c.State.Running:
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is not running", c.ID))
	case pause && c.State.Paused:
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is already paused", c.ID))
	case !pause && !c.State.Paused:
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is not paused", c.ID))
	}
	rc, err := s.rt.Load(c.ID)
	if err != nil {
		return err
	}
	action := eventtypes.ActionPause
	if pause {
		if err := rc.Pause(); err != nil {
			return err
		}
		_ = c.SetPaused()
	} else {
		if err := rc.Resume(); err != nil {
			return err
		}
		_ = c.SetUnpaused()
		action = eventtypes.ActionUnPause
	}
	if err := s.store.Save(c); err != nil {
		return err
	}
	// c is locked here: emit once it is released.
	go s.emit(c, action, nil)
	return nil
}

// RemoveOpts are the flags of DELETE /containers/{id}.
type RemoveOpts struct {
	Force, Volumes, Link bool
}

// Remove deletes a container, its writable layer and its logs.
func (s *Service) Remove(ctx context.Context, ref string, o RemoveOpts) error {
	c, err := s.store.Get(ref)
	if err != nil {
		return err
	}
	if o.Link {
		return errdefs.ErrNotImplemented.WithMessage("container links are not supported")
	}
	c.Lock()
	running := c.State.Running
	if c.State.Restarting {
		if !o.Force {
			c.Unlock()
			return errdefs.ErrConflict.WithMessage(fmt.Sprintf("cannot remove container %q: container is restarting: stop the container before removing or force remove", c.InspectName()))
		}
		c.CancelRestart()
	}
	c.Unlock()
	if running {
		if !o.Force {
			c.Lock()
			err := c.SetRemoving()
			c.Unlock()
			if err == nil {
				// Not expected: SetRemoving refuses running containers.
				c.Lock()
				c.ResetRemoving()
				c.Unlock()
			}
			return err
		}
		exited := s.exitChan(c.ID)
		if c.State.Paused {
			s.thaw(c)
		}
		if err := s.killAndWait(ctx, c, exited); err != nil {
			return fmt.Errorf("could not kill container %s: %w", c.ID[:12], err)
		}
	}
	c.Lock()
	if err := c.SetRemoving(); err != nil {
		c.Unlock()
		return err
	}
	if err := s.cfg.Layers.ReleaseRW(c.ID); err != nil && !errdefs.IsNotFound(err) {
		c.ResetRemoving()
		c.Unlock()
		return fmt.Errorf("removing the container's writable layer: %w", err)
	}
	if err := s.store.Delete(c.ID); err != nil {
		_ = c.SetDead()
		_ = s.store.Save(c)
		c.Unlock()
		return err
	}
	c.Unlock()
	s.cleanupRunDir(c.ID)
	s.execs.removeContainer(c.ID)
	s.emit(c, eventtypes.ActionDestroy, nil)
	s.mu.Lock()
	if l, ok := s.state[c.ID]; ok {
		close(l.removed)
		for _, p := range l.pending {
			p.fail(errdefs.ErrNotFound.WithMessage("container removed"))
		}
		delete(s.state, c.ID)
	}
	s.mu.Unlock()
	return nil
}

// Rename gives a container a new name.
func (s *Service) Rename(ctx context.Context, ref, newName string) error {
	c, err := s.store.Get(ref)
	if err != nil {
		return err
	}
	if newName == "" {
		return errdefs.ErrInvalidArgument.WithMessage("Neither old nor new names may be empty")
	}
	c.Lock()
	old := c.Name
	err = s.store.Rename(c, newName)
	c.Unlock()
	if err == nil {
		s.emit(c, eventtypes.ActionRename, map[string]string{"oldName": "/" + old})
	}
	return err
}

// Prune removes every stopped container the filters select (label,
// label!, until) and reports what went.
func (s *Service) Prune(ctx context.Context, filters map[string][]string) ([]string, uint64, error) {
	for k := range filters {
		switch k {
		case "label", "label!", "until":
		default:
			return nil, 0, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter '%s'", k))
		}
	}
	var until time.Time
	if vs := filters["until"]; len(vs) > 0 {
		t, err := parseUntil(vs[0])
		if err != nil {
			return nil, 0, err
		}
		until = t
	}
	var deleted []string
	for _, c := range s.store.List() {
		c.Lock()
		keep := c.State.Running || (!until.IsZero() && !c.Created.Before(until)) || !labelsMatch(c.Config.Labels, filters["label"], filters["label!"])
		c.Unlock()
		if keep {
			continue
		}
		if err := s.Remove(ctx, c.ID, RemoveOpts{}); err != nil {
			slog.Warn("prune", "container", c.ID[:12], "err", err)
			continue
		}
		deleted = append(deleted, c.ID)
	}
	return deleted, 0, nil
}

func labelsMatch(labels map[string]string, want, notWant []string) bool {
	has := func(v string) bool {
		k, val, withVal := strings.Cut(v, "=")
		got, ok := labels[k]
		return ok && (!withVal || got == val)
	}
	for _, v := range want {
		if !has(v) {
			return false
		}
	}
	for _, v := range notWant {
		if has(v) {
			return false
		}
	}
	return true
}

// parseUntil accepts a Unix timestamp, an RFC 3339 time or a Go duration
// (meaning that long ago).
func parseUntil(v string) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), nil
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		sec := int64(n)
		return time.Unix(sec, int64((n-float64(sec))*1e9)), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter 'until=%s'", v))
}
