package cgroups

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/containerd/cgroups/v3"
	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Manager controls one container's cgroup. Its methods are called from the
// runtime, never from inside the container.
type Manager interface {
	// Apply creates the cgroup (in every mounted hierarchy on v1, the one
	// directory on v2), writes r, and then moves pid into it, so the process
	// never runs unconstrained. On v1 the cpuset.cpus and cpuset.mems of
	// every new level are copied from its parent before any task joins.
	// A negative pid creates and configures the cgroup without moving a
	// process. When Apply fails the caller should call Destroy.
	Apply(pid int, r *specs.LinuxResources) error
	// Add moves another process, such as an exec'd one, into the cgroup.
	Add(pid int) error
	// Set updates the limits of an existing cgroup (the update command).
	// Fields that are nil or empty are left as they are.
	Set(r *specs.LinuxResources) error
	// Freeze stops every process of the cgroup and returns once the kernel
	// reports the cgroup frozen.
	Freeze() error
	// Thaw resumes a frozen cgroup.
	Thaw() error
	// Frozen reports whether the cgroup is completely frozen.
	Frozen() (bool, error)
	// Pids lists every process in the cgroup and its descendants.
	Pids() ([]int, error)
	// Stats reads the resource usage of the cgroup.
	Stats() (*Stats, error)
	// OOMKilled reports whether the kernel OOM-killed a process of this
	// cgroup since it was created. Without a memory controller it reports
	// false.
	OOMKilled() (bool, error)
	// Destroy removes the cgroup directories, including sub-cgroups made by
	// the container. All processes must be gone; a transient EBUSY is
	// retried briefly. Directories that no longer exist are not an error.
	Destroy() error
	// Paths returns the directory per controller on v1 ("cpu", "memory",
	// ..., "name=systemd" for a named hierarchy; co-mounted controllers
	// share a directory) or {"": dir} on v2. Persist it and hand it to Load
	// to re-attach from another process.
	Paths() map[string]string
	// Version is 1 or 2.
	Version() int
}

// ErrNotSupported is wrapped by errors about resources that the cgroup
// version or the host cannot enforce.
var ErrNotSupported = errors.New("not supported")

// unifiedMountpoint is the conventional mountpoint of the cgroup2
// filesystem on a unified host.
const unifiedMountpoint = "/sys/fs/cgroup"

