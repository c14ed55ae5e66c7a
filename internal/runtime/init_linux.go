package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"strings"

	"github.com/berth-dev/berth/internal/runtime/rootfs"
	"github.com/containerd/console"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// IsInit reports whether this process was started as a container init.
func IsInit() bool {
	return len(os.Args) > 1 && os.Args[1] == "init" && os.Getenv("_BERTH_NSEXEC_FD") != ""
}

func init() {
	if IsInit() {
		// Every namespace, credential and capability change below applies to
		// the calling thread, and the final execve runs from it too: keep the
		// main goroutine on the main thread for the whole life of init.
		goruntime.GOMAXPROCS(1)
		goruntime.LockOSThread()
	}
}

// Init is the container side of Create and Exec. Binaries that host the
// runtime call it first thing in main when IsInit is true. It only returns
// by executing the container's program; on failure it reports to the
// runtime and exits.
func Init() {
	sock := os.NewFile(initSyncFd, "init-sync")
	err := runInit(sock)
	msg := err.Error()
	if json.NewEncoder(sock).Encode(message{Type: "error", Error: msg}) != nil {
		// Nobody is listening any more (after create returned): say it on
		// the container's stderr.
		fmt.Fprintln(os.Stderr, "berth init:", msg)
	}
	os.Exit(1)
}

func runInit(sock *os.File) error {
	var cfg initConfig
	dec := json.NewDecoder(sock)
	if err := dec.Decode(&cfg); err != nil {
		return fmt.Errorf("read init config: %w", err)
	}
	if cfg.Spec == nil || cfg.Process == nil {
		return errors.New("init config without spec or process")
	}
	unix.CloseOnExec(initSyncFd)
	ops := realOps{}
	switch cfg.Mode {
	case "create":
		return createInit(&cfg, sock, dec, ops)
	case "exec":
		return execInit(&cfg, ops)
	}
	return fmt.Errorf("unknown init mode %q", cfg.Mode)
}

// createInit prepares the container and waits for Start before executing the
// user program. The order follows the OCI lifecycle: mounts, the runtime's
// hooks, createContainer hooks, pivot_root, console, the rest of the rootfs
// lockdown, then the process' own settings.
func createInit(cfg *initConfig, sock *os.File, dec *json.Decoder, ops procOps) error {
	spec := cfg.Spec
	ro := rootfs.Options{Rootfs: cfg.Rootfs, CgroupV2: cfg.CgroupV2, InUserNS: cfg.InUserNS}
	if !hasNewNS(spec, specs.CgroupNamespace) {
		ro.CgroupPaths = cfg.CgroupPaths
	}
	if cfg.MountNS {
		if err := rootfs.Prepare(spec, ro); err != nil {
			return fmt.Errorf("rootfs: %w", err)
		}
	}
	ctx := context.Background()
	if len(hooksOf(spec.Hooks, hookPrestart))+len(hooksOf(spec.Hooks, hookCreateRuntime)) > 0 {
		if err := json.NewEncoder(sock).Encode(message{Type: "hooks"}); err != nil {
			return err
		}
		var m message
		if err := dec.Decode(&m); err != nil {
			return fmt.Errorf("waiting for the runtime's hooks: %w", err)
		}
		if m.Type != "ack" {
			return fmt.Errorf("init sync: unexpected message %q", m.Type)
		}
	}
	state := &specs.State{Version: specs.Version, ID: cfg.ID, Status: specs.StateCreated, Pid: cfg.Pid, Bundle: cfg.Bundle, Annotations: spec.Annotations}
	if err := runHooks(ctx, spec.Hooks, hookCreateContainer, state); err != nil {
		return err
	}
	if cfg.MountNS {
		if err := rootfs.Pivot(ro, cfg.NoPivot); err != nil {
			return fmt.Errorf("pivot root: %w", err)
		}
	} else if err := enterRootfs(cfg.Rootfs); err != nil {
		return err
	}
	if cfg.Process.Terminal {
		if err := setupConsole(cfg.Process); err != nil {
			return err
		}
	}
	if cfg.MountNS {
		if err := rootfs.Finalize(spec, ro); err != nil {
			return fmt.Errorf("rootfs: %w", err)
		}
	}
	if err := applyContainer(spec, ops); err != nil {
		return err
	}
	if err := applyProcess(cfg.Process, ops); err != nil {
		return err
	}
	seccompLate, err := applySecurity(cfg.Process, cfg.Seccomp, ops)
	if err != nil {
		return err
	}
	path, err := lookPath(cfg.Process)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(sock).Encode(message{Type: "ready"}); err != nil {
		return err
	}
	sock.Close()

	// Block until Start opens the fifo for reading, and tell it we go on.
	// The write end stays open, close-on-exec: Start sees it close when the
	// program has been executed (or the init has died).
	fifo, err := unix.Openat(initFifoFd, fifoFile, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	if _, err := unix.Write(fifo, []byte{'0'}); err != nil {
		return fmt.Errorf("write exec fifo: %w", err)
	}
	unix.Close(initFifoFd)
	state.Status = specs.StateRunning
	if err := runHooks(ctx, spec.Hooks, hookStartContainer, state); err != nil {
		return err
	}
	if seccompLate != nil {
		if err := ops.LoadSeccomp(seccompLate); err != nil {
			return fmt.Errorf("seccomp: %w", err)
		}
	}
	return ops.Exec(path, cfg.Process.Args, processEnv(cfg.Process))
}

// execInit runs in the namespaces of a running container (joined by the
// nsenter constructor) and executes the extra process.
func execInit(cfg *initConfig, ops procOps) error {
	unix.Close(initFifoFd)
	if cfg.Process.Terminal {
		if err := setupConsole(cfg.Process); err != nil {
			return err
		}
	}
	if err := applyProcess(cfg.Process, ops); err != nil {
		return err
	}
	seccompLate, err := applySecurity(cfg.Process, cfg.Seccomp, ops)
	if err != nil {
		return err
	}
	path, err := lookPath(cfg.Process)
	if err != nil {
		return err
	}
	if seccompLate != nil {
		if err := ops.LoadSeccomp(seccompLate); err != nil {
			return fmt.Errorf("seccomp: %w", err)
		}
	}
	return ops.Exec(path, cfg.Process.Args, processEnv(cfg.Process))
}

func hasNewNS(spec *specs.Spec, t specs.LinuxNamespaceType) bool {
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == t && ns.Path == "" {
			return true
		}
	}
	return false
}

