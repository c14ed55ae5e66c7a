package containers

import (
	"bufio"
	"context"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
	containertypes "github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

// statsInterval is how often a stats stream samples, as in Docker.
const statsInterval = time.Second

// Stats samples the container's cgroup: one sample with oneShot, two a
// second apart otherwise (so CPU usage can be computed), and a sample a
// second while stream. emit receives each; its error ends the stream.
func (s *Service) Stats(ctx context.Context, ref string, stream, oneShot bool, emit func(*containertypes.StatsResponse) error) error {
	c, err := s.store.Get(ref)
	if err != nil {
		return err
	}
	c.Lock()
	name, running := c.InspectName(), c.State.Running
	c.Unlock()
	sample := func(prev *containertypes.StatsResponse) *containertypes.StatsResponse {
		r := &containertypes.StatsResponse{ID: c.ID, Name: name, OSType: "linux", Read: time.Now().UTC()}
		if prev != nil {
			r.PreCPUStats = prev.CPUStats
			r.PreRead = prev.Read
		}
		if !running {
			return r
		}
		rc, err := s.rt.Load(c.ID)
		if err != nil {
			return r
		}
		st, err := rc.Stats()
		if err != nil {
			return r
		}
		fillStats(r, st)
		return r
	}
	if !running && stream {
		// A stopped container's stream is one empty sample, as in Docker.
		stream = false
	}
	prev := sample(nil)
	if oneShot && !stream {
		return emit(prev)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(statsInterval):
		}
		cur := sample(prev)
		if err := emit(cur); err != nil || !stream {
			return err
		}
		c.Lock()
		running = c.State.Running
		c.Unlock()
		if !running {
			return nil
		}
		prev = cur
	}
}

func fillStats(r *containertypes.StatsResponse, st *runtime.Stats) {
	r.CPUStats = containertypes.CPUStats{
		CPUUsage: containertypes.CPUUsage{
			TotalUsage: st.CPU.UsageTotal, PercpuUsage: st.CPU.PerCPU,
			UsageInKernelmode: st.CPU.UsageSystem, UsageInUsermode: st.CPU.UsageUser,
		},
		SystemUsage: systemCPUUsage(),
		OnlineCPUs:  uint32(goruntime.NumCPU()),
		ThrottlingData: containertypes.ThrottlingData{
			Periods: st.CPU.ThrottlingPeriods, ThrottledPeriods: st.CPU.ThrottledPeriods, ThrottledTime: st.CPU.ThrottledTime,
		},
	}
	m := st.Memory
	// Without a limit the cgroup reports a huge number: Docker shows the
	// host's memory instead.
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		if total := uint64(si.Totalram) * uint64(si.Unit); total > 0 && (m.Limit == 0 || m.Limit > total) {
			m.Limit = total
		}
	}
	r.MemoryStats = containertypes.MemoryStats{
		Usage: m.Usage, MaxUsage: m.MaxUsage, Limit: m.Limit, Failcnt: m.Failcnt,
		Stats: map[string]uint64{"cache": m.Cache, "rss": m.RSS, "swap": m.Swap},
	}
	r.PidsStats = containertypes.PidsStats{Current: st.Pids.Current, Limit: st.Pids.Limit}
	for _, d := range st.IO.Devices {
		r.BlkioStats.IoServiceBytesRecursive = append(r.BlkioStats.IoServiceBytesRecursive,
			containertypes.BlkioStatEntry{Major: d.Major, Minor: d.Minor, Op: "read", Value: d.ReadBytes},
			containertypes.BlkioStatEntry{Major: d.Major, Minor: d.Minor, Op: "write", Value: d.WriteBytes})
		r.BlkioStats.IoServicedRecursive = append(r.BlkioStats.IoServicedRecursive,
			containertypes.BlkioStatEntry{Major: d.Major, Minor: d.Minor, Op: "read", Value: d.ReadOps},
			containertypes.BlkioStatEntry{Major: d.Major, Minor: d.Minor, Op: "write", Value: d.WriteOps})
	}
}

// systemCPUUsage is the host's total CPU time in nanoseconds, from the
// first line of /proc/stat (in USER_HZ ticks), as Docker reports it.
func systemCPUUsage() uint64 {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 8 || fields[0] != "cpu" {
		return 0
	}
	var ticks uint64
	for _, v := range fields[1:8] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0
		}
		ticks += n
	}
	const userHZ = 100
	return ticks * (uint64(time.Second) / userHZ)
}
