package rootfs

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestCopyTree(t *testing.T) {
	base := t.TempDir()
	src := filepath.Join(base, "src")
	dst := filepath.Join(base, "dst")
	outside := filepath.Join(base, "outside")
	mkdirs(t, base, "src/sub/deeper", "dst", "outside")
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("no"), 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(src, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("passwd", "root:x:0:0::/root:/bin/sh\n", 0o644)
	write("sub/script", "#!/bin/sh\n", 0o751)
	write("sub/deeper/empty", "", 0o600)
	if err := os.Chmod(filepath.Join(src, "sub/deeper"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(src, "sub"), 0o710); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(src, 0o750); err != nil {
		t.Fatal(err)
	}
	// Symlinks are copied as links, never followed.
	if err := os.Symlink(outside, filepath.Join(src, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../passwd", filepath.Join(src, "sub/rel")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(src, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(src, "fifo"), 0o620); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(src, "passwd"), old, old); err != nil {
		t.Fatal(err)
	}

	open := func(p string) *os.File {
		t.Helper()
		f, err := os.OpenFile(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	if err := copyTree(open(src), open(dst)); err != nil {
		t.Fatalf("copyTree: %v", err)
	}

	tests := []struct {
		name    string
		mode    os.FileMode
		content string // for files
		link    string // for symlinks
	}{
		{".", os.ModeDir | 0o750, "", ""},
		{"passwd", 0o644, "root:x:0:0::/root:/bin/sh\n", ""},
		{"sub", os.ModeDir | 0o710, "", ""},
		{"sub/script", 0o751, "#!/bin/sh\n", ""},
		{"sub/deeper", os.ModeDir | 0o755, "", ""},
		{"sub/deeper/empty", 0o600, "", ""},
		{"escape", os.ModeSymlink, "", outside},
		{"sub/rel", os.ModeSymlink, "", "../passwd"},
		{"fifo", os.ModeNamedPipe | 0o620, "", ""},
	}
	for _, tt := range tests {
		p := filepath.Join(dst, tt.name)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if tt.mode&os.ModeSymlink != 0 {
			if fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("%s: mode %v, want a symlink", tt.name, fi.Mode())
				continue
			}
			if l, _ := os.Readlink(p); l != tt.link {
				t.Errorf("%s -> %q, want %q", tt.name, l, tt.link)
			}
			continue
		}
		if fi.Mode() != tt.mode {
			t.Errorf("%s: mode %v, want %v", tt.name, fi.Mode(), tt.mode)
		}
		if fi.Mode().IsRegular() {
			if b, _ := os.ReadFile(p); string(b) != tt.content {
				t.Errorf("%s: content %q, want %q", tt.name, b, tt.content)
			}
		}
	}
	if fi, err := os.Stat(filepath.Join(dst, "passwd")); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("passwd mtime not kept: %v %v", fi, err)
	}
	if es, _ := os.ReadDir(outside); len(es) != 1 {
		t.Errorf("outside directory changed: %v", es)
	}
	// A non-empty destination is refused rather than overwritten.
	if err := copyTree(open(src), open(dst)); err == nil {
		t.Errorf("copying over existing entries succeeded")
	}
}
