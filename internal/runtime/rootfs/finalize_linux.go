package rootfs

import (
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Finalize locks the root down once Pivot has made it "/": read-only paths,
// masked paths, a read-only /dev when the spec asks for one, and a
// read-only root when spec.Root.Readonly is set. Paths are container paths:
// after Pivot nothing outside the container can be reached through them.
func Finalize(spec *specs.Spec, o Options) error {
	if spec == nil {
		return errors.New("no spec")
	}
	sys := o.syscalls()
	if spec.Linux != nil {
		// A shared root: the bind of the rootfs came from a private parent
		// (see Prepare) and pivot_root needs it unshared; share it now.
		if flags, err := rootPropagation(spec.Linux.RootfsPropagation); err == nil && flags&unix.MS_SHARED != 0 {
			if err := sys.Mount("", "/", "", flags, ""); err != nil {
				return fmt.Errorf("make / shared: %w", err)
			}
		}
		for _, p := range spec.Linux.ReadonlyPaths {
			if err := readonlyPath(sys, p); err != nil {
				return fmt.Errorf("read-only path %q: %w", p, err)
			}
		}
		m := masker{sys: sys, null: -1}
		defer m.close()
		for _, p := range spec.Linux.MaskedPaths {
			if err := m.mask(p); err != nil {
				return fmt.Errorf("masked path %q: %w", p, err)
			}
		}
	}
	if dev, ok := devMount(spec); ok {
		o := parseMountOptions(dev.Options)
		if o.Flags&unix.MS_RDONLY != 0 && !isBind(dev, o) {
			// Prepare left it writable to create the device nodes.
			if err := sys.Mount("", "/dev", "", o.Flags|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
				return fmt.Errorf("remount /dev read-only: %w", err)
			}
		}
	}
	if spec.Root != nil && spec.Root.Readonly {
		if err := remountReadonly(sys, "/"); err != nil {
			return fmt.Errorf("make / read-only: %w", err)
		}
	}
	return nil
}

// readonlyPath binds a path onto itself and makes that bind read-only; a
// missing path is skipped.
func readonlyPath(sys Syscalls, p string) error {
	if err := sys.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	return remountReadonly(sys, p)
}

// remountReadonly makes the mount on p read-only, keeping its nosuid, nodev
// and noexec flags, which a bind remount would otherwise drop (and which
// cannot be dropped at all when locked in a user namespace).
func remountReadonly(sys Syscalls, p string) error {
	var st unix.Statfs_t
	if err := sys.Statfs(p, &st); err != nil {
		return err
	}
	keep := statfsToMountFlags(int64(st.Flags)) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	return sys.Mount("", p, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|keep, "")
}

// masker hides paths: a file under a bind of /dev/null, a directory under an
// empty read-only tmpfs.
type masker struct {
	sys    Syscalls
	null   int // O_PATH handle on the checked /dev/null, -1 until opened
	source string
}

func (m *masker) mask(p string) error {
	if m.null < 0 {
		fd, err := devNull()
		if err != nil {
			return err
		}
		m.null = fd
		m.source = nullSource(fd)
	}
	err := m.sys.Mount(m.source, p, "", unix.MS_BIND, "")
	switch {
	case err == nil, errors.Is(err, unix.ENOENT):
		return nil
	case errors.Is(err, unix.ENOTDIR):
		// The kernel refuses to bind a file over a directory.
		return m.sys.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	}
	return err
}

func (m *masker) close() {
	if m.null >= 0 {
		unix.Close(m.null)
	}
}

// nullSource names the checked /dev/null handle for mount(2): through the
// container's procfs when it has one (so the checked node is the one bound),
// else by its path, checked an instant before.
func nullSource(fd int) string {
	for _, p := range []string{
		fmt.Sprintf("/proc/thread-self/fd/%d", fd),
		fmt.Sprintf("/proc/self/fd/%d", fd),
	} {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err == nil {
			return p
		}
	}
	return "/dev/null"
}
