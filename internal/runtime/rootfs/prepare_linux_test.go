package rootfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// defaultMounts is the mount list of a default runc/berth spec.
func defaultMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	}
}

// v1Table is a host mount table with cgroup v1 hierarchies, one of them
// combined, plus the unified one of a hybrid host.
func v1Table() []*mountinfo.Info {
	return []*mountinfo.Info{
		hostMount("/", "ext4", "rw", ""),
		hostMount("/sys", "sysfs", "rw", ""),
		hostMount("/sys/fs/cgroup", "tmpfs", "rw,mode=755", ""),
		hostMount("/sys/fs/cgroup/cpu,cpuacct", "cgroup", "rw,cpu,cpuacct", ""),
		hostMount("/sys/fs/cgroup/memory", "cgroup", "rw,memory", ""),
		hostMount("/sys/fs/cgroup/systemd", "cgroup", "rw,xattr,name=systemd", ""),
		hostMount("/sys/fs/cgroup/pids", "cgroup", "rw,pids", ""),
		hostMount("/sys/fs/cgroup/unified", "cgroup2", "rw,nsdelegate", ""),
	}
}

func mkdirs(t testing.TB, base string, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPrepareDefaultSpec(t *testing.T) {
	forEachResolver(t, testPrepareDefaultSpec)
}

func testPrepareDefaultSpec(t *testing.T) {
	rootfs := t.TempDir()
	host := t.TempDir()
	data := filepath.Join(host, "data")
	cg := filepath.Join(host, "cg")
	mkdirs(t, host, "data", "cg/cpu", "cg/memory", "cg/systemd")

	spec := &specs.Spec{
		Root:   &specs.Root{Path: rootfs},
		Mounts: append(defaultMounts(), specs.Mount{Destination: "/data", Type: "bind", Source: data, Options: []string{"rbind", "ro", "nosuid", "rprivate"}}),
		Linux:  &specs.Linux{},
	}
	f := newFake(t, rootfs)
	f.mounts = v1Table()
	o := Options{
		Rootfs: rootfs,
		Sys:    f,
		CgroupPaths: map[string]string{
			"cpu": cg + "/cpu", "cpuacct": cg + "/cpu", "memory": cg + "/memory", "systemd": cg + "/systemd",
		},
	}
	if err := Prepare(spec, o); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	const cgRemount = `MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC|MS_REMOUNT|MS_BIND|MS_RELATIME`
	want := []string{
		`mount "" "/" "" MS_REC|MS_PRIVATE ""`,
		`mount "R" "R" "bind" MS_BIND|MS_REC ""`,
		`mkdir R/proc 0755`,
		`mount "proc" "R/proc" "proc" 0 ""`,
		`mkdir R/dev 0755`,
		`mount "tmpfs" "R/dev" "tmpfs" MS_NOSUID|MS_STRICTATIME "mode=755,size=65536k"`,
		`mkdir R/dev/pts 0755`,
		`mount "devpts" "R/dev/pts" "devpts" MS_NOSUID|MS_NOEXEC "newinstance,ptmxmode=0666,mode=0620,gid=5"`,
		`mkdir R/dev/shm 0755`,
		`mount "shm" "R/dev/shm" "tmpfs" MS_NOSUID|MS_NODEV|MS_NOEXEC "mode=1777,size=65536k"`,
		`mkdir R/dev/mqueue 0755`,
		`mount "mqueue" "R/dev/mqueue" "mqueue" MS_NOSUID|MS_NODEV|MS_NOEXEC ""`,
		`mkdir R/sys 0755`,
		`mount "sysfs" "R/sys" "sysfs" MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC ""`,
		// cgroup v1 without a cgroup namespace: tmpfs, then one bind of
		// the container's own cgroup per hierarchy it is in.
		`mkdir R/sys/fs/cgroup 0755`,
		`mount "tmpfs" "R/sys/fs/cgroup" "tmpfs" MS_NOSUID|MS_NODEV|MS_NOEXEC "mode=755"`,
		`mkdir R/sys/fs/cgroup/cpu,cpuacct 0755`,
		`mount "` + cg + `/cpu" "R/sys/fs/cgroup/cpu,cpuacct" "bind" MS_BIND|MS_REC ""`,
		`mount "" "R/sys/fs/cgroup/cpu,cpuacct" "" ` + cgRemount + ` ""`,
		`symlink R/sys/fs/cgroup/cpu -> cpu,cpuacct`,
		`symlink R/sys/fs/cgroup/cpuacct -> cpu,cpuacct`,
		`mkdir R/sys/fs/cgroup/memory 0755`,
		`mount "` + cg + `/memory" "R/sys/fs/cgroup/memory" "bind" MS_BIND|MS_REC ""`,
		`mount "" "R/sys/fs/cgroup/memory" "" ` + cgRemount + ` ""`,
		`mkdir R/sys/fs/cgroup/systemd 0755`,
		`mount "` + cg + `/systemd" "R/sys/fs/cgroup/systemd" "bind" MS_BIND|MS_REC ""`,
		`mount "" "R/sys/fs/cgroup/systemd" "" ` + cgRemount + ` ""`,
		// pids: the container has no cgroup there; unified: not v1.
		`mount "" "R/sys/fs/cgroup" "" MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC|MS_REMOUNT|MS_BIND ""`,
		// The ro,nosuid bind: bind, remount with the flags, propagation.
		`mkdir R/data 0755`,
		`mount "` + data + `" "R/data" "bind" MS_BIND|MS_REC ""`,
		`mount "" "R/data" "" MS_RDONLY|MS_NOSUID|MS_REMOUNT|MS_BIND ""`,
		`mount "" "R/data" "" MS_REC|MS_PRIVATE ""`,
		`umask 0`,
		// /dev exists (the tmpfs mount point): nothing to create.
		`mknod R/dev/null c0666 1:3`, `chown R/dev/null 0:0`,
		`mknod R/dev/zero c0666 1:5`, `chown R/dev/zero 0:0`,
		`mknod R/dev/full c0666 1:7`, `chown R/dev/full 0:0`,
		`mknod R/dev/random c0666 1:8`, `chown R/dev/random 0:0`,
		`mknod R/dev/urandom c0666 1:9`, `chown R/dev/urandom 0:0`,
		`mknod R/dev/tty c0666 5:0`, `chown R/dev/tty 0:0`,
		`umask 022`,
		`unlink R/dev/ptmx`,
		`symlink R/dev/ptmx -> pts/ptmx`,
		`symlink R/dev/fd -> /proc/self/fd`,
		`symlink R/dev/stdin -> /proc/self/fd/0`,
		`symlink R/dev/stdout -> /proc/self/fd/1`,
		`symlink R/dev/stderr -> /proc/self/fd/2`,
		`symlink R/dev/core -> /proc/kcore`,
	}
	diffCalls(t, f.calls, want)
}

// prepareOne runs Prepare on a spec with the given mounts and returns the
// calls made after the rootfs bind.
func prepareOne(t *testing.T, f *fakeSys, o Options, mounts ...specs.Mount) ([]string, error) {
	t.Helper()
	if f.mounts == nil {
		f.mounts = []*mountinfo.Info{hostMount("/", "ext4", "rw", "")}
	}
	// A bind of /dev from the host skips device setup, keeping the
	// recorded calls to the mounts under test.
	devBind := specs.Mount{Destination: "/dev", Type: "bind", Source: "/dev", Options: []string{"rbind"}}
	spec := &specs.Spec{Mounts: append(mounts, devBind)}
	o.Sys = f
	err := Prepare(spec, o)
	calls := f.calls
	if len(calls) < 2 {
		t.Fatalf("Prepare made %d calls: %q", len(calls), calls)
	}
	calls = calls[2:]
	// Drop the trailing /dev bind, and the creation of its mount point
	// when it is the bind that made it.
	if n := len(calls); err == nil && n >= 1 && strings.Contains(calls[n-1], `"R/dev" "bind"`) {
		calls = calls[:n-1]
		if n := len(calls); n >= 1 && calls[n-1] == `mkdir R/dev 0755` {
			calls = calls[:n-1]
		}
	}
	return calls, err
}

func TestPrepareMounts(t *testing.T) {
	forEachResolver(t, testPrepareMounts)
}

func testPrepareMounts(t *testing.T) {
	host := t.TempDir()
	mkdirs(t, host, "dir", "cg")
	hostFile := filepath.Join(host, "file")
	if err := os.WriteFile(hostFile, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(host, "dir")

	tests := []struct {
		name   string
		opts   Options
		table  []*mountinfo.Info
		mount  specs.Mount
		setup  func(f *fakeSys)
		want   []string
		errHas string
	}{
		{
			name:  "bind without flags needs no remount",
			mount: specs.Mount{Destination: "/a", Type: "none", Source: dir, Options: []string{"bind"}},
			want: []string{
				`mkdir R/a 0755`,
				`mount "` + dir + `" "R/a" "bind" MS_BIND ""`,
			},
		},
		{
			name:  "type bind alone is a bind",
			mount: specs.Mount{Destination: "/a", Type: "bind", Source: dir, Options: []string{"nodev", "rslave"}},
			want: []string{
				`mkdir R/a 0755`,
				`mount "` + dir + `" "R/a" "bind" MS_BIND ""`,
				`mount "" "R/a" "" MS_NODEV|MS_REMOUNT|MS_BIND ""`,
				`mount "" "R/a" "" MS_REC|MS_SLAVE ""`,
			},
		},
		{
			name:  "file source creates a file destination",
			mount: specs.Mount{Destination: "/etc/hosts", Type: "bind", Source: hostFile, Options: []string{"bind", "ro"}},
			want: []string{
				`mkdir R/etc 0755`,
				`create R/etc/hosts 0644`,
				`mount "` + hostFile + `" "R/etc/hosts" "bind" MS_BIND ""`,
				`mount "" "R/etc/hosts" "" MS_RDONLY|MS_REMOUNT|MS_BIND ""`,
			},
		},
		{
			name:  "locked flags are kept on EPERM",
			mount: specs.Mount{Destination: "/a", Type: "bind", Source: dir, Options: []string{"rbind", "ro"}},
			setup: func(f *fakeSys) {
				f.failMount("R/a", nil, unix.EPERM)
				f.statfs["R/a"] = unix.Statfs_t{Flags: unix.ST_NOSUID | unix.ST_NODEV | unix.ST_RELATIME}
			},
			want: []string{
				`mkdir R/a 0755`,
				`mount "` + dir + `" "R/a" "bind" MS_BIND|MS_REC ""`,
				`mount "" "R/a" "" MS_RDONLY|MS_REMOUNT|MS_BIND ""`,
				`mount "" "R/a" "" MS_RDONLY|MS_NOSUID|MS_NODEV|MS_REMOUNT|MS_BIND ""`,
			},
		},
		{
			name:  "an explicitly cleared flag is not put back",
			mount: specs.Mount{Destination: "/a", Type: "bind", Source: dir, Options: []string{"rbind", "ro", "dev"}},
			setup: func(f *fakeSys) {
				f.failMount("R/a", nil, unix.EPERM)
				f.statfs["R/a"] = unix.Statfs_t{Flags: unix.ST_NODEV}
			},
			want: []string{
				`mkdir R/a 0755`,
				`mount "` + dir + `" "R/a" "bind" MS_BIND|MS_REC ""`,
				`mount "" "R/a" "" MS_RDONLY|MS_REMOUNT|MS_BIND ""`,
			},
			errHas: "operation not permitted",
		},
		{
			name:  "sysfs refused falls back to binding /sys",
			mount: specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			setup: func(f *fakeSys) { f.failMount("R/sys", unix.EPERM) },
			want: []string{
				`mkdir R/sys 0755`,
				`mount "sysfs" "R/sys" "sysfs" MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC ""`,
				`mount "/sys" "R/sys" "bind" MS_BIND|MS_REC ""`,
				`mount "" "R/sys" "" MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC|MS_REMOUNT|MS_BIND ""`,
			},
		},
		{
			name:  "sysfs failing otherwise is an error",
			mount: specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs"},
			setup: func(f *fakeSys) { f.failMount("R/sys", unix.EINVAL) },
			want: []string{
				`mkdir R/sys 0755`,
				`mount "sysfs" "R/sys" "sysfs" 0 ""`,
			},
			errHas: "invalid argument",
		},
		{
			name:  "tmpfs propagation after the mount",
			mount: specs.Mount{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"rw", "noexec", "rshared", "size=1m"}},
			want: []string{
				`mkdir R/run 0755`,
				`mount "tmpfs" "R/run" "tmpfs" MS_NOEXEC "size=1m"`,
				`mount "" "R/run" "" MS_REC|MS_SHARED ""`,
			},
		},
		{
			name:  "tmpcopyup copies then goes read-only",
			mount: specs.Mount{Destination: "/etc", Type: "tmpfs", Source: "tmpfs", Options: []string{"tmpcopyup", "ro", "mode=755"}},
			want: []string{
				`mkdir R/etc 0755`,
				`mount "tmpfs" "R/etc" "tmpfs" 0 "mode=755"`,
				`copytree R/etc -> R/etc`,
				`mount "" "R/etc" "" MS_RDONLY|MS_REMOUNT "mode=755"`,
			},
		},
		{
			name:  "tmpcopyup on something else than tmpfs",
			mount: specs.Mount{Destination: "/etc", Type: "mqueue", Source: "mqueue", Options: []string{"tmpcopyup"}},
			want: []string{
				`mkdir R/etc 0755`,
			},
			errHas: "tmpcopyup needs a tmpfs",
		},
		{
			name:  "read-only /dev stays writable until Finalize",
			mount: specs.Mount{Destination: "/dev/", Type: "tmpfs", Source: "tmpfs", Options: []string{"ro", "nosuid"}},
			want: []string{
				`mkdir R/dev 0755`,
				`mount "tmpfs" "R/dev" "tmpfs" MS_NOSUID ""`,
			},
		},
		{
			name:  "relative destination is taken from /",
			mount: specs.Mount{Destination: "run/x/../y", Type: "tmpfs", Source: "tmpfs"},
			want: []string{
				`mkdir R/run/y 0755`,
				`mount "tmpfs" "R/run/y" "tmpfs" 0 ""`,
			},
		},
		{
			name:  "cgroup v2 binds the container's cgroup",
			opts:  Options{CgroupV2: true, CgroupPaths: map[string]string{"": filepath.Join(host, "cg")}},
			mount: specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "ro"}},
			want: []string{
				`mkdir R/sys/fs/cgroup 0755`,
				`mount "` + host + `/cg" "R/sys/fs/cgroup" "bind" MS_BIND ""`,
				`mount "" "R/sys/fs/cgroup" "" MS_RDONLY|MS_NOSUID|MS_REMOUNT|MS_BIND ""`,
			},
		},
		{
			name:  "cgroup v2 with a cgroup namespace mounts cgroup2",
			opts:  Options{CgroupV2: true},
			mount: specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "ro"}},
			want: []string{
				`mkdir R/sys/fs/cgroup 0755`,
				`mount "cgroup" "R/sys/fs/cgroup" "cgroup2" MS_RDONLY|MS_NOSUID ""`,
			},
		},
		{
			name:   "cgroup v2 without the container's path",
			opts:   Options{CgroupV2: true, CgroupPaths: map[string]string{}},
			mount:  specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup2", Source: "cgroup"},
			want:   nil,
			errHas: "no cgroup v2 directory",
		},
		{
			name:  "cgroup v1 with a cgroup namespace mounts each hierarchy",
			table: v1Table(),
			mount: specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "nodev", "noexec"}},
			want: []string{
				`mkdir R/sys/fs/cgroup 0755`,
				`mount "tmpfs" "R/sys/fs/cgroup" "tmpfs" MS_NOSUID|MS_NODEV|MS_NOEXEC "mode=755"`,
				`mkdir R/sys/fs/cgroup/cpu,cpuacct 0755`,
				`mount "cgroup" "R/sys/fs/cgroup/cpu,cpuacct" "cgroup" MS_NOSUID|MS_NODEV|MS_NOEXEC "cpu,cpuacct"`,
				`symlink R/sys/fs/cgroup/cpu -> cpu,cpuacct`,
				`symlink R/sys/fs/cgroup/cpuacct -> cpu,cpuacct`,
				`mkdir R/sys/fs/cgroup/memory 0755`,
				`mount "cgroup" "R/sys/fs/cgroup/memory" "cgroup" MS_NOSUID|MS_NODEV|MS_NOEXEC "memory"`,
				`mkdir R/sys/fs/cgroup/systemd 0755`,
				`mount "cgroup" "R/sys/fs/cgroup/systemd" "cgroup" MS_NOSUID|MS_NODEV|MS_NOEXEC "name=systemd"`,
				`mkdir R/sys/fs/cgroup/pids 0755`,
				`mount "cgroup" "R/sys/fs/cgroup/pids" "cgroup" MS_NOSUID|MS_NODEV|MS_NOEXEC "pids"`,
			},
		},
		{
			name:   "missing bind source",
			mount:  specs.Mount{Destination: "/a", Type: "bind", Source: filepath.Join(host, "missing")},
			errHas: "bind source",
		},
		{
			name:   "no type and no bind",
			mount:  specs.Mount{Destination: "/a", Source: "x"},
			errHas: "mount type is required",
		},
		{
			name:   "bind onto /proc",
			mount:  specs.Mount{Destination: "/proc", Type: "bind", Source: dir, Options: []string{"rbind"}},
			errHas: "only a proc filesystem",
		},
		{
			name:   "tmpfs inside /proc",
			mount:  specs.Mount{Destination: "/proc/sys", Type: "tmpfs", Source: "tmpfs"},
			errHas: "inside /proc",
		},
		{
			name:   "bind inside /proc",
			mount:  specs.Mount{Destination: "/proc/sysrq-trigger", Type: "bind", Source: hostFile, Options: []string{"bind"}},
			errHas: "inside /proc",
		},
		{
			name:  "bind over an allowed /proc file",
			mount: specs.Mount{Destination: "/proc/meminfo", Type: "bind", Source: hostFile, Options: []string{"bind"}},
			want: []string{
				`mkdir R/proc 0755`,
				`create R/proc/meminfo 0644`,
				`mount "` + hostFile + `" "R/proc/meminfo" "bind" MS_BIND ""`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rootfs := t.TempDir()
			f := newFake(t, rootfs)
			if tt.table != nil {
				f.mounts = tt.table
			}
			if tt.setup != nil {
				tt.setup(f)
			}
			o := tt.opts
			o.Rootfs = rootfs
			calls, err := prepareOne(t, f, o, tt.mount)
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("Prepare error = %v, want one containing %q", err, tt.errHas)
				}
			} else if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			diffCalls(t, calls, tt.want)
		})
	}
}

