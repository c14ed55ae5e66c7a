// Package container holds berth's model of a container and the Store that
// keeps every container's record on disk and in an in-memory index.
//
// Names are kept without the leading "/" the Docker API shows (in memory
// and on disk); InspectName renders the API form. Lookups accept both.
//
// Concurrency: each Container carries its own mutex (Lock/Unlock). Code that
// reads or changes a Container shared through the Store must hold its lock.
// Store methods that take a *Container (Save, Rename) expect the caller to
// hold that container's lock; Add expects a container not yet shared with
// anyone. The lock order is: container lock, then the Store's locks.
package container

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// DefaultDriver is the storage driver name berth reports.
const DefaultDriver = "overlay2"

// Container is berth's record of one container; `docker inspect` output is
// built from it.
type Container struct {
	mu sync.Mutex

	ID string
	// Name is stored without the leading "/"; see InspectName.
	Name    string
	Created time.Time

	// Path and Args are the process started in the container.
	Path string
	Args []string

	// Image is the image ID; ImageRef is the reference the user gave.
	Image    string
	ImageRef string

	Config     *container.Config
	HostConfig *container.HostConfig `json:"-"` // kept in hostconfig.json

	State State

	RestartCount int
	// ManuallyStopped is set by stop and kill: restart policies other
	// than "always" leave such a container alone, also across daemon
	// restarts, until it is started again.
	ManuallyStopped bool `json:",omitempty"`
	Driver          string
	LogPath         string

	// NetworkSettings is kept opaque until the network model exists.
	NetworkSettings json.RawMessage `json:",omitempty"`
	// Endpoints is the endpoint configuration of each network the
	// container is on (--ip, --alias, the network's ID), by network name;
	// see endpoints.go.
	Endpoints map[string]*network.EndpointSettings `json:",omitempty"`
	// NetworkOrder lists the keys of Endpoints in the order the container
	// joined the networks: the first is its primary network (eth0). It is
	// nil in records written before containers had several networks, and
	// empty (not nil) once the container left every network.
	NetworkOrder []string `json:"NetworkOrder"`
}

// Lock locks the container's mutex.
func (c *Container) Lock() { c.mu.Lock() }

// Unlock unlocks the container's mutex.
func (c *Container) Unlock() { c.mu.Unlock() }

// InspectName returns the name as the Docker API shows it, with a leading "/".
func (c *Container) InspectName() string { return "/" + c.Name }

// State is the container's lifecycle state. Status is derived from the
// flags by every transition; change State only through the Set* methods
// of Container.
type State struct {
	Status            container.ContainerState
	Running           bool
	Paused            bool
	Restarting        bool
	OOMKilled         bool
	RemovalInProgress bool
	Dead              bool
	Pid               int
	ExitCode          int
	Error             string
	StartedAt         time.Time
	FinishedAt        time.Time
}

// status derives the Status string from the flags.
func (s *State) status() container.ContainerState {
	switch {
	case s.Running && s.Paused:
		return container.StatePaused
	case s.Restarting:
		return container.StateRestarting
	case s.Running:
		return container.StateRunning
	case s.RemovalInProgress:
		return container.StateRemoving
	case s.Dead:
		return container.StateDead
	case s.StartedAt.IsZero():
		return container.StateCreated
	default:
		return container.StateExited
	}
}

// API returns the state in the form of the Docker API (times as RFC 3339
// strings with nanoseconds, in UTC; a zero time renders as
// "0001-01-01T00:00:00Z" like Docker).
func (s *State) API() container.State {
	return container.State{
		Status: s.status(),
		// A container waiting out its restart back-off counts as
		// running, as with Docker.
		Running:    s.Running || s.Restarting,
		Paused:     s.Paused,
		Restarting: s.Restarting,
		OOMKilled:  s.OOMKilled,
		Dead:       s.Dead,
		Pid:        s.Pid,
		ExitCode:   s.ExitCode,
		Error:      s.Error,
		StartedAt:  s.StartedAt.UTC().Format(time.RFC3339Nano),
		FinishedAt: s.FinishedAt.UTC().Format(time.RFC3339Nano),
	}
}

// now is the clock used by state transitions; times are kept in UTC.
var now = func() time.Time { return time.Now().UTC() }

// NewContainer returns a container in the "created" state with a fresh ID,
// the given name (which may be empty: Store.Add then picks one) and the
// creation time set.
func NewContainer(name string) *Container {
	c := &Container{
		ID:      GenerateID(),
		Name:    normalizeName(name),
		Created: now(),
		Driver:  DefaultDriver,
	}
	c.State.Status = c.State.status()
	return c
}

