package cgroups

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v2Manager manages a container cgroup on the unified hierarchy.
type v2Manager struct {
	fs         fileSystem
	mountpoint string
	dir        string
	devices    deviceFilterFunc
}

func newV2(fsys fileSystem, mountpoint, dir string, devices deviceFilterFunc) *v2Manager {
	return &v2Manager{fs: fsys, mountpoint: mountpoint, dir: dir, devices: devices}
}

func (m *v2Manager) Version() int { return 2 }

func (m *v2Manager) Paths() map[string]string { return map[string]string{"": m.dir} }

func (m *v2Manager) file(name string) string { return filepath.Join(m.dir, name) }

func (m *v2Manager) Apply(pid int, r *specs.LinuxResources) error {
	if pid == 0 {
		return errors.New("apply cgroup: pid 0")
	}
	if err := checkV2(r); err != nil {
		return err
	}
	// Every controller the parent offers is enabled on the way down, so
	// the container's group can be limited and accounted in all of them.
	if err := m.enableControllers(m.mountpoint); err != nil {
		return err
	}
	err := mkdirAll(m.fs, m.mountpoint, m.dir, func(d string) error {
		if d == m.dir {
			return nil
		}
		return m.enableControllers(d)
	})
	if err != nil {
		return err
	}
	if err := m.set(r, false); err != nil {
		return err
	}
	if pid > 0 {
		return m.Add(pid)
	}
	return nil
}

// enableControllers enables in cgroup.subtree_control of dir every
// controller listed in its cgroup.controllers that is not enabled yet. It
// is best effort: a controller the kernel refuses (a threaded subtree, or a
// parent with processes of its own) stays disabled, and writing a limit for
// it then fails with a clear error.
func (m *v2Manager) enableControllers(dir string) error {
	avail, err := readString(m.fs, filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return fmt.Errorf("read controllers of %s: %w", dir, err)
	}
	enabled, err := readString(m.fs, filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return fmt.Errorf("read subtree_control of %s: %w", dir, err)
	}
	on := map[string]bool{}
	for _, c := range strings.Fields(enabled) {
		on[c] = true
	}
	var want []string
	for _, c := range strings.Fields(avail) {
		if !on[c] {
			want = append(want, "+"+c)
		}
	}
	if len(want) == 0 {
		return nil
	}
	file := filepath.Join(dir, "cgroup.subtree_control")
	if err := m.fs.WriteFile(file, strings.Join(want, " ")); err == nil {
		return nil
	}
	for _, c := range want {
		_ = m.fs.WriteFile(file, c)
	}
	return nil
}

func (m *v2Manager) Add(pid int) error {
	if pid <= 0 {
		return fmt.Errorf("add process to cgroup: invalid pid %d", pid)
	}
	if err := m.fs.WriteFile(m.file("cgroup.procs"), strconv.Itoa(pid)); err != nil {
		return fmt.Errorf("add pid %d to cgroup %s: %w", pid, m.dir, err)
	}
	return nil
}

func (m *v2Manager) Set(r *specs.LinuxResources) error {
	if err := checkV2(r); err != nil {
		return err
	}
	return m.set(r, true)
}

