package rootfs

import (
	"errors"
	"fmt"
	"os"
	"sort"

	"golang.org/x/sys/unix"
)

// Pivot makes o.Rootfs the process' root. It uses pivot_root(".", ".") from
// inside the rootfs, which stacks the old root under the new one, then makes
// the old root rslave (so the detach cannot propagate to the host) and
// detaches it. With noPivot — or when pivot_root fails with EINVAL because
// the current root is an initramfs — it moves the rootfs onto "/" and
// chroots into it instead.
func Pivot(o Options, noPivot bool) error {
	sys := o.syscalls()
	rootfs, err := o.rootfsPath()
	if err != nil {
		return err
	}
	if noPivot {
		return moveRoot(sys, rootfs)
	}
	err = pivotRoot(sys, rootfs)
	if err == nil || !errors.Is(err, unix.EINVAL) || !onInitramfs(sys) {
		return err
	}
	if merr := moveRoot(sys, rootfs); merr != nil {
		return fmt.Errorf("%w; moving the rootfs onto / instead: %w", err, merr)
	}
	return nil
}

func pivotRoot(sys Syscalls, rootfs string) error {
	oldRoot, err := openDir("/")
	if err != nil {
		return fmt.Errorf("open old root: %w", err)
	}
	defer unix.Close(oldRoot)
	newRoot, err := openDir(rootfs)
	if err != nil {
		return fmt.Errorf("open rootfs: %w", err)
	}
	defer unix.Close(newRoot)

	if err := sys.Fchdir(newRoot); err != nil {
		return fmt.Errorf("enter rootfs: %w", err)
	}
	// With new_root and put_old both ".", the old root ends up mounted on
	// top of the new one, and no directory has to exist in the image.
	if err := sys.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	// The kernel leaves the cwd on the old root, but nothing promises it:
	// go there explicitly.
	if err := sys.Fchdir(oldRoot); err != nil {
		return fmt.Errorf("enter old root: %w", err)
	}
	if err := sys.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root rslave: %w", err)
	}
	if err := sys.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	if err := sys.Chdir("/"); err != nil {
		return err
	}
	return nil
}

// onInitramfs reports whether "/" is the kernel's initial ramfs/tmpfs root,
// which pivot_root cannot move away from.
func onInitramfs(sys Syscalls) bool {
	var st unix.Statfs_t
	if err := sys.Statfs("/", &st); err != nil {
		return false
	}
	return st.Type == unix.RAMFS_MAGIC || st.Type == unix.TMPFS_MAGIC
}

// moveRoot moves the rootfs onto "/" and chroots into it. The host's full
// proc and sysfs mounts outside the rootfs stay in the namespace under a
// chroot, and their presence lets the container mount fresh instances later
// on; they are detached first, or covered by an empty tmpfs where the
// kernel refuses to detach them (locked in a user namespace).
func moveRoot(sys Syscalls, rootfs string) error {
	if err := hideHostPseudoFS(sys, rootfs); err != nil {
		return err
	}
	newRoot, err := openDir(rootfs)
	if err != nil {
		return fmt.Errorf("open rootfs: %w", err)
	}
	defer unix.Close(newRoot)
	if err := sys.Fchdir(newRoot); err != nil {
		return fmt.Errorf("enter rootfs: %w", err)
	}
	if err := sys.Mount(rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move rootfs onto /: %w", err)
	}
	if err := sys.Chroot("."); err != nil {
		return err
	}
	return sys.Chdir("/")
}

func hideHostPseudoFS(sys Syscalls, rootfs string) error {
	infos, err := sys.Mounts()
	if err != nil {
		return err
	}
	var (
		points []string
		seen   = map[string]bool{}
	)
	for _, mi := range infos {
		if mi.Root != "/" || (mi.FSType != "proc" && mi.FSType != "sysfs") || isUnder(mi.Mountpoint, rootfs) || seen[mi.Mountpoint] {
			continue
		}
		seen[mi.Mountpoint] = true
		points = append(points, mi.Mountpoint)
	}
	// Parents first: detaching one takes its children along.
	sort.Strings(points)
	var gone []string
	for _, mp := range points {
		if underAny(mp, gone) {
			continue
		}
		if err := sys.Mount("", mp, "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return fmt.Errorf("make %q rslave: %w", mp, err)
		}
		err := sys.Unmount(mp, unix.MNT_DETACH)
		switch {
		case err == nil:
			gone = append(gone, mp)
		case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EPERM):
			if err := sys.Mount("tmpfs", mp, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
				return fmt.Errorf("cover %q: %w", mp, err)
			}
		default:
			return fmt.Errorf("detach %q: %w", mp, err)
		}
	}
	return nil
}

func underAny(p string, dirs []string) bool {
	for _, d := range dirs {
		if isUnder(p, d) {
			return true
		}
	}
	return false
}

// openDir opens a directory to fchdir into, as a plain descriptor.
func openDir(p string) (int, error) {
	fd, err := unix.Open(p, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return fd, nil
}
