package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	securejoin "github.com/cyphar/filepath-securejoin"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// inRoot resolves and creates paths inside the rootfs. Every lookup is
// scoped to the rootfs: a symlink or ".." in the image can make a path land
// somewhere else inside it, never outside.
//
// A destination is first located: resolved to its canonical path inside the
// rootfs, which is vetted before anything is created, with a handle on the
// longest part of that path that exists. The missing directories are then
// made from that handle (dir, parent, file), and after a mount the path is
// opened again (open) to reach the new mount's root.
type inRoot struct {
	sys  Syscalls
	path string // the rootfs on the host, symlinks resolved
	fd   int    // O_PATH handle on the rootfs mount
	// kernelScoped is set when the kernel has openat2(2): lookups are
	// confined by RESOLVE_IN_ROOT. Otherwise they go through
	// filepath-securejoin.
	kernelScoped bool
	// rootAsFile is the root as an *os.File for filepath-securejoin, made
	// on first use when kernelScoped is not set; it is a duplicate of fd.
	rootAsFile *os.File
}

// newInRoot wraps fd, an O_PATH handle on the rootfs at path (symlinks
// resolved). fd stays the caller's.
func newInRoot(sys Syscalls, path string, fd int) *inRoot {
	return &inRoot{sys: sys, path: path, fd: fd, kernelScoped: openat2Supported()}
}

// close releases what the inRoot opened itself.
func (r *inRoot) close() {
	if r.rootAsFile != nil {
		r.rootAsFile.Close()
		r.rootAsFile = nil
	}
}

// rootFile returns the root as an *os.File, for filepath-securejoin.
func (r *inRoot) rootFile() (*os.File, error) {
	if r.rootAsFile == nil {
		f, err := dupFile(r.fd, r.path)
		if err != nil {
			return nil, err
		}
		r.rootAsFile = f
	}
	return r.rootAsFile, nil
}

// target is a resolved destination inside the rootfs.
type target struct {
	rel string // canonical path inside the rootfs, e.g. "/proc"
	fd  int    // O_PATH handle on the destination
}

// path returns the magic link through which mount(2) and friends reach the
// handle itself, whatever happens to the path string meanwhile.
func (t *target) path() string { return fdPath(t.fd) }

func (t *target) Close() error { return unix.Close(t.fd) }

var threadSelf = sync.OnceValue(func() bool {
	_, err := os.Stat("/proc/thread-self/fd")
	return err == nil
})

// fdPath is the /proc link that refers to the open file fd.
func fdPath(fd int) string {
	if threadSelf() {
		return "/proc/thread-self/fd/" + strconv.Itoa(fd)
	}
	return "/proc/self/fd/" + strconv.Itoa(fd)
}

// cleanDest turns a spec destination into a clean absolute path inside the
// container; relative destinations are taken relative to "/".
func cleanDest(dest string) string {
	return filepath.Clean("/" + dest)
}

// resolveOpts constrain how a destination may resolve.
type resolveOpts struct {
	// noSymlinks refuses a destination that passes through a symlink
	// instead of following it.
	noSymlinks bool
	// verify, when set, vets the resolved container path before anything
	// is created and, without openat2, once more on the path the final
	// handle's /proc link shows (see finish).
	verify func(rel string) error
}

// located is a destination resolved inside the rootfs, before anything is
// created for it.
type located struct {
	rel string // canonical path inside the rootfs
	// fd is an O_PATH handle on the longest leading part of rel that
	// exists: rel itself when missing is empty. It may be the rootfs
	// handle, which release leaves open.
	fd int
	// missing are the components of rel below fd, none of which exists.
	missing []string
}

// release closes l.fd unless it is the rootfs handle.
func (r *inRoot) release(l *located) {
	if l.fd != r.fd {
		unix.Close(l.fd)
	}
}

// locate resolves dest inside the rootfs, following symlinks as if the
// rootfs were "/", and vets the result; nothing is created. With dir, an
// existing destination must be a directory.
func (r *inRoot) locate(dest string, o resolveOpts, dir bool) (*located, error) {
	clean := cleanDest(dest)
	var (
		l   *located
		err error
	)
	if r.kernelScoped {
		l, err = r.lookup(clean, o.noSymlinks, dir)
	} else {
		l, err = r.secureJoin(clean, o.noSymlinks, dir)
	}
	if err != nil {
		return nil, err
	}
	if l.rel == "/" {
		r.release(l)
		return nil, fmt.Errorf("%q %w", clean, errIsRoot)
	}
	if o.verify != nil {
		if err := o.verify(l.rel); err != nil {
			r.release(l)
			return nil, err
		}
	}
	return l, nil
}

