package container

import (
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
)

// stateAt returns a new container brought into the named
// state through valid transitions.
func stateAt(t *testing.T, st container.ContainerState) *Container {
	t.Helper()
	c := NewContainer("web")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("setting up %s: %v", st, err)
		}
	}
	switch st {
	case container.StateCreated:
	case container.StateRunning:
		must(c.SetRunning(100))
	case container.StatePaused:
		must(c.SetRunning(100))
		must(c.SetPaused())
	case container.StateRestarting:
		must(c.SetRunning(100))
		must(c.SetRestarting(1, false))
	case container.StateExited:
		must(c.SetRunning(100))
		must(c.SetStopped(3, false))
	case container.StateRemoving:
		must(c.SetRemoving())
	case container.StateDead:
		must(c.SetRemoving())
		must(c.SetDead())
	default:
		t.Fatalf("unknown state %s", st)
	}
	if c.State.Status != st {
		t.Fatalf("set up %s, got %s", st, c.State.Status)
	}
	return c
}

func TestStateTransitions(t *testing.T) {
	type op struct {
		name string
		fn   func(c *Container) error
	}
	var (
		run       = op{"SetRunning", func(c *Container) error { return c.SetRunning(200) }}
		stop      = op{"SetStopped", func(c *Container) error { return c.SetStopped(137, true) }}
		restart   = op{"SetRestarting", func(c *Container) error { return c.SetRestarting(1, false) }}
		pause     = op{"SetPaused", func(c *Container) error { return c.SetPaused() }}
		unpause   = op{"SetUnpaused", func(c *Container) error { return c.SetUnpaused() }}
		remove    = op{"SetRemoving", func(c *Container) error { return c.SetRemoving() }}
		dead      = op{"SetDead", func(c *Container) error { return c.SetDead() }}
		created   = container.StateCreated
		running   = container.StateRunning
		paused    = container.StatePaused
		restartng = container.StateRestarting
		exited    = container.StateExited
		removing  = container.StateRemoving
		deadSt    = container.StateDead
	)
	for _, tc := range []struct {
		from    container.ContainerState
		op      op
		want    container.ContainerState // when the transition is valid
		wantErr string                   // "%s" is replaced by the ID, "%n" by "/web"
	}{
		{from: created, op: run, want: running},
		{from: exited, op: run, want: running},
		{from: restartng, op: run, want: running},
		{from: running, op: run, wantErr: "container %s is already running"},
		{from: paused, op: run, wantErr: "cannot start a paused container, try unpause instead"},
		{from: removing, op: run, wantErr: "container %s is marked for removal and cannot be started"},
		{from: deadSt, op: run, wantErr: "container %s is marked for removal and cannot be started"},

		{from: running, op: stop, want: exited},
		{from: paused, op: stop, want: exited},
		{from: restartng, op: stop, want: exited},
		{from: created, op: stop, wantErr: "container %s is not running"},
		{from: exited, op: stop, wantErr: "container %s is not running"},

		{from: running, op: restart, want: restartng},
		{from: created, op: restart, wantErr: "container %s is not running"},
		{from: paused, op: restart, wantErr: "container %s is paused, unpause the container before restarting"},
		{from: restartng, op: restart, wantErr: "container %s is already restarting"},

		{from: running, op: pause, want: paused},
		{from: created, op: pause, wantErr: "container %s is not running"},
		{from: exited, op: pause, wantErr: "container %s is not running"},
		{from: paused, op: pause, wantErr: "container %s is already paused"},
		{from: restartng, op: pause, wantErr: "container %s is restarting, wait until the container is running"},

		{from: paused, op: unpause, want: running},
		{from: running, op: unpause, wantErr: "container %s is not paused"},
		{from: exited, op: unpause, wantErr: "container %s is not running"},

		{from: created, op: remove, want: removing},
		{from: exited, op: remove, want: removing},
		{from: deadSt, op: remove, want: removing},
		{from: removing, op: remove, wantErr: "removal of container %s is already in progress"},
		{from: running, op: remove, wantErr: `cannot remove container "%n": container is running: stop the container before removing or force remove`},
		{from: paused, op: remove, wantErr: `cannot remove container "%n": container is paused: unpause and stop the container before removing or force remove`},
		{from: restartng, op: remove, wantErr: `cannot remove container "%n": container is restarting: stop the container before removing or force remove`},

		{from: removing, op: dead, want: deadSt},
		{from: exited, op: dead, want: deadSt},
		{from: running, op: dead, wantErr: "container %s is running"},
	} {
		t.Run(string(tc.from)+"/"+tc.op.name, func(t *testing.T) {
			c := stateAt(t, tc.from)
			before := c.State
			err := tc.op.fn(c)
			if tc.wantErr != "" {
				want := strings.NewReplacer("%s", c.ID, "%n", "/web").Replace(tc.wantErr)
				if err == nil || err.Error() != want {
					t.Fatalf("err = %v, want %q", err, want)
				}
				if !errdefs.IsConflict(err) {
					t.Fatalf("err %v is not a conflict", err)
				}
				if c.State != before {
					t.Fatalf("state changed by invalid transition: %+v → %+v", before, c.State)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if c.State.Status != tc.want {
				t.Fatalf("Status = %s, want %s", c.State.Status, tc.want)
			}
			if api := c.State.API(); api.Status != tc.want {
				t.Fatalf("API().Status = %s, want %s", api.Status, tc.want)
			}
		})
	}
}

func TestStateDetails(t *testing.T) {
	c := NewContainer("/web")
	if c.Name != "web" || c.InspectName() != "/web" || c.Driver != DefaultDriver {
		t.Fatalf("NewContainer: Name=%q InspectName=%q Driver=%q", c.Name, c.InspectName(), c.Driver)
	}
	api := c.State.API()
	if api.Status != container.StateCreated || api.StartedAt != "0001-01-01T00:00:00Z" || api.FinishedAt != "0001-01-01T00:00:00Z" {
		t.Fatalf("created API state = %+v", api)
	}
	if err := c.SetRunning(42); err != nil {
		t.Fatal(err)
	}
	s := c.State
	if !s.Running || s.Pid != 42 || s.StartedAt.IsZero() || s.ExitCode != 0 {
		t.Fatalf("running state = %+v", s)
	}
	if err := c.SetStopped(137, true); err != nil {
		t.Fatal(err)
	}
	s = c.State
	if s.Running || s.Pid != 0 || s.ExitCode != 137 || !s.OOMKilled || s.FinishedAt.Before(s.StartedAt) {
		t.Fatalf("stopped state = %+v", s)
	}
	api = c.State.API()
	if _, err := time.Parse(time.RFC3339Nano, api.FinishedAt); err != nil || !strings.HasSuffix(api.FinishedAt, "Z") {
		t.Fatalf("FinishedAt %q: %v", api.FinishedAt, err)
	}
	// Starting again clears the previous exit.
	if err := c.SetRunning(43); err != nil {
		t.Fatal(err)
	}
	if c.State.OOMKilled || c.State.ExitCode != 0 {
		t.Fatalf("restart kept old exit: %+v", c.State)
	}
	if err := c.SetStopped(0, false); err != nil {
		t.Fatal(err)
	}
	if err := c.SetRemoving(); err != nil {
		t.Fatal(err)
	}
	c.ResetRemoving()
	if c.State.Status != container.StateExited {
		t.Fatalf("after ResetRemoving Status = %s", c.State.Status)
	}
}
