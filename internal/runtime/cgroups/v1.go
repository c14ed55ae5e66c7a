package cgroups

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v1Dir is the container's directory in one v1 hierarchy.
type v1Dir struct {
	controllers []string
	mountpoint  string
	dir         string
}

// v1Manager manages a container cgroup on cgroup v1: one directory per
// mounted hierarchy, including named ones such as name=systemd.
type v1Manager struct {
	fs   fileSystem
	dirs []v1Dir
}

func newV1(fsys fileSystem, dirs []v1Dir) *v1Manager {
	return &v1Manager{fs: fsys, dirs: dirs}
}

func (m *v1Manager) Version() int { return 1 }

func (m *v1Manager) Paths() map[string]string {
	out := make(map[string]string)
	for _, d := range m.dirs {
		for _, c := range d.controllers {
			out[c] = d.dir
		}
	}
	return out
}

// path returns the directory of a controller, if its hierarchy is mounted.
func (m *v1Manager) path(controller string) (string, bool) {
	for _, d := range m.dirs {
		for _, c := range d.controllers {
			if c == controller {
				return d.dir, true
			}
		}
	}
	return "", false
}

// need returns the directory of a controller that a requested resource
// depends on.
func (m *v1Manager) need(controller, what string) (string, error) {
	dir, ok := m.path(controller)
	if !ok {
		return "", fmt.Errorf("%s: cgroup v1 controller %q is not mounted: %w", what, controller, ErrNotSupported)
	}
	return dir, nil
}

func (m *v1Manager) Apply(pid int, r *specs.LinuxResources) error {
	if pid == 0 {
		return errors.New("apply cgroup: pid 0")
	}
	if err := m.check(r); err != nil {
		return err
	}
	for _, d := range m.dirs {
		var visit func(string) error
		if hasController(d.controllers, "cpuset") {
			visit = m.initCpuset
		}
		if err := mkdirAll(m.fs, d.mountpoint, d.dir, visit); err != nil {
			return err
		}
	}
	if err := m.set(r, false); err != nil {
		return err
	}
	if pid > 0 {
		return m.Add(pid)
	}
	return nil
}

func hasController(ctrls []string, c string) bool {
	for _, x := range ctrls {
		if x == c {
			return true
		}
	}
	return false
}

// initCpuset gives a cpuset cgroup with empty cpuset.cpus or cpuset.mems
// the values of its parent. Without this no task could join it.
func (m *v1Manager) initCpuset(dir string) error {
	parent := filepath.Dir(dir)
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		cur, err := readString(m.fs, filepath.Join(dir, f))
		if err != nil {
			return fmt.Errorf("init cpuset: %w", err)
		}
		if cur != "" {
			continue
		}
		val, err := readString(m.fs, filepath.Join(parent, f))
		if err != nil {
			return fmt.Errorf("init cpuset: %w", err)
		}
		if err := m.fs.WriteFile(filepath.Join(dir, f), val); err != nil {
			return fmt.Errorf("init cpuset: %w", err)
		}
	}
	return nil
}

