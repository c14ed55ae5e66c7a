package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// userHZ is the unit of the tick counts in cpuacct.stat; the kernel
// exports it as a fixed 100 on every architecture.
const userHZ = 100

func (m *v1Manager) Stats() (*Stats, error) {
	dir, err := m.pidsDir()
	if err != nil {
		return nil, err
	}
	if !m.fs.Exists(dir) {
		return nil, fmt.Errorf("read stats: cgroup %s: %w", dir, os.ErrNotExist)
	}
	s := &Stats{}
	if dir, ok := m.path("cpuacct"); ok {
		if err := m.cpuacctStats(dir, &s.CPU); err != nil {
			return nil, err
		}
	}
	if dir, ok := m.path("cpu"); ok {
		kv, err := readKV(m.fs, filepath.Join(dir, "cpu.stat"))
		switch {
		case missing(err):
		case err != nil:
			return nil, err
		default:
			s.CPU.ThrottlingPeriods = kv["nr_periods"]
			s.CPU.ThrottledPeriods = kv["nr_throttled"]
			s.CPU.ThrottledTime = kv["throttled_time"]
		}
	}
	if dir, ok := m.path("memory"); ok {
		if err := m.memoryStats(dir, &s.Memory); err != nil {
			return nil, err
		}
	}
	if dir, ok := m.path("pids"); ok {
		if err := readUintTo(m.fs, filepath.Join(dir, "pids.current"), &s.Pids.Current); err != nil {
			return nil, err
		}
		var limit uint64
		if err := readUintTo(m.fs, filepath.Join(dir, "pids.max"), &limit); err != nil {
			return nil, err
		}
		s.Pids.Limit = pidsLimit(limit)
	}
	if dir, ok := m.path("blkio"); ok {
		devs, err := m.blkioStats(dir)
		if err != nil {
			return nil, err
		}
		s.IO.Devices = devs
	}
	return s, nil
}

func (m *v1Manager) cpuacctStats(dir string, c *CPUStats) error {
	for _, f := range []struct {
		file string
		dst  *uint64
	}{
		{"cpuacct.usage", &c.UsageTotal},
		{"cpuacct.usage_user", &c.UsageUser},
		{"cpuacct.usage_sys", &c.UsageSystem},
	} {
		if err := readUintTo(m.fs, filepath.Join(dir, f.file), f.dst); err != nil {
			return err
		}
	}
	// Kernels before 4.7 only have the tick counts of cpuacct.stat.
	if !m.exists(dir, "cpuacct.usage_user") {
		kv, err := readKV(m.fs, filepath.Join(dir, "cpuacct.stat"))
		switch {
		case missing(err):
		case err != nil:
			return err
		default:
			const nsPerTick = 1e9 / userHZ
			c.UsageUser = kv["user"] * nsPerTick
			c.UsageSystem = kv["system"] * nsPerTick
		}
	}
	b, err := m.fs.ReadFile(filepath.Join(dir, "cpuacct.usage_percpu"))
	switch {
	case missing(err):
	case err != nil:
		return err
	default:
		for _, f := range strings.Fields(string(b)) {
			v, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				return fmt.Errorf("parse cpuacct.usage_percpu: %w", err)
			}
			c.PerCPU = append(c.PerCPU, v)
		}
	}
	return nil
}

func (m *v1Manager) memoryStats(dir string, mem *MemoryStats) error {
	for _, f := range []struct {
		file string
		dst  *uint64
	}{
		{"memory.usage_in_bytes", &mem.Usage},
		{"memory.max_usage_in_bytes", &mem.MaxUsage},
		{"memory.limit_in_bytes", &mem.Limit},
		{"memory.failcnt", &mem.Failcnt},
	} {
		if err := readUintTo(m.fs, filepath.Join(dir, f.file), f.dst); err != nil {
			return err
		}
	}
	kv, err := readKV(m.fs, filepath.Join(dir, "memory.stat"))
	switch {
	case missing(err):
	case err != nil:
		return err
	default:
		mem.Stat = kv
		// The total_ entries include descendant cgroups.
		pick := func(name string) uint64 {
			if v, ok := kv["total_"+name]; ok {
				return v
			}
			return kv[name]
		}
		mem.Cache = pick("cache")
		mem.RSS = pick("rss")
		mem.Swap = pick("swap")
	}
	oom, err := readKV(m.fs, filepath.Join(dir, "memory.oom_control"))
	switch {
	case missing(err):
	case err != nil:
		return err
	default:
		mem.OOMKills = oom["oom_kill"]
	}
	return nil
}

// blkioStats reads per device I/O from the first source that has entries:
// the CFQ files, the BFQ ones, then the throttling layer, which sees the
// I/O of every device whatever its scheduler.
func (m *v1Manager) blkioStats(dir string) ([]IODeviceStats, error) {
	for _, prefix := range []string{"blkio.", "blkio.bfq.", "blkio.throttle."} {
		t := ioTable{}
		seen := false
		for _, f := range []struct {
			file string
			ops  bool
		}{
			{prefix + "io_service_bytes_recursive", false},
			{prefix + "io_serviced_recursive", true},
		} {
			b, err := m.fs.ReadFile(filepath.Join(dir, f.file))
			if missing(err) {
				continue
			}
			if err != nil {
				return nil, err
			}
			found, err := parseBlkioV1(t, string(b), f.ops)
			if err != nil {
				return nil, err
			}
			seen = seen || found
		}
		if seen {
			return t.sorted(), nil
		}
	}
	return nil, nil
}
