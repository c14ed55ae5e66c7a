package cgroups

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/sys/mountinfo"
)

// defaultParent is the cgroup under which containers without a cgroupsPath
// are placed.
const defaultParent = "/berth"

// hierarchy is one mounted cgroup v1 hierarchy.
type hierarchy struct {
	// controllers are the controllers bound to the hierarchy, or a single
	// "name=<name>" entry for a named hierarchy without controllers.
	controllers []string
	// mountpoint is where the hierarchy is mounted.
	mountpoint string
	// root is the cgroup of the hierarchy that is visible at mountpoint
	// (the "root" field of mountinfo), "/" unless a subtree is mounted.
	root string
}

// mountOptionsNotControllers are cgroup v1 super options that do not name a
// controller.
var mountOptionsNotControllers = map[string]bool{
	"rw": true, "ro": true, "all": true, "none": true, "noprefix": true,
	"clone_children": true, "cpuset_v2_mode": true, "xattr": true,
	"favordynmods": true, "nofavordynmods": true,
}

// v1Hierarchies extracts the cgroup v1 hierarchies from mount table
// entries. When a hierarchy is mounted more than once the first mount wins.
func v1Hierarchies(mounts []*mountinfo.Info) []hierarchy {
	var out []hierarchy
	seen := map[string]bool{}
	for _, m := range mounts {
		if m.FSType != "cgroup" {
			continue
		}
		var ctrls []string
		for _, opt := range strings.Split(m.VFSOptions, ",") {
			switch {
			case opt == "" || mountOptionsNotControllers[opt]:
			case strings.HasPrefix(opt, "name="):
				ctrls = append(ctrls, opt)
			case strings.Contains(opt, "="):
				// release_agent= and similar settings.
			default:
				ctrls = append(ctrls, opt)
			}
		}
		if len(ctrls) == 0 {
			continue
		}
		// A named hierarchy that also carries controllers is addressed by
		// its controllers.
		if len(ctrls) > 1 {
			kept := ctrls[:0]
			for _, c := range ctrls {
				if !strings.HasPrefix(c, "name=") {
					kept = append(kept, c)
				}
			}
			ctrls = kept
		}
		sort.Strings(ctrls)
		key := strings.Join(ctrls, ",")
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, hierarchy{controllers: ctrls, mountpoint: m.Mountpoint, root: m.Root})
	}
	return out
}

// cgroup2Mount returns the cgroup2 mount at mountpoint.
func cgroup2Mount(mounts []*mountinfo.Info, mountpoint string) (*mountinfo.Info, error) {
	for _, m := range mounts {
		if m.FSType == "cgroup2" && m.Mountpoint == mountpoint {
			return m, nil
		}
	}
	return nil, fmt.Errorf("no cgroup2 filesystem mounted at %s", mountpoint)
}

// cgroupMounts reads the cgroup and cgroup2 entries of the mount table.
func cgroupMounts() ([]*mountinfo.Info, error) {
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	return mounts, nil
}

// containerPath turns the OCI cgroupsPath into a cleaned path. The result
// is absolute (relative to the hierarchy root) when cgroupsPath is absolute
// or empty, and relative (to the caller's own cgroup) otherwise. A relative
// path cannot climb above the caller's cgroup.
func containerPath(cgroupsPath, id string) (string, error) {
	if cgroupsPath == "" {
		if id == "" || strings.ContainsAny(id, "/\x00") || id == "." || id == ".." {
			return "", fmt.Errorf("invalid container id %q for a default cgroup path", id)
		}
		return path.Join(defaultParent, id), nil
	}
	if strings.Contains(cgroupsPath, "\x00") {
		return "", errors.New("cgroupsPath contains a NUL byte")
	}
	if strings.HasPrefix(cgroupsPath, "/") {
		return path.Clean(cgroupsPath), nil
	}
	rel := strings.TrimPrefix(path.Clean("/"+cgroupsPath), "/")
	if rel == "" {
		return "", fmt.Errorf("relative cgroupsPath %q names the caller's own cgroup", cgroupsPath)
	}
	return rel, nil
}

// groupDir returns the directory of cgroup p in a hierarchy mounted at
// mountpoint whose visible root cgroup is root. own is the caller's cgroup
// in that hierarchy, needed only when p is relative.
func groupDir(mountpoint, root, own, p string) (string, error) {
	if strings.HasPrefix(p, "/") {
		return filepath.Join(mountpoint, p), nil
	}
	if own == "" {
		return "", fmt.Errorf("own cgroup unknown for hierarchy at %s", mountpoint)
	}
	if root == "" {
		root = "/"
	}
	rel, err := filepath.Rel(root, own)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("own cgroup %s is outside the part of the hierarchy mounted at %s (%s)", own, mountpoint, root)
	}
	return filepath.Join(mountpoint, rel, p), nil
}

// resolveV1 computes the per-controller directories of cgroup p. own maps
// controller names (as in /proc/self/cgroup) to the caller's cgroups.
func resolveV1(hs []hierarchy, own map[string]string, p string) ([]v1Dir, error) {
	if len(hs) == 0 {
		return nil, errors.New("no cgroup v1 hierarchy is mounted")
	}
	dirs := make([]v1Dir, 0, len(hs))
	for _, h := range hs {
		var mine string
		for _, c := range h.controllers {
			if o, ok := own[c]; ok {
				mine = o
				break
			}
		}
		dir, err := groupDir(h.mountpoint, h.root, mine, p)
		if err != nil {
			return nil, fmt.Errorf("hierarchy %s: %w", strings.Join(h.controllers, ","), err)
		}
		dirs = append(dirs, v1Dir{controllers: h.controllers, mountpoint: h.mountpoint, dir: dir})
	}
	return dirs, nil
}