func TestPrepareSharedParent(t *testing.T) {
	base := t.TempDir()
	rootfs := filepath.Join(base, "bundle", "rootfs")
	mkdirs(t, rootfs, ".")
	f := newFake(t, rootfs)
	realBase := filepath.Dir(filepath.Dir(f.rootfs))
	f.mounts = []*mountinfo.Info{
		hostMount("/", "ext4", "rw", "shared:1"),
		// The deepest mount holding the rootfs decides.
		hostMount(realBase, "tmpfs", "rw", "shared:7 master:2"),
		hostMount(realBase+"/bundle/rootfs-other", "tmpfs", "rw", "shared:9"),
	}
	spec := &specs.Spec{Linux: &specs.Linux{RootfsPropagation: "rshared"}, Mounts: []specs.Mount{{Destination: "/dev", Type: "bind", Source: "/dev", Options: []string{"rbind"}}}}
	if err := Prepare(spec, Options{Rootfs: rootfs, Sys: f}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`mount "" "/" "" MS_REC|MS_SHARED ""`,
		`mount "" "` + realBase + `" "" MS_PRIVATE ""`,
		`mount "R" "R" "bind" MS_BIND|MS_REC ""`,
	}
	diffCalls(t, f.calls[:3], want)
}

func TestPrepareBadInput(t *testing.T) {
	rootfs := t.TempDir()
	tests := []struct {
		name string
		spec *specs.Spec
		o    Options
	}{
		{"nil spec", nil, Options{Rootfs: rootfs}},
		{"relative rootfs", &specs.Spec{}, Options{Rootfs: "rootfs"}},
		{"missing rootfs", &specs.Spec{}, Options{Rootfs: filepath.Join(rootfs, "nope")}},
		{"host root", &specs.Spec{}, Options{Rootfs: "/"}},
		{"bad propagation", &specs.Spec{Linux: &specs.Linux{RootfsPropagation: "sideways"}}, Options{Rootfs: rootfs}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, rootfs)
			f.mounts = []*mountinfo.Info{hostMount("/", "ext4", "rw", "")}
			tt.o.Sys = f
			if err := Prepare(tt.spec, tt.o); err == nil {
				t.Fatal("Prepare succeeded")
			}
			if len(f.calls) != 0 {
				t.Errorf("calls were made: %q", f.calls)
			}
		})
	}
}

