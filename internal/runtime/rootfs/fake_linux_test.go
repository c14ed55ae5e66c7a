package rootfs

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// fakeSys records every state-changing call in a readable form. Mounts,
// mknod, chown, pivot_root, chroot and chdir are only recorded; directory,
// file and symlink creation really happen (inside the temporary rootfs), so
// the secure resolution runs for real without privileges.
//
// Paths under the rootfs are written "R/..." and /proc/.../fd/N links are
// replaced by what they point to, so a recorded call shows where it landed.
type fakeSys struct {
	t      *testing.T
	rootfs string // resolved rootfs path
	calls  []string

	mounts   []*mountinfo.Info
	statfs   map[string]unix.Statfs_t // by recorded path
	mountErr map[string][]error       // by recorded target, consumed in order
	pivotErr error
	umask    int
	// mknodExists makes Mknodat fail with EEXIST where an entry exists.
	mknodExists bool
}

var _ Syscalls = (*fakeSys)(nil)

func newFake(t *testing.T, rootfs string) *fakeSys {
	t.Helper()
	r, err := realPath(rootfs)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeSys{
		t:        t,
		rootfs:   r,
		statfs:   map[string]unix.Statfs_t{},
		mountErr: map[string][]error{},
		umask:    0o022,
	}
}

func realPath(p string) (string, error) {
	o := Options{Rootfs: p}
	return o.rootfsPath()
}

var fdLink = regexp.MustCompile(`^/proc/(thread-self|self)/fd/[0-9]+$`)

// show turns a path into its recorded form.
func (f *fakeSys) show(p string) string {
	if fdLink.MatchString(p) {
		l, err := os.Readlink(p)
		if err != nil {
			f.t.Errorf("readlink %s: %v", p, err)
			return p
		}
		p = l
	}
	if p == f.rootfs {
		return "R"
	}
	if rest, ok := strings.CutPrefix(p, f.rootfs+"/"); ok {
		return "R/" + rest
	}
	return p
}

func (f *fakeSys) showFd(fd int) string { return f.show("/proc/self/fd/" + strconv.Itoa(fd)) }

func (f *fakeSys) showAt(dirfd int, name string) string { return f.showFd(dirfd) + "/" + name }

func (f *fakeSys) record(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

// failMount makes the next mount call on target (recorded form) fail.
func (f *fakeSys) failMount(target string, errs ...error) {
	f.mountErr[target] = append(f.mountErr[target], errs...)
}

func (f *fakeSys) Mount(source, target, fstype string, flags uintptr, data string) error {
	tgt := f.show(target)
	f.record("mount %q %q %q %s %q", f.show(source), tgt, fstype, flagString(flags), data)
	if errs := f.mountErr[tgt]; len(errs) > 0 {
		f.mountErr[tgt] = errs[1:]
		if errs[0] != nil {
			return &os.PathError{Op: "mount", Path: target, Err: errs[0]}
		}
	}
	return nil
}

func (f *fakeSys) Unmount(target string, flags int) error {
	var fl string
	if flags == unix.MNT_DETACH {
		fl = "MNT_DETACH"
	} else {
		fl = strconv.Itoa(flags)
	}
	tgt := f.show(target)
	f.record("umount %q %s", tgt, fl)
	if errs := f.mountErr["umount "+tgt]; len(errs) > 0 {
		f.mountErr["umount "+tgt] = errs[1:]
		return &os.PathError{Op: "umount", Path: target, Err: errs[0]}
	}
	return nil
}

func (f *fakeSys) PivotRoot(newRoot, putOld string) error {
	f.record("pivot_root %q %q", newRoot, putOld)
	return f.pivotErr
}

func (f *fakeSys) Chdir(path string) error {
	f.record("chdir %q", f.show(path))
	return nil
}

func (f *fakeSys) Fchdir(fd int) error {
	f.record("fchdir %q", f.showFd(fd))
	return nil
}

func (f *fakeSys) Chroot(path string) error {
	f.record("chroot %q", path)
	return nil
}

func (f *fakeSys) Umask(mask int) int {
	f.record("umask %#o", mask)
	old := f.umask
	f.umask = mask
	return old
}

func (f *fakeSys) MkdirAllInRoot(dirfd int, path string, mode uint32) (int, error) {
	f.record("mkdir %s/%s %#o", f.showFd(dirfd), strings.Trim(path, "/"), mode)
	return kernel{}.MkdirAllInRoot(dirfd, path, mode)
}

func (f *fakeSys) Mknodat(dirfd int, name string, mode uint32, dev int) error {
	f.record("mknod %s %s %d:%d", f.showAt(dirfd, name), modeString(mode), unix.Major(uint64(dev)), unix.Minor(uint64(dev)))
	var st unix.Stat_t
	if f.mknodExists && unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
		return &os.PathError{Op: "mknodat", Path: name, Err: unix.EEXIST}
	}
	return nil
}

func (f *fakeSys) CreateFileAt(dirfd int, name string, mode uint32) error {
	f.record("create %s %#o", f.showAt(dirfd, name), mode)
	return kernel{}.CreateFileAt(dirfd, name, mode)
}

func (f *fakeSys) Symlinkat(target string, dirfd int, name string) error {
	f.record("symlink %s -> %s", f.showAt(dirfd, name), target)
	return kernel{}.Symlinkat(target, dirfd, name)
}