func (m *v1Manager) Add(pid int) error {
	if pid <= 0 {
		return fmt.Errorf("add process to cgroup: invalid pid %d", pid)
	}
	done := map[string]bool{}
	for _, d := range m.dirs {
		if done[d.dir] {
			continue
		}
		done[d.dir] = true
		if err := m.fs.WriteFile(filepath.Join(d.dir, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("add pid %d to cgroup %s: %w", pid, d.dir, err)
		}
	}
	return nil
}

func (m *v1Manager) Set(r *specs.LinuxResources) error {
	if err := m.check(r); err != nil {
		return err
	}
	return m.set(r, true)
}

// check rejects resources that cannot be enforced before anything is
// written.
func (m *v1Manager) check(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if len(r.Unified) > 0 {
		return fmt.Errorf("unified resources need cgroup v2: %w", ErrNotSupported)
	}
	type req struct {
		ctrl, what string
		asked      bool
	}
	reqs := []req{
		{"cpuset", "cpu.cpus/mems", r.CPU != nil && (r.CPU.Cpus != "" || r.CPU.Mems != "")},
		{"cpu", "cpu", r.CPU != nil && (r.CPU.Shares != nil || r.CPU.Quota != nil || r.CPU.Period != nil ||
			r.CPU.Burst != nil || r.CPU.RealtimeRuntime != nil || r.CPU.RealtimePeriod != nil || r.CPU.Idle != nil)},
		{"memory", "memory", r.Memory != nil && (r.Memory.Limit != nil || r.Memory.Reservation != nil ||
			r.Memory.Swap != nil || r.Memory.Swappiness != nil || r.Memory.DisableOOMKiller != nil ||
			r.Memory.UseHierarchy != nil)},
		{"pids", "pids", r.Pids != nil && r.Pids.Limit != nil},
		{"blkio", "blockIO", r.BlockIO != nil && (r.BlockIO.Weight != nil || r.BlockIO.LeafWeight != nil ||
			len(r.BlockIO.WeightDevice) > 0 || len(r.BlockIO.ThrottleReadBpsDevice) > 0 ||
			len(r.BlockIO.ThrottleWriteBpsDevice) > 0 || len(r.BlockIO.ThrottleReadIOPSDevice) > 0 ||
			len(r.BlockIO.ThrottleWriteIOPSDevice) > 0)},
		{"devices", "devices", len(r.Devices) > 0},
		{"hugetlb", "hugepageLimits", len(r.HugepageLimits) > 0},
	}
	for _, q := range reqs {
		if q.asked {
			if _, err := m.need(q.ctrl, q.what); err != nil {
				return err
			}
		}
	}
	if len(r.Devices) > 0 {
		if _, err := buildDevicePolicy(r.Devices); err != nil {
			return err
		}
	}
	if r.Memory != nil {
		if s := r.Memory.Swappiness; s != nil && *s != ^uint64(0) && *s > 100 {
			return fmt.Errorf("invalid memory swappiness %d, the range is 0-100", *s)
		}
	}
	for _, l := range r.HugepageLimits {
		if err := checkPagesize(l.Pagesize); err != nil {
			return err
		}
	}
	return nil
}

// States written to and read from freezer.state; while tasks are being
// frozen it reads FREEZING.
const (
	stateFrozen = "FROZEN"
	stateThawed = "THAWED"
)

// freezeTimeout bounds how long Freeze and Thaw wait for the kernel.
var freezeTimeout = 5 * time.Second

func (m *v1Manager) Freeze() error {
	dir, err := m.need("freezer", "freeze")
	if err != nil {
		return err
	}
	file := filepath.Join(dir, "freezer.state")
	deadline := time.Now().Add(freezeTimeout)
	for i := 0; ; i++ {
		// A task that cannot reach the refrigerator (one in vfork, or in an
		// uninterruptible sleep) can keep the cgroup FREEZING forever;
		// thawing for a moment and freezing again gets it going.
		if i > 0 && i%100 == 0 {
			if err := m.fs.WriteFile(file, stateThawed); err != nil {
				return fmt.Errorf("freeze: %w", err)
			}
			time.Sleep(time.Millisecond)
		}
		if err := m.fs.WriteFile(file, stateFrozen); err != nil {
			return fmt.Errorf("freeze: %w", err)
		}
		state, err := readString(m.fs, file)
		if err != nil {
			return fmt.Errorf("freeze: %w", err)
		}
		if state == stateFrozen {
			return nil
		}
		if time.Now().After(deadline) {
			_ = m.fs.WriteFile(file, stateThawed)
			return fmt.Errorf("freeze %s: still %s after %v", dir, state, freezeTimeout)
		}
		time.Sleep(time.Duration(min(i+1, 10)) * 100 * time.Microsecond)
	}
}

func (m *v1Manager) Thaw() error {
	dir, err := m.need("freezer", "thaw")
	if err != nil {
		return err
	}
	file := filepath.Join(dir, "freezer.state")
	deadline := time.Now().Add(freezeTimeout)
	for {
		if err := m.fs.WriteFile(file, stateThawed); err != nil {
			return fmt.Errorf("thaw: %w", err)
		}
		state, err := readString(m.fs, file)
		if err != nil {
			return fmt.Errorf("thaw: %w", err)
		}
		if state == stateThawed {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("thaw %s: still %s after %v", dir, state, freezeTimeout)
		}
		time.Sleep(time.Millisecond)
	}
}

func (m *v1Manager) Frozen() (bool, error) {
	dir, ok := m.path("freezer")
	if !ok {
		return false, nil
	}
	state, err := readString(m.fs, filepath.Join(dir, "freezer.state"))
	if err != nil {
		return false, fmt.Errorf("read freezer state: %w", err)
	}
	return state == stateFrozen, nil
}

// pidsDir picks the hierarchy whose membership Pids reports. Every process
// of the container joins all hierarchies; the freezer one is preferred as
// it is what Freeze acts on.
func (m *v1Manager) pidsDir() (string, error) {
	for _, c := range []string{"freezer", "pids", "devices", "memory", "cpu"} {
		if dir, ok := m.path(c); ok {
			return dir, nil
		}
	}
	if len(m.dirs) == 0 {
		return "", errors.New("no cgroup v1 hierarchy")
	}
	return m.dirs[0].dir, nil
}

func (m *v1Manager) Pids() ([]int, error) {
	dir, err := m.pidsDir()
	if err != nil {
		return nil, err
	}
	return collectPids(m.fs, dir)
}

func (m *v1Manager) OOMKilled() (bool, error) {
	dir, ok := m.path("memory")
	if !ok {
		return false, nil
	}
	kv, err := readKV(m.fs, filepath.Join(dir, "memory.oom_control"))
	if err != nil {
		return false, fmt.Errorf("read OOM state: %w", err)
	}
	return kv["oom_kill"] > 0, nil
}

func (m *v1Manager) Destroy() error {
	var errs []error
	done := map[string]bool{}
	for _, d := range m.dirs {
		if done[d.dir] {
			continue
		}
		done[d.dir] = true
		if err := removeCgroup(m.fs, d.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
