package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
type inRoot struct {
	sys    Syscalls
	path   string   // the rootfs on the host, symlinks resolved
	handle *os.File // O_PATH handle on the rootfs mount
}

// target is a resolved destination inside the rootfs.
type target struct {
	rel  string   // canonical path inside the rootfs, e.g. "/proc"
	file *os.File // handle on the destination
}

// path returns the magic link through which mount(2) and friends reach the
// handle itself, whatever happens to the path string meanwhile.
func (t *target) path() string { return fdPath(int(t.file.Fd())) }

func (t *target) Close() error { return t.file.Close() }

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
	// verify, when set, vets the resolved container path, both before
	// anything is created and once the final handle is open.
	verify func(rel string) error
}

// canonical resolves dest inside the rootfs, following symlinks as if the
// rootfs were "/", and returns the resulting path relative to the rootfs
// (starting with "/"). Components that do not exist yet are kept as they are.
func (r *inRoot) canonical(dest string, o resolveOpts) (string, error) {
	clean := cleanDest(dest)
	full, err := securejoin.SecureJoin(r.path, clean)
	if err != nil {
		return "", fmt.Errorf("resolve %q in rootfs: %w", clean, err)
	}
	rel, ok := r.relative(full)
	if !ok {
		return "", fmt.Errorf("resolve %q in rootfs: %q is outside the rootfs", clean, full)
	}
	if o.noSymlinks && rel != clean {
		return "", fmt.Errorf("%q passes through a symlink (to %q): it must be a real directory", clean, rel)
	}
	if rel == "/" {
		return "", fmt.Errorf("%q %w", clean, errIsRoot)
	}
	if o.verify != nil {
		if err := o.verify(rel); err != nil {
			return "", err
		}
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
	rel, err := r.canonical(dest, o)
	if err != nil {
		return nil, err
	}
	f, err := r.sys.MkdirAllInRoot(r.handle, rel, 0o755)
	if err != nil {
		return nil, fmt.Errorf("create directory %q in rootfs: %w", rel, err)
	}
	return r.finish(f, o)
}

// file resolves dest inside the rootfs, creates it as an empty regular file
// if nothing is there yet, and returns a handle on it.
func (r *inRoot) file(dest string, o resolveOpts) (*target, error) {
	parent, name, err := r.parent(dest, o)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	if err := r.sys.CreateFileAt(int(parent.file.Fd()), name, 0o644); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("create file %q in rootfs: %w", filepath.Join(parent.rel, name), err)
	}
	return r.open(filepath.Join(parent.rel, name), o)
}

// parent resolves dest inside the rootfs, creates its parent directory and
// returns a handle on that parent plus the final name, for operations (mknod,
// symlink, create) that make the last component themselves and never follow
// it.
func (r *inRoot) parent(dest string, o resolveOpts) (*target, string, error) {
	rel, err := r.canonical(dest, o)
	if err != nil {
		return nil, "", err
	}
	f, err := r.sys.MkdirAllInRoot(r.handle, filepath.Dir(rel), 0o755)
	if err != nil {
		return nil, "", fmt.Errorf("create directory %q in rootfs: %w", filepath.Dir(rel), err)
	}
	t, err := r.finish(f, resolveOpts{})
	if err != nil {
		return nil, "", err
	}
	if filepath.Join(t.rel, filepath.Base(rel)) != rel {
		t.Close()
		return nil, "", fmt.Errorf("directory %q moved while it was created (now %q)", filepath.Dir(rel), t.rel)
	}
	return t, filepath.Base(rel), nil
}

// open opens an existing path inside the rootfs. Opened after a mount, the
// handle refers to the root of that mount, which is what a remount or a
// propagation change must target.
func (r *inRoot) open(rel string, o resolveOpts) (*target, error) {
	f, err := pathrs.OpenatInRoot(r.handle, rel)
	if err != nil {
		return nil, fmt.Errorf("open %q in rootfs: %w", rel, err)
	}
	return r.finish(f, o)
}

// finish checks that an open handle lies inside the rootfs, as a last line
// of defence against anything the resolution might have missed, and vets
// its final path.
func (r *inRoot) finish(f *os.File, o resolveOpts) (*target, error) {
	link, err := os.Readlink(fdPath(int(f.Fd())))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read handle path: %w", err)
	}
	rel, ok := r.relative(link)
	if !ok {
		f.Close()
		return nil, fmt.Errorf("%q resolved to %q, outside the rootfs", f.Name(), link)
	}
	if o.verify != nil {
		if err := o.verify(rel); err != nil {
			f.Close()
			return nil, err
		}
	}
	return &target{rel: rel, file: f}, nil
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
