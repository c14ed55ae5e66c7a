package rootfs

import (
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseMountOptions(t *testing.T) {
	tests := []struct {
		opts []string
		want mountOptions
	}{
		{nil, mountOptions{}},
		{[]string{"defaults"}, mountOptions{}},
		{[]string{"ro"}, mountOptions{Flags: unix.MS_RDONLY}},
		{[]string{"rw"}, mountOptions{Cleared: unix.MS_RDONLY}},
		{[]string{"ro", "rw"}, mountOptions{Cleared: unix.MS_RDONLY}},
		{[]string{"rw", "ro"}, mountOptions{Flags: unix.MS_RDONLY}},
		{[]string{"nosuid"}, mountOptions{Flags: unix.MS_NOSUID}},
		{[]string{"suid"}, mountOptions{Cleared: unix.MS_NOSUID}},
		{[]string{"nodev"}, mountOptions{Flags: unix.MS_NODEV}},
		{[]string{"dev"}, mountOptions{Cleared: unix.MS_NODEV}},
		{[]string{"noexec"}, mountOptions{Flags: unix.MS_NOEXEC}},
		{[]string{"exec"}, mountOptions{Cleared: unix.MS_NOEXEC}},
		{[]string{"sync"}, mountOptions{Flags: unix.MS_SYNCHRONOUS}},
		{[]string{"async"}, mountOptions{Cleared: unix.MS_SYNCHRONOUS}},
		{[]string{"dirsync"}, mountOptions{Flags: unix.MS_DIRSYNC}},
		{[]string{"remount"}, mountOptions{Flags: unix.MS_REMOUNT}},
		{[]string{"mand"}, mountOptions{Flags: unix.MS_MANDLOCK}},
		{[]string{"nomand"}, mountOptions{Cleared: unix.MS_MANDLOCK}},
		{[]string{"noatime"}, mountOptions{Flags: unix.MS_NOATIME}},
		{[]string{"atime"}, mountOptions{Cleared: unix.MS_NOATIME}},
		{[]string{"nodiratime"}, mountOptions{Flags: unix.MS_NODIRATIME}},
		{[]string{"diratime"}, mountOptions{Cleared: unix.MS_NODIRATIME}},
		{[]string{"relatime"}, mountOptions{Flags: unix.MS_RELATIME}},
		{[]string{"norelatime"}, mountOptions{Cleared: unix.MS_RELATIME}},
		{[]string{"strictatime"}, mountOptions{Flags: unix.MS_STRICTATIME}},
		{[]string{"nostrictatime"}, mountOptions{Cleared: unix.MS_STRICTATIME}},
		{[]string{"strictatime", "nostrictatime"}, mountOptions{Cleared: unix.MS_STRICTATIME}},
		{[]string{"nosymfollow"}, mountOptions{Flags: unix.MS_NOSYMFOLLOW}},
		{[]string{"lazytime"}, mountOptions{Flags: unix.MS_LAZYTIME}},
		{[]string{"iversion"}, mountOptions{Flags: unix.MS_I_VERSION}},
		{[]string{"silent"}, mountOptions{Flags: unix.MS_SILENT}},
		{[]string{"bind"}, mountOptions{Flags: unix.MS_BIND}},
		{[]string{"rbind"}, mountOptions{Flags: unix.MS_BIND | unix.MS_REC}},
		{[]string{"private"}, mountOptions{Propagation: []uintptr{unix.MS_PRIVATE}}},
		{[]string{"rprivate"}, mountOptions{Propagation: []uintptr{unix.MS_PRIVATE | unix.MS_REC}}},
		{[]string{"shared"}, mountOptions{Propagation: []uintptr{unix.MS_SHARED}}},
		{[]string{"rshared"}, mountOptions{Propagation: []uintptr{unix.MS_SHARED | unix.MS_REC}}},
		{[]string{"slave"}, mountOptions{Propagation: []uintptr{unix.MS_SLAVE}}},
		{[]string{"rslave"}, mountOptions{Propagation: []uintptr{unix.MS_SLAVE | unix.MS_REC}}},
		{[]string{"unbindable"}, mountOptions{Propagation: []uintptr{unix.MS_UNBINDABLE}}},
		{[]string{"runbindable"}, mountOptions{Propagation: []uintptr{unix.MS_UNBINDABLE | unix.MS_REC}}},
		{[]string{"rshared", "rslave"}, mountOptions{Propagation: []uintptr{unix.MS_SHARED | unix.MS_REC, unix.MS_SLAVE | unix.MS_REC}}},
		{[]string{"tmpcopyup"}, mountOptions{TmpCopyUp: true}},
		{[]string{"mode=755", "size=65536k"}, mountOptions{Data: "mode=755,size=65536k"}},
		{
			[]string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"},
			mountOptions{Flags: unix.MS_NOSUID | unix.MS_NOEXEC, Data: "newinstance,ptmxmode=0666,mode=0620,gid=5"},
		},
		{
			[]string{"rbind", "ro", "nosuid", "rprivate", "", "x-custom"},
			mountOptions{Flags: unix.MS_BIND | unix.MS_REC | unix.MS_RDONLY | unix.MS_NOSUID, Propagation: []uintptr{unix.MS_PRIVATE | unix.MS_REC}, Data: "x-custom"},
		},
	}
	for _, tt := range tests {
		got := parseMountOptions(tt.opts)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseMountOptions(%q) = %+v, want %+v", tt.opts, got, tt.want)
		}
	}
}

