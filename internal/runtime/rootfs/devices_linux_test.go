package rootfs

import (
	"os"
	"reflect"
	"testing"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func fileMode(m os.FileMode) *os.FileMode { return &m }
func id(v uint32) *uint32                 { return &v }

func TestDeviceMode(t *testing.T) {
	tests := []struct {
		dev     specs.LinuxDevice
		mode    uint32
		number  uint64
		wantErr bool
	}{
		{specs.LinuxDevice{Path: "/dev/null", Type: "c", Major: 1, Minor: 3}, unix.S_IFCHR | 0o666, unix.Mkdev(1, 3), false},
		{specs.LinuxDevice{Path: "/dev/ttyS0", Type: "u", Major: 4, Minor: 64, FileMode: fileMode(0o620)}, unix.S_IFCHR | 0o620, unix.Mkdev(4, 64), false},
		{specs.LinuxDevice{Path: "/dev/sda", Type: "b", Major: 8, Minor: 0, FileMode: fileMode(0o660)}, unix.S_IFBLK | 0o660, unix.Mkdev(8, 0), false},
		{specs.LinuxDevice{Path: "/dev/fifo", Type: "p", Major: 9, Minor: 9, FileMode: fileMode(0o600)}, unix.S_IFIFO | 0o600, 0, false},
		// Only permission bits of fileMode count.
		{specs.LinuxDevice{Path: "/dev/x", Type: "c", Major: 259, Minor: 70000, FileMode: fileMode(os.ModeDevice | os.ModeCharDevice | 0o640)}, unix.S_IFCHR | 0o640, unix.Mkdev(259, 70000), false},
		{specs.LinuxDevice{Path: "/dev/bad", Type: "x"}, 0, 0, true},
		{specs.LinuxDevice{Path: "/dev/none"}, 0, 0, true},
	}
	for _, tt := range tests {
		mode, err := deviceMode(tt.dev)
		if (err != nil) != tt.wantErr {
			t.Errorf("deviceMode(%+v) error %v, want error %v", tt.dev, err, tt.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if mode != tt.mode {
			t.Errorf("deviceMode(%s) = %s, want %s", tt.dev.Path, modeString(mode), modeString(tt.mode))
		}
		if n := uint64(deviceNumber(tt.dev)); n != tt.number {
			t.Errorf("deviceNumber(%s) = %d:%d, want %d:%d", tt.dev.Path, unix.Major(n), unix.Minor(n), unix.Major(tt.number), unix.Minor(tt.number))
		}
	}
}

func TestDevicesOf(t *testing.T) {
	paths := func(ds []specs.LinuxDevice) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.Path)
		}
		return out
	}
	defaults := []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}
	if got := paths(devicesOf(&specs.Spec{})); !reflect.DeepEqual(got, defaults) {
		t.Errorf("no linux section: %v, want %v", got, defaults)
	}
	spec := &specs.Spec{Linux: &specs.Linux{Devices: []specs.LinuxDevice{
		{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229},
		{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, FileMode: fileMode(0o600)},
	}}}
	got := devicesOf(spec)
	want := []string{"/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/fuse", "/dev/null"}
	if !reflect.DeepEqual(paths(got), want) {
		t.Fatalf("devicesOf = %v, want %v", paths(got), want)
	}
	if m := *got[len(got)-1].FileMode; m != 0o600 {
		t.Errorf("spec's /dev/null replaced the default one: mode %o, want 600", m)
	}
}

func TestPrepareDevices(t *testing.T) {
	forEachResolver(t, testPrepareDevices)
}

