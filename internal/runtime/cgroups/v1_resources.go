package cgroups

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// set writes r. update is true for Set, false for Apply.
func (m *v1Manager) set(r *specs.LinuxResources, update bool) error {
	if r == nil {
		return nil
	}
	if r.CPU != nil {
		if err := m.setCpuset(r.CPU); err != nil {
			return err
		}
		if err := m.setCPU(r.CPU); err != nil {
			return err
		}
	}
	if r.Memory != nil {
		if err := m.setMemory(r.Memory, update); err != nil {
			return err
		}
	}
	if r.Pids != nil && r.Pids.Limit != nil {
		dir, _ := m.path("pids")
		if err := m.write(dir, "pids.max", pidsMax(*r.Pids.Limit)); err != nil {
			return err
		}
	}
	if r.BlockIO != nil {
		if err := m.setBlkio(r.BlockIO); err != nil {
			return err
		}
	}
	if len(r.Devices) > 0 {
		if err := m.setDevices(r.Devices); err != nil {
			return err
		}
	}
	if err := m.setHugetlb(r.HugepageLimits); err != nil {
		return err
	}
	if err := m.setNetwork(r.Network); err != nil {
		return err
	}
	return m.setRdma(r.Rdma)
}

func (m *v1Manager) write(dir, file, value string) error {
	if err := m.fs.WriteFile(filepath.Join(dir, file), value); err != nil {
		return fmt.Errorf("set %s: %w", file, err)
	}
	return nil
}

func (m *v1Manager) exists(dir, file string) bool {
	return m.fs.Exists(filepath.Join(dir, file))
}