// lookup is locate with openat2. One call answers the common case, a path
// without symlinks: RESOLVE_NO_SYMLINKS makes the kernel fail with ELOOP at
// the first symlink on the way, so success, or ENOENT at a missing
// component, means clean is already canonical (a dangling symlink is a
// symlink, and fails with ELOOP too).
func (r *inRoot) lookup(clean string, noSymlinks, dir bool) (*located, error) {
	flags := uint64(unix.O_PATH)
	if dir {
		flags |= unix.O_DIRECTORY
	}
	fd, err := openat2(r.fd, clean, flags, resolveExact)
	switch {
	case err == nil:
		return &located{rel: clean, fd: fd}, nil
	case errors.Is(err, unix.ENOENT):
		// The whole path does not exist: its longest existing part
		// is at most its parent.
		comps := components(clean)
		n, fd, err := existingPrefix(r.fd, comps, resolveExact)
		if err != nil {
			return nil, fmt.Errorf("resolve %q in rootfs: %w", clean, err)
		}
		return &located{rel: clean, fd: fd, missing: comps[n:]}, nil
	case !errors.Is(err, unix.ELOOP):
		return nil, fmt.Errorf("resolve %q in rootfs: %w", clean, err)
	case noSymlinks:
		return nil, fmt.Errorf("%q passes through a symlink: it must be a real directory", clean)
	}
	return r.followLinks(clean, flags)
}

// followLinks resolves p, which passes through a symlink. The kernel follows
// the symlinks inside the root (RESOLVE_IN_ROOT) as far as the path exists,
// and the handle's /proc link tells where that is. Past the existing part,
// the first missing name may still be a dangling symlink, which the kernel
// reports as ENOENT: it is read here and the lookup starts over from its
// target, as the kernel would follow it. Names past a truly missing one are
// kept as written.
func (r *inRoot) followLinks(p string, flags uint64) (*located, error) {
	links := 0
	for round := 0; round < 2*maxSymlinks+openat2Retries; round++ {
		fd, err := openat2(r.fd, p, flags, resolveInRoot)
		if err == nil {
			rel, err := r.fdRel(fd)
			if err != nil {
				unix.Close(fd)
				return nil, err
			}
			return &located{rel: rel, fd: fd}, nil
		}
		if !errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("resolve %q in rootfs: %w", p, err)
		}
		comps := components(p)
		n, dirfd, err := existingPrefix(r.fd, comps, resolveInRoot)
		if err != nil {
			return nil, fmt.Errorf("resolve %q in rootfs: %w", p, err)
		}
		l := &located{rel: "/", fd: dirfd, missing: comps[n:]}
		if dirfd != r.fd {
			if l.rel, err = r.fdRel(dirfd); err != nil {
				r.release(l)
				return nil, fmt.Errorf("resolve %q in rootfs: %w", p, err)
			}
		}
		next := comps[n]
		link, err := readlinkAt(dirfd, next)
		switch {
		case next == "..":
			// The parent of an existing directory exists: the tree
			// changed under the lookup. Look again.
		case err == nil:
			if links++; links > maxSymlinks {
				r.release(l)
				return nil, fmt.Errorf("resolve %q in rootfs: %w", p, unix.ELOOP)
			}
			rest := strings.Join(comps[n+1:], "/")
			if path.IsAbs(link) {
				p = joinRaw(link, rest)
			} else {
				p = joinRaw(l.rel, link, rest)
			}
		case errors.Is(err, unix.ENOENT):
			// l.rel is canonical and nothing below it exists, so
			// the rest can be cleaned as text: a ".." there undoes
			// a directory that is yet to be made. When one climbs
			// above l.rel, the kernel resolves the result again.
			if !slices.Contains(l.missing, "..") {
				l.rel = path.Join(l.rel, strings.Join(l.missing, "/"))
				return l, nil
			}
			p = path.Join(l.rel, strings.Join(l.missing, "/"))
		case errors.Is(err, unix.EINVAL):
			// Not a symlink, so it exists: it appeared meanwhile.
		default:
			r.release(l)
			return nil, fmt.Errorf("resolve %q in rootfs: %w", p, err)
		}
		r.release(l)
	}
	return nil, fmt.Errorf("resolve %q in rootfs: %w", p, unix.ELOOP)
}