func (f *fakeSys) Unlinkat(dirfd int, name string, flags int) error {
	f.record("unlink %s", f.showAt(dirfd, name))
	return kernel{}.Unlinkat(dirfd, name, flags)
}

func (f *fakeSys) Fchownat(dirfd int, name string, uid, gid, flags int) error {
	f.record("chown %s %d:%d", f.showAt(dirfd, name), uid, gid)
	return nil
}

func (f *fakeSys) CopyTree(src, dst *os.File) error {
	f.record("copytree %s -> %s", f.showFd(int(src.Fd())), f.showFd(int(dst.Fd())))
	return nil
}

func (f *fakeSys) Statfs(path string, buf *unix.Statfs_t) error {
	st, ok := f.statfs[f.show(path)]
	if !ok {
		return &os.PathError{Op: "statfs", Path: path, Err: unix.ENOENT}
	}
	*buf = st
	return nil
}

func (f *fakeSys) Mounts() ([]*mountinfo.Info, error) {
	if f.mounts == nil {
		return nil, errors.New("fake: no mount table configured")
	}
	return f.mounts, nil
}

// hostMount is a mount table entry for the fake.
func hostMount(mountpoint, fstype, vfsOpts, optional string) *mountinfo.Info {
	return &mountinfo.Info{Mountpoint: mountpoint, FSType: fstype, VFSOptions: vfsOpts, Optional: optional, Root: "/"}
}

// msNames are the mount flags by ascending bit, the order flagString uses.
var msNames = []struct {
	bit  uintptr
	name string
}{
	{unix.MS_RDONLY, "MS_RDONLY"},
	{unix.MS_NOSUID, "MS_NOSUID"},
	{unix.MS_NODEV, "MS_NODEV"},
	{unix.MS_NOEXEC, "MS_NOEXEC"},
	{unix.MS_SYNCHRONOUS, "MS_SYNCHRONOUS"},
	{unix.MS_REMOUNT, "MS_REMOUNT"},
	{unix.MS_MANDLOCK, "MS_MANDLOCK"},
	{unix.MS_DIRSYNC, "MS_DIRSYNC"},
	{unix.MS_NOSYMFOLLOW, "MS_NOSYMFOLLOW"},
	{unix.MS_NOATIME, "MS_NOATIME"},
	{unix.MS_NODIRATIME, "MS_NODIRATIME"},
	{unix.MS_BIND, "MS_BIND"},
	{unix.MS_MOVE, "MS_MOVE"},
	{unix.MS_REC, "MS_REC"},
	{unix.MS_SILENT, "MS_SILENT"},
	{unix.MS_UNBINDABLE, "MS_UNBINDABLE"},
	{unix.MS_PRIVATE, "MS_PRIVATE"},
	{unix.MS_SLAVE, "MS_SLAVE"},
	{unix.MS_SHARED, "MS_SHARED"},
	{unix.MS_RELATIME, "MS_RELATIME"},
	{unix.MS_I_VERSION, "MS_I_VERSION"},
	{unix.MS_STRICTATIME, "MS_STRICTATIME"},
	{unix.MS_LAZYTIME, "MS_LAZYTIME"},
}

func flagString(flags uintptr) string {
	if flags == 0 {
		return "0"
	}
	var parts []string
	for _, n := range msNames {
		if flags&n.bit != 0 {
			parts = append(parts, n.name)
			flags &^= n.bit
		}
	}
	if flags != 0 {
		parts = append(parts, fmt.Sprintf("%#x", flags))
	}
	return strings.Join(parts, "|")
}

func modeString(mode uint32) string {
	var t string
	switch mode & unix.S_IFMT {
	case unix.S_IFCHR:
		t = "c"
	case unix.S_IFBLK:
		t = "b"
	case unix.S_IFIFO:
		t = "p"
	default:
		t = "?"
	}
	return fmt.Sprintf("%s%04o", t, mode&0o7777)
}

// diffCalls reports the first difference between two call lists in full.
func diffCalls(t *testing.T, got, want []string) {
	t.Helper()
	n := len(got)
	if len(want) > n {
		n = len(want)
	}
	for i := 0; i < n; i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("call %d differs:\n got: %s\nwant: %s\nall calls:\n%s", i, g, w, strings.Join(got, "\n"))
			return
		}
	}
}

// forEachResolver runs test once with each way of resolving paths in the
// rootfs: openat2, when the kernel has it, and filepath-securejoin.
func forEachResolver(t *testing.T, test func(t *testing.T)) {
	t.Helper()
	t.Run("openat2", func(t *testing.T) {
		if !openat2Supported() {
			t.Skip("the kernel has no openat2")
		}
		test(t)
	})
	t.Run("securejoin", func(t *testing.T) {
		withoutOpenat2(t)
		test(t)
	})
}

// withoutOpenat2 makes the package act, until the end of the test, as on a
// kernel without openat2.
func withoutOpenat2(t *testing.T) {
	old := openat2Supported
	openat2Supported = func() bool { return false }
	t.Cleanup(func() { openat2Supported = old })
}

// openTestRoot opens the fake's rootfs as Prepare does, for tests of the
// resolution alone.
func openTestRoot(t *testing.T, f *fakeSys) *inRoot {
	t.Helper()
	fd, err := unix.Open(f.rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := newInRoot(f, f.rootfs, fd)
	t.Cleanup(func() {
		r.close()
		unix.Close(fd)
	})
	return r
}
