package cgroups

import (
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Stats is the resource usage of a container's cgroup, as shown by
// `docker stats`. A value the kernel does not offer on the host's cgroup
// version or configuration is left zero.
type Stats struct {
	CPU    CPUStats    `json:"cpu"`
	Memory MemoryStats `json:"memory"`
	Pids   PidsStats   `json:"pids"`
	IO     IOStats     `json:"io"`
}

// CPUStats is CPU time and CFS throttling. Times are in nanoseconds.
type CPUStats struct {
	UsageTotal  uint64 `json:"usageTotal"`
	UsageUser   uint64 `json:"usageUser"`
	UsageSystem uint64 `json:"usageSystem"`
	// PerCPU is the usage per CPU (v1 only).
	PerCPU []uint64 `json:"perCPU,omitempty"`
	// ThrottlingPeriods counts the enforcement periods that elapsed with a
	// quota in force, ThrottledPeriods those in which the group was
	// throttled, and ThrottledTime the total time it was throttled.
	ThrottlingPeriods uint64 `json:"throttlingPeriods"`
	ThrottledPeriods  uint64 `json:"throttledPeriods"`
	ThrottledTime     uint64 `json:"throttledTime"`
}

// MemoryStats is memory usage in bytes and OOM counters.
type MemoryStats struct {
	Usage uint64 `json:"usage"`
	// MaxUsage is the peak usage (v1, and v2 on Linux 5.19 or later).
	MaxUsage uint64 `json:"maxUsage"`
	// Limit is the memory limit; without one it is a huge value
	// (math.MaxUint64 on v2).
	Limit uint64 `json:"limit"`
	// Failcnt counts how often the limit was hit (v1 only).
	Failcnt uint64 `json:"failcnt"`
	// Cache is page cache, RSS anonymous memory and Swap swap usage,
	// including descendants.
	Cache uint64 `json:"cache"`
	RSS   uint64 `json:"rss"`
	Swap  uint64 `json:"swap"`
	// OOMEvents counts the times the group reached its limit and entered
	// the OOM path (v2 only; v1 keeps no such counter).
	OOMEvents uint64 `json:"oomEvents"`
	// OOMKills counts processes killed by the OOM killer.
	OOMKills uint64 `json:"oomKills"`
	// Stat is memory.stat as the kernel reports it.
	Stat map[string]uint64 `json:"stat,omitempty"`
}

// PidsStats is the number of tasks and its limit; Limit 0 means none.
type PidsStats struct {
	Current uint64 `json:"current"`
	Limit   uint64 `json:"limit"`
}

// IOStats is block I/O per device.
type IOStats struct {
	Devices []IODeviceStats `json:"devices,omitempty"`
}

// IODeviceStats is the I/O of the group on one block device.
type IODeviceStats struct {
	Major      uint64 `json:"major"`
	Minor      uint64 `json:"minor"`
	ReadBytes  uint64 `json:"readBytes"`
	WriteBytes uint64 `json:"writeBytes"`
	ReadOps    uint64 `json:"readOps"`
	WriteOps   uint64 `json:"writeOps"`
}

// missing reports whether err means the file is not there, which for a
// statistic means the kernel does not offer it here.
func missing(err error) bool {
	return errors.Is(err, os.ErrNotExist)
}

// parseValue parses a single cgroup value; "max" is math.MaxUint64.
func parseValue(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "max" {
		return math.MaxUint64, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

func readUint(fsys fileSystem, file string) (uint64, error) {
	s, err := readString(fsys, file)
	if err != nil {
		return 0, err
	}
	v, err := parseValue(s)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", file, err)
	}
	return v, nil
}

// readUintTo stores the value of file in dst, leaving dst alone if the
// file does not exist.
func readUintTo(fsys fileSystem, file string, dst *uint64) error {
	v, err := readUint(fsys, file)
	if missing(err) {
		return nil
	}
	if err != nil {
		return err
	}
	*dst = v
	return nil
}

// parseKV parses "key value" lines. Lines of another shape, which a
// newer kernel might add, are skipped; a value that is not a number is an
// error.
func parseKV(content, name string) (map[string]uint64, error) {
	out := map[string]uint64{}
	for _, line := range strings.Split(content, "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		v, err := parseValue(f[1])
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", name, err)
		}
		out[f[0]] = v
	}
	return out, nil
}

func readKV(fsys fileSystem, file string) (map[string]uint64, error) {
	b, err := fsys.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return parseKV(string(b), file)
}

type devKey struct{ major, minor uint64 }

func parseDevice(s string) (devKey, bool) {
	maj, min, ok := strings.Cut(s, ":")
	if !ok {
		return devKey{}, false
	}
	a, err1 := strconv.ParseUint(maj, 10, 64)
	b, err2 := strconv.ParseUint(min, 10, 64)
	if err1 != nil || err2 != nil {
		return devKey{}, false
	}
	return devKey{a, b}, true
}

// ioTable accumulates per device I/O statistics.
type ioTable map[devKey]*IODeviceStats

func (t ioTable) entry(k devKey) *IODeviceStats {
	e, ok := t[k]
	if !ok {
		e = &IODeviceStats{Major: k.major, Minor: k.minor}
		t[k] = e
	}
	return e
}

func (t ioTable) sorted() []IODeviceStats {
	out := make([]IODeviceStats, 0, len(t))
	for _, e := range t {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Major != out[j].Major {
			return out[i].Major < out[j].Major
		}
		return out[i].Minor < out[j].Minor
	})
	return out
}

// parseBlkioV1 adds a v1 blkio statistics file ("8:0 Read 4096" lines) to
// t; ops selects whether it holds operation counts or bytes. It reports
// whether the file had any device entry.
func parseBlkioV1(t ioTable, content string, ops bool) (bool, error) {
	found := false
	for _, line := range strings.Split(content, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue // the "Total N" line, or blank
		}
		k, ok := parseDevice(f[0])
		if !ok {
			continue
		}
		v, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			return found, fmt.Errorf("parse blkio line %q: %w", line, err)
		}
		found = true
		e := t.entry(k)
		switch {
		case f[1] == "Read" && ops:
			e.ReadOps = v
		case f[1] == "Read":
			e.ReadBytes = v
		case f[1] == "Write" && ops:
			e.WriteOps = v
		case f[1] == "Write":
			e.WriteBytes = v
		}
	}
	return found, nil
}

// parseIOStatV2 parses io.stat ("8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...").
func parseIOStatV2(content string) ([]IODeviceStats, error) {
	t := ioTable{}
	for _, line := range strings.Split(content, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		k, ok := parseDevice(f[0])
		if !ok {
			continue
		}
		e := t.entry(k)
		for _, kv := range f[1:] {
			name, val, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			v, err := strconv.ParseUint(val, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("parse io.stat entry %q: %w", kv, err)
			}
			switch name {
			case "rbytes":
				e.ReadBytes = v
			case "wbytes":
				e.WriteBytes = v
			case "rios":
				e.ReadOps = v
			case "wios":
				e.WriteOps = v
			}
		}
	}
	return t.sorted(), nil
}

// pidsLimit converts pids.max to PidsStats.Limit.
func pidsLimit(v uint64) uint64 {
	if v == math.MaxUint64 {
		return 0
	}
	return v
}
