package containers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/oci"
	"github.com/berth-dev/berth/internal/shim"
	"github.com/containerd/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// execConfig is one exec instance (POST /containers/{id}/exec).
type execConfig struct {
	mu          sync.Mutex
	id          string
	containerID string
	req         containertypes.ExecCreateRequest
	started     bool
	running     bool
	exitCode    *int
	pid         int
}

type execStore struct {
	mu    sync.Mutex
	execs map[string]*execConfig
}

func newExecStore() *execStore { return &execStore{execs: map[string]*execConfig{}} }

func (e *execStore) get(id string) (*execConfig, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ec, ok := e.execs[id]
	if !ok {
		return nil, errdefs.ErrNotFound.WithMessage("No such exec instance: " + id)
	}
	return ec, nil
}

func (e *execStore) idsOf(containerID string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ids []string
	for id, ec := range e.execs {
		if ec.containerID == containerID {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func (e *execStore) removeContainer(containerID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, ec := range e.execs {
		if ec.containerID == containerID {
			delete(e.execs, id)
		}
	}
}

// ExecCreate registers a process to run in a running container.
func (s *Service) ExecCreate(ctx context.Context, ref string, req containertypes.ExecCreateRequest) (string, error) {
	c, err := s.store.Get(ref)
	if err != nil {
		return "", err
	}
	if len(req.Cmd) == 0 {
		return "", errdefs.ErrInvalidArgument.WithMessage("No exec command specified")
	}
	if _, err := detachKeys(req.DetachKeys); err != nil {
		return "", err
	}
	c.Lock()
	running, paused := c.State.Running, c.State.Paused
	c.Unlock()
	switch {
	case !running:
		return "", errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is not running", c.ID))
	case paused:
		return "", errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is paused, unpause the container before exec", c.ID))
	}
	ec := &execConfig{id: container.GenerateID(), containerID: c.ID, req: req}
	s.execs.mu.Lock()
	s.execs.execs[ec.id] = ec
	s.execs.mu.Unlock()
	s.emit(c, eventtypes.Action(string(eventtypes.ActionExecCreate)+": "+strings.Join(req.Cmd, " ")), map[string]string{"execID": ec.id})
	return ec.id, nil
}

// ExecStartOpts are the parameters of POST /exec/{id}/start.
type ExecStartOpts struct {
	Detach      bool
	ConsoleSize *[2]uint
	// Hijack takes over the connection (not called with Detach).
	Hijack func(multiplexed bool) (Conn, error)
}

// ExecStart runs an exec instance; attached, it returns when the process
// has exited and its output is delivered.
func (s *Service) ExecStart(ctx context.Context, execID string, o ExecStartOpts) error {
	ec, err := s.execs.get(execID)
	if err != nil {
		return err
	}
	ec.mu.Lock()
	if ec.started {
		ec.mu.Unlock()
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Error: Exec command %s has already run", execID))
	}
	ec.started = true
	req := ec.req
	ec.mu.Unlock()

	c, err := s.store.Get(ec.containerID)
	if err != nil {
		return err
	}
	c.Lock()
	running := c.State.Running
	c.Unlock()
	l := s.live(c.ID)
	s.mu.Lock()
	cl := l.shim
	s.mu.Unlock()
	if !running || cl == nil {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is not running", c.ID))
	}
	proc, err := s.execProcess(c, req)
	if err != nil {
		return err
	}
	var conn Conn
	if !o.Detach {
		if conn, err = o.Hijack(!req.Tty); err != nil {
			return err
		}
	}
	st, pid, err := cl.Exec(ctx, shim.ExecOpts{
		ID: execID, Process: proc,
		Stdin: req.AttachStdin && !o.Detach, Stdout: req.AttachStdout && !o.Detach, Stderr: req.AttachStderr && !o.Detach,
	})
	if err != nil {
		code := startExitCode(err.Error())
		ec.mu.Lock()
		ec.exitCode = &code
		ec.mu.Unlock()
		msg := "OCI runtime exec failed: " + err.Error()
		if conn != nil {
			// The hijacked stream is the only channel left to the client:
			// the message goes out as stdout (framed without a TTY).
			out, _ := streams(conn, req.Tty)
			_, _ = out.Write(append([]byte(msg), '\r', '\n'))
			conn.Close()
			return nil
		}
		return errdefs.ErrInvalidArgument.WithMessage(msg)
	}
	ec.mu.Lock()
	ec.running, ec.pid = true, pid
	ec.mu.Unlock()
	if o.ConsoleSize != nil && req.Tty {
		_ = cl.Resize(ctx, execID, o.ConsoleSize[0], o.ConsoleSize[1])
	}
	collect := func() {
		code, err := cl.ExecWait(context.WithoutCancel(ctx), execID)
		if err != nil {
			slog.Warn("exec status", "exec", execID[:12], "err", err)
			code = 126
		}
		ec.mu.Lock()
		ec.running, ec.exitCode = false, &code
		ec.mu.Unlock()
		s.emit(c, eventtypes.ActionExecDie, map[string]string{"execID": execID, "exitCode": strconv.Itoa(code)})
	}
	s.emit(c, eventtypes.Action(string(eventtypes.ActionExecStart)+": "+strings.Join(req.Cmd, " ")), map[string]string{"execID": execID})
	if conn == nil {
		if st != nil {
			st.Close()
		}
		go collect()
		return nil
	}
	keys, _ := detachKeys(req.DetachKeys)
	// The client inspects the exit code as soon as its stream ends: the
	// connection stays open until the code is known, unless it detached.
	err = pipe(heldConn{conn}, st, req.AttachStdin, true, keys)
	if errors.Is(err, errDetached) {
		conn.Close()
		collect()
		return nil
	}
	collect()
	conn.Close()
	return err
}

// heldConn leaves closing the connection to its owner.
type heldConn struct{ Conn }

func (heldConn) Close() error { return nil }

// execProcess derives an exec'd process from the container's own: same
// capabilities, rlimits and environment, with the exec's overrides.
func (s *Service) execProcess(c *container.Container, req containertypes.ExecCreateRequest) (*specs.Process, error) {
	data, err := os.ReadFile(filepath.Join(s.runDir(c.ID), "config.json"))
	if err != nil {
		return nil, fmt.Errorf("container %s configuration: %w", c.ID[:12], err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, err
	}
	p := *spec.Process
	p.Args = req.Cmd
	p.Terminal = req.Tty
	p.ConsoleSize = nil
	c.Lock()
	env := oci.ProcessEnv(c.Config)
	userSpec := c.Config.User
	groupAdd := c.HostConfig.GroupAdd
	c.Unlock()
	for _, e := range req.Env {
		k, _, _ := strings.Cut(e, "=")
		env = slices.DeleteFunc(env, func(x string) bool { xk, _, _ := strings.Cut(x, "="); return xk == k })
		env = append(env, e)
	}
	if req.Tty && !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "TERM=") }) {
		env = append(env, "TERM=xterm")
	}
	p.Env = env
	if req.WorkingDir != "" {
		p.Cwd = req.WorkingDir
	}
	if req.User != "" {
		userSpec = req.User
	}
	if req.User != "" {
		u, err := oci.ResolveUser(spec.Root.Path, userSpec, groupAdd)
		if err != nil {
			return nil, err
		}
		p.User = u
	}
	if req.Privileged {
		caps := slices.Clone(s.cfg.HostCapabilities)
		p.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	}
	return &p, nil
}

// ExecResize sets the window size of an exec's TTY.
func (s *Service) ExecResize(ctx context.Context, execID string, h, w uint) error {
	ec, err := s.execs.get(execID)
	if err != nil {
		return err
	}
	cl := s.shimOf(ec.containerID)
	if cl == nil {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is not running", ec.containerID))
	}
	return cl.Resize(ctx, execID, h, w)
}

// Resize sets the window size of the container's TTY.
func (s *Service) Resize(ctx context.Context, ref string, h, w uint) error {
	c, err := s.store.Get(ref)
	if err != nil {
		return err
	}
	cl := s.shimOf(c.ID)
	if cl == nil {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is not running", c.ID))
	}
	return cl.Resize(ctx, "", h, w)
}

func (s *Service) shimOf(id string) *shim.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.state[id]; ok {
		return l.shim
	}
	return nil
}

// ExecInspect describes an exec instance.
func (s *Service) ExecInspect(ctx context.Context, execID string) (*containertypes.ExecInspectResponse, error) {
	ec, err := s.execs.get(execID)
	if err != nil {
		return nil, err
	}
	ec.mu.Lock()
	defer ec.mu.Unlock()
	keys, _ := detachKeys(ec.req.DetachKeys)
	priv := ec.req.Privileged
	r := &containertypes.ExecInspectResponse{
		ID: ec.id, Running: ec.running, ExitCode: ec.exitCode, ContainerID: ec.containerID,
		OpenStdin: ec.req.AttachStdin, OpenStdout: ec.req.AttachStdout, OpenStderr: ec.req.AttachStderr,
		CanRemove: ec.started && !ec.running, DetachKeys: keys, Pid: ec.pid,
		ProcessConfig: &containertypes.ExecProcessConfig{
			Tty: ec.req.Tty, Entrypoint: ec.req.Cmd[0], Arguments: nonNil(ec.req.Cmd[1:]),
			Privileged: &priv, User: ec.req.User,
		},
	}
	return r, nil
}