// secureJoin is locate without openat2.
func (r *inRoot) secureJoin(clean string, noSymlinks, dir bool) (*located, error) {
	full, err := securejoin.SecureJoin(r.path, clean)
	if err != nil {
		return nil, fmt.Errorf("resolve %q in rootfs: %w", clean, err)
	}
	rel, ok := r.relative(full)
	if !ok {
		return nil, fmt.Errorf("resolve %q in rootfs: %q is outside the rootfs", clean, full)
	}
	if noSymlinks && rel != clean {
		return nil, fmt.Errorf("%q passes through a symlink (to %q): it must be a real directory", clean, rel)
	}
	// The longest part of rel that exists, from the whole path down.
	comps := components(rel)
	for n := len(comps); n > 0; n-- {
		fd, err := r.openExact(joinRaw(comps[:n]...), false)
		if err == nil {
			l := &located{rel: rel, fd: fd, missing: comps[n:]}
			if dir && n == len(comps) {
				var st unix.Stat_t
				if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
					r.release(l)
					return nil, fmt.Errorf("resolve %q in rootfs: %w", clean, unix.ENOTDIR)
				}
			}
			return l, nil
		}
		if !errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("resolve %q in rootfs: %w", clean, err)
		}
	}
	return &located{rel: rel, fd: r.fd, missing: comps}, nil
}

// openExact opens rel, a canonical path inside the rootfs, with O_PATH.
func (r *inRoot) openExact(rel string, dir bool) (int, error) {
	if r.kernelScoped {
		flags := uint64(unix.O_PATH)
		if dir {
			flags |= unix.O_DIRECTORY
		}
		return openat2(r.fd, rel, flags, resolveExact)
	}
	root, err := r.rootFile()
	if err != nil {
		return -1, err
	}
	f, err := pathrs.OpenatInRoot(root, rel)
	if err != nil {
		return -1, err
	}
	return detach(f)
}

// fdRel returns the path inside the rootfs of the open file fd, as its /proc
// link shows it.
func (r *inRoot) fdRel(fd int) (string, error) {
	link, err := os.Readlink(fdPath(fd))
	if err != nil {
		return "", fmt.Errorf("read handle path: %w", err)
	}
	rel, ok := r.relative(link)
	if !ok {
		return "", fmt.Errorf("handle resolved to %q, outside the rootfs", link)
	}
	return rel, nil
}

// relative turns a host path under the rootfs into a container path.
func (r *inRoot) relative(hostPath string) (string, bool) {
	if hostPath == r.path {
		return "/", true
	}
	if rest, ok := strings.CutPrefix(hostPath, r.path+"/"); ok {
		return "/" + rest, true
	}
	return "", false
}

// errIsRoot is returned when a destination resolves to the rootfs itself: a
// mount there would hide the whole image, which only a hostile symlink (such
// as /dev -> /) asks for.
var errIsRoot = errors.New("resolves to the container's root directory")

// dir resolves dest inside the rootfs, creates it as a directory if needed
// and returns a handle on it.
func (r *inRoot) dir(dest string, o resolveOpts) (*target, error) {
	l, err := r.locate(dest, o, true)
	if err != nil {
		return nil, err
	}
	return r.mkdirs(l, len(l.missing), o)
}

// mkdirs creates the first n missing components of l and returns a handle
// on the last of them (on l.fd itself when n is 0), closing l.fd.
func (r *inRoot) mkdirs(l *located, n int, o resolveOpts) (*target, error) {
	rel := path.Join(l.rel, strings.Repeat("../", len(l.missing)-n))
	if n == 0 {
		if l.fd == r.fd {
			// Only the root itself exists; it is no destination, but
			// it may be a parent.
			fd, err := r.openExact("/", true)
			if err != nil {
				return nil, fmt.Errorf("open rootfs: %w", err)
			}
			return r.finish(fd, rel, o)
		}
		return r.finish(l.fd, rel, o)
	}
	fd, err := r.sys.MkdirAllInRoot(l.fd, strings.Join(l.missing[:n], "/"), 0o755)
	r.release(l)
	if err != nil {
		return nil, fmt.Errorf("create directory %q in rootfs: %w", rel, err)
	}
	return r.finish(fd, rel, o)
}

// existing resolves dest inside the rootfs and opens it; it must exist.
func (r *inRoot) existing(dest string, o resolveOpts) (*target, error) {
	l, err := r.locate(dest, o, false)
	if err != nil {
		return nil, err
	}
	if len(l.missing) > 0 {
		r.release(l)
		return nil, fmt.Errorf("open %q in rootfs: %w", l.rel, unix.ENOENT)
	}
	return r.finish(l.fd, l.rel, o)
}

