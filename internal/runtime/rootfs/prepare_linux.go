package rootfs

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Prepare builds the container's mount table under o.Rootfs. It must run in
// the container's (fresh) mount namespace, before Pivot; see the package
// documentation for the order of operations.
func Prepare(spec *specs.Spec, o Options) error {
	if spec == nil {
		return errors.New("no spec")
	}
	sys := o.syscalls()
	rootfs, err := o.rootfsPath()
	if err != nil {
		return err
	}
	var propagation string
	if spec.Linux != nil {
		propagation = spec.Linux.RootfsPropagation
	}
	flags, err := rootPropagation(propagation)
	if err != nil {
		return err
	}
	// The container's root ends up with the requested propagation. An
	// unbindable "/" could not be bound onto the rootfs: that is applied to
	// the rootfs bind mount once it exists. A shared root is made shared
	// by Finalize, after pivot_root, which refuses to pivot onto a shared
	// mount.
	hostFlags := flags
	if flags&unix.MS_UNBINDABLE != 0 {
		hostFlags = flags&unix.MS_REC | unix.MS_PRIVATE
	}
	if err := sys.Mount("", "/", "", hostFlags, ""); err != nil {
		return fmt.Errorf("set propagation of /: %w", err)
	}
	p := &preparer{sys: sys, opts: o}
	// A recursive change to anything but shared (rprivate, the default,
	// rslave, runbindable) leaves no mount of the namespace shared: the
	// rootfs' parent cannot be, and the mount table need not be read.
	if hostFlags&unix.MS_REC == 0 || hostFlags&unix.MS_SHARED != 0 {
		infos, err := p.mountTable()
		if err != nil {
			return err
		}
		if err := makeParentPrivate(sys, rootfs, infos); err != nil {
			return err
		}
	}
	if err := sys.Mount(rootfs, rootfs, "bind", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind rootfs onto itself: %w", err)
	}
	if flags&unix.MS_UNBINDABLE != 0 {
		if err := sys.Mount("", rootfs, "", flags, ""); err != nil {
			return fmt.Errorf("set propagation of the rootfs: %w", err)
		}
	}
	// Opened only now, so that the handle refers to the bind mount and
	// everything mounted through it stacks on the new mount.
	dir, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs: %w", &os.PathError{Op: "open", Path: rootfs, Err: err})
	}
	defer unix.Close(dir)
	p.root = newInRoot(sys, rootfs, dir)
	defer p.root.close()

	for _, m := range spec.Mounts {
		if err := p.mount(m); err != nil {
			return fmt.Errorf("mount %q (%s) on %q: %w", m.Source, m.Type, m.Destination, err)
		}
	}
	if needsDevSetup(spec) {
		if err := p.setupDev(spec); err != nil {
			return fmt.Errorf("set up /dev: %w", err)
		}
	}
	return nil
}

// preparer carries Prepare's state from one mount to the next.
type preparer struct {
	sys  Syscalls
	opts Options
	root *inRoot
	// mounts is the mount table, read once on first use (see mountTable).
	mounts []*mountinfo.Info
}

// mountTable returns the mount table, read on the first call only: what
// Prepare needs from it (the propagation of the rootfs' parent, the host's
// cgroup v1 hierarchies) is not changed by what Prepare mounts.
func (p *preparer) mountTable() ([]*mountinfo.Info, error) {
	if p.mounts == nil {
		infos, err := p.sys.Mounts()
		if err != nil {
			return nil, err
		}
		p.mounts = infos
	}
	return p.mounts, nil
}

// makeParentPrivate makes the mount that holds rootfs private when it is
// shared: pivot_root and MS_MOVE refuse a shared parent, and the bind of the
// rootfs would otherwise propagate to the parent's peers.
func makeParentPrivate(sys Syscalls, rootfs string, infos []*mountinfo.Info) error {
	var (
		best     string
		optional string
		found    bool
	)
	for _, mi := range infos {
		if !isUnder(rootfs, mi.Mountpoint) {
			continue
		}
		// Later entries with the same mount point are stacked on top.
		if !found || len(mi.Mountpoint) >= len(best) {
			best, optional, found = mi.Mountpoint, mi.Optional, true
		}
	}
	if !found {
		return fmt.Errorf("no mount holds %q", rootfs)
	}
	for _, f := range strings.Fields(optional) {
		if strings.HasPrefix(f, "shared:") {
			if err := sys.Mount("", best, "", unix.MS_PRIVATE, ""); err != nil {
				return fmt.Errorf("make %q private: %w", best, err)
			}
			break
		}
	}
	return nil
}

// isUnder reports whether path is dir or lies below it.
func isUnder(path, dir string) bool {
	if dir == "/" {
		return strings.HasPrefix(path, "/")
	}
	return path == dir || strings.HasPrefix(path, dir+"/")
}

// needsDevSetup reports whether Prepare creates the device nodes: always,
// unless /dev is bind-mounted from the host.
func needsDevSetup(spec *specs.Spec) bool {
	for _, m := range spec.Mounts {
		if cleanDest(m.Destination) == "/dev" && isBind(m, parseMountOptions(m.Options)) {
			return false
		}
	}
	return true
}

func isBind(m specs.Mount, o mountOptions) bool {
	return m.Type == "bind" || o.Flags&unix.MS_BIND != 0
}

// devMount returns the spec's /dev mount, if any (the last one wins, as it
// is the one on top).
func devMount(spec *specs.Spec) (specs.Mount, bool) {
	var (
		found bool
		dev   specs.Mount
	)
	for _, m := range spec.Mounts {
		if cleanDest(m.Destination) == "/dev" {
			dev, found = m, true
		}
	}
	return dev, found
}

// hasProcMount reports whether the spec mounts procfs on /proc.
func hasProcMount(spec *specs.Spec) bool {
	for _, m := range spec.Mounts {
		if m.Type == "proc" && cleanDest(m.Destination) == "/proc" {
			return true
		}
	}
	return false
}

// sourceIsDir reports whether a bind source on the host is a directory.
func sourceIsDir(source string) (bool, error) {
	fi, err := os.Stat(source)
	if err != nil {
		return false, fmt.Errorf("bind source: %w", err)
	}
	return fi.IsDir(), nil
}
