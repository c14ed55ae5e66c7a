package rootfs

import (
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestPivot(t *testing.T) {
	pivot := []string{
		`fchdir "R"`,
		`pivot_root "." "."`,
		`fchdir "/"`,
		`mount "" "." "" MS_REC|MS_SLAVE ""`,
		`umount "." MNT_DETACH`,
		`chdir "/"`,
	}
	move := func(prefix ...string) []string {
		return append(append([]string{}, prefix...),
			`fchdir "R"`,
			`mount "R" "/" "" MS_MOVE ""`,
			`chroot "."`,
			`chdir "/"`,
		)
	}
	tests := []struct {
		name    string
		noPivot bool
		setup   func(f *fakeSys)
		want    []string
		errHas  string
	}{
		{name: "pivot_root", want: pivot},
		{
			name:    "no pivot: detach host proc and sysfs, move, chroot",
			noPivot: true,
			setup: func(f *fakeSys) {
				f.mounts = []*mountinfo.Info{
					hostMount("/", "ext4", "rw", ""),
					hostMount("/sys", "sysfs", "rw", ""),
					hostMount("/proc", "proc", "rw", ""),
					hostMount("/proc/sys/fs/binfmt_misc", "binfmt_misc", "rw", ""),
					hostMount("/other/proc", "proc", "rw", ""),
					hostMount("/sys", "sysfs", "rw", ""),                    // stacked twice
					{Mountpoint: "/srv/part", FSType: "proc", Root: "/sys"}, // not a full mount
					hostMount(f.rootfs+"/proc", "proc", "rw", ""),           // the container's own
				}
				// Locked in a user namespace: covered instead.
				f.mountErr["umount /proc"] = []error{unix.EINVAL}
			},
			want: move(
				`mount "" "/other/proc" "" MS_REC|MS_SLAVE ""`,
				`umount "/other/proc" MNT_DETACH`,
				`mount "" "/proc" "" MS_REC|MS_SLAVE ""`,
				`umount "/proc" MNT_DETACH`,
				`mount "tmpfs" "/proc" "tmpfs" MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC ""`,
				`mount "" "/sys" "" MS_REC|MS_SLAVE ""`,
				`umount "/sys" MNT_DETACH`,
			),
		},
		{
			name: "EINVAL on an initramfs falls back to MS_MOVE",
			setup: func(f *fakeSys) {
				f.pivotErr = unix.EINVAL
				f.statfs["/"] = unix.Statfs_t{Type: unix.RAMFS_MAGIC}
				f.mounts = []*mountinfo.Info{hostMount("/", "rootfs", "rw", "")}
			},
			want: move(pivot[:2]...),
		},
		{
			name: "EINVAL elsewhere is an error",
			setup: func(f *fakeSys) {
				f.pivotErr = unix.EINVAL
				f.statfs["/"] = unix.Statfs_t{Type: 0xef53} // ext4
			},
			want:   pivot[:2],
			errHas: "pivot_root",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rootfs := t.TempDir()
			f := newFake(t, rootfs)
			if tt.setup != nil {
				tt.setup(f)
			}
			err := Pivot(Options{Rootfs: rootfs, Sys: f}, tt.noPivot)
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("Pivot error = %v, want one containing %q", err, tt.errHas)
				}
			} else if err != nil {
				t.Fatalf("Pivot: %v", err)
			}
			diffCalls(t, f.calls, tt.want)
		})
	}
}

