package rootfs

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// kernel is the real Syscalls, one system call per method.
type kernel struct{}

var _ Syscalls = kernel{}

func (kernel) Mount(source, target, fstype string, flags uintptr, data string) error {
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		return &os.PathError{Op: "mount", Path: target, Err: err}
	}
	return nil
}

func (kernel) Unmount(target string, flags int) error {
	if err := unix.Unmount(target, flags); err != nil {
		return &os.PathError{Op: "umount", Path: target, Err: err}
	}
	return nil
}

func (kernel) PivotRoot(newRoot, putOld string) error {
	if err := unix.PivotRoot(newRoot, putOld); err != nil {
		return &os.PathError{Op: "pivot_root", Path: newRoot, Err: err}
	}
	return nil
}

func (kernel) Chdir(path string) error {
	if err := unix.Chdir(path); err != nil {
		return &os.PathError{Op: "chdir", Path: path, Err: err}
	}
	return nil
}

func (kernel) Fchdir(fd int) error {
	if err := unix.Fchdir(fd); err != nil {
		return fmt.Errorf("fchdir: %w", err)
	}
	return nil
}

func (kernel) Chroot(path string) error {
	if err := unix.Chroot(path); err != nil {
		return &os.PathError{Op: "chroot", Path: path, Err: err}
	}
	return nil
}

func (kernel) Umask(mask int) int { return unix.Umask(mask) }

func (kernel) MkdirAllInRoot(dirfd int, path string, mode uint32) (int, error) {
	if openat2Supported() {
		return mkdirAllInRoot(dirfd, path, mode)
	}
	root, err := dupFile(dirfd, "rootfs")
	if err != nil {
		return -1, err
	}
	defer root.Close()
	f, err := pathrs.MkdirAllHandle(root, path, os.FileMode(mode))
	if err != nil {
		return -1, err
	}
	return detach(f)
}

func (kernel) Mknodat(dirfd int, name string, mode uint32, dev int) error {
	if err := unix.Mknodat(dirfd, name, mode, dev); err != nil {
		return &os.PathError{Op: "mknodat", Path: name, Err: err}
	}
	return nil
}

func (kernel) CreateFileAt(dirfd int, name string, mode uint32) error {
	fd, err := unix.Openat(dirfd, name, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_WRONLY|unix.O_CLOEXEC, mode)
	if err != nil {
		return &os.PathError{Op: "create", Path: name, Err: err}
	}
	return unix.Close(fd)
}

func (kernel) Symlinkat(target string, dirfd int, name string) error {
	if err := unix.Symlinkat(target, dirfd, name); err != nil {
		return &os.LinkError{Op: "symlinkat", Old: target, New: name, Err: err}
	}
	return nil
}

func (kernel) Unlinkat(dirfd int, name string, flags int) error {
	if err := unix.Unlinkat(dirfd, name, flags); err != nil {
		return &os.PathError{Op: "unlinkat", Path: name, Err: err}
	}
	return nil
}

func (kernel) Fchownat(dirfd int, name string, uid, gid, flags int) error {
	if err := unix.Fchownat(dirfd, name, uid, gid, flags); err != nil {
		return &os.PathError{Op: "fchownat", Path: name, Err: err}
	}
	return nil
}

func (kernel) CopyTree(src, dst *os.File) error { return copyTree(src, dst) }

func (kernel) Statfs(path string, buf *unix.Statfs_t) error {
	if err := unix.Statfs(path, buf); err != nil {
		return &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	return nil
}

func (kernel) Mounts() ([]*mountinfo.Info, error) {
	// The thread's own table: the caller's thread is the one whose mount
	// namespace and root are being changed.
	b, err := readFile("/proc/thread-self/mountinfo")
	if errors.Is(err, unix.ENOENT) {
		b, err = readFile("/proc/self/mountinfo")
	}
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	infos, err := mountinfo.GetMountsFromReader(bytes.NewReader(b), nil)
	if err != nil {
		return nil, fmt.Errorf("parse mount table: %w", err)
	}
	return infos, nil
}

// readFile reads a whole file with plain system calls: an *os.File would
// also set it non-blocking and try to register it with the runtime's poller.
func readFile(p string) ([]byte, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 16<<10)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: p, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}
