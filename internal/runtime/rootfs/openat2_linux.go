package rootfs

import (
	"errors"
	"os"
	"path"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Lookups inside the rootfs use openat2(2) (Linux 5.6) when the kernel has
// it. RESOLVE_IN_ROOT makes the kernel resolve a path as if the handle it
// starts from were "/": ".." stops there, absolute symlinks start there, and
// the kernel fails the lookup (EAGAIN or EXDEV) rather than let a concurrent
// rename or mount carry it elsewhere. RESOLVE_NO_MAGICLINKS refuses the
// /proc/<pid>/{root,cwd,fd/N} links, which would jump to whatever they name.
// One system call thus does what would otherwise take a walk component by
// component, each step checked. Without openat2 the package falls back to
// github.com/cyphar/filepath-securejoin, which does that walk.

const (
	// resolveInRoot scopes a lookup to the handle it starts from.
	resolveInRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS
	// resolveExact also refuses any symlink: the path must already be the
	// canonical one.
	resolveExact = resolveInRoot | unix.RESOLVE_NO_SYMLINKS
	// resolveChild opens one component below a directory, which must not be
	// a symlink nor ".." (RESOLVE_BENEATH refuses to climb out).
	resolveChild = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

	// openat2Retries bounds the retries of a lookup that the kernel aborted
	// with EAGAIN because something was renamed or mounted meanwhile.
	openat2Retries = 32
	// maxSymlinks is the kernel's own limit on the symlinks one lookup
	// follows (MAXSYMLINKS); the dangling symlinks followed in userspace
	// are held to the same limit.
	maxSymlinks = 40
)

// openat2Supported reports whether the kernel has openat2(2) with the
// RESOLVE_* flags the package needs. It is a variable so that tests can
// exercise the fallback.
var openat2Supported = sync.OnceValue(func() bool {
	fd, err := unix.Openat2(unix.AT_FDCWD, "/", &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: resolveExact,
	})
	if err != nil {
		// ENOSYS before 5.6; EPERM or anything else from a seccomp
		// filter that does not know the call.
		return false
	}
	unix.Close(fd)
	return true
})

// openat2 opens p relative to dirfd with the given open flags (O_CLOEXEC is
// always added) and RESOLVE_* flags, retrying when the kernel reports a
// race it could not rule out.
func openat2(dirfd int, p string, flags, resolve uint64) (int, error) {
	how := unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: resolve}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(dirfd, p, &how)
		if (err == unix.EAGAIN || err == unix.EINTR) && i < openat2Retries {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "openat2", Path: p, Err: err}
		}
		return fd, nil
	}
}

// components splits p into its path components, dropping empty ones and
// "."; ".." is kept, as only the kernel can tell where it leads.
func components(p string) []string {
	parts := strings.Split(p, "/")
	out := parts[:0]
	for _, c := range parts {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// joinRaw makes an absolute path of parts without cleaning it: a ".." after
// a symlink must reach the parent of the symlink's target, not of the link.
// No trailing slash is added, which would make the kernel demand a
// directory.
func joinRaw(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		for _, c := range components(p) {
			b.WriteByte('/')
			b.WriteString(c)
		}
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

// existingPrefix finds the longest leading part of comps that exists inside
// the root, given that the whole of comps does not. It returns how many
// components that part has and an O_PATH handle on it; with n == 0 the
// handle is rootfd itself, which the caller must not close.
func existingPrefix(rootfd int, comps []string, resolve uint64) (int, int, error) {
	// Usually only the last component or two are missing: search from
	// the longest prefix down.
	for n := len(comps) - 1; n > 0; n-- {
		fd, err := openat2(rootfd, joinRaw(comps[:n]...), unix.O_PATH, resolve)
		if err == nil {
			return n, fd, nil
		}
		if !errors.Is(err, unix.ENOENT) {
			return 0, -1, err
		}
	}
	return 0, rootfd, nil
}

// mkdirAllInRoot creates the directories of p, a relative path of plain
// names below dirfd, and returns an O_PATH handle on the last one. Each is
// made with mkdirat(2) in the handle of its parent and opened from there with
// RESOLVE_BENEATH; one that exists already is opened the same way, so that a
// symlink there, even one that appeared meanwhile, is refused rather than
// followed. The callers pass the deepest existing directory of a
// destination and the names missing below it, so the usual cost is one
// mkdirat and one openat2 per directory made.
func mkdirAllInRoot(dirfd int, p string, mode uint32) (int, error) {
	comps := components(path.Clean("/" + p))
	if len(comps) == 0 {
		return openat2(dirfd, ".", unix.O_PATH|unix.O_DIRECTORY, resolveChild)
	}
	fd := dirfd
	for _, c := range comps {
		if err := unix.Mkdirat(fd, c, mode); err != nil && err != unix.EEXIST {
			if fd != dirfd {
				unix.Close(fd)
			}
			return -1, &os.PathError{Op: "mkdirat", Path: c, Err: err}
		}
		child, err := openat2(fd, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW, resolveChild)
		if fd != dirfd {
			unix.Close(fd)
		}
		if err != nil {
			return -1, err
		}
		fd = child
	}
	return fd, nil
}

// dupFile returns an *os.File on a duplicate of fd, for the APIs that need
// one; closing it leaves fd open.
func dupFile(fd int, name string) (*os.File, error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "dup", Path: name, Err: err}
	}
	return os.NewFile(uintptr(nfd), name), nil
}

// detach turns f into a raw descriptor of the same open file and closes f.
func detach(f *os.File) (int, error) {
	defer f.Close()
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "dup", Path: f.Name(), Err: err}
	}
	return fd, nil
}
