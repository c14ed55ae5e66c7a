package rootfs

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// copyTree copies the contents of directory src into directory dst, then
// gives dst the owner and mode of src. Every lookup is relative to an open
// directory and never follows a symlink, so nothing in src can redirect the
// copy. Regular files, directories, symlinks and special files (fifos,
// sockets, device nodes) are copied with owner, mode and timestamps.
func copyTree(src, dst *os.File) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &st); err != nil {
		return fmt.Errorf("stat %q: %w", src.Name(), err)
	}
	if err := copyDirContents(src, dst); err != nil {
		return err
	}
	return copyAttrs(int(dst.Fd()), "", &st)
}

func copyDirContents(src, dst *os.File) error {
	names, err := src.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read directory %q: %w", src.Name(), err)
	}
	sfd, dfd := int(src.Fd()), int(dst.Fd())
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(sfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("stat %q: %w", name, err)
		}
		if err := copyEntry(sfd, dfd, name, &st); err != nil {
			return fmt.Errorf("copy %q: %w", name, err)
		}
	}
	return nil
}

func copyEntry(sfd, dfd int, name string, st *unix.Stat_t) error {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdirat(dfd, name, 0o700); err != nil {
			return err
		}
		s, err := openDirAt(sfd, name)
		if err != nil {
			return err
		}
		defer s.Close()
		d, err := openDirAt(dfd, name)
		if err != nil {
			return err
		}
		defer d.Close()
		if err := copyDirContents(s, d); err != nil {
			return err
		}
		return copyAttrs(int(d.Fd()), "", st)
	case unix.S_IFREG:
		if err := copyFile(sfd, dfd, name); err != nil {
			return err
		}
	case unix.S_IFLNK:
		target, err := readlinkAt(sfd, name)
		if err != nil {
			return err
		}
		if err := unix.Symlinkat(target, dfd, name); err != nil {
			return err
		}
	default:
		if err := unix.Mknodat(dfd, name, st.Mode, int(st.Rdev)); err != nil {
			return err
		}
	}
	return copyAttrs(dfd, name, st)
}

func openDirAt(dirfd int, name string) (*os.File, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

func copyFile(sfd, dfd int, name string) error {
	in, err := unix.Openat(sfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	src := os.NewFile(uintptr(in), name)
	defer src.Close()
	out, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	dst := os.NewFile(uintptr(out), name)
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

func readlinkAt(dirfd int, name string) (string, error) {
	for size := 256; size <= 1<<16; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
	return "", errors.New("symlink target too long")
}

// copyAttrs gives dirfd/name (dirfd itself when name is empty) the owner,
// permission bits and timestamps of st, without following a symlink.
func copyAttrs(dirfd int, name string, st *unix.Stat_t) error {
	flags := unix.AT_SYMLINK_NOFOLLOW
	if name == "" {
		name, flags = ".", 0
	}
	if err := unix.Fchownat(dirfd, name, int(st.Uid), int(st.Gid), flags); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		// fchmodat cannot refuse to follow symlinks on older kernels, but
		// this entry was just created here and is not one.
		if err := unix.Fchmodat(dirfd, name, st.Mode&0o7777, 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(dirfd, name, ts, flags); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}