// TestResolveHostileSymlinks runs the destination resolution against an
// image full of symlinks pointing out of the rootfs: whatever is created
// must be inside the rootfs, and the outside directory must stay empty.
func TestResolveHostileSymlinks(t *testing.T) {
	forEachResolver(t, testResolveHostileSymlinks)
}

func testResolveHostileSymlinks(t *testing.T) {
	base := t.TempDir()
	rootfs := filepath.Join(base, "rootfs")
	outside := filepath.Join(base, "outside")
	mkdirs(t, base, "rootfs/etc", "rootfs/mnt", "outside")
	outsideRel := strings.TrimPrefix(outside, "/")
	links := map[string]string{
		"data":       "../../../../../../../../" + outsideRel, // relative, climbing out
		"abs":        outside,                                 // absolute host path
		"proc":       "/../../../" + outsideRel,
		"dev":        "/",
		"mnt/x":      "../../../../../../" + outsideRel + "/deep",
		"etc/loop":   "loop",
		"etc/parent": "..",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(rootfs, name)); err != nil {
			t.Fatal(err)
		}
	}
	realOutside, err := filepath.EvalSymlinks(outside)
	if err != nil {
		t.Fatal(err)
	}
	realOutsideRel := strings.TrimPrefix(realOutside, "/")

	tests := []struct {
		dest       string
		noSymlinks bool
		want       string // resolved container path, "" for an error
	}{
		{"/data", false, "/" + realOutsideRel},
		{"/data/sub", false, "/" + realOutsideRel + "/sub"},
		{"/abs", false, "/" + realOutsideRel},
		{"/mnt/x", false, "/" + realOutsideRel + "/deep"},
		{"/../../../../tmp", false, "/tmp"},
		{"/etc/parent/etc/x", false, "/etc/x"},
		{"/proc", false, "/" + realOutsideRel},
		{"/proc", true, ""},    // proc/sysfs refuse to follow symlinks
		{"/dev", false, ""},    // resolves to the root itself
		{"/dev/..", false, ""}, // the root itself
		{"/etc/loop", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.dest, func(t *testing.T) {
			f := newFake(t, rootfs)
			r := openTestRoot(t, f)
			got, err := r.dir(tt.dest, resolveOpts{noSymlinks: tt.noSymlinks})
			if tt.want == "" {
				if err == nil {
					got.Close()
					t.Fatalf("resolved to %q, want an error", got.rel)
				}
				return
			}
			if err != nil {
				t.Fatalf("dir(%q): %v", tt.dest, err)
			}
			defer got.Close()
			if got.rel != tt.want {
				t.Errorf("dir(%q) = %q, want %q", tt.dest, got.rel, tt.want)
			}
			if fi, err := os.Stat(filepath.Join(f.rootfs, tt.want)); err != nil || !fi.IsDir() {
				t.Errorf("%q was not created inside the rootfs: %v", tt.want, err)
			}
		})
	}
	// Files (bind destinations for file sources) obey the same rules.
	f := newFake(t, rootfs)
	r := openTestRoot(t, f)
	file, err := r.file("/abs/file", resolveOpts{})
	if err != nil {
		t.Fatal(err)
	}
	file.Close()
	if file.rel != "/"+realOutsideRel+"/file" {
		t.Errorf("file resolved to %q", file.rel)
	}

	entries, err := os.ReadDir(outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("something was created outside the rootfs: %v", entries)
	}
}