func TestBindRemountFlags(t *testing.T) {
	tests := []struct {
		opts  []string
		want  uintptr
		needs bool
	}{
		{[]string{"bind"}, 0, false},
		{[]string{"rbind", "rw", "rprivate"}, 0, false},
		{[]string{"rbind", "ro"}, unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY, true},
		{[]string{"bind", "ro", "nosuid"}, unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID, true},
		{[]string{"bind", "nodev", "noexec"}, unix.MS_BIND | unix.MS_REMOUNT | unix.MS_NODEV | unix.MS_NOEXEC, true},
		{[]string{"bind", "noatime"}, unix.MS_BIND | unix.MS_REMOUNT | unix.MS_NOATIME, true},
		// Asking for the default atime mode must say so explicitly, or the
		// remount keeps the source's (say noatime).
		{[]string{"bind", "nostrictatime"}, unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RELATIME, true},
		{[]string{"bind", "atime"}, unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RELATIME, true},
		{[]string{"bind", "atime", "strictatime"}, unix.MS_BIND | unix.MS_REMOUNT | unix.MS_STRICTATIME, true},
		// Flags a bind remount cannot change are not passed to it.
		{[]string{"bind", "sync", "dirsync"}, 0, false},
	}
	for _, tt := range tests {
		got, needs := parseMountOptions(tt.opts).bindRemountFlags()
		if got != tt.want || needs != tt.needs {
			t.Errorf("bindRemountFlags(%q) = %s, %v; want %s, %v", tt.opts, flagString(got), needs, flagString(tt.want), tt.needs)
		}
	}
}

func TestRootPropagation(t *testing.T) {
	tests := []struct {
		in      string
		want    uintptr
		wantErr bool
	}{
		{"", unix.MS_REC | unix.MS_PRIVATE, false},
		{"rprivate", unix.MS_REC | unix.MS_PRIVATE, false},
		{"private", unix.MS_PRIVATE, false},
		{"shared", unix.MS_SHARED, false},
		{"rshared", unix.MS_SHARED | unix.MS_REC, false},
		{"slave", unix.MS_SLAVE, false},
		{"rslave", unix.MS_SLAVE | unix.MS_REC, false},
		{"unbindable", unix.MS_UNBINDABLE, false},
		{"runbindable", unix.MS_UNBINDABLE | unix.MS_REC, false},
		{"bogus", 0, true},
	}
	for _, tt := range tests {
		got, err := rootPropagation(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("rootPropagation(%q) = %s, %v; want %s, error %v", tt.in, flagString(got), err, flagString(tt.want), tt.wantErr)
		}
	}
}

func TestStatfsToMountFlags(t *testing.T) {
	tests := []struct {
		st   int64
		want uintptr
	}{
		{0, unix.MS_STRICTATIME},
		{unix.ST_RELATIME, unix.MS_RELATIME},
		{unix.ST_RDONLY | unix.ST_NOSUID | unix.ST_NODEV | unix.ST_NOEXEC | unix.ST_RELATIME,
			unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_RELATIME},
		{unix.ST_NOATIME | unix.ST_NODIRATIME, unix.MS_NOATIME | unix.MS_NODIRATIME},
		{unix.ST_RELATIME | stNoSymfollow, unix.MS_RELATIME | unix.MS_NOSYMFOLLOW},
		// Bits that are not per-mount flags (ST_SYNCHRONOUS, ST_MANDLOCK)
		// are ignored.
		{unix.ST_SYNCHRONOUS | unix.ST_MANDLOCK | unix.ST_RELATIME, unix.MS_RELATIME},
	}
	for _, tt := range tests {
		if got := statfsToMountFlags(tt.st); got != tt.want {
			t.Errorf("statfsToMountFlags(%#x) = %s, want %s", tt.st, flagString(got), flagString(tt.want))
		}
	}
}
