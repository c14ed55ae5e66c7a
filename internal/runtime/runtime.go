// Package runtime is berth's built-in OCI runtime: it runs containers from an
// OCI runtime-spec bundle (config.json + rootfs) with namespaces, a root
// filesystem, cgroups, capabilities and seccomp, and keeps each container's
// state under a root directory so that separate processes (the berth-runtime
// CLI, the engine) can drive the same container through its lifecycle:
//
//	Create → (created, user process waiting) → Start → (running) → exits → (stopped) → Delete
//
// The runtime re-executes a binary (by default the running one) with the
// argument "init"; that binary must call Init early in main and must link the
// nsenter package, whose constructor joins and creates namespaces before the Go
// runtime starts.
package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/berth-dev/berth/internal/atomicfile"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/runtime/cgroups"
	"github.com/berth-dev/berth/internal/runtime/nsenter"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Runtime manages containers whose state lives under Root.
type Runtime struct {
	// Root holds one directory per container (default /run/berth-runtime).
	Root string
	// InitPath is the binary re-executed as the container's init (default
	// /proc/self/exe); it is started with InitArgs (default ["init"]).
	InitPath string
	InitArgs []string
	// Cgroups makes the cgroup manager of a new container from its
	// cgroupsPath (default cgroups.New, which follows the host's mode).
	Cgroups func(cgroupsPath, id string) (cgroups.Manager, error)
}

// DefaultRoot is where containers' state lives unless told otherwise.
const DefaultRoot = "/run/berth-runtime"

// New returns a runtime rooted at root (DefaultRoot when empty).
func New(root string) (*Runtime, error) {
	if root == "" {
		root = DefaultRoot
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o711); err != nil {
		return nil, fmt.Errorf("runtime root: %w", err)
	}
	return &Runtime{Root: abs, InitPath: "/proc/self/exe", InitArgs: []string{"init"}}, nil
}

// IO is the standard input/output/error of a container process. Nil files
// are connected to /dev/null.
type IO struct {
	Stdin, Stdout, Stderr *os.File
}

// CreateOpts controls Create.
type CreateOpts struct {
	IO
	// ConsoleSocket is the path of a unix socket that receives the pty
	// master (OCI console-socket protocol) when the process has a terminal.
	ConsoleSocket string
	// Console receives the pty master in-process instead (the engine's way).
	Console func(master *os.File)
	// PidFile, when set, receives the init PID.
	PidFile string
	// NoPivot uses MS_MOVE+chroot instead of pivot_root (for ramfs roots).
	NoPivot bool
}

// Container is a handle on one container's state directory.
type Container struct {
	rt   *Runtime
	dir  string
	rec  record
	spec *specs.Spec
}

// ID of the container.
func (c *Container) ID() string { return c.rec.ID }

// Pid of the container's init process.
func (c *Container) Pid() int { return c.rec.Pid }

// Spec is the configuration the container was created with.
func (c *Container) Spec() *specs.Spec { return c.spec }

// Bundle directory of the container.
func (c *Container) Bundle() string { return c.rec.Bundle }

// Load opens an existing container.
func (r *Runtime) Load(id string) (*Container, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	dir := filepath.Join(r.Root, id)
	c := &Container{rt: r, dir: dir, spec: new(specs.Spec)}
	if err := readJSON(filepath.Join(dir, stateFile), &c.rec); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("container %q: %w", id, ErrNotExist)
		}
		return nil, fmt.Errorf("load container %q: %w", id, err)
	}
	if err := readJSON(filepath.Join(dir, configFile), c.spec); err != nil {
		return nil, fmt.Errorf("load container %q: %w", id, err)
	}
	return c, nil
}

// List returns every container under the root, sorted by ID.
func (r *Runtime) List() ([]*Container, error) {
	entries, err := os.ReadDir(r.Root)
	if err != nil {
		return nil, err
	}
	var out []*Container
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		c, err := r.Load(e.Name())
		if err != nil {
			continue // a container being created or deleted
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rec.ID < out[j].rec.ID })
	return out, nil
}