func TestCheckProcDest(t *testing.T) {
	tests := []struct {
		rel    string
		fstype string
		bind   bool
		ok     bool
	}{
		{"/proc", "proc", false, true},
		{"/proc", "tmpfs", false, false},
		{"/proc", "", true, false},
		{"/proc/sys", "tmpfs", false, false},
		{"/proc/sys", "", true, false},
		{"/proc/cpuinfo", "", true, true},
		{"/proc/cpuinfo", "tmpfs", false, false},
		{"/proc/sys/kernel/ns_last_pid", "", true, true},
		{"/procfoo", "tmpfs", false, true},
		{"/sys", "sysfs", false, true},
		{"/host/proc", "proc", false, true},
	}
	for _, tt := range tests {
		err := checkProcDest(tt.rel, tt.fstype, tt.bind)
		if (err == nil) != tt.ok {
			t.Errorf("checkProcDest(%q, %q, %v) = %v, want ok=%v", tt.rel, tt.fstype, tt.bind, err, tt.ok)
		}
	}
}

func TestPrepareRefusesHostileImage(t *testing.T) {
	forEachResolver(t, testPrepareRefusesHostileImage)
}

func testPrepareRefusesHostileImage(t *testing.T) {
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	mkdirs(t, base, "outside", "src")
	tests := []struct {
		name  string
		links map[string]string
		files []string
		mount specs.Mount
	}{
		{"proc is a file", nil, []string{"proc"}, specs.Mount{Destination: "/proc", Type: "proc", Source: "proc"}},
		{"sys is a file", nil, []string{"sys"}, specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs"}},
		{"proc symlink", map[string]string{"proc": "/../../../" + strings.TrimPrefix(outside, "/")}, nil, specs.Mount{Destination: "/proc", Type: "proc", Source: "proc"}},
		{"sys symlink", map[string]string{"sys": "../../" + strings.TrimPrefix(outside, "/")}, nil, specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs"}},
		{"dev to root", map[string]string{"dev": "/"}, nil, specs.Mount{Destination: "/dev", Type: "tmpfs", Source: "tmpfs"}},
		{"bind through a symlink into proc", map[string]string{"etc": "/proc/sys"}, nil, specs.Mount{Destination: "/etc", Type: "bind", Source: filepath.Join(base, "src"), Options: []string{"rbind"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rootfs := filepath.Join(t.TempDir(), "rootfs")
			mkdirs(t, rootfs, ".")
			for name, target := range tt.links {
				if err := os.Symlink(target, filepath.Join(rootfs, name)); err != nil {
					t.Fatal(err)
				}
			}
			for _, name := range tt.files {
				if err := os.WriteFile(filepath.Join(rootfs, name), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			f := newFake(t, rootfs)
			calls, err := prepareOne(t, f, Options{Rootfs: rootfs}, tt.mount)
			if err == nil {
				t.Fatalf("Prepare accepted the image; calls: %q", calls)
			}
			for _, c := range calls {
				if strings.HasPrefix(c, "mount ") {
					t.Errorf("a mount was made: %s", c)
				}
			}
			if entries, _ := os.ReadDir(outside); len(entries) != 0 {
				t.Errorf("something was created outside the rootfs: %v", entries)
			}
		})
	}
}
