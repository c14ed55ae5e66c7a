package cgroups

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// checkV2 rejects resources that cgroup v2 cannot express before anything
// is written.
func checkV2(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if c := r.CPU; c != nil {
		if (c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0) || (c.RealtimePeriod != nil && *c.RealtimePeriod != 0) {
			return fmt.Errorf("cpu realtime runtime/period: %w on cgroup v2", ErrNotSupported)
		}
	}
	if len(r.Devices) > 0 {
		if _, err := buildDevicePolicy(r.Devices); err != nil {
			return err
		}
	}
	for k := range r.Unified {
		if err := checkUnifiedKey(k); err != nil {
			return err
		}
	}
	if _, err := v2Writes(r); err != nil {
		return err
	}
	return nil
}

// checkUnifiedKey accepts a key of linux.resources.unified: the name of an
// interface file of the container's own cgroup. Files that move processes
// are refused; that is the job of Apply and Add.
func checkUnifiedKey(k string) error {
	if k == "" || strings.ContainsAny(k, "/\x00") || strings.HasPrefix(k, ".") {
		return fmt.Errorf("invalid unified resource key %q", k)
	}
	switch k {
	case "cgroup.procs", "cgroup.threads":
		return fmt.Errorf("unified resource %q cannot be set", k)
	}
	return nil
}

// v2Write is one write of a value into an interface file.
type v2Write struct {
	file, value string
}

// v2Writes converts OCI resources, most of them expressed in cgroup v1
// terms, into cgroup v2 interface file writes, following runc and crun:
//
//	cpu.shares                  -> cpu.weight (containerd/cgroups conversion)
//	cpu.quota/period            -> cpu.max "quota period" (max when quota < 0)
//	cpu.burst                   -> cpu.max.burst
//	cpu.idle                    -> cpu.idle
//	cpu.cpus/mems               -> cpuset.cpus/cpuset.mems
//	memory.limit                -> memory.max (-1 is max)
//	memory.swap (memory+swap)   -> memory.swap.max = swap - limit
//	memory.reservation          -> memory.low
//	pids.limit                  -> pids.max (0 or less is max)
//	blockIO.throttle*           -> io.max "maj:min rbps|wbps|riops|wiops=N"
//	hugepageLimits              -> hugetlb.<size>.max (+ .rsvd.max when present)
//	rdma                        -> rdma.max
//
// The block I/O weights depend on which files exist and are handled by
// ioWeightWrites; a period without a quota needs the current quota and is
// completed by the caller. Swappiness, disableOOMKiller, useHierarchy,
// kernel and kernelTCP have no v2 counterpart and are ignored, as are
// leaf weights and network class ids and priorities.
func v2Writes(r *specs.LinuxResources) ([]v2Write, error) {
	var w []v2Write
	add := func(file, value string) { w = append(w, v2Write{file, value}) }
	if c := r.CPU; c != nil {
		if c.Cpus != "" {
			add("cpuset.cpus", c.Cpus)
		}
		if c.Mems != "" {
			add("cpuset.mems", c.Mems)
		}
		if c.Shares != nil && *c.Shares != 0 {
			add("cpu.weight", strconv.FormatUint(cpuWeight(*c.Shares), 10))
		}
		if c.Quota != nil && *c.Quota != 0 {
			v := "max"
			if *c.Quota > 0 {
				v = strconv.FormatInt(*c.Quota, 10)
			}
			if c.Period != nil && *c.Period != 0 {
				v += " " + strconv.FormatUint(*c.Period, 10)
			}
			add("cpu.max", v)
		}
		if c.Burst != nil {
			add("cpu.max.burst", strconv.FormatUint(*c.Burst, 10))
		}
		if c.Idle != nil {
			add("cpu.idle", strconv.FormatInt(*c.Idle, 10))
		}
	}
	if mem := r.Memory; mem != nil {
		var limit, swap int64
		if mem.Limit != nil {
			limit = *mem.Limit
		}
		if mem.Swap != nil {
			swap = *mem.Swap
		}
		swapMax, err := swapMaxV2(swap, limit)
		if err != nil {
			return nil, err
		}
		if swapMax != "" {
			add("memory.swap.max", swapMax)
		}
		if v := limitV2(limit); v != "" {
			add("memory.max", v)
		}
		if mem.Reservation != nil {
			if v := limitV2(*mem.Reservation); v != "" {
				add("memory.low", v)
			}
		}
	}
	if r.Pids != nil && r.Pids.Limit != nil {
		add("pids.max", pidsMax(*r.Pids.Limit))
	}
	if b := r.BlockIO; b != nil {
		for _, t := range []struct {
			key  string
			devs []specs.LinuxThrottleDevice
		}{
			{"rbps", b.ThrottleReadBpsDevice},
			{"wbps", b.ThrottleWriteBpsDevice},
			{"riops", b.ThrottleReadIOPSDevice},
			{"wiops", b.ThrottleWriteIOPSDevice},
		} {
			for _, d := range t.devs {
				// A zero rate lifts the limit, as it does on v1.
				rate := "max"
				if d.Rate != 0 {
					rate = strconv.FormatUint(d.Rate, 10)
				}
				add("io.max", fmt.Sprintf("%d:%d %s=%s", d.Major, d.Minor, t.key, rate))
			}
		}
	}
	for _, l := range r.HugepageLimits {
		if err := checkPagesize(l.Pagesize); err != nil {
			return nil, err
		}
		add("hugetlb."+l.Pagesize+".max", strconv.FormatUint(l.Limit, 10))
	}
	_ = writeRdma("", r.Rdma, func(_, file, value string) error {
		add(file, value)
		return nil
	})
	return w, nil
}

