package rootfs

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// mountCgroup handles a "cgroup" or "cgroup2" spec mount.
func (p *preparer) mountCgroup(m specs.Mount, o mountOptions) error {
	if p.opts.CgroupV2 {
		return p.mountCgroup2(m, o)
	}
	return p.mountCgroup1(m, o)
}

// mountCgroup2 mounts the unified hierarchy: directly with a cgroup
// namespace, otherwise by binding the container's own cgroup directory.
func (p *preparer) mountCgroup2(m specs.Mount, o mountOptions) error {
	if p.opts.CgroupPaths == nil {
		m.Type = "cgroup2"
		return p.mountFS(m, o)
	}
	src, ok := p.opts.CgroupPaths[""]
	if !ok || src == "" {
		return errors.New("no cgroup v2 directory given for the container")
	}
	o.Flags |= unix.MS_BIND
	return p.bindMount(src, m.Destination, o)
}

// v1Controllers are the cgroup v1 controller names that can appear among a
// hierarchy's mount options.
var v1Controllers = map[string]bool{
	"cpuset": true, "cpu": true, "cpuacct": true, "blkio": true, "memory": true,
	"devices": true, "freezer": true, "net_cls": true, "perf_event": true,
	"net_prio": true, "hugetlb": true, "pids": true, "rdma": true, "misc": true,
	"debug": true,
}

// hierarchy is one cgroup v1 hierarchy mounted on the host.
type hierarchy struct {
	name        string   // base name of the host mount point, e.g. "cpu,cpuacct"
	controllers []string // e.g. ["cpu", "cpuacct"] or ["name=systemd"]
}

// v1Hierarchies lists the cgroup v1 hierarchies of the mount table, each
// once, in mount-table order.
func (p *preparer) v1Hierarchies() ([]hierarchy, error) {
	infos, err := p.mountTable()
	if err != nil {
		return nil, err
	}
	var (
		out  []hierarchy
		seen = map[string]bool{}
	)
	for _, mi := range infos {
		if mi.FSType != "cgroup" {
			continue
		}
		var ctrls []string
		for _, opt := range strings.Split(mi.VFSOptions, ",") {
			if v1Controllers[opt] || strings.HasPrefix(opt, "name=") {
				ctrls = append(ctrls, opt)
			}
		}
		name := filepath.Base(mi.Mountpoint)
		if len(ctrls) == 0 || seen[name] {
			continue
		}
		seen[name] = true
		out = append(out, hierarchy{name: name, controllers: ctrls})
	}
	return out, nil
}

// hostPath returns the container's directory in hierarchy h from
// CgroupPaths.
func (p *preparer) hostPath(h hierarchy) (string, bool) {
	for _, c := range h.controllers {
		if dir, ok := p.opts.CgroupPaths[strings.TrimPrefix(c, "name=")]; ok && dir != "" {
			return dir, true
		}
	}
	return "", false
}

// mountCgroup1 builds the cgroup v1 layout: a tmpfs on the destination and
// one directory per hierarchy (named like the host's mount point), holding
// either a bind of the container's own cgroup or, with a cgroup namespace, a
// fresh cgroup mount; each controller of a combined hierarchy gets a symlink
// to it ("cpu" -> "cpu,cpuacct"). With "ro" the tmpfs goes read-only last.
func (p *preparer) mountCgroup1(m specs.Mount, o mountOptions) error {
	hier, err := p.v1Hierarchies()
	if err != nil {
		return err
	}
	dest := cleanDest(m.Destination)
	tmpfs := specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs"}
	tmpfsOpts := mountOptions{
		Flags:       unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC,
		Data:        "mode=755",
		Propagation: o.Propagation,
	}
	if err := p.mountFS(tmpfs, tmpfsOpts); err != nil {
		return fmt.Errorf("tmpfs: %w", err)
	}
	for _, h := range hier {
		sub := path.Join(dest, h.name)
		if p.opts.CgroupPaths != nil {
			src, ok := p.hostPath(h)
			if !ok {
				continue // the container has no cgroup in this hierarchy
			}
			bo := o
			bo.Flags |= unix.MS_BIND | unix.MS_REC
			if err := p.bindMount(src, sub, bo); err != nil {
				return fmt.Errorf("bind %s: %w", h.name, err)
			}
		} else {
			source := m.Source
			if source == "" {
				source = "cgroup"
			}
			co := mountOptions{Flags: o.Flags, Propagation: o.Propagation, Data: strings.Join(h.controllers, ",")}
			if err := p.mountFS(specs.Mount{Destination: sub, Type: "cgroup", Source: source}, co); err != nil {
				return fmt.Errorf("cgroup %s: %w", h.name, err)
			}
		}
		if len(h.controllers) > 1 {
			for _, c := range h.controllers {
				if err := p.symlink(h.name, path.Join(dest, strings.TrimPrefix(c, "name="))); err != nil {
					return err
				}
			}
		}
	}
	if o.Flags&unix.MS_RDONLY == 0 {
		return nil
	}
	t, err := p.root.existing(dest, resolveOpts{})
	if err != nil {
		return err
	}
	defer t.Close()
	ro := mountOptions{Flags: tmpfsOpts.Flags | unix.MS_RDONLY}
	flags, _ := ro.bindRemountFlags()
	return p.bindRemount(t, ro, flags)
}

// symlink creates link -> target inside the rootfs; an existing entry is
// left alone.
func (p *preparer) symlink(target, link string) error {
	dir, name, err := p.root.parent(link, resolveOpts{})
	if err != nil {
		return err
	}
	defer dir.Close()
	if err := p.sys.Symlinkat(target, dir.fd, name); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("symlink %q -> %q: %w", link, target, err)
	}
	return nil
}
