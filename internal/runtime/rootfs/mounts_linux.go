package rootfs

import (
	"errors"
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// mount performs one spec.Mounts entry.
func (p *preparer) mount(m specs.Mount) error {
	o := parseMountOptions(m.Options)
	if isBind(m, o) {
		return p.bindMount(m.Source, m.Destination, o)
	}
	switch m.Type {
	case "":
		return errors.New("mount type is required unless the mount is a bind")
	case "cgroup", "cgroup2":
		return p.mountCgroup(m, o)
	case "sysfs":
		return p.mountSysfs(m, o)
	}
	return p.mountFS(m, o)
}

// procVerifier returns the destination check for a mount of fstype.
func procVerifier(fstype string, bind bool) func(string) error {
	return func(rel string) error { return checkProcDest(rel, fstype, bind) }
}

// mountFS mounts a new instance of a filesystem (proc, tmpfs, devpts,
// mqueue, ...) on a directory inside the rootfs.
func (p *preparer) mountFS(m specs.Mount, o mountOptions) error {
	ro := resolveOpts{
		// procfs may only go onto a real /proc: a symlink there could aim
		// it at a path the runtime later writes to believing it is procfs.
		noSymlinks: m.Type == "proc",
		verify:     procVerifier(m.Type, false),
	}
	t, err := p.root.dir(m.Destination, ro)
	if err != nil {
		return err
	}
	defer t.Close()

	flags := o.Flags
	delayReadonly := false
	if flags&unix.MS_RDONLY != 0 && (cleanDest(m.Destination) == "/dev" || o.TmpCopyUp) {
		// /dev gets its device nodes after the mount and goes read-only
		// in Finalize; a tmpcopyup tmpfs goes read-only after the copy.
		flags &^= unix.MS_RDONLY
		delayReadonly = true
	}

	var lower *os.File
	if o.TmpCopyUp {
		if m.Type != "tmpfs" {
			return fmt.Errorf("tmpcopyup needs a tmpfs mount, not %q", m.Type)
		}
		// A handle opened before the mount keeps reaching the directory
		// the tmpfs is about to cover.
		lower, err = reopenDir(t)
		if err != nil {
			return fmt.Errorf("open %q for tmpcopyup: %w", t.rel, err)
		}
		defer lower.Close()
	}

	if err := p.sys.Mount(m.Source, t.path(), m.Type, flags, o.Data); err != nil {
		return err
	}
	if !o.TmpCopyUp && len(o.Propagation) == 0 {
		return nil
	}
	top, err := p.root.open(t.rel, ro)
	if err != nil {
		return err
	}
	defer top.Close()
	if o.TmpCopyUp {
		upper, err := reopenDir(top)
		if err != nil {
			return fmt.Errorf("open new tmpfs on %q: %w", t.rel, err)
		}
		err = p.sys.CopyTree(lower, upper)
		upper.Close()
		if err != nil {
			return fmt.Errorf("tmpcopyup %q: %w", t.rel, err)
		}
		if delayReadonly && cleanDest(m.Destination) != "/dev" {
			if err := p.sys.Mount("", top.path(), "", flags|unix.MS_REMOUNT|unix.MS_RDONLY, o.Data); err != nil {
				return fmt.Errorf("remount read-only: %w", err)
			}
		}
	}
	return p.propagate(top, o.Propagation)
}

// bindMount binds a host path onto a destination inside the rootfs. The
// source is taken as it is on the host; only the destination is resolved in
// the rootfs.
func (p *preparer) bindMount(source, dest string, o mountOptions) error {
	dir, err := sourceIsDir(source)
	if err != nil {
		return err
	}
	ro := resolveOpts{verify: procVerifier("", true)}
	var t *target
	if dir {
		t, err = p.root.dir(dest, ro)
	} else {
		t, err = p.root.file(dest, ro)
	}
	if err != nil {
		return err
	}
	defer t.Close()
	if err := p.sys.Mount(source, t.path(), "bind", unix.MS_BIND|o.Flags&unix.MS_REC, ""); err != nil {
		return err
	}
	return p.afterBind(t.rel, o, ro)
}

// afterBind applies the per-mount flags and the propagation of o to the
// bind mount just made on rel.
func (p *preparer) afterBind(rel string, o mountOptions, ro resolveOpts) error {
	flags, remount := o.bindRemountFlags()
	if !remount && len(o.Propagation) == 0 {
		return nil
	}
	top, err := p.root.open(rel, ro)
	if err != nil {
		return err
	}
	defer top.Close()
	if remount {
		if err := p.bindRemount(top, o, flags); err != nil {
			return err
		}
	}
	return p.propagate(top, o.Propagation)
}

// bindRemount changes the per-mount flags of a bind mount. Inside a user
// namespace the flags the source mount has locked (nosuid, nodev, noexec,
// ro) cannot be dropped, so on EPERM the call is retried keeping them —
// unless the options explicitly asked to clear one.
func (p *preparer) bindRemount(t *target, o mountOptions, flags uintptr) error {
	err := p.sys.Mount("", t.path(), "", flags, "")
	if err == nil || !errors.Is(err, unix.EPERM) {
		if err != nil {
			return fmt.Errorf("remount: %w", err)
		}
		return nil
	}
	var st unix.Statfs_t
	if serr := p.sys.Statfs(t.path(), &st); serr != nil {
		return fmt.Errorf("remount: %w", err)
	}
	locked := statfsToMountFlags(int64(st.Flags)) &
		(unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC) &^ o.Cleared
	if flags|locked == flags {
		return fmt.Errorf("remount: %w", err)
	}
	if err2 := p.sys.Mount("", t.path(), "", flags|locked, ""); err2 != nil {
		return fmt.Errorf("remount: %w (keeping the source's locked flags: %v)", err, err2)
	}
	return nil
}

// propagate applies propagation changes, one call each, to the mount whose
// root t is.
func (p *preparer) propagate(t *target, changes []uintptr) error {
	for _, c := range changes {
		if err := p.sys.Mount("", t.path(), "", c, ""); err != nil {
			return fmt.Errorf("set propagation: %w", err)
		}
	}
	return nil
}

// mountSysfs mounts sysfs; when the kernel refuses a new instance (a user
// namespace without its own network namespace), it binds the host's /sys
// instead with the same flags, as runc does.
func (p *preparer) mountSysfs(m specs.Mount, o mountOptions) error {
	ro := resolveOpts{noSymlinks: true, verify: procVerifier("sysfs", false)}
	t, err := p.root.dir(m.Destination, ro)
	if err != nil {
		return err
	}
	defer t.Close()
	err = p.sys.Mount(m.Source, t.path(), "sysfs", o.Flags, o.Data)
	if err == nil {
		if len(o.Propagation) == 0 {
			return nil
		}
		top, err := p.root.open(t.rel, ro)
		if err != nil {
			return err
		}
		defer top.Close()
		return p.propagate(top, o.Propagation)
	}
	if !errors.Is(err, unix.EPERM) {
		return err
	}
	if berr := p.sys.Mount("/sys", t.path(), "bind", unix.MS_BIND|unix.MS_REC, ""); berr != nil {
		return fmt.Errorf("sysfs refused (%v), binding the host's /sys: %w", err, berr)
	}
	bo := o
	bo.Flags |= unix.MS_BIND | unix.MS_REC
	return p.afterBind(t.rel, bo, ro)
}

// reopenDir opens the directory of an O_PATH handle for reading, through
// its /proc link: the same link the mounts are made through, so it reaches
// that very directory however the path changes meanwhile.
func reopenDir(t *target) (*os.File, error) {
	return os.OpenFile(t.path(), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}