func testPrepareDevices(t *testing.T) {
	spec := &specs.Spec{Linux: &specs.Linux{Devices: []specs.LinuxDevice{
		{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: fileMode(0o660), GID: id(5)},
		{Path: "/dev/net/tun", Type: "c", Major: 10, Minor: 200},
		{Path: "/dev/fifo", Type: "p", FileMode: fileMode(0o600), UID: id(1000)},
		{Path: "/dev/sda", Type: "b", Major: 8, Minor: 0, FileMode: fileMode(0o660), UID: id(0), GID: id(6)},
	}}}
	head := []string{
		`mount "" "/" "" MS_REC|MS_PRIVATE ""`,
		`mount "R" "R" "bind" MS_BIND|MS_REC ""`,
		`umask 0`,
	}
	tail := []string{
		`umask 022`,
		`unlink R/dev/ptmx`,
		`symlink R/dev/ptmx -> pts/ptmx`,
		`symlink R/dev/fd -> /proc/self/fd`,
		`symlink R/dev/stdin -> /proc/self/fd/0`,
		`symlink R/dev/stdout -> /proc/self/fd/1`,
		`symlink R/dev/stderr -> /proc/self/fd/2`,
	}
	tests := []struct {
		name     string
		inUserNS bool
		nodes    []string
	}{
		// The image has no /dev: the first node creates it, and only
		// /dev/net/tun needs another directory.
		{"mknod", false, []string{
			`mkdir R/dev 0755`, `mknod R/dev/null c0666 1:3`, `chown R/dev/null 0:0`,
			`mknod R/dev/zero c0666 1:5`, `chown R/dev/zero 0:0`,
			`mknod R/dev/full c0666 1:7`, `chown R/dev/full 0:0`,
			`mknod R/dev/random c0666 1:8`, `chown R/dev/random 0:0`,
			`mknod R/dev/urandom c0666 1:9`, `chown R/dev/urandom 0:0`,
			`mknod R/dev/tty c0666 5:0`, `chown R/dev/tty 0:0`,
			`mknod R/dev/fuse c0660 10:229`, `chown R/dev/fuse 0:5`,
			`mkdir R/dev/net 0755`, `mknod R/dev/net/tun c0666 10:200`, `chown R/dev/net/tun 0:0`,
			`mknod R/dev/fifo p0600 0:0`, `chown R/dev/fifo 1000:0`,
			`mknod R/dev/sda b0660 8:0`, `chown R/dev/sda 0:6`,
		}},
		{"user namespace binds host nodes", true, []string{
			`mkdir R/dev 0755`, `create R/dev/null 0644`, `mount "/dev/null" "R/dev/null" "bind" MS_BIND ""`,
			`create R/dev/zero 0644`, `mount "/dev/zero" "R/dev/zero" "bind" MS_BIND ""`,
			`create R/dev/full 0644`, `mount "/dev/full" "R/dev/full" "bind" MS_BIND ""`,
			`create R/dev/random 0644`, `mount "/dev/random" "R/dev/random" "bind" MS_BIND ""`,
			`create R/dev/urandom 0644`, `mount "/dev/urandom" "R/dev/urandom" "bind" MS_BIND ""`,
			`create R/dev/tty 0644`, `mount "/dev/tty" "R/dev/tty" "bind" MS_BIND ""`,
			`create R/dev/fuse 0644`, `mount "/dev/fuse" "R/dev/fuse" "bind" MS_BIND ""`,
			`mkdir R/dev/net 0755`, `create R/dev/net/tun 0644`, `mount "/dev/net/tun" "R/dev/net/tun" "bind" MS_BIND ""`,
			// A fifo needs no privilege: mknod it even there.
			`mknod R/dev/fifo p0600 0:0`, `chown R/dev/fifo 1000:0`,
			`create R/dev/sda 0644`, `mount "/dev/sda" "R/dev/sda" "bind" MS_BIND ""`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rootfs := t.TempDir()
			f := newFake(t, rootfs)
			f.mounts = []*mountinfo.Info{hostMount("/", "ext4", "rw", "")}
			if err := Prepare(spec, Options{Rootfs: rootfs, InUserNS: tt.inUserNS, Sys: f}); err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			want := append(append(append([]string{}, head...), tt.nodes...), tail...)
			diffCalls(t, f.calls, want)
		})
	}
}

func TestPrepareExistingDevice(t *testing.T) {
	forEachResolver(t, testPrepareExistingDevice)
}

func testPrepareExistingDevice(t *testing.T) {
	spec := &specs.Spec{Linux: &specs.Linux{Devices: []specs.LinuxDevice{
		{Path: "/dev/fifo", Type: "p", FileMode: fileMode(0o600)},
	}}}
	tests := []struct {
		name    string
		setup   func(dev string) error
		wantErr bool
	}{
		{"same fifo is kept", func(dev string) error { return unix.Mkfifo(dev+"/fifo", 0o600) }, false},
		{"regular file is refused", func(dev string) error { return os.WriteFile(dev+"/fifo", nil, 0o600) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rootfs := t.TempDir()
			if err := os.Mkdir(rootfs+"/dev", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := tt.setup(rootfs + "/dev"); err != nil {
				t.Fatal(err)
			}
			f := newFake(t, rootfs)
			f.mounts = []*mountinfo.Info{hostMount("/", "ext4", "rw", "")}
			f.mknodExists = true
			err := Prepare(spec, Options{Rootfs: rootfs, Sys: f})
			if (err != nil) != tt.wantErr {
				t.Fatalf("Prepare error = %v, want error %v", err, tt.wantErr)
			}
			for _, c := range f.calls {
				if c == "chown R/dev/fifo 0:0" {
					t.Errorf("an existing node was chowned: %q", c)
				}
			}
		})
	}
}
