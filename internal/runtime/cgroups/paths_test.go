package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/containerd/cgroups/v3"
	"github.com/moby/sys/mountinfo"
)

func TestContainerPath(t *testing.T) {
	for _, tc := range []struct {
		name, in, id, want string
		wantErr            bool
	}{
		{name: "empty uses default parent", in: "", id: "abc", want: "/berth/abc"},
		{name: "empty with bad id", in: "", id: "../x", wantErr: true},
		{name: "empty with empty id", in: "", id: "", wantErr: true},
		{name: "absolute", in: "/a/b", want: "/a/b"},
		{name: "absolute is cleaned", in: "/a//b/../c/", want: "/a/c"},
		{name: "absolute cannot escape the root", in: "/../../x", want: "/x"},
		{name: "relative", in: "a/b", want: "a/b"},
		{name: "relative cannot climb", in: "../../x", want: "x"},
		{name: "relative dot", in: "./a/./b", want: "a/b"},
		{name: "relative naming own cgroup", in: "..", wantErr: true},
		{name: "nul byte", in: "/a\x00b", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := containerPath(tc.in, tc.id)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("containerPath(%q, %q) = %q, want an error", tc.in, tc.id, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("containerPath(%q, %q) = %q, %v; want %q", tc.in, tc.id, got, err, tc.want)
			}
		})
	}
}

