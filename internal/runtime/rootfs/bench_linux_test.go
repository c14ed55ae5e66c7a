package rootfs

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// BenchmarkPrepare times Prepare on a busybox image with the mounts of a
// default spec (cgroup v1: a tmpfs plus one bind per hierarchy the test
// process is in, or the cgroup v2 directory), six default devices and the
// /dev links. The work runs in a child in a new mount namespace (see
// runChild); ns/op is the time of Prepare alone, measured by the child. The
// securejoin variant resolves paths as on a kernel without openat2.
func BenchmarkPrepare(b *testing.B) {
	b.Run("openat2", func(b *testing.B) {
		if !openat2Supported() {
			b.Skip("the kernel has no openat2")
		}
		benchmarkPrepare(b, false)
	})
	b.Run("securejoin", func(b *testing.B) { benchmarkPrepare(b, true) })
}

func benchmarkPrepare(b *testing.B, noOpenat2 bool) {
	needRoot(b)
	cgroupPaths, cgroupV2 := hostCgroups(b)
	base := testBase(b)
	rootfs := filepath.Join(base, "rootfs")
	buildRootfs(b, rootfs)
	// An image usually ships the mount points of the default spec.
	mkdirs(b, rootfs, "proc", "dev", "sys")
	spec := &specs.Spec{
		Root:   &specs.Root{Path: rootfs},
		Mounts: defaultMounts(),
		Linux:  &specs.Linux{},
	}
	b.ResetTimer()
	rep := runChild(b, scenario{
		Spec: spec, Rootfs: rootfs, CgroupPaths: cgroupPaths, CgroupV2: cgroupV2,
		Iterations: b.N, NoOpenat2: noOpenat2,
	}, false)
	b.StopTimer()
	if rep.PrepareErr != "" {
		b.Fatalf("Prepare: %s", rep.PrepareErr)
	}
	b.ReportMetric(float64(rep.PrepareNs)/float64(b.N), "ns/op")
}

// benchChild is the child of BenchmarkPrepare: sc.Iterations runs of
// Prepare, each followed by a detach of the rootfs bind, which takes every
// mount of that run along and leaves the next run the same work.
func benchChild(sc scenario, o Options) int {
	var rep report
	for i := 0; i < sc.Iterations; i++ {
		start := time.Now()
		err := Prepare(sc.Spec, o)
		rep.PrepareNs += int64(time.Since(start))
		if err != nil {
			rep.PrepareErr = err.Error()
			break
		}
		if err := unix.Unmount(sc.Rootfs, unix.MNT_DETACH); err != nil {
			fmt.Fprintln(os.Stderr, "child: detach rootfs:", err)
			return 2
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		fmt.Fprintln(os.Stderr, "child: report:", err)
		return 2
	}
	return 0
}
