package cgroups

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// memFS is an in-memory cgroup filesystem. Like cgroupfs it refuses writes
// to files that do not exist, and it records every write in order.
type memFS struct {
	files map[string]string
	dirs  map[string]bool
	// writes is the log of writes, "path=value".
	writes []string
	// onMkdir populates a new directory with its interface files.
	onMkdir func(fs *memFS, dir string)
	// onWrite, when set, can fail a write or change what it stores.
	onWrite func(path, value string) error
	// onRead, when set, can replace the content read from a file.
	onRead func(path, content string) string
}

func newMemFS(dirs ...string) *memFS {
	fs := &memFS{files: map[string]string{}, dirs: map[string]bool{}}
	for _, d := range dirs {
		fs.addDir(d)
	}
	return fs
}

func (fs *memFS) addDir(d string) {
	for d != "/" && d != "." {
		fs.dirs[d] = true
		d = filepath.Dir(d)
	}
}

// set creates or overwrites files, given as path, content pairs.
func (fs *memFS) set(kv ...string) {
	for i := 0; i+1 < len(kv); i += 2 {
		fs.addDir(filepath.Dir(kv[i]))
		fs.files[kv[i]] = kv[i+1]
	}
}

func notExist(op, name string) error {
	return &os.PathError{Op: op, Path: name, Err: os.ErrNotExist}
}

func (fs *memFS) ReadFile(name string) ([]byte, error) {
	c, ok := fs.files[name]
	if !ok {
		return nil, notExist("open", name)
	}
	if fs.onRead != nil {
		c = fs.onRead(name, c)
	}
	return []byte(c), nil
}

func (fs *memFS) WriteFile(name, data string) error {
	if _, ok := fs.files[name]; !ok {
		return notExist("open", name)
	}
	if fs.onWrite != nil {
		if err := fs.onWrite(name, data); err != nil {
			return err
		}
	}
	fs.writes = append(fs.writes, name+"="+data)
	if filepath.Base(name) == "cgroup.subtree_control" {
		data = toggleControllers(fs.files[name], data)
	}
	fs.files[name] = data
	return nil
}

// toggleControllers applies "+c -c" to an enabled controller list.
func toggleControllers(enabled, change string) string {
	on := strings.Fields(enabled)
	for _, c := range strings.Fields(change) {
		name := c[1:]
		kept := on[:0]
		for _, x := range on {
			if x != name {
				kept = append(kept, x)
			}
		}
		on = kept
		if c[0] == '+' {
			on = append(on, name)
		}
	}
	return strings.Join(on, " ")
}

func (fs *memFS) Mkdir(name string) error {
	if fs.dirs[name] {
		return &os.PathError{Op: "mkdir", Path: name, Err: os.ErrExist}
	}
	if !fs.dirs[filepath.Dir(name)] {
		return notExist("mkdir", name)
	}
	fs.dirs[name] = true
	if fs.onMkdir != nil {
		fs.onMkdir(fs, name)
	}
	return nil
}

func (fs *memFS) Rmdir(name string) error {
	if !fs.dirs[name] {
		return notExist("rmdir", name)
	}
	if subs, _ := fs.SubDirs(name); len(subs) > 0 {
		return &os.PathError{Op: "rmdir", Path: name, Err: unix.EBUSY}
	}
	delete(fs.dirs, name)
	for f := range fs.files {
		if filepath.Dir(f) == name {
			delete(fs.files, f)
		}
	}
	return nil
}

func (fs *memFS) Exists(name string) bool {
	_, ok := fs.files[name]
	return ok || fs.dirs[name]
}

func (fs *memFS) SubDirs(name string) ([]string, error) {
	if !fs.dirs[name] {
		return nil, notExist("open", name)
	}
	var out []string
	for d := range fs.dirs {
		if filepath.Dir(d) == name && d != name {
			out = append(out, filepath.Base(d))
		}
	}
	sort.Strings(out)
	return out, nil
}

// writesUnder returns the logged writes below dir, with dir stripped.
func (fs *memFS) writesUnder(dir string) []string {
	var out []string
	for _, w := range fs.writes {
		if rest, ok := strings.CutPrefix(w, dir+"/"); ok {
			out = append(out, rest)
		}
	}
	return out
}

func TestMkdirAllVisitsEveryLevel(t *testing.T) {
	fs := newMemFS("/cg")
	fs.addDir("/cg/a")
	var visited []string
	err := mkdirAll(fs, "/cg", "/cg/a/b/c", func(d string) error {
		visited = append(visited, d)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/cg/a", "/cg/a/b", "/cg/a/b/c"}
	if strings.Join(visited, " ") != strings.Join(want, " ") {
		t.Errorf("visited %v, want %v", visited, want)
	}
	if !fs.dirs["/cg/a/b/c"] {
		t.Error("leaf not created")
	}
	if err := mkdirAll(fs, "/cg", "/other/x", nil); err == nil {
		t.Error("mkdirAll outside the root succeeded")
	}
}

func TestRemoveCgroupRecursiveAndIdempotent(t *testing.T) {
	fs := newMemFS("/cg/ctr/sub/deeper", "/cg/ctr/sub2")
	fs.set("/cg/ctr/cgroup.procs", "", "/cg/ctr/sub/cgroup.procs", "")
	if err := removeCgroup(fs, "/cg/ctr"); err != nil {
		t.Fatal(err)
	}
	for d := range fs.dirs {
		if strings.HasPrefix(d, "/cg/ctr") {
			t.Errorf("%s left behind", d)
		}
	}
	if !fs.dirs["/cg"] {
		t.Error("parent removed")
	}
	if err := removeCgroup(fs, "/cg/ctr"); err != nil {
		t.Errorf("second removal: %v", err)
	}
}