// set writes r. update is true for Set, false for Apply.
func (m *v2Manager) set(r *specs.LinuxResources, update bool) error {
	if r == nil {
		return nil
	}
	if mem := r.Memory; update && mem != nil && mem.Limit != nil && *mem.Limit > 0 &&
		mem.CheckBeforeUpdate != nil && *mem.CheckBeforeUpdate {
		if err := checkMemoryUsage(m.fs, m.file("memory.current"), *mem.Limit); err != nil {
			return err
		}
	}
	writes, err := v2Writes(r)
	if err != nil {
		return err
	}
	if c := r.CPU; c != nil && (c.Quota == nil || *c.Quota == 0) && c.Period != nil && *c.Period != 0 {
		// A period on its own keeps the quota in force.
		cur, err := readString(m.fs, m.file("cpu.max"))
		if err != nil {
			return fmt.Errorf("read cpu.max: %w", err)
		}
		quota, _, _ := strings.Cut(cur, " ")
		writes = append(writes, v2Write{"cpu.max", quota + " " + strconv.FormatUint(*c.Period, 10)})
	}
	if b := r.BlockIO; b != nil {
		writes = append(m.ioWeightWrites(b), writes...)
	}
	for _, w := range writes {
		if err := m.write(w.file, w.value); err != nil {
			return err
		}
		if rsvd, ok := strings.CutSuffix(w.file, ".max"); ok && strings.HasPrefix(w.file, "hugetlb.") {
			// Reservations are limited alongside usage where the kernel
			// accounts them.
			if f := rsvd + ".rsvd.max"; m.fs.Exists(m.file(f)) {
				if err := m.write(f, w.value); err != nil {
					return err
				}
			}
		}
	}
	if len(r.Devices) > 0 {
		p, err := buildDevicePolicy(r.Devices)
		if err != nil {
			return err
		}
		if err := m.devices(m.dir, p); err != nil {
			return err
		}
	}
	// Unified entries go last so that they override converted values.
	keys := make([]string, 0, len(r.Unified))
	for k := range r.Unified {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := m.write(k, r.Unified[k]); err != nil {
			return err
		}
	}
	return nil
}

// write writes one interface file; a missing file almost always means its
// controller is not enabled for the group.
func (m *v2Manager) write(file, value string) error {
	err := m.fs.WriteFile(m.file(file), value)
	if err == nil {
		return nil
	}
	if missing(err) {
		ctrl, _, _ := strings.Cut(file, ".")
		return fmt.Errorf("set %s: controller %q not enabled for %s or file unsupported: %w", file, ctrl, m.dir, err)
	}
	return fmt.Errorf("set %s: %w", file, err)
}

func (m *v2Manager) Freeze() error { return m.freeze(true) }

func (m *v2Manager) Thaw() error { return m.freeze(false) }

// freeze writes cgroup.freeze and waits until cgroup.events reports the
// requested state.
func (m *v2Manager) freeze(frozen bool) error {
	want := boolValue(frozen)
	if err := m.fs.WriteFile(m.file("cgroup.freeze"), want); err != nil {
		return fmt.Errorf("write cgroup.freeze: %w", err)
	}
	deadline := time.Now().Add(freezeTimeout)
	for i := 0; ; i++ {
		ev, err := readKV(m.fs, m.file("cgroup.events"))
		if err != nil {
			return fmt.Errorf("read cgroup.events: %w", err)
		}
		if boolValue(ev["frozen"] == 1) == want {
			return nil
		}
		if time.Now().After(deadline) {
			if frozen {
				_ = m.fs.WriteFile(m.file("cgroup.freeze"), "0")
			}
			return fmt.Errorf("cgroup %s did not reach frozen=%s within %v", m.dir, want, freezeTimeout)
		}
		time.Sleep(time.Duration(min(i+1, 10)) * 100 * time.Microsecond)
	}
}

func (m *v2Manager) Frozen() (bool, error) {
	ev, err := readKV(m.fs, m.file("cgroup.events"))
	if err != nil {
		return false, fmt.Errorf("read cgroup.events: %w", err)
	}
	return ev["frozen"] == 1, nil
}

func (m *v2Manager) Pids() ([]int, error) { return collectPids(m.fs, m.dir) }

func (m *v2Manager) OOMKilled() (bool, error) {
	ev, err := readKV(m.fs, m.file("memory.events"))
	if missing(err) {
		if !m.fs.Exists(m.dir) {
			return false, fmt.Errorf("read OOM state: %w", err)
		}
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read OOM state: %w", err)
	}
	return ev["oom_kill"] > 0, nil
}

func (m *v2Manager) Destroy() error { return removeCgroup(m.fs, m.dir) }