// file resolves dest inside the rootfs, creates it as an empty regular file
// if nothing is there yet, and returns a handle on it.
func (r *inRoot) file(dest string, o resolveOpts) (*target, error) {
	parent, name, err := r.parent(dest, o)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	if err := r.sys.CreateFileAt(parent.fd, name, 0o644); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("create file %q in rootfs: %w", path.Join(parent.rel, name), err)
	}
	return r.open(path.Join(parent.rel, name), o)
}

// parent resolves dest inside the rootfs, creates its parent directory and
// returns a handle on that parent plus the final name, for operations (mknod,
// symlink, create) that make the last component themselves and never follow
// it.
func (r *inRoot) parent(dest string, o resolveOpts) (*target, string, error) {
	l, err := r.locate(dest, o, false)
	if err != nil {
		return nil, "", err
	}
	rel, dir, name := l.rel, path.Dir(l.rel), path.Base(l.rel)
	var t *target
	if len(l.missing) == 0 {
		// The destination exists: open its parent.
		r.release(l)
		fd, err := r.openExact(dir, true)
		if err != nil {
			return nil, "", fmt.Errorf("open %q in rootfs: %w", dir, err)
		}
		t, err = r.finish(fd, dir, resolveOpts{})
	} else {
		t, err = r.mkdirs(l, len(l.missing)-1, resolveOpts{})
	}
	if err != nil {
		return nil, "", err
	}
	if path.Join(t.rel, name) != rel {
		t.Close()
		return nil, "", fmt.Errorf("directory %q moved while it was created (now %q)", dir, t.rel)
	}
	return t, name, nil
}

// open opens an existing path inside the rootfs, rel as locate returns it.
// Opened after a mount, the handle refers to the root of that mount, which
// is what a remount or a propagation change must target.
func (r *inRoot) open(rel string, o resolveOpts) (*target, error) {
	fd, err := r.openExact(rel, false)
	if err != nil {
		return nil, fmt.Errorf("open %q in rootfs: %w", rel, err)
	}
	return r.finish(fd, rel, o)
}

// finish takes ownership of fd, the handle just opened for rel, and vets
// it.
//
// With openat2 there is nothing left to check: the handle was opened by
// rel, a canonical path already vetted by locate, from the rootfs handle
// with RESOLVE_IN_ROOT and RESOLVE_NO_SYMLINKS (or component by component
// with RESOLVE_BENEATH from such a handle), or it is the handle whose /proc
// link gave rel in the first place. The kernel guarantees that such a
// lookup stays under the rootfs handle and, refusing every symlink, that it
// reached rel itself and nothing else; a rename racing with it makes it fail
// rather than land elsewhere. Reading the handle's /proc link would only
// repeat that.
//
// Without openat2 the handle comes from filepath-securejoin, and its /proc
// link is checked to lie inside the rootfs, as a last line of defence
// against anything the resolution might have missed, and its final path is
// vetted again.
func (r *inRoot) finish(fd int, rel string, o resolveOpts) (*target, error) {
	if r.kernelScoped {
		return &target{rel: rel, fd: fd}, nil
	}
	got, err := r.fdRel(fd)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%q: %w", rel, err)
	}
	if o.verify != nil {
		if err := o.verify(got); err != nil {
			unix.Close(fd)
			return nil, err
		}
	}
	return &target{rel: got, fd: fd}, nil
}

// procMountAllowed are the files under /proc that may be bind-mounted over,
// so that tools such as lxcfs can present per-container values.
var procMountAllowed = map[string]bool{
	"/proc/cpuinfo":                true,
	"/proc/diskstats":              true,
	"/proc/meminfo":                true,
	"/proc/stat":                   true,
	"/proc/swaps":                  true,
	"/proc/uptime":                 true,
	"/proc/loadavg":                true,
	"/proc/slabinfo":               true,
	"/proc/net/dev":                true,
	"/proc/sys/kernel/ns_last_pid": true,
}

// checkProcDest refuses mounts that would cover procfs or parts of it with
// something else: /proc itself takes only a proc mount, and below it only
// binds onto the files in procMountAllowed are accepted.
func checkProcDest(rel, fstype string, bind bool) error {
	switch {
	case rel == "/proc":
		if fstype != "proc" || bind {
			return fmt.Errorf("only a proc filesystem may be mounted on /proc")
		}
	case strings.HasPrefix(rel, "/proc/"):
		if !bind || !procMountAllowed[rel] {
			return fmt.Errorf("%q cannot be mounted because it is inside /proc", rel)
		}
	}
	return nil
}
