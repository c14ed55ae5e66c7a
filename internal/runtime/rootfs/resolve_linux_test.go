package rootfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// canonical returns the canonical path of dest inside the rootfs, as locate
// finds it.
func (r *inRoot) canonical(dest string, o resolveOpts) (string, error) {
	l, err := r.locate(dest, o, false)
	if err != nil {
		return "", err
	}
	r.release(l)
	return l.rel, nil
}

// tree lists everything under dir, symlinks with their targets, so that a
// test can tell whether anything was created.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		entry := strings.TrimPrefix(p, dir)
		if d.Type()&fs.ModeSymlink != 0 {
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			entry += " -> " + l
		}
		out = append(out, entry)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLocate resolves destinations in an image full of hostile symlinks
// (absolute and relative ones climbing out, "..", loops, chains of dangling
// links, links to /proc/self/root and /proc/self/fd) with both resolvers:
// each must give the canonical path inside the rootfs, or an error, and
// create nothing, inside the rootfs or out.
func TestLocate(t *testing.T) {
	forEachResolver(t, testLocate)
}

func testLocate(t *testing.T) {
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(base, "rootfs")
	outside := filepath.Join(base, "outside")
	mkdirs(t, base, "rootfs/etc", "rootfs/usr/lib", "rootfs/var", "outside")
	if err := os.WriteFile(filepath.Join(rootfs, "etc/passwd"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out := strings.TrimPrefix(outside, "/")
	links := map[string]string{
		"abs":        outside,                          // absolute host path
		"rel":        "../../../../../../../../" + out, // relative, climbing out
		"var/run":    "../run",                         // dangling, relative
		"var/lock":   "/run/lock",                      // dangling, absolute
		"lib":        "usr/lib",                        // to a directory
		"dotdot":     "..",                             // the root's parent is the root
		"usr/lib/up": "../../..",                       // climbing above the root
		"loop1":      "loop2",
		"loop2":      "loop1",
		"self":       "self",
		"chain1":     "chain2", // a chain of links, the last one dangling
		"chain2":     "/chain3",
		"chain3":     "../opt/final",
		"magic":      "/proc/self/root", // the host's root, if followed on the host
		"magicfd":    "/proc/self/fd/0",
		"passwd":     "/etc/passwd", // to a file
		"usr/lib/sh": "../share/x",  // dangling, relative, below the root
		"etc/x":      "missing/../../usr",
		"etc/z":      "missing/../../lib/x", // ".." undoing a missing name, then a link
		"etc/y":      "missing/../../../" + out,
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(rootfs, name)); err != nil {
			t.Fatal(err)
		}
	}
	before := tree(t, base)

	tests := []struct {
		dest       string
		noSymlinks bool
		want       string // canonical path; "" for an error
	}{
		{"/etc", false, "/etc"},
		{"etc/passwd", false, "/etc/passwd"},
		{"/new/dir", false, "/new/dir"},
		{"/../../etc/../new", false, "/new"},
		{"/abs", false, outside},
		{"/abs/sub", false, outside + "/sub"},
		{"/rel/sub", false, outside + "/sub"},
		{"/var/run/x", false, "/run/x"},
		{"/var/lock", false, "/run/lock"},
		{"/lib/x", false, "/usr/lib/x"},
		{"/dotdot/etc", false, "/etc"},
		{"/usr/lib/up/etc", false, "/etc"},
		{"/chain1/sub", false, "/opt/final/sub"},
		{"/magic/etc", false, "/proc/self/root/etc"},
		{"/magicfd", false, "/proc/self/fd/0"},
		{"/passwd", false, "/etc/passwd"},
		{"/usr/lib/sh/y", false, "/usr/share/x/y"},
		{"/lib/sh", false, "/usr/share/x"},
		{"/etc/x/lib", false, "/usr/lib"},
		{"/etc/z", false, "/usr/lib/x"},
		{"/etc/y", false, outside},
		{"/etc/new", true, "/etc/new"},
		{"/passwd/x", false, ""}, // through a file
		{"/loop1", false, ""},
		{"/loop1/x", false, ""},
		{"/self", false, ""},
		{"/dotdot", false, ""}, // the root itself
		{"/usr/lib/up", false, ""},
		{"/", false, ""},
		{"/lib", true, ""}, // refused, not followed
		{"/var/run/x", true, ""},
		{"/abs", true, ""},
	}
	for _, tt := range tests {
		f := newFake(t, rootfs)
		r := openTestRoot(t, f)
		got, err := r.canonical(tt.dest, resolveOpts{noSymlinks: tt.noSymlinks})
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("canonical(%q, noSymlinks=%v) = %q, want an error", tt.dest, tt.noSymlinks, got)
		case tt.want != "" && err != nil:
			t.Errorf("canonical(%q, noSymlinks=%v): %v", tt.dest, tt.noSymlinks, err)
		case got != tt.want:
			t.Errorf("canonical(%q, noSymlinks=%v) = %q, want %q", tt.dest, tt.noSymlinks, got, tt.want)
		}
		if len(f.calls) != 0 {
			t.Errorf("canonical(%q) changed something: %q", tt.dest, f.calls)
		}
	}
	if after := tree(t, base); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("resolution created files:\nbefore: %q\nafter:  %q", before, after)
	}
}