// cpuWeight converts cpu.shares (2..262144, default 1024) to cpu.weight
// (1..10000, default 100). The mapping is the one current runc, crun and
// containerd use: a curve through (2, 1), (1024, 100) and (262144, 10000)
// in log space, so that the default shares give the default weight and the
// same spec gets the same weight whichever runtime runs it. 0 means unset.
func cpuWeight(shares uint64) uint64 {
	switch {
	case shares == 0:
		return 0
	case shares <= 2:
		return 1
	case shares >= 262144:
		return 10000
	}
	l := math.Log2(float64(shares))
	exponent := (l*l+125*l)/612.0 - 7.0/34.0
	return uint64(math.Ceil(math.Pow(10, exponent)))
}

// ioWeight converts a blkio weight (10..1000) to io.weight (1..10000).
func ioWeight(w uint16) uint64 {
	if w < 10 {
		w = 10
	}
	return 1 + (uint64(w)-10)*9999/990
}

// limitV2 renders a memory value for a v2 file: 0 is unset, -1 is max.
func limitV2(v int64) string {
	switch {
	case v == 0:
		return ""
	case v < 0:
		return "max"
	default:
		return strconv.FormatInt(v, 10)
	}
}

// swapMaxV2 converts the OCI swap value, which on v1 limits memory plus
// swap, to memory.swap.max, which limits swap alone. "" means leave it.
func swapMaxV2(swap, limit int64) (string, error) {
	switch {
	case swap == 0 && limit == -1:
		// Unlimited memory without a swap value lifts the swap limit too.
		return "max", nil
	case swap == 0:
		return "", nil
	case swap == -1:
		return "max", nil
	case swap < -1:
		return "", fmt.Errorf("invalid memory swap value %d", swap)
	case limit == 0 || limit == -1:
		return "", errors.New("a memory swap limit needs a memory limit")
	case limit < 0:
		return "", fmt.Errorf("invalid memory limit %d", limit)
	case swap < limit:
		return "", fmt.Errorf("memory+swap limit %d is below the memory limit %d", swap, limit)
	default:
		return strconv.FormatInt(swap-limit, 10), nil
	}
}

// ioWeightWrites converts block I/O weights. With the BFQ scheduler the
// blkio scale (10..1000) is written unchanged to io.bfq.weight, otherwise
// it is converted for io.weight, as runc does. (containerd/cgroups writes
// the converted value to io.bfq.weight, which BFQ rejects above 1000.)
func (m *v2Manager) ioWeightWrites(b *specs.LinuxBlockIO) []v2Write {
	var w []v2Write
	bfq := m.fs.Exists(m.file("io.bfq.weight"))
	weight := func(dev string, v uint16) v2Write {
		if bfq {
			return v2Write{"io.bfq.weight", dev + strconv.FormatUint(uint64(v), 10)}
		}
		return v2Write{"io.weight", dev + strconv.FormatUint(ioWeight(v), 10)}
	}
	if b.Weight != nil && *b.Weight != 0 {
		def := "default "
		if bfq {
			def = ""
		}
		w = append(w, weight(def, *b.Weight))
	}
	for _, d := range b.WeightDevice {
		if d.Weight != nil && *d.Weight != 0 {
			w = append(w, weight(fmt.Sprintf("%d:%d ", d.Major, d.Minor), *d.Weight))
		}
	}
	return w
}