// New returns a manager for the container id whose OCI cgroupsPath is
// cgroupsPath. New only resolves directories; nothing is created before
// Apply, so calling it again is harmless.
//
// Path semantics follow the OCI runtime specification: an absolute path is
// relative to the root of each hierarchy (its mountpoint), a relative path
// is relative to the calling process's own cgroup in each hierarchy (it
// cannot climb above it), and an empty path means "/berth/<id>". Because a
// relative path depends on the caller's cgroup, a different process that
// must re-attach to the cgroup later uses Load with the recorded Paths.
//
// The host runs cgroup v2 when /sys/fs/cgroup is a cgroup2 filesystem.
// Otherwise it is treated as v1, and a cgroup2 mount next to the v1
// hierarchies (the "hybrid" layout, /sys/fs/cgroup/unified) is ignored.
func New(cgroupsPath, id string) (Manager, error) {
	p, err := containerPath(cgroupsPath, id)
	if err != nil {
		return nil, err
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	switch cgroups.Mode() {
	case cgroups.Unified:
		m, err := cgroup2Mount(mounts, unifiedMountpoint)
		if err != nil {
			return nil, err
		}
		own := ""
		if !strings.HasPrefix(p, "/") {
			_, own, err = cgroups.ParseCgroupFileUnified("/proc/self/cgroup")
			if err != nil {
				return nil, fmt.Errorf("read own cgroup: %w", err)
			}
		}
		dir, err := groupDir(m.Mountpoint, m.Root, own, p)
		if err != nil {
			return nil, err
		}
		return newV2(hostFS{}, m.Mountpoint, dir, attachDeviceFilter), nil
	case cgroups.Legacy, cgroups.Hybrid:
		var own map[string]string
		if !strings.HasPrefix(p, "/") {
			own, _, err = cgroups.ParseCgroupFileUnified("/proc/self/cgroup")
			if err != nil {
				return nil, fmt.Errorf("read own cgroup: %w", err)
			}
		}
		dirs, err := resolveV1(v1Hierarchies(mounts), own, p)
		if err != nil {
			return nil, err
		}
		return newV1(hostFS{}, dirs), nil
	default:
		return nil, errors.New("no cgroup filesystem is mounted at " + unifiedMountpoint)
	}
}

// NewV2 returns a cgroup v2 manager for group, a path below mountpoint, the
// mountpoint of a cgroup2 filesystem. It is meant for hosts where cgroup2 is
// mounted somewhere other than /sys/fs/cgroup. Nothing is created before
// Apply.
func NewV2(mountpoint, group string) (Manager, error) {
	if !filepath.IsAbs(mountpoint) {
		return nil, fmt.Errorf("cgroup2 mountpoint %q is not absolute", mountpoint)
	}
	rel := strings.TrimPrefix(filepath.Clean("/"+group), "/")
	if rel == "" {
		return nil, fmt.Errorf("cgroup group %q names the root cgroup", group)
	}
	mountpoint = filepath.Clean(mountpoint)
	return newV2(hostFS{}, mountpoint, filepath.Join(mountpoint, rel), attachDeviceFilter), nil
}

// Load re-attaches to a cgroup whose Paths were recorded by another
// process; v2 tells which version they belong to. The directories are not
// required to exist (Destroy of a removed cgroup succeeds), but Apply on a
// loaded manager needs the hierarchies to still be mounted.
func Load(paths map[string]string, v2 bool) (Manager, error) {
	if v2 {
		dir, ok := paths[""]
		if !ok || len(paths) != 1 || !filepath.IsAbs(dir) {
			return nil, fmt.Errorf("invalid cgroup v2 paths %v", paths)
		}
		dir = filepath.Clean(dir)
		mountpoint := dir
		if mounts, err := cgroupMounts(); err == nil {
			mountpoint = enclosingMount(mounts, "cgroup2", dir)
		}
		return newV2(hostFS{}, mountpoint, dir, attachDeviceFilter), nil
	}
	if len(paths) == 0 {
		return nil, errors.New("no cgroup v1 paths")
	}
	mounts, _ := cgroupMounts()
	byDir := map[string]*v1Dir{}
	var order []string
	for ctrl, dir := range paths {
		if ctrl == "" || !filepath.IsAbs(dir) {
			return nil, fmt.Errorf("invalid cgroup v1 path %q for controller %q", dir, ctrl)
		}
		dir = filepath.Clean(dir)
		d, ok := byDir[dir]
		if !ok {
			d = &v1Dir{dir: dir, mountpoint: enclosingMount(mounts, "cgroup", dir)}
			byDir[dir] = d
			order = append(order, dir)
		}
		d.controllers = append(d.controllers, ctrl)
	}
	sort.Strings(order)
	dirs := make([]v1Dir, 0, len(order))
	for _, dir := range order {
		d := byDir[dir]
		sort.Strings(d.controllers)
		dirs = append(dirs, *d)
	}
	return newV1(hostFS{}, dirs), nil
}

// enclosingMount returns the longest mountpoint of the given filesystem
// type that contains dir, or dir itself when none does.
func enclosingMount(mounts []*mountinfo.Info, fstype, dir string) string {
	best := ""
	for _, m := range mounts {
		if m.FSType != fstype {
			continue
		}
		if m.Mountpoint == dir || strings.HasPrefix(dir, strings.TrimSuffix(m.Mountpoint, "/")+"/") {
			if len(m.Mountpoint) > len(best) {
				best = m.Mountpoint
			}
		}
	}
	if best == "" {
		return dir
	}
	return best
}