// TestLocateRefusesMagicLinks resolves paths inside the host's procfs, taken
// as the root: a plain symlink such as "self" is followed, a magic link
// (root, cwd, fd/N), which would jump to whatever it names, is refused.
func TestLocateRefusesMagicLinks(t *testing.T) {
	if !openat2Supported() {
		t.Skip("the kernel has no openat2")
	}
	f := newFake(t, "/proc")
	r := openTestRoot(t, f)
	pid := strconv.Itoa(os.Getpid())
	got, err := r.canonical("/self/status", resolveOpts{})
	if err != nil || got != "/"+pid+"/status" {
		t.Errorf("canonical(/self/status) = %q, %v; want %q", got, err, "/"+pid+"/status")
	}
	for _, dest := range []string{"/self/root", "/self/root/etc", "/self/cwd/x", "/thread-self/fd/0", "/self/exe"} {
		if got, err := r.canonical(dest, resolveOpts{}); err == nil {
			t.Errorf("canonical(%q) = %q, want an error", dest, got)
		} else if !errors.Is(err, unix.ELOOP) {
			t.Errorf("canonical(%q): %v, want ELOOP", dest, err)
		}
	}
}

// TestMkdirAllInRoot creates directories below a handle: what exists is
// reused, a symlink or a file on the way is an error, and ".." cannot climb
// above the handle.
func TestMkdirAllInRoot(t *testing.T) {
	forEachResolver(t, func(t *testing.T) {
		base, err := filepath.EvalSymlinks(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		root := filepath.Join(base, "root")
		outside := filepath.Join(base, "outside")
		mkdirs(t, base, "root/a", "outside")
		if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "file"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(rootfd)

		for _, tt := range []struct{ path, want string }{
			{"a/b/c", "/a/b/c"},
			{"a", "/a"},
			{"a/b/c/d", "/a/b/c/d"},
			{"../../x/y", "/x/y"},
		} {
			fd, err := kernel{}.MkdirAllInRoot(rootfd, tt.path, 0o755)
			if err != nil {
				t.Errorf("MkdirAllInRoot(%q): %v", tt.path, err)
				continue
			}
			l, err := os.Readlink(fdPath(fd))
			unix.Close(fd)
			if err != nil || l != root+tt.want {
				t.Errorf("MkdirAllInRoot(%q) opened %q (%v), want %q", tt.path, l, err, root+tt.want)
			}
			if fi, err := os.Lstat(root + tt.want); err != nil || !fi.IsDir() {
				t.Errorf("MkdirAllInRoot(%q) did not make a directory: %v", tt.path, err)
			}
		}
		// filepath-securejoin follows a symlink inside the root; with
		// openat2 it is refused. Either way nothing lands outside.
		fd, err := kernel{}.MkdirAllInRoot(rootfd, "link/sub", 0o755)
		if err == nil {
			unix.Close(fd)
			if openat2Supported() {
				t.Errorf("MkdirAllInRoot went through a symlink")
			}
		}
		if fd, err := (kernel{}).MkdirAllInRoot(rootfd, "file/sub", 0o755); err == nil {
			unix.Close(fd)
			t.Errorf("MkdirAllInRoot went through a file")
		}
		if es, err := os.ReadDir(outside); err != nil || len(es) != 0 {
			t.Errorf("something was created outside the root: %v, %v", es, err)
		}
	})
}

// TestOpenat2Components checks the path helpers of the openat2 resolver.
func TestOpenat2Components(t *testing.T) {
	if got := components("//a/./b/../c/"); strings.Join(got, ",") != "a,b,..,c" {
		t.Errorf("components = %q", got)
	}
	for _, tt := range []struct {
		parts []string
		want  string
	}{
		{nil, "/"},
		{[]string{"/", ""}, "/"},
		{[]string{"/etc", "../x", ""}, "/etc/../x"},
		{[]string{"a/", "/b/"}, "/a/b"},
	} {
		if got := joinRaw(tt.parts...); got != tt.want {
			t.Errorf("joinRaw(%q) = %q, want %q", tt.parts, got, tt.want)
		}
	}
}
