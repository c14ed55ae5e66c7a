package cgroups

import (
	"fmt"
	"os"
)

func (m *v2Manager) Stats() (*Stats, error) {
	s := &Stats{}
	if !m.fs.Exists(m.dir) {
		return nil, fmt.Errorf("read stats: cgroup %s: %w", m.dir, os.ErrNotExist)
	}
	kv, err := readKV(m.fs, m.file("cpu.stat"))
	switch {
	case missing(err):
	case err != nil:
		return nil, err
	default:
		s.CPU.UsageTotal = kv["usage_usec"] * 1000
		s.CPU.UsageUser = kv["user_usec"] * 1000
		s.CPU.UsageSystem = kv["system_usec"] * 1000
		s.CPU.ThrottlingPeriods = kv["nr_periods"]
		s.CPU.ThrottledPeriods = kv["nr_throttled"]
		s.CPU.ThrottledTime = kv["throttled_usec"] * 1000
	}
	mem := &s.Memory
	for _, f := range []struct {
		file string
		dst  *uint64
	}{
		{"memory.current", &mem.Usage},
		{"memory.peak", &mem.MaxUsage},
		{"memory.max", &mem.Limit},
		{"memory.swap.current", &mem.Swap},
		{"pids.current", &s.Pids.Current},
		{"pids.max", &s.Pids.Limit},
	} {
		if err := readUintTo(m.fs, m.file(f.file), f.dst); err != nil {
			return nil, err
		}
	}
	s.Pids.Limit = pidsLimit(s.Pids.Limit)
	kv, err = readKV(m.fs, m.file("memory.stat"))
	switch {
	case missing(err):
	case err != nil:
		return nil, err
	default:
		mem.Stat = kv
		mem.Cache = kv["file"]
		mem.RSS = kv["anon"]
	}
	kv, err = readKV(m.fs, m.file("memory.events"))
	switch {
	case missing(err):
	case err != nil:
		return nil, err
	default:
		mem.OOMEvents = kv["oom"]
		mem.OOMKills = kv["oom_kill"]
	}
	b, err := m.fs.ReadFile(m.file("io.stat"))
	switch {
	case missing(err):
	case err != nil:
		return nil, err
	default:
		devs, err := parseIOStatV2(string(b))
		if err != nil {
			return nil, err
		}
		s.IO.Devices = devs
	}
	return s, nil
}