func TestGroupDir(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		mountpoint, root, own, p string
		want                     string
		wantErr                  bool
	}{
		{name: "absolute", mountpoint: "/sys/fs/cgroup/cpu", root: "/", own: "/ignored", p: "/berth/c1",
			want: "/sys/fs/cgroup/cpu/berth/c1"},
		{name: "absolute ignores a subtree mount root", mountpoint: "/sys/fs/cgroup/memory", root: "/docker/x", p: "/berth/c1",
			want: "/sys/fs/cgroup/memory/berth/c1"},
		{name: "relative to own cgroup", mountpoint: "/sys/fs/cgroup/memory", root: "/", own: "/user.slice/session-1", p: "ctr",
			want: "/sys/fs/cgroup/memory/user.slice/session-1/ctr"},
		{name: "relative with own at root", mountpoint: "/sys/fs/cgroup/pids", root: "/", own: "/", p: "a/b",
			want: "/sys/fs/cgroup/pids/a/b"},
		{name: "relative below a subtree mount", mountpoint: "/sys/fs/cgroup", root: "/outer", own: "/outer/inner", p: "ctr",
			want: "/sys/fs/cgroup/inner/ctr"},
		{name: "relative with own outside the mounted subtree", mountpoint: "/sys/fs/cgroup", root: "/outer", own: "/elsewhere", p: "ctr",
			wantErr: true},
		{name: "relative with own unknown", mountpoint: "/sys/fs/cgroup/cpu", root: "/", own: "", p: "ctr", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := groupDir(tc.mountpoint, tc.root, tc.own, tc.p)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %q, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// hybridMounts is the cgroup part of the mount table of a hybrid host with
// cpu and cpuacct on separate hierarchies.
func hybridMounts() []*mountinfo.Info {
	m := func(mp, fstype, vfs string) *mountinfo.Info {
		return &mountinfo.Info{Mountpoint: mp, Root: "/", FSType: fstype, VFSOptions: vfs}
	}
	return []*mountinfo.Info{
		m("/sys/fs/cgroup/cpu", "cgroup", "rw,cpu"),
		m("/sys/fs/cgroup/cpuacct", "cgroup", "rw,cpuacct"),
		m("/sys/fs/cgroup/cpuset", "cgroup", "rw,cpuset,clone_children"),
		m("/sys/fs/cgroup/memory", "cgroup", "rw,memory"),
		m("/sys/fs/cgroup/systemd", "cgroup", "rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd"),
		m("/sys/fs/cgroup/unified", "cgroup2", "rw,nsdelegate"),
		// A second mount of the memory hierarchy is not a new hierarchy.
		m("/mnt/memory-again", "cgroup", "rw,memory"),
	}
}

func TestV1Hierarchies(t *testing.T) {
	got := v1Hierarchies(hybridMounts())
	want := []hierarchy{
		{controllers: []string{"cpu"}, mountpoint: "/sys/fs/cgroup/cpu", root: "/"},
		{controllers: []string{"cpuacct"}, mountpoint: "/sys/fs/cgroup/cpuacct", root: "/"},
		{controllers: []string{"cpuset"}, mountpoint: "/sys/fs/cgroup/cpuset", root: "/"},
		{controllers: []string{"memory"}, mountpoint: "/sys/fs/cgroup/memory", root: "/"},
		{controllers: []string{"name=systemd"}, mountpoint: "/sys/fs/cgroup/systemd", root: "/"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}

	comounted := v1Hierarchies([]*mountinfo.Info{{
		Mountpoint: "/sys/fs/cgroup/cpu,cpuacct", Root: "/", FSType: "cgroup", VFSOptions: "rw,cpuacct,cpu",
	}})
	if len(comounted) != 1 || strings.Join(comounted[0].controllers, ",") != "cpu,cpuacct" {
		t.Errorf("co-mounted cpu,cpuacct: got %+v", comounted)
	}
}

func TestResolveV1(t *testing.T) {
	hs := v1Hierarchies(hybridMounts())
	own := map[string]string{
		"cpu": "/", "cpuacct": "/", "cpuset": "/",
		"memory": "/session/42", "name=systemd": "/user.slice",
	}
	paths := func(dirs []v1Dir) map[string]string {
		return (&v1Manager{dirs: dirs}).Paths()
	}

	dirs, err := resolveV1(hs, own, "/berth/c1")
	if err != nil {
		t.Fatal(err)
	}
	wantAbs := map[string]string{
		"cpu":          "/sys/fs/cgroup/cpu/berth/c1",
		"cpuacct":      "/sys/fs/cgroup/cpuacct/berth/c1",
		"cpuset":       "/sys/fs/cgroup/cpuset/berth/c1",
		"memory":       "/sys/fs/cgroup/memory/berth/c1",
		"name=systemd": "/sys/fs/cgroup/systemd/berth/c1",
	}
	if got := paths(dirs); !reflect.DeepEqual(got, wantAbs) {
		t.Errorf("absolute: got %v\nwant %v", got, wantAbs)
	}

	dirs, err = resolveV1(hs, own, "ctr")
	if err != nil {
		t.Fatal(err)
	}
	wantRel := map[string]string{
		"cpu":          "/sys/fs/cgroup/cpu/ctr",
		"cpuacct":      "/sys/fs/cgroup/cpuacct/ctr",
		"cpuset":       "/sys/fs/cgroup/cpuset/ctr",
		"memory":       "/sys/fs/cgroup/memory/session/42/ctr",
		"name=systemd": "/sys/fs/cgroup/systemd/user.slice/ctr",
	}
	if got := paths(dirs); !reflect.DeepEqual(got, wantRel) {
		t.Errorf("relative: got %v\nwant %v", got, wantRel)
	}

	delete(own, "memory")
	if _, err := resolveV1(hs, own, "ctr"); err == nil {
		t.Error("relative path without own memory cgroup resolved")
	}
	if _, err := resolveV1(nil, own, "/x"); err == nil {
		t.Error("resolve without hierarchies succeeded")
	}
}

func TestEnclosingMount(t *testing.T) {
	mounts := hybridMounts()
	for _, tc := range []struct{ fstype, dir, want string }{
		{"cgroup", "/sys/fs/cgroup/memory/berth/x", "/sys/fs/cgroup/memory"},
		{"cgroup", "/sys/fs/cgroup/cpuacct/berth", "/sys/fs/cgroup/cpuacct"},
		{"cgroup2", "/sys/fs/cgroup/unified/berth/x", "/sys/fs/cgroup/unified"},
		{"cgroup2", "/sys/fs/cgroup/memory/x", "/sys/fs/cgroup/memory/x"},
		{"cgroup", "/sys/fs/cgroup/cpuX/y", "/sys/fs/cgroup/cpuX/y"},
	} {
		if got := enclosingMount(mounts, tc.fstype, tc.dir); got != tc.want {
			t.Errorf("enclosingMount(%s, %s) = %s, want %s", tc.fstype, tc.dir, got, tc.want)
		}
	}
}

func TestLoadGroupsCoMountedControllers(t *testing.T) {
	m, err := Load(map[string]string{
		"cpu":     "/sys/fs/cgroup/cpu,cpuacct/berth/x",
		"cpuacct": "/sys/fs/cgroup/cpu,cpuacct/berth/x",
		"memory":  "/sys/fs/cgroup/memory/berth/x",
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	v1 := m.(*v1Manager)
	if len(v1.dirs) != 2 {
		t.Fatalf("got %d directories, want 2: %+v", len(v1.dirs), v1.dirs)
	}
	if m.Version() != 1 || m.Paths()["cpuacct"] != "/sys/fs/cgroup/cpu,cpuacct/berth/x" {
		t.Errorf("unexpected manager %+v", v1.dirs)
	}
	for _, bad := range []map[string]string{nil, {"": "/x"}, {"cpu": "relative"}} {
		if _, err := Load(bad, false); err == nil {
			t.Errorf("Load(%v, v1) succeeded", bad)
		}
	}

	m, err = Load(map[string]string{"": "/sys/fs/cgroup/berth/x"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if m.Version() != 2 || m.Paths()[""] != "/sys/fs/cgroup/berth/x" {
		t.Errorf("v2 load: %v", m.Paths())
	}
	if _, err := Load(map[string]string{"memory": "/x"}, true); err == nil {
		t.Error("Load of v1 paths as v2 succeeded")
	}
}

func TestNewV2ResolvesGroup(t *testing.T) {
	for _, tc := range []struct{ mp, group, want string }{
		{"/mnt/cg2", "/berth/x", "/mnt/cg2/berth/x"},
		{"/mnt/cg2/", "berth/x", "/mnt/cg2/berth/x"},
		{"/mnt/cg2", "/../../etc", "/mnt/cg2/etc"},
	} {
		m, err := NewV2(tc.mp, tc.group)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Paths()[""]; got != tc.want {
			t.Errorf("NewV2(%q, %q) dir = %q, want %q", tc.mp, tc.group, got, tc.want)
		}
	}
	if _, err := NewV2("relative", "/x"); err == nil {
		t.Error("relative mountpoint accepted")
	}
	if _, err := NewV2("/mnt/cg2", "/"); err == nil {
		t.Error("root group accepted")
	}
}

// TestNewOnThisHost resolves paths against the real mount table and
// /proc/self/cgroup of the test process; it needs no privileges since New
// creates nothing.
func TestNewOnThisHost(t *testing.T) {
	mode := cgroups.Mode()
	if mode == cgroups.Unavailable {
		t.Skip("no cgroup filesystem")
	}
	id := testGroupName()
	m, err := New("", id)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[bool]int{true: 2, false: 1}[mode == cgroups.Unified]; m.Version() != want {
		t.Errorf("Version() = %d on mode %v", m.Version(), mode)
	}
	for ctrl, dir := range m.Paths() {
		if !strings.HasSuffix(dir, "/berth/"+id) {
			t.Errorf("%s: %s does not end in /berth/%s", ctrl, dir, id)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("New created or found %s (%v)", dir, err)
		}
	}

	own, unified, err := cgroups.ParseCgroupFileUnified("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	rel, err := New("sub/"+id, "")
	if err != nil {
		t.Fatal(err)
	}
	for ctrl, dir := range rel.Paths() {
		mine := unified
		if ctrl != "" {
			mine = own[ctrl]
		}
		if want := filepath.Join(mine, "sub", id); !strings.HasSuffix(dir, want) {
			t.Errorf("%s: relative path resolved to %s, want a path ending in %s", ctrl, dir, want)
		}
	}
}
