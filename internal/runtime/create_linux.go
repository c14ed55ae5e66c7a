package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/internal/runtime/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Create sets up a container from the bundle: its init process runs in the
// new namespaces with the root filesystem, cgroup and security settings in
// place, and waits before the user program until Start.
func (r *Runtime) Create(ctx context.Context, id, bundle string, o CreateOpts) (_ *Container, retErr error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	bundle, err := filepath.Abs(bundle)
	if err != nil {
		return nil, err
	}
	spec, err := LoadSpec(bundle)
	if err != nil {
		return nil, err
	}
	return r.CreateFromSpec(ctx, id, bundle, spec, o)
}

// CreateFromSpec is Create with an already loaded spec (the engine builds
// specs in memory); bundle is still recorded and used for a relative root.
func (r *Runtime) CreateFromSpec(ctx context.Context, id, bundle string, spec *specs.Spec, o CreateOpts) (_ *Container, retErr error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	if err := checkSpec(spec); err != nil {
		return nil, err
	}
	rootfs := spec.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	if fi, err := os.Stat(rootfs); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("root filesystem %s: not a directory", rootfs)
	}
	if spec.Process.Terminal && o.ConsoleSocket == "" && o.Console == nil {
		return nil, errors.New("process.terminal is set: a console socket is required")
	}

	dir := filepath.Join(r.Root, id)
	if err := os.Mkdir(dir, 0o711); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("container %q: %w", id, ErrExist)
		}
		return nil, err
	}
	c := &Container{rt: r, dir: dir, spec: spec, rec: record{
		ID: id, Bundle: bundle, Rootfs: rootfs, Created: time.Now().UTC(), Annotations: spec.Annotations,
	}}
	var cg cgroupManager
	defer func() {
		if retErr != nil {
			if cg != nil {
				_ = signalAll(cg, unix.SIGKILL)
				_ = cg.Destroy()
			}
			os.RemoveAll(dir)
		}
	}()
	fifoPath := filepath.Join(dir, fifoFile)
	if err := unix.Mkfifo(fifoPath, 0o622); err != nil {
		return nil, fmt.Errorf("exec fifo: %w", err)
	}
	// The init process opens the fifo after switching to the container's
	// user: owner root of the container (the host ID root maps to in a user
	// namespace), writable by anyone whatever the umask was.
	if err := os.Chmod(fifoPath, 0o622); err != nil {
		return nil, fmt.Errorf("exec fifo: %w", err)
	}
	if uid, gid := hostRoot(spec); uid != 0 || gid != 0 {
		if err := os.Chown(fifoPath, uid, gid); err != nil {
			return nil, fmt.Errorf("exec fifo: %w", err)
		}
	}
	// The init opens the fifo relative to the state directory: that works
	// whatever its root and /proc are by then.
	stateDir, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	defer stateDir.Close()

	m, err := r.newCgroup(spec.Linux.CgroupsPath, id)
	if err != nil {
		return nil, err
	}
	// Never join (and, on failure, clean up) a cgroup someone else uses.
	if pids, err := m.Pids(); err == nil && len(pids) > 0 {
		return nil, fmt.Errorf("cgroup %s is in use by %d processes of another container", cgroupName(m), len(pids))
	}
	cg = m
	c.rec.CgroupPaths, c.rec.CgroupV2 = cg.Paths(), cg.Version() == 2

	extra := []*os.File{stateDir}
	consoleDone, consoleSock, err := consoleFor(spec.Process, o.ConsoleSocket, o.Console)
	if err != nil {
		return nil, err
	}
	if consoleSock != nil {
		defer consoleSock.Close()
		extra = append(extra, consoleSock)
	}

	// Make the cgroup and set its limits (the init process joins it in
	// spawn), and keep the spec. Where the init can start before its cgroup
	// exists (it joins after its start), this runs while it starts.
	var filter *seccomp.Program
	setup := func() error {
		if err := cg.Apply(-1, withDefaultDevices(spec.Linux.Resources)); err != nil {
			return err
		}
		var err error
		if filter, err = prepareSeccomp(spec); err != nil {
			return err
		}
		return writeJSONAtomic(filepath.Join(dir, configFile), spec)
	}
	plan := planFromSpec(spec)
	plan.cgroup = cgroupJoinFor(cg)
	if plan.cgroup.dir != "" {
		if err := setup(); err != nil {
			return nil, err
		}
		setup = nil
	}
	p, err := r.spawn(plan, o.IO, extra, setup)
	if err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			p.kill()
		}
	}()
	c.rec.Pid = p.pid
	if c.rec.PidStart, _, err = procStartTime(p.pid); err != nil {
		return nil, fmt.Errorf("init process: %w", err)
	}
	cfg := initConfig{
		Mode:        "create",
		ID:          id,
		Bundle:      bundle,
		Pid:         p.pid,
		Spec:        forInit(spec),
		Process:     spec.Process,
		Seccomp:     filter,
		Rootfs:      rootfs,
		CgroupPaths: c.rec.CgroupPaths,
		CgroupV2:    c.rec.CgroupV2,
		NoPivot:     o.NoPivot,
		MountNS:     hasNS(spec, specs.MountNamespace),
		InUserNS:    plan.flags&unix.CLONE_NEWUSER != 0 || hasNS(spec, specs.UserNamespace),
		Console:     consoleSock != nil,
	}
	if err := p.send(cfg); err != nil {
		return nil, p.exitError(fmt.Sprintf("send init config: %v", err))
	}
	dec := json.NewDecoder(p.rd)
	for ready := false; !ready; {
		m, err := p.recv(dec)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, errors.New("container init exited during setup")
			}
			return nil, err
		}
		switch m.Type {
		case "hooks":
			// The runtime-tools validation expects "created" here, although
			// the container is still being created.
			state := stateOf(&c.rec, specs.StateCreated)
			if err := runHooks(ctx, spec.Hooks, hookPrestart, state); err != nil {
				return nil, err
			}
			if err := runHooks(ctx, spec.Hooks, hookCreateRuntime, state); err != nil {
				return nil, err
			}
			if err := p.send(message{Type: "ack"}); err != nil {
				return nil, err
			}
		case "ready":
			ready = true
		default:
			return nil, fmt.Errorf("init sync: unexpected message %q", m.Type)
		}
	}
	if consoleDone != nil {
		if err := <-consoleDone; err != nil {
			return nil, err
		}
	}
	p.sock.Close()
	if err := writeJSONAtomic(filepath.Join(dir, stateFile), &c.rec); err != nil {
		return nil, err
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, c.rec.Pid); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func hasNS(spec *specs.Spec, t specs.LinuxNamespaceType) bool {
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == t {
			return true
		}
	}
	return false
}

