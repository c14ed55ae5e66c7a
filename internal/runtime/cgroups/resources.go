package cgroups

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// pidsMax converts an OCI pids limit; zero or negative means no limit.
func pidsMax(limit int64) string {
	if limit <= 0 {
		return "max"
	}
	return strconv.FormatInt(limit, 10)
}

func boolValue(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// checkMemoryUsage refuses a memory limit below the current usage.
func checkMemoryUsage(fsys fileSystem, usageFile string, limit int64) error {
	usage, err := readUint(fsys, usageFile)
	if err != nil {
		return fmt.Errorf("read memory usage: %w", err)
	}
	if uint64(limit) < usage {
		return fmt.Errorf("memory limit %d is below the current usage %d", limit, usage)
	}
	return nil
}

// checkPagesize validates the pageSize of a hugepage limit, which becomes
// part of a file name.
func checkPagesize(s string) error {
	if s == "" || strings.ContainsAny(s, "/\x00") || strings.HasPrefix(s, ".") {
		return fmt.Errorf("invalid hugepage size %q", s)
	}
	return nil
}

// writeRdma writes one rdma.max line per device, in device order.
func writeRdma(dir string, limits map[string]specs.LinuxRdma, write func(dir, file, value string) error) error {
	devs := make([]string, 0, len(limits))
	for d := range limits {
		devs = append(devs, d)
	}
	sort.Strings(devs)
	for _, d := range devs {
		l := limits[d]
		line := d
		if l.HcaHandles != nil {
			line += " hca_handle=" + strconv.FormatUint(uint64(*l.HcaHandles), 10)
		}
		if l.HcaObjects != nil {
			line += " hca_object=" + strconv.FormatUint(uint64(*l.HcaObjects), 10)
		}
		if line == d {
			continue
		}
		if err := write(dir, "rdma.max", line); err != nil {
			return err
		}
	}
	return nil
}
