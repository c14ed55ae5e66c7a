package rootfs

import (
	"errors"
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// defaultDevices are created in every container's /dev, as the runtime-spec
// requires; an entry of spec.Linux.Devices with the same path replaces one.
var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0},
}

// defaultDeviceMode is the permission of a device whose spec entry has no
// fileMode.
const defaultDeviceMode = 0o666

// devicesOf returns the devices to create: the defaults not overridden by
// the spec, then the spec's own, in order.
func devicesOf(spec *specs.Spec) []specs.LinuxDevice {
	var own []specs.LinuxDevice
	if spec.Linux != nil {
		own = spec.Linux.Devices
	}
	given := map[string]bool{}
	for _, d := range own {
		given[cleanDest(d.Path)] = true
	}
	var out []specs.LinuxDevice
	for _, d := range defaultDevices {
		if !given[d.Path] {
			out = append(out, d)
		}
	}
	return append(out, own...)
}

// deviceMode returns the st_mode (type and permission bits) for mknod.
func deviceMode(d specs.LinuxDevice) (uint32, error) {
	perm := uint32(defaultDeviceMode)
	if d.FileMode != nil {
		perm = uint32(d.FileMode.Perm())
	}
	switch d.Type {
	case "c", "u":
		return unix.S_IFCHR | perm, nil
	case "b":
		return unix.S_IFBLK | perm, nil
	case "p":
		return unix.S_IFIFO | perm, nil
	}
	return 0, fmt.Errorf("device %q: unknown type %q", d.Path, d.Type)
}

// deviceNumber returns the device number for mknod (0 for a fifo).
func deviceNumber(d specs.LinuxDevice) int {
	if d.Type == "p" {
		return 0
	}
	return int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))
}

// setupDev creates the device nodes, /dev/ptmx and the standard /dev
// symlinks.
func (p *preparer) setupDev(spec *specs.Spec) error {
	old := p.sys.Umask(0)
	for _, d := range devicesOf(spec) {
		if err := p.createDevice(d); err != nil {
			p.sys.Umask(old)
			return fmt.Errorf("device %q: %w", d.Path, err)
		}
	}
	p.sys.Umask(old)

	dev, err := p.root.dir("/dev", resolveOpts{})
	if err != nil {
		return err
	}
	defer dev.Close()
	devfd := dev.fd
	if err := p.sys.Unlinkat(devfd, "ptmx", 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove /dev/ptmx: %w", err)
	}
	if err := p.sys.Symlinkat("pts/ptmx", devfd, "ptmx"); err != nil {
		return fmt.Errorf("symlink /dev/ptmx: %w", err)
	}
	links := [][2]string{
		{"/proc/self/fd", "fd"},
		{"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"},
	}
	if hasProcMount(spec) {
		links = append(links, [2]string{"/proc/kcore", "core"})
	}
	for _, l := range links {
		if err := p.sys.Symlinkat(l[0], devfd, l[1]); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("symlink /dev/%s: %w", l[1], err)
		}
	}
	return nil
}

// createDevice makes one device node inside the rootfs: mknod with the
// requested mode and owner, or, where mknod is not allowed (a user
// namespace), a bind of the host's node of the same path.
func (p *preparer) createDevice(d specs.LinuxDevice) error {
	mode, err := deviceMode(d)
	if err != nil {
		return err
	}
	bind := p.opts.InUserNS && d.Type != "p"
	if bind {
		return p.bindDevice(d)
	}
	dir, name, err := p.root.parent(d.Path, resolveOpts{})
	if err != nil {
		return err
	}
	defer dir.Close()
	dirfd := dir.fd
	err = p.sys.Mknodat(dirfd, name, mode, deviceNumber(d))
	switch {
	case errors.Is(err, unix.EEXIST):
		return checkExistingDevice(dirfd, name, mode, d)
	case errors.Is(err, unix.EPERM) && d.Type != "p":
		// No CAP_MKNOD after all: fall back to the host's node.
		return p.bindDevice(d)
	case err != nil:
		return err
	}
	var uid, gid int
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	return p.sys.Fchownat(dirfd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
}

// checkExistingDevice accepts a node already present at the path only if it
// is the requested device, as the runtime-spec demands.
func checkExistingDevice(dirfd int, name string, mode uint32, d specs.LinuxDevice) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("inspect existing %q: %w", d.Path, err)
	}
	if st.Mode&unix.S_IFMT != mode&unix.S_IFMT || (d.Type != "p" && st.Rdev != uint64(deviceNumber(d))) {
		return fmt.Errorf("%q exists and is not the requested device", d.Path)
	}
	return nil
}

// bindDevice binds the host's device node of the same path onto an empty
// file inside the rootfs.
func (p *preparer) bindDevice(d specs.LinuxDevice) error {
	t, err := p.root.file(d.Path, resolveOpts{})
	if err != nil {
		return err
	}
	defer t.Close()
	var st unix.Stat_t
	if err := unix.Fstat(t.fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return fmt.Errorf("%q is a directory", d.Path)
	}
	if err := p.sys.Mount(d.Path, t.path(), "bind", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind host device: %w", err)
	}
	return nil
}

// devNull opens the container's /dev/null, refusing anything but the real
// null device: it is bound over masked files, so a symlink or a regular file
// there would expose what it points to.
func devNull() (int, error) {
	fd, err := unix.Open("/dev/null", unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open /dev/null: %w", &os.PathError{Op: "open", Path: "/dev/null", Err: err})
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("stat /dev/null: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
		unix.Close(fd)
		return -1, errors.New("/dev/null is not the null device (char 1:3)")
	}
	return fd, nil
}