// LoadSpec reads and checks the config.json of a bundle.
func LoadSpec(bundle string) (*specs.Spec, error) {
	f, err := os.Open(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	defer f.Close()
	var spec specs.Spec
	dec := json.NewDecoder(f)
	if err := dec.Decode(&spec); err != nil {
		return nil, fmt.Errorf("bundle config.json: %w", err)
	}
	if err := checkSpec(&spec); err != nil {
		return nil, err
	}
	return &spec, nil
}

func checkSpec(spec *specs.Spec) error {
	if spec.Version == "" || spec.Version[0] != '1' {
		return fmt.Errorf("config.json: unsupported ociVersion %q", spec.Version)
	}
	if spec.Root == nil || spec.Root.Path == "" {
		return errors.New("config.json: root.path is required")
	}
	if spec.Process == nil {
		return errors.New("config.json: process is required")
	}
	if len(spec.Process.Args) == 0 {
		return errors.New("config.json: process.args must not be empty")
	}
	if spec.Linux == nil {
		return errors.New("config.json: linux section is required")
	}
	if !nsenter.Enabled {
		return errors.New("this binary was built without cgo: the namespace constructor is missing")
	}
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range spec.Linux.Namespaces {
		if _, ok := nsKinds[ns.Type]; !ok {
			return fmt.Errorf("config.json: unknown namespace type %q", ns.Type)
		}
		if seen[ns.Type] {
			return fmt.Errorf("config.json: namespace %q listed twice", ns.Type)
		}
		seen[ns.Type] = true
	}
	return nil
}

// State returns the OCI state of the container.
func (c *Container) State() (*specs.State, error) {
	st, err := c.status()
	if err != nil {
		return nil, err
	}
	return stateOf(&c.rec, st), nil
}

// status derives the container status from the kernel and the state dir.
func (c *Container) status() (specs.ContainerState, error) {
	if !c.rec.alive() {
		return specs.StateStopped, nil
	}
	if _, err := os.Lstat(filepath.Join(c.dir, fifoFile)); err == nil {
		return specs.StateCreated, nil
	}
	if cg, err := c.cgroup(); err == nil {
		if frozen, err := cg.Frozen(); err == nil && frozen {
			return "paused", nil
		}
	}
	return specs.StateRunning, nil
}

// Kill sends sig to the init process, or to every process of the container
// when all is set.
func (c *Container) Kill(sig syscall.Signal, all bool) error {
	st, err := c.status()
	if err != nil {
		return err
	}
	if st == specs.StateStopped && !all {
		return fmt.Errorf("container %q is not running", c.rec.ID)
	}
	if !all {
		return syscall.Kill(c.rec.Pid, sig)
	}
	cg, err := c.cgroup()
	if err != nil {
		if st == specs.StateStopped {
			return nil
		}
		return syscall.Kill(c.rec.Pid, sig)
	}
	return signalAll(cg, sig)
}

// Pause freezes every process of the container.
func (c *Container) Pause() error {
	st, err := c.status()
	if err != nil {
		return err
	}
	if st != specs.StateRunning && st != specs.StateCreated {
		return fmt.Errorf("container %q is %s, not running", c.rec.ID, st)
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	return cg.Freeze()
}

// Resume thaws a paused container.
func (c *Container) Resume() error {
	st, err := c.status()
	if err != nil {
		return err
	}
	if st != "paused" {
		return fmt.Errorf("container %q is not paused", c.rec.ID)
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	return cg.Thaw()
}

// Processes lists the PIDs of every process in the container's cgroup.
func (c *Container) Processes() ([]int, error) {
	cg, err := c.cgroup()
	if err != nil {
		return nil, err
	}
	return cg.Pids()
}

// Stats reads the container's resource usage.
func (c *Container) Stats() (*Stats, error) {
	cg, err := c.cgroup()
	if err != nil {
		return nil, err
	}
	return cg.Stats()
}

// Update changes the container's resource limits.
func (c *Container) Update(r *specs.LinuxResources) error {
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	if err := cg.Set(withDefaultDevices(r)); err != nil {
		return err
	}
	if c.spec.Linux != nil {
		c.spec.Linux.Resources = r
		return writeJSONAtomic(filepath.Join(c.dir, configFile), c.spec)
	}
	return nil
}

// Delete removes a stopped container (or, with force, kills it first): its
// processes, cgroup and state, then runs the poststop hooks.
func (c *Container) Delete(ctx context.Context, force bool) error {
	st, err := c.status()
	if err != nil {
		return err
	}
	if st != specs.StateStopped {
		if !force {
			return fmt.Errorf("cannot delete container %q that is %s: stop it first or use force", c.rec.ID, st)
		}
		if err := c.killAndWait(ctx); err != nil {
			return err
		}
	}
	reap(ctx, &c.rec)
	if cg, err := c.cgroup(); err == nil {
		// Stray processes (for example from exec) would keep the cgroup busy.
		if pids, err := cg.Pids(); err == nil && len(pids) > 0 {
			_ = signalAll(cg, syscall.SIGKILL)
			if err := waitEmpty(ctx, cg); err != nil {
				return fmt.Errorf("delete container %q: %w", c.rec.ID, err)
			}
		}
		if err := cg.Destroy(); err != nil {
			return fmt.Errorf("delete container %q: %w", c.rec.ID, err)
		}
	}
	if c.spec.Hooks != nil {
		state := stateOf(&c.rec, specs.StateStopped)
		for _, h := range c.spec.Hooks.Poststop {
			if err := runHook(ctx, h, state); err != nil {
				logWarn("poststop hook failed", err)
			}
		}
	}
	return removeStateDir(c.dir)
}

// removeStateDir removes a container's state directory: the files the
// runtime puts there, then the directory (RemoveAll only if something else
// was left in it).
func removeStateDir(dir string) error {
	for _, f := range []string{stateFile, configFile, fifoFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return os.RemoveAll(dir)
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return os.RemoveAll(dir)
	}
	return nil
}

// waitEmpty waits until no process is left in the cgroup: killed processes
// (and a PID namespace's init that is already a zombie) stay listed until
// the kernel has finished their exit.
func waitEmpty(ctx context.Context, cg cgroupManager) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for delay := 50 * time.Microsecond; ; delay = min(2*delay, 10*time.Millisecond) {
		pids, err := cg.Pids()
		if err != nil || len(pids) == 0 {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("processes %v still in the cgroup after SIGKILL: %w", pids, ctx.Err())
		case <-time.After(delay):
		}
	}
}

// killAndWait sends SIGKILL to every process of the container and waits until
// the init process is gone.
func (c *Container) killAndWait(ctx context.Context) error {
	if cg, err := c.cgroup(); err == nil {
		if err := signalAll(cg, syscall.SIGKILL); err != nil {
			return err
		}
	} else if err := syscall.Kill(c.rec.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return waitGone(ctx, &c.rec)
}

// writePidFile writes pid atomically, as runc does.
func writePidFile(path string, pid int) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(abs, []byte(fmt.Sprint(pid)), 0o644)
}

// nullFile opens /dev/null for a stdio slot that was left nil.
func nullFile(f *os.File, flag int) (*os.File, func(), error) {
	if f != nil {
		return f, func() {}, nil
	}
	n, err := os.OpenFile(os.DevNull, flag, 0)
	if err != nil {
		return nil, nil, err
	}
	return n, func() { n.Close() }, nil
}