// enterRootfs makes the rootfs the root of a container without a mount
// namespace of its own: nothing can be mounted for it, but its programs
// still see only its files.
func enterRootfs(dir string) error {
	if err := unix.Chroot(dir); err != nil {
		return fmt.Errorf("chroot %s: %w", dir, err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir to the new root: %w", err)
	}
	return nil
}

// setupConsole creates a pty in the container's devpts, sends the master to
// the console socket and makes the slave the controlling terminal and stdio.
func setupConsole(p *specs.Process) error {
	sock := os.NewFile(initConsoleFd, "console-socket")
	defer sock.Close()
	master, slavePath, err := console.NewPty()
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	if p.ConsoleSize != nil {
		_ = master.Resize(console.WinSize{Height: uint16(p.ConsoleSize.Height), Width: uint16(p.ConsoleSize.Width)})
	}
	mf := os.NewFile(master.Fd(), slavePath)
	if err := SendFd(sock, mf); err != nil {
		return fmt.Errorf("console: send pty master: %w", err)
	}
	master.Close()
	slave, err := unix.Open(slavePath, unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("console: open %s: %w", slavePath, err)
	}
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("console: setsid: %w", err)
	}
	for fd := 0; fd <= 2; fd++ {
		if err := unix.Dup3(slave, fd, 0); err != nil {
			return fmt.Errorf("console: dup: %w", err)
		}
	}
	if slave > 2 {
		unix.Close(slave)
	}
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("console: set controlling terminal: %w", err)
	}
	return nil
}

// lookPath resolves args[0] inside the container, with the process' PATH,
// and refuses the runtime's own binary (see notRuntimeBinary).
func lookPath(p *specs.Process) (string, error) {
	path, err := searchPath(p)
	if err != nil {
		return "", err
	}
	return path, notRuntimeBinary(path)
}

// notRuntimeBinary refuses to execute the binary this init runs from (for
// example through a /proc/self/exe symlink in the image): a container
// process running the host's runtime binary could open it through
// /proc/<pid>/exe and overwrite it once it is no longer busy.
func notRuntimeBinary(path string) error {
	var self, target unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &self); err != nil {
		return nil // no /proc in the container: nothing to compare with
	}
	if unix.Stat(path, &target) == nil && target.Dev == self.Dev && target.Ino == self.Ino {
		return fmt.Errorf("exec %s: refusing to run the container runtime's own binary inside the container", path)
	}
	return nil
}

func searchPath(p *specs.Process) (string, error) {
	name := p.Args[0]
	if strings.Contains(name, "/") {
		// Say why, in the words of the errno: engines map "no such file or
		// directory" to exit 127 and "permission denied" to 126.
		var st unix.Stat_t
		if err := unix.Stat(name, &st); err != nil {
			return "", fmt.Errorf("exec: %q: stat %s: %w", name, name, err)
		}
		switch {
		case st.Mode&unix.S_IFMT == unix.S_IFDIR:
			return "", fmt.Errorf("exec: %q: %w", name, unix.EISDIR)
		case !executable(name):
			return "", fmt.Errorf("exec: %q: %w", name, unix.EACCES)
		}
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range p.Env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			dir = "."
		}
		if cand := dir + "/" + name; executable(cand) {
			return cand, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", name)
}

// executable reports whether path is a regular file with an execute bit.
func executable(path string) bool {
	var st unix.Stat_t
	return unix.Stat(path, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Mode&0o111 != 0
}

// processEnv is the process environment, with HOME filled in from the
// container's /etc/passwd when the spec does not set it.
func processEnv(p *specs.Process) []string {
	env := p.Env
	for _, e := range env {
		if strings.HasPrefix(e, "HOME=") {
			return env
		}
	}
	home := "/"
	if data, err := os.ReadFile("/etc/passwd"); err == nil {
		home = homeOf(string(data), p.User.UID)
	}
	return append(append([]string(nil), env...), "HOME="+home)
}

func homeOf(passwd string, uid uint32) string {
	for _, line := range strings.Split(passwd, "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 6 && f[2] == fmt.Sprint(uid) && f[5] != "" {
			return f[5]
		}
	}
	return "/"
}
