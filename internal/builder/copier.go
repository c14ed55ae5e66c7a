package builder

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/go-archive"
	"github.com/moby/go-archive/compression"
	"golang.org/x/sys/unix"
)

// copier writes the sources of a COPY or ADD into an image's root
// filesystem. Every destination path resolves inside rootfs, symlinks of
// the image included (Docker's FollowSymlinkInScope). New files belong to
// root, or to --chown; --chmod overrides their modes.
type copier struct {
	rootfs   string
	uid, gid int
	chown    bool
	mode     fs.FileMode
	modeSet  bool
}

// copy copies one source to dest (an absolute path in the image; a
// trailing "/" makes it a directory).
func (c *copier) copy(src copySource, dest string, multi bool) error {
	switch {
	case src.archive:
		return c.unpack(src.path, dest)
	case src.isDir:
		return c.copyTree(src.path, dest)
	}
	target := dest
	if strings.HasSuffix(dest, "/") || multi || c.isDir(dest) {
		target = path.Join(dest, src.name)
	}
	if src.data != nil {
		return c.writeFile(target, strings.NewReader(*src.data), 0o644, time.Now())
	}
	st, err := os.Lstat(src.path)
	if err != nil {
		return err
	}
	if st.Mode()&fs.ModeSymlink != 0 {
		// A named symlink source was resolved in scope; copy its target.
		if st, err = os.Stat(src.path); err != nil {
			return err
		}
	}
	f, err := os.Open(src.path)
	if err != nil {
		return err
	}
	defer f.Close()
	mode := st.Mode()
	if src.download {
		mode = 0o600
	}
	mtime := st.ModTime()
	if !src.mtime.IsZero() {
		mtime = src.mtime
	}
	return c.writeFile(target, f, mode, mtime)
}

// resolve returns the host path of p (absolute, in the image): its
// directory resolved in scope, its last element as is.
func (c *copier) resolve(p string) (string, error) {
	p = path.Clean("/" + p)
	if p == "/" {
		return c.rootfs, nil
	}
	dir, err := secureJoin(c.rootfs, path.Dir(p))
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, path.Base(p)), nil
}

func (c *copier) isDir(p string) bool {
	full, err := secureJoin(c.rootfs, p)
	if err != nil {
		return false
	}
	st, err := os.Stat(full)
	return err == nil && st.IsDir()
}

func (c *copier) owner() (int, int) {
	if c.chown {
		return c.uid, c.gid
	}
	return 0, 0
}

// mkdirAll creates the missing directories of p, mode 0755, owned like
// the copied files.
func (c *copier) mkdirAll(p string) (string, error) {
	p = path.Clean("/" + p)
	cur := "/"
	for _, elem := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		if elem == "" {
			continue
		}
		cur = path.Join(cur, elem)
		full, err := secureJoin(c.rootfs, cur)
		if err != nil {
			return "", err
		}
		st, err := os.Stat(full)
		switch {
		case err == nil && st.IsDir():
			continue
		case err == nil:
			return "", fmt.Errorf("mkdir %s: %w", cur, errNotDir)
		case !errors.Is(err, fs.ErrNotExist):
			return "", err
		}
		if err := os.Mkdir(full, 0o755); err != nil {
			return "", err
		}
		uid, gid := c.owner()
		if err := os.Lchown(full, uid, gid); err != nil {
			return "", err
		}
	}
	return secureJoin(c.rootfs, p)
}

// writeFile creates target from r; whatever non-directory was there is
// replaced.
func (c *copier) writeFile(target string, r io.Reader, mode fs.FileMode, mtime time.Time) error {
	if _, err := c.mkdirAll(path.Dir(path.Clean("/" + target))); err != nil {
		return err
	}
	full, err := c.resolve(target)
	if err != nil {
		return err
	}
	if err := removeNonDir(full, target); err != nil {
		return err
	}
	f, err := os.OpenFile(full, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = c.setMeta(f, mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Chtimes(full, mtime, mtime)
}

func removeNonDir(full, name string) error {
	st, err := os.Lstat(full)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("cannot replace directory %s with a file", name)
	}
	return os.Remove(full)
}

// setMeta gives an open file its owner, then its mode (a chown clears
// setuid bits).
func (c *copier) setMeta(f *os.File, mode fs.FileMode) error {
	uid, gid := c.owner()
	if err := f.Chown(uid, gid); err != nil {
		return err
	}
	if c.modeSet {
		mode = c.mode
	}
	return f.Chmod(mode & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky))
}

// copyTree copies the contents of the directory src into dest.
func (c *copier) copyTree(src, dest string) error {
	if _, err := c.mkdirAll(dest); err != nil {
		return err
	}
	type dirTime struct {
		path  string
		mtime time.Time
	}
	var dirs []dirTime
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "." {
			return nil
		}
		target := path.Join(dest, filepath.ToSlash(rel))
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch m := st.Mode(); {
		case m.IsDir():
			full, err := c.resolve(target)
			if err != nil {
				return err
			}
			if ex, err := os.Lstat(full); err == nil && ex.IsDir() {
				return nil
			} else if err == nil {
				if err := os.Remove(full); err != nil {
					return err
				}
			}
			if err := os.Mkdir(full, 0o700); err != nil {
				return err
			}
			f, err := os.Open(full)
			if err != nil {
				return err
			}
			err = c.setMeta(f, m)
			f.Close()
			if err != nil {
				return err
			}
			dirs = append(dirs, dirTime{full, st.ModTime()})
		case m&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			full, err := c.resolve(target)
			if err != nil {
				return err
			}
			if err := removeNonDir(full, target); err != nil {
				return err
			}
			if err := os.Symlink(link, full); err != nil {
				return err
			}
			uid, gid := c.owner()
			if err := os.Lchown(full, uid, gid); err != nil {
				return err
			}
			ts := []unix.Timespec{unix.NsecToTimespec(st.ModTime().UnixNano()), unix.NsecToTimespec(st.ModTime().UnixNano())}
			unix.UtimesNanoAt(unix.AT_FDCWD, full, ts, unix.AT_SYMLINK_NOFOLLOW)
		case m.IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			err = c.writeFile(target, f, m, st.ModTime())
			f.Close()
			if err != nil {
				return err
			}
		default:
			// Devices, FIFOs and sockets in a context are not copied,
			// as with Docker's builder for sockets; say so.
			return fmt.Errorf("cannot copy %s: not a regular file, directory or symlink", rel)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		os.Chtimes(dirs[i].path, dirs[i].mtime, dirs[i].mtime)
	}
	return nil
}

// unpack extracts a local archive of ADD into the directory dest. The
// unpacker resolves every entry inside dest: "../" entries and links out
// of it fail.
func (c *copier) unpack(src, dest string) error {
	dir, err := c.mkdirAll(dest)
	if err != nil {
		return err
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	opts := &archive.TarOptions{}
	if c.chown {
		opts.ChownOpts = &archive.ChownOpts{UID: c.uid, GID: c.gid}
	}
	if err := archive.Untar(f, dir, opts); err != nil {
		return fmt.Errorf("unpack %s: %w", filepath.Base(src), err)
	}
	return nil
}

// archiveReader opens a possibly compressed stream.
func archiveReader(r io.Reader) (io.ReadCloser, error) {
	return compression.DecompressStream(r)
}

var errNotDir = errors.New("not a directory")