func TestFinalize(t *testing.T) {
	relatime := unix.Statfs_t{Flags: unix.ST_RELATIME}
	procFlags := unix.Statfs_t{Flags: unix.ST_NOSUID | unix.ST_NODEV | unix.ST_NOEXEC | unix.ST_RELATIME}
	tests := []struct {
		name  string
		spec  *specs.Spec
		setup func(f *fakeSys)
		want  []string
	}{
		{
			name: "default spec",
			spec: &specs.Spec{
				Root:   &specs.Root{Readonly: true},
				Mounts: defaultMounts(),
				Linux: &specs.Linux{
					ReadonlyPaths: []string{"/proc/sys", "/proc/missing"},
					MaskedPaths:   []string{"/proc/kcore", "/proc/acpi", "/proc/gone"},
				},
			},
			setup: func(f *fakeSys) {
				f.statfs["/proc/sys"] = procFlags
				f.statfs["/"] = unix.Statfs_t{Flags: unix.ST_NODEV | unix.ST_RELATIME}
				f.failMount("/proc/missing", unix.ENOENT)
				f.failMount("/proc/acpi", unix.ENOTDIR)
				f.failMount("/proc/gone", unix.ENOENT)
			},
			want: []string{
				`mount "/proc/sys" "/proc/sys" "" MS_BIND|MS_REC ""`,
				`mount "" "/proc/sys" "" MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC|MS_REMOUNT|MS_BIND ""`,
				`mount "/proc/missing" "/proc/missing" "" MS_BIND|MS_REC ""`,
				`mount "/dev/null" "/proc/kcore" "" MS_BIND ""`,
				`mount "/dev/null" "/proc/acpi" "" MS_BIND ""`,
				`mount "tmpfs" "/proc/acpi" "tmpfs" MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC ""`,
				`mount "/dev/null" "/proc/gone" "" MS_BIND ""`,
				`mount "" "/" "" MS_RDONLY|MS_NODEV|MS_REMOUNT|MS_BIND ""`,
			},
		},
		{
			name: "read-only /dev is remounted",
			spec: &specs.Spec{
				Root: &specs.Root{},
				Mounts: []specs.Mount{
					{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "ro", "mode=755"}},
				},
			},
			want: []string{
				`mount "" "/dev" "" MS_RDONLY|MS_NOSUID|MS_REMOUNT ""`,
			},
		},
		{
			name: "read-only /dev bind was done by Prepare",
			spec: &specs.Spec{
				Mounts: []specs.Mount{{Destination: "/dev", Type: "bind", Source: "/dev", Options: []string{"rbind", "ro"}}},
			},
			want: nil,
		},
		{
			name: "read-only root keeps nosuid and noexec",
			spec: &specs.Spec{Root: &specs.Root{Readonly: true}},
			setup: func(f *fakeSys) {
				f.statfs["/"] = unix.Statfs_t{Flags: unix.ST_NOSUID | unix.ST_NOEXEC | unix.ST_NOATIME}
			},
			want: []string{
				`mount "" "/" "" MS_RDONLY|MS_NOSUID|MS_NOEXEC|MS_REMOUNT|MS_BIND ""`,
			},
		},
		{
			name: "nothing to do",
			spec: &specs.Spec{Root: &specs.Root{}, Linux: &specs.Linux{}},
			setup: func(f *fakeSys) {
				f.statfs["/"] = relatime
			},
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, t.TempDir())
			if tt.setup != nil {
				tt.setup(f)
			}
			if err := Finalize(tt.spec, Options{Rootfs: "/", Sys: f}); err != nil {
				t.Fatalf("Finalize: %v", err)
			}
			diffCalls(t, f.calls, tt.want)
		})
	}
}

func TestFinalizeErrors(t *testing.T) {
	f := newFake(t, t.TempDir())
	f.failMount("/proc/kcore", unix.EPERM)
	spec := &specs.Spec{Linux: &specs.Linux{MaskedPaths: []string{"/proc/kcore"}}}
	if err := Finalize(spec, Options{Sys: f}); err == nil || !strings.Contains(err.Error(), "/proc/kcore") {
		t.Errorf("Finalize error = %v, want one about /proc/kcore", err)
	}
	f = newFake(t, t.TempDir())
	spec = &specs.Spec{Linux: &specs.Linux{ReadonlyPaths: []string{"/proc/sys"}}}
	// statfs fails: the read-only remount must not be attempted blindly.
	if err := Finalize(spec, Options{Sys: f}); err == nil {
		t.Errorf("Finalize succeeded without statfs")
	}
	if err := Finalize(nil, Options{Sys: f}); err == nil {
		t.Errorf("Finalize(nil) succeeded")
	}
}
