package rootfs

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// Options tell Prepare, Pivot and Finalize where the rootfs is and what kind
// of container they are building.
type Options struct {
	// Rootfs is the absolute path of the container root on the host, already
	// resolved against the bundle.
	Rootfs string
	// CgroupPaths maps, for a mount of type "cgroup" when the container has
	// no cgroup namespace, each cgroup v1 controller ("cpu", "memory", ...;
	// "name=systemd" is keyed "systemd") to the container's cgroup directory
	// on the host; on cgroup v2 the single key "" holds the container's
	// cgroup directory. Those directories are bound into the destination, as
	// runc does without a cgroup namespace. Nil means the container has its
	// own cgroup namespace: cgroup2 (or one cgroup v1 hierarchy per
	// controller set under a tmpfs) is mounted directly.
	CgroupPaths map[string]string
	// CgroupV2 is true on a unified (cgroup v2 only) host.
	CgroupV2 bool
	// InUserNS is true when init runs in a new user namespace where mknod of
	// devices is impossible: device nodes are bind-mounted from the host.
	InUserNS bool
	// Sys performs the kernel calls; nil means the real kernel.
	Sys Syscalls
}

// Syscalls is every operation of this package that changes kernel or
// filesystem state, plus the two queries (statfs and the mount table) whose
// answers steer the sequence. Keeping them behind an interface lets tests
// assert the exact order of operations without privileges.
//
// Paths given to Mount, Unmount and Statfs may be /proc/thread-self/fd/N
// links of handles opened inside the rootfs; dirfd arguments are such
// handles.
type Syscalls interface {
	Mount(source, target, fstype string, flags uintptr, data string) error
	Unmount(target string, flags int) error
	PivotRoot(newRoot, putOld string) error
	Chdir(path string) error
	Fchdir(fd int) error
	Chroot(path string) error
	// Umask sets the process umask and returns the previous one.
	Umask(mask int) int
	// MkdirAllInRoot creates path (and its parents) below dirfd, an O_PATH
	// handle on a directory inside the rootfs, without ever leaving it,
	// and returns an O_PATH handle on the final directory, which the
	// caller closes. The package calls it only to create what is missing:
	// dirfd is the deepest directory of the destination that exists, and
	// path the names to create below it. Where the kernel has openat2, a
	// symlink met on the way is refused, not followed.
	MkdirAllInRoot(dirfd int, path string, mode uint32) (int, error)
	Mknodat(dirfd int, name string, mode uint32, dev int) error
	// CreateFileAt creates an empty regular file; it fails with EEXIST when
	// name exists and never follows a symlink.
	CreateFileAt(dirfd int, name string, mode uint32) error
	Symlinkat(target string, dirfd int, name string) error
	Unlinkat(dirfd int, name string, flags int) error
	Fchownat(dirfd int, name string, uid, gid, flags int) error
	// CopyTree copies the contents of directory src into directory dst
	// (tmpcopyup), along with src's owner and mode.
	CopyTree(src, dst *os.File) error
	Statfs(path string, buf *unix.Statfs_t) error
	// Mounts returns the current mount table of the calling thread.
	Mounts() ([]*mountinfo.Info, error)
}

func (o Options) syscalls() Syscalls {
	if o.Sys != nil {
		return o.Sys
	}
	return kernel{}
}

// rootfsPath checks o.Rootfs and returns it with symlinks resolved, which is
// the form the kernel reports for handles opened under it.
func (o Options) rootfsPath() (string, error) {
	if o.Rootfs == "" || !filepath.IsAbs(o.Rootfs) {
		return "", fmt.Errorf("rootfs %q is not an absolute path", o.Rootfs)
	}
	p, err := filepath.EvalSymlinks(o.Rootfs)
	if err != nil {
		return "", fmt.Errorf("resolve rootfs: %w", err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("rootfs: %w", err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("rootfs %q is not a directory", p)
	}
	if p == "/" {
		return "", fmt.Errorf("rootfs must not be the host's root")
	}
	return p, nil
}