func (m *v1Manager) setCpuset(c *specs.LinuxCPU) error {
	dir, ok := m.path("cpuset")
	if !ok {
		return nil
	}
	if c.Cpus != "" {
		if err := m.write(dir, "cpuset.cpus", c.Cpus); err != nil {
			return err
		}
	}
	if c.Mems != "" {
		if err := m.write(dir, "cpuset.mems", c.Mems); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1Manager) setCPU(c *specs.LinuxCPU) error {
	dir, ok := m.path("cpu")
	if !ok {
		return nil
	}
	// Real-time bandwidth goes first: a process already running with a
	// real-time policy can only join a group that has some.
	if c.RealtimePeriod != nil && *c.RealtimePeriod != 0 {
		if err := m.write(dir, "cpu.rt_period_us", strconv.FormatUint(*c.RealtimePeriod, 10)); err != nil {
			return err
		}
	}
	if c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0 {
		if err := m.write(dir, "cpu.rt_runtime_us", strconv.FormatInt(*c.RealtimeRuntime, 10)); err != nil {
			return err
		}
	}
	if c.Shares != nil && *c.Shares != 0 {
		if err := m.write(dir, "cpu.shares", strconv.FormatUint(*c.Shares, 10)); err != nil {
			return err
		}
		// The kernel clamps shares silently; report a value it did not take.
		got, err := readString(m.fs, filepath.Join(dir, "cpu.shares"))
		if err != nil {
			return fmt.Errorf("read back cpu.shares: %w", err)
		}
		if got != strconv.FormatUint(*c.Shares, 10) {
			return fmt.Errorf("cpu shares %d out of range, the kernel set %s", *c.Shares, got)
		}
	}
	quotaSet := c.Quota != nil && *c.Quota != 0
	periodSet := c.Period != nil && *c.Period != 0
	periodPending := false
	if periodSet {
		err := m.write(dir, "cpu.cfs_period_us", strconv.FormatUint(*c.Period, 10))
		switch {
		case err == nil:
		case errors.Is(err, unix.EINVAL) && quotaSet:
			// A shorter period can make the current quota exceed what the
			// parent allows; it is accepted once the new quota is in.
			periodPending = true
		default:
			return err
		}
	}
	if quotaSet {
		if err := m.write(dir, "cpu.cfs_quota_us", strconv.FormatInt(*c.Quota, 10)); err != nil {
			return err
		}
		if periodPending {
			if err := m.write(dir, "cpu.cfs_period_us", strconv.FormatUint(*c.Period, 10)); err != nil {
				return err
			}
		}
	}
	if c.Burst != nil {
		if !m.exists(dir, "cpu.cfs_burst_us") {
			return fmt.Errorf("cpu burst: %w by this kernel", ErrNotSupported)
		}
		if err := m.write(dir, "cpu.cfs_burst_us", strconv.FormatUint(*c.Burst, 10)); err != nil {
			return err
		}
	}
	if c.Idle != nil {
		if !m.exists(dir, "cpu.idle") {
			return fmt.Errorf("cpu idle: %w by this kernel", ErrNotSupported)
		}
		if err := m.write(dir, "cpu.idle", strconv.FormatInt(*c.Idle, 10)); err != nil {
			return err
		}
	}
	return nil
}

// setMemory writes the memory limits. Kernel and KernelTCP are ignored:
// kernel memory limits were deprecated and then removed from the kernel,
// and the runtime spec marks them so.
func (m *v1Manager) setMemory(mem *specs.LinuxMemory, update bool) error {
	dir, ok := m.path("memory")
	if !ok {
		return nil
	}
	var limit, swap int64
	if mem.Limit != nil {
		limit = *mem.Limit
	}
	if mem.Swap != nil {
		swap = *mem.Swap
	}
	if update && limit > 0 && mem.CheckBeforeUpdate != nil && *mem.CheckBeforeUpdate {
		if err := checkMemoryUsage(m.fs, filepath.Join(dir, "memory.usage_in_bytes"), limit); err != nil {
			return err
		}
	}
	// An unlimited memory request without a swap value lifts the swap
	// limit as well, as runc does.
	if limit == -1 && swap == 0 {
		swap = -1
	}
	if swap != 0 && !m.exists(dir, "memory.memsw.limit_in_bytes") {
		if swap != -1 {
			return fmt.Errorf("memory swap limit: swap accounting is disabled on this host: %w", ErrNotSupported)
		}
		swap = 0
	}
	writeLimit := func() error {
		if limit == 0 {
			return nil
		}
		return m.write(dir, "memory.limit_in_bytes", strconv.FormatInt(limit, 10))
	}
	writeSwap := func() error {
		if swap == 0 {
			return nil
		}
		return m.write(dir, "memory.memsw.limit_in_bytes", strconv.FormatInt(swap, 10))
	}
	// memory.memsw.limit_in_bytes may never be below memory.limit_in_bytes,
	// so the order of the two writes depends on the direction of change.
	swapFirst := false
	if limit != 0 && swap != 0 {
		if swap == -1 {
			swapFirst = true
		} else {
			cur, err := readUint(m.fs, filepath.Join(dir, "memory.limit_in_bytes"))
			if err != nil {
				return fmt.Errorf("read memory limit: %w", err)
			}
			swapFirst = cur < uint64(swap)
		}
	}
	steps := []func() error{writeLimit, writeSwap}
	if swapFirst {
		steps = []func() error{writeSwap, writeLimit}
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	if mem.Reservation != nil && *mem.Reservation != 0 {
		if err := m.write(dir, "memory.soft_limit_in_bytes", strconv.FormatInt(*mem.Reservation, 10)); err != nil {
			return err
		}
	}
	// Swappiness "-1" (all bits set, as a uint64) means unset.
	if s := mem.Swappiness; s != nil && *s != ^uint64(0) {
		if err := m.write(dir, "memory.swappiness", strconv.FormatUint(*s, 10)); err != nil {
			return err
		}
	}
	if mem.DisableOOMKiller != nil {
		if err := m.write(dir, "memory.oom_control", boolValue(*mem.DisableOOMKiller)); err != nil {
			return err
		}
	}
	if mem.UseHierarchy != nil {
		if err := m.write(dir, "memory.use_hierarchy", boolValue(*mem.UseHierarchy)); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1Manager) setBlkio(b *specs.LinuxBlockIO) error {
	dir, ok := m.path("blkio")
	if !ok {
		return nil
	}
	// blkio.weight belongs to the CFQ scheduler, gone since Linux 5.0; BFQ
	// offers the same scale in blkio.bfq.weight.
	weightFile, weightDevFile := "", ""
	switch {
	case m.exists(dir, "blkio.weight"):
		weightFile, weightDevFile = "blkio.weight", "blkio.weight_device"
	case m.exists(dir, "blkio.bfq.weight"):
		weightFile, weightDevFile = "blkio.bfq.weight", "blkio.bfq.weight_device"
	}
	// A zero weight means unset, as in runc.
	if b.Weight != nil && *b.Weight != 0 {
		if weightFile == "" {
			return fmt.Errorf("blkio weight: no blkio.weight or blkio.bfq.weight: %w", ErrNotSupported)
		}
		if err := m.write(dir, weightFile, strconv.FormatUint(uint64(*b.Weight), 10)); err != nil {
			return err
		}
	}
	// Leaf weights only exist with CFQ; elsewhere they are ignored.
	if b.LeafWeight != nil && *b.LeafWeight != 0 && m.exists(dir, "blkio.leaf_weight") {
		if err := m.write(dir, "blkio.leaf_weight", strconv.FormatUint(uint64(*b.LeafWeight), 10)); err != nil {
			return err
		}
	}
	for _, wd := range b.WeightDevice {
		if wd.Weight != nil && *wd.Weight != 0 {
			if weightDevFile == "" || !m.exists(dir, weightDevFile) {
				return fmt.Errorf("blkio device weight: %w", ErrNotSupported)
			}
			v := fmt.Sprintf("%d:%d %d", wd.Major, wd.Minor, *wd.Weight)
			if err := m.write(dir, weightDevFile, v); err != nil {
				return err
			}
		}
		if wd.LeafWeight != nil && m.exists(dir, "blkio.leaf_weight_device") {
			v := fmt.Sprintf("%d:%d %d", wd.Major, wd.Minor, *wd.LeafWeight)
			if err := m.write(dir, "blkio.leaf_weight_device", v); err != nil {
				return err
			}
		}
	}
	for _, t := range []struct {
		file string
		devs []specs.LinuxThrottleDevice
	}{
		{"blkio.throttle.read_bps_device", b.ThrottleReadBpsDevice},
		{"blkio.throttle.write_bps_device", b.ThrottleWriteBpsDevice},
		{"blkio.throttle.read_iops_device", b.ThrottleReadIOPSDevice},
		{"blkio.throttle.write_iops_device", b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.devs {
			if err := m.write(dir, t.file, fmt.Sprintf("%d:%d %d", d.Major, d.Minor, d.Rate)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *v1Manager) setDevices(rules []specs.LinuxDeviceCgroup) error {
	dir, ok := m.path("devices")
	if !ok {
		return nil
	}
	p, err := buildDevicePolicy(rules)
	if err != nil {
		return err
	}
	for _, w := range p.v1Writes() {
		if err := m.write(dir, w[0], w[1]); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1Manager) setHugetlb(limits []specs.LinuxHugepageLimit) error {
	if len(limits) == 0 {
		return nil
	}
	dir, _ := m.path("hugetlb")
	for _, l := range limits {
		file := "hugetlb." + l.Pagesize + ".limit_in_bytes"
		if !m.exists(dir, file) {
			return fmt.Errorf("hugepage size %s: %w", l.Pagesize, ErrNotSupported)
		}
		v := strconv.FormatUint(l.Limit, 10)
		if err := m.write(dir, file, v); err != nil {
			return err
		}
		// Limit the reservations as well where the kernel has them.
		rsvd := "hugetlb." + l.Pagesize + ".rsvd.limit_in_bytes"
		if m.exists(dir, rsvd) {
			if err := m.write(dir, rsvd, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// setNetwork writes the class id and interface priorities where the
// net_cls and net_prio controllers are mounted, and ignores them otherwise.
func (m *v1Manager) setNetwork(n *specs.LinuxNetwork) error {
	if n == nil {
		return nil
	}
	if dir, ok := m.path("net_cls"); ok && n.ClassID != nil {
		if err := m.write(dir, "net_cls.classid", strconv.FormatUint(uint64(*n.ClassID), 10)); err != nil {
			return err
		}
	}
	if dir, ok := m.path("net_prio"); ok {
		for _, p := range n.Priorities {
			if err := m.write(dir, "net_prio.ifpriomap", fmt.Sprintf("%s %d", p.Name, p.Priority)); err != nil {
				return err
			}
		}
	}
	return nil
}

// setRdma writes RDMA limits where the rdma controller is mounted, and
// ignores them otherwise.
func (m *v1Manager) setRdma(limits map[string]specs.LinuxRdma) error {
	dir, ok := m.path("rdma")
	if !ok {
		return nil
	}
	return writeRdma(dir, limits, m.write)
}