// consoleFor returns the descriptor the init process sends its pty master
// to (a connection to socketPath, or one end of a socketpair whose other end
// hands the master to receive in-process), and for in-process delivery a
// channel that reports when receive has it. Nothing without a terminal.
func consoleFor(p *specs.Process, socketPath string, receive func(*os.File)) (<-chan error, *os.File, error) {
	if !p.Terminal {
		return nil, nil, nil
	}
	if socketPath != "" {
		conn, err := net.Dial("unix", socketPath)
		if err != nil {
			return nil, nil, fmt.Errorf("console socket: %w", err)
		}
		defer conn.Close()
		f, err := conn.(*net.UnixConn).File()
		if err != nil {
			return nil, nil, fmt.Errorf("console socket: %w", err)
		}
		return nil, f, nil
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	mine := os.NewFile(uintptr(fds[0]), "console-receiver")
	theirs := os.NewFile(uintptr(fds[1]), "console-sender")
	done := make(chan error, 1)
	go func() {
		defer mine.Close()
		master, err := RecvFd(mine)
		if err != nil {
			done <- fmt.Errorf("receive console: %w", err)
			return
		}
		receive(master)
		done <- nil
	}()
	return done, theirs, nil
}

// hostRoot returns the host IDs of the container's root user (0, 0 without
// a user namespace mapping).
func hostRoot(spec *specs.Spec) (uid, gid int) {
	for _, m := range spec.Linux.UIDMappings {
		if m.ContainerID == 0 {
			uid = int(m.HostID)
		}
	}
	for _, m := range spec.Linux.GIDMappings {
		if m.ContainerID == 0 {
			gid = int(m.HostID)
		}
	}
	return uid, gid
}

func cgroupName(m cgroupManager) string {
	for _, p := range m.Paths() {
		return p
	}
	return "(none)"
}