// The transitions below must be called with the container locked. An
// invalid transition leaves the state unchanged and returns an error for
// which errdefs.IsConflict is true.

// SetRunning records that the container's process started with pid. It is
// valid from created, exited and restarting.
func (c *Container) SetRunning(pid int) error {
	s := &c.State
	switch {
	case s.RemovalInProgress || s.Dead:
		return conflictf("container %s is marked for removal and cannot be started", c.ID)
	case s.Paused:
		return conflictf("cannot start a paused container, try unpause instead")
	case s.Running && !s.Restarting:
		return conflictf("container %s is already running", c.ID)
	}
	s.Running = true
	s.Restarting = false
	s.Paused = false
	s.OOMKilled = false
	s.Pid = pid
	s.ExitCode = 0
	s.Error = ""
	s.StartedAt = now()
	s.Status = s.status()
	return nil
}

// SetStopped records that the container's process exited. It is valid while
// running (including paused) and while restarting (the restart was
// abandoned).
func (c *Container) SetStopped(exitCode int, oomKilled bool) error {
	s := &c.State
	if !s.Running {
		return conflictf("container %s is not running", c.ID)
	}
	s.Running = false
	s.Paused = false
	s.Restarting = false
	s.Pid = 0
	s.ExitCode = exitCode
	s.OOMKilled = oomKilled
	s.FinishedAt = now()
	s.Status = s.status()
	return nil
}

// SetRestarting records that the process exited and the restart policy is
// about to start it again. It is valid only while running.
func (c *Container) SetRestarting(exitCode int, oomKilled bool) error {
	s := &c.State
	switch {
	case !s.Running:
		return conflictf("container %s is not running", c.ID)
	case s.Paused:
		return conflictf("container %s is paused, unpause the container before restarting", c.ID)
	case s.Restarting:
		return conflictf("container %s is already restarting", c.ID)
	}
	s.Restarting = true
	s.Pid = 0
	s.ExitCode = exitCode
	s.OOMKilled = oomKilled
	s.FinishedAt = now()
	s.Status = s.status()
	return nil
}

// SetBackoff records, after SetStopped, that the restart policy starts the
// container again after a delay: it shows as restarting meanwhile.
func (c *Container) SetBackoff() {
	c.State.Restarting = true
	c.State.Status = c.State.status()
}

// CancelRestart records that a pending restart will not happen (stop,
// removal, daemon restart).
func (c *Container) CancelRestart() {
	c.State.Restarting = false
	c.State.Status = c.State.status()
}

// SetPaused records that the container was frozen.
func (c *Container) SetPaused() error {
	s := &c.State
	switch {
	case !s.Running:
		return conflictf("container %s is not running", c.ID)
	case s.Paused:
		return conflictf("container %s is already paused", c.ID)
	case s.Restarting:
		return conflictf("container %s is restarting, wait until the container is running", c.ID)
	}
	s.Paused = true
	s.Status = s.status()
	return nil
}

// SetUnpaused records that the container was thawed.
func (c *Container) SetUnpaused() error {
	s := &c.State
	switch {
	case !s.Running:
		return conflictf("container %s is not running", c.ID)
	case !s.Paused:
		return conflictf("container %s is not paused", c.ID)
	}
	s.Paused = false
	s.Status = s.status()
	return nil
}

// SetRemoving marks the container as being removed. The container must not
// be running (a forced removal stops it first).
func (c *Container) SetRemoving() error {
	s := &c.State
	switch {
	case s.RemovalInProgress:
		return conflictf("removal of container %s is already in progress", c.ID)
	case s.Running && s.Paused:
		return conflictf("cannot remove container %q: container is paused: unpause and stop the container before removing or force remove", c.InspectName())
	case s.Running && s.Restarting:
		return conflictf("cannot remove container %q: container is restarting: stop the container before removing or force remove", c.InspectName())
	case s.Running:
		return conflictf("cannot remove container %q: container is running: stop the container before removing or force remove", c.InspectName())
	}
	s.RemovalInProgress = true
	s.Status = s.status()
	return nil
}

// ResetRemoving clears the removal mark after a removal that did not happen
// (for example, the user's request was cancelled before anything was deleted).
func (c *Container) ResetRemoving() {
	c.State.RemovalInProgress = false
	c.State.Status = c.State.status()
}

// SetDead records that removing the container failed half way; the daemon
// retries the removal on its next start. It is invalid while running.
func (c *Container) SetDead() error {
	s := &c.State
	if s.Running {
		return conflictf("container %s is running", c.ID)
	}
	s.Dead = true
	s.RemovalInProgress = false
	s.Status = s.status()
	return nil
}
