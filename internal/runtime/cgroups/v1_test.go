package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func u64(v uint64) *uint64 { return &v }
func u16(v uint16) *uint16 { return &v }
func bptr(v bool) *bool    { return &v }

// v1Files are the interface files a new cgroup gets, per hierarchy.
var v1Files = map[string]map[string]string{
	"cpuset": {"cpuset.cpus": "", "cpuset.mems": ""},
	"cpu": {"cpu.shares": "1024", "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1",
		"cpu.cfs_burst_us": "0", "cpu.idle": "0", "cpu.rt_period_us": "1000000", "cpu.rt_runtime_us": "0", "cpu.stat": ""},
	"cpuacct": {"cpuacct.usage": "0"},
	"memory": {"memory.limit_in_bytes": "9223372036854771712", "memory.memsw.limit_in_bytes": "9223372036854771712",
		"memory.soft_limit_in_bytes": "9223372036854771712", "memory.swappiness": "60",
		"memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n", "memory.use_hierarchy": "1",
		"memory.usage_in_bytes": "0"},
	"pids":         {"pids.max": "max", "pids.current": "0"},
	"blkio":        {"blkio.bfq.weight": "100", "blkio.bfq.weight_device": "", "blkio.throttle.read_bps_device": "", "blkio.throttle.write_bps_device": "", "blkio.throttle.read_iops_device": "", "blkio.throttle.write_iops_device": ""},
	"devices":      {"devices.allow": "", "devices.deny": "", "devices.list": "a *:* rwm"},
	"freezer":      {"freezer.state": "THAWED"},
	"name=systemd": {},
}

// newFakeV1 returns a v1 manager on an in-memory host where every
// hierarchy of v1Files, plus the extra ones, is mounted at /cg/<name>, for
// the cgroup /berth/<name>.
func newFakeV1(t *testing.T, extra map[string]map[string]string) (*v1Manager, *memFS) {
	t.Helper()
	layout := map[string]map[string]string{}
	for k, v := range v1Files {
		layout[k] = v
	}
	for k, v := range extra {
		layout[k] = v
	}
	fs := newMemFS()
	var hs []hierarchy
	mountOf := map[string]string{}
	for ctrl := range layout {
		mp := "/cg/" + strings.TrimPrefix(ctrl, "name=")
		fs.addDir(mp)
		fs.set(mp+"/cgroup.procs", "")
		for f, v := range layout[ctrl] {
			fs.set(mp+"/"+f, v)
		}
		mountOf[mp] = ctrl
		hs = append(hs, hierarchy{controllers: []string{ctrl}, mountpoint: mp, root: "/"})
	}
	fs.set("/cg/cpuset/cpuset.cpus", "0-3", "/cg/cpuset/cpuset.mems", "0")
	fs.onMkdir = func(fs *memFS, dir string) {
		mp := "/cg/" + strings.Split(dir, "/")[2]
		fs.set(dir+"/cgroup.procs", "")
		for f, v := range layout[mountOf[mp]] {
			fs.set(dir+"/"+f, v)
		}
	}
	dirs, err := resolveV1(sortedHierarchies(hs), nil, "/berth/ctr")
	if err != nil {
		t.Fatal(err)
	}
	return newV1(fs, dirs), fs
}

func sortedHierarchies(hs []hierarchy) []hierarchy {
	out := append([]hierarchy(nil), hs...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j].mountpoint < out[i].mountpoint {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func fullV1Resources() *specs.LinuxResources {
	return &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{
			rule(false, "a", nil, nil, "rwm"),
			rule(true, "c", i64(1), i64(3), "rwm"),
		},
		Memory: &specs.LinuxMemory{
			Limit: i64(64 << 20), Swap: i64(128 << 20), Reservation: i64(32 << 20),
			Kernel: i64(1 << 20), KernelTCP: i64(1 << 20), Swappiness: u64(10),
			DisableOOMKiller: bptr(true), UseHierarchy: bptr(true),
		},
		CPU: &specs.LinuxCPU{
			Shares: u64(512), Quota: i64(50000), Period: u64(100000), Burst: u64(1000),
			RealtimePeriod: u64(1000000), RealtimeRuntime: i64(950000), Cpus: "0", Mems: "0", Idle: i64(0),
		},
		Pids: &specs.LinuxPids{Limit: i64(100)},
		BlockIO: &specs.LinuxBlockIO{
			Weight: u16(200), LeafWeight: u16(300),
			WeightDevice: []specs.LinuxWeightDevice{{
				LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Weight: u16(500), LeafWeight: u16(50),
			}},
			ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 1 << 20}},
			ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 16}, Rate: 10}},
		},
		Network: &specs.LinuxNetwork{ClassID: func() *uint32 { v := uint32(7); return &v }()},
	}
}

func TestV1ApplyWritesEveryController(t *testing.T) {
	m, fs := newFakeV1(t, nil)
	if err := m.Apply(4242, fullV1Resources()); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"cpuset": {
			// both levels initialised from their parent before any task joins
			"berth/cpuset.cpus=0-3", "berth/cpuset.mems=0",
			"berth/ctr/cpuset.cpus=0-3", "berth/ctr/cpuset.mems=0",
			"berth/ctr/cpuset.cpus=0", "berth/ctr/cpuset.mems=0",
			"berth/ctr/cgroup.procs=4242",
		},
		"cpu": {
			"berth/ctr/cpu.rt_period_us=1000000", "berth/ctr/cpu.rt_runtime_us=950000",
			"berth/ctr/cpu.shares=512",
			"berth/ctr/cpu.cfs_period_us=100000", "berth/ctr/cpu.cfs_quota_us=50000",
			"berth/ctr/cpu.cfs_burst_us=1000", "berth/ctr/cpu.idle=0",
			"berth/ctr/cgroup.procs=4242",
		},
		"memory": {
			// from unlimited memory+swap, the memory limit goes first
			"berth/ctr/memory.limit_in_bytes=67108864", "berth/ctr/memory.memsw.limit_in_bytes=134217728",
			"berth/ctr/memory.soft_limit_in_bytes=33554432", "berth/ctr/memory.swappiness=10",
			"berth/ctr/memory.oom_control=1", "berth/ctr/memory.use_hierarchy=1",
			"berth/ctr/cgroup.procs=4242",
		},
		"pids": {"berth/ctr/pids.max=100", "berth/ctr/cgroup.procs=4242"},
		"blkio": {
			"berth/ctr/blkio.bfq.weight=200", "berth/ctr/blkio.bfq.weight_device=8:0 500",
			"berth/ctr/blkio.throttle.read_bps_device=8:0 1048576",
			"berth/ctr/blkio.throttle.write_iops_device=8:16 10",
			"berth/ctr/cgroup.procs=4242",
		},
		"devices": {
			"berth/ctr/devices.deny=a", "berth/ctr/devices.allow=c 1:3 rwm",
			"berth/ctr/cgroup.procs=4242",
		},
		"freezer": {"berth/ctr/cgroup.procs=4242"},
		"systemd": {"berth/ctr/cgroup.procs=4242"},
	}
	for ctrl, w := range want {
		if got := fs.writesUnder("/cg/" + ctrl); !reflect.DeepEqual(got, w) {
			t.Errorf("%s writes:\n got %q\nwant %q", ctrl, got, w)
		}
	}
	if got := m.Paths()["name=systemd"]; got != "/cg/systemd/berth/ctr" {
		t.Errorf("systemd path %q", got)
	}
}

func TestV1SetMemoryOrdering(t *testing.T) {
	for _, tc := range []struct {
		name       string
		curLimit   string
		limit      int64
		swap       *int64
		wantWrites []string
		wantErr    bool
	}{
		{"raise", "100", 200, i64(300),
			[]string{"memory.memsw.limit_in_bytes=300", "memory.limit_in_bytes=200"}, false},
		{"lower", "200", 100, i64(150),
			[]string{"memory.limit_in_bytes=100", "memory.memsw.limit_in_bytes=150"}, false},
		{"unlimited swap goes first", "200", 100, i64(-1),
			[]string{"memory.memsw.limit_in_bytes=-1", "memory.limit_in_bytes=100"}, false},
		{"unlimited memory lifts swap too", "200", -1, nil,
			[]string{"memory.memsw.limit_in_bytes=-1", "memory.limit_in_bytes=-1"}, false},
		{"limit only", "200", 100, nil, []string{"memory.limit_in_bytes=100"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, fs := newFakeV1(t, nil)
			if err := m.Apply(-1, nil); err != nil {
				t.Fatal(err)
			}
			dir := "/cg/memory/berth/ctr"
			fs.set(dir+"/memory.limit_in_bytes", tc.curLimit)
			fs.writes = nil
			err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(tc.limit), Swap: tc.swap}})
			if (err != nil) != tc.wantErr {
				t.Fatalf("Set error %v", err)
			}
			if got := fs.writesUnder(dir); !reflect.DeepEqual(got, tc.wantWrites) {
				t.Errorf("writes %q, want %q", got, tc.wantWrites)
			}
		})
	}
}

func TestV1SetMemoryChecks(t *testing.T) {
	m, fs := newFakeV1(t, nil)
	if err := m.Apply(-1, nil); err != nil {
		t.Fatal(err)
	}
	dir := "/cg/memory/berth/ctr"
	fs.set(dir+"/memory.usage_in_bytes", "5000")
	fs.writes = nil
	err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(4096), CheckBeforeUpdate: bptr(true)}})
	if err == nil || len(fs.writes) != 0 {
		t.Errorf("limit below usage: err %v, writes %q", err, fs.writes)
	}
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: u64(101)}}); err == nil {
		t.Error("swappiness 101 accepted")
	}
	delete(fs.files, dir+"/memory.memsw.limit_in_bytes")
	err = m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(4096 * 2), Swap: i64(4096 * 4)}})
	if !errors.Is(err, ErrNotSupported) {
		t.Errorf("swap without swap accounting: %v", err)
	}
}

func TestV1CPUPeriodRetriedAfterQuota(t *testing.T) {
	m, fs := newFakeV1(t, nil)
	if err := m.Apply(-1, nil); err != nil {
		t.Fatal(err)
	}
	dir := "/cg/cpu/berth/ctr"
	failed := false
	fs.onWrite = func(path, value string) error {
		if path == dir+"/cpu.cfs_period_us" && !failed {
			failed = true
			return fmt.Errorf("write: %w", unix.EINVAL)
		}
		return nil
	}
	fs.writes = nil
	if err := m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(20000), Period: u64(50000)}}); err != nil {
		t.Fatal(err)
	}
	want := []string{"cpu.cfs_quota_us=20000", "cpu.cfs_period_us=50000"}
	if got := fs.writesUnder(dir); !reflect.DeepEqual(got, want) {
		t.Errorf("writes %q, want %q", got, want)
	}

	// Without a quota to set, the period error is final.
	failed = false
	if err := m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Period: u64(50000)}}); !errors.Is(err, unix.EINVAL) {
		t.Errorf("period alone: %v", err)
	}
}

func TestV1CPUSharesClamped(t *testing.T) {
	m, fs := newFakeV1(t, nil)
	if err := m.Apply(-1, nil); err != nil {
		t.Fatal(err)
	}
	// The kernel keeps a clamped value.
	fs.onRead = func(path, content string) string {
		if strings.HasSuffix(path, "/cpu.shares") {
			return "262144\n"
		}
		return content
	}
	err := m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(1000000)}})
	if err == nil || !strings.Contains(err.Error(), "262144") {
		t.Errorf("clamped shares not reported: %v", err)
	}
}

func TestV1RejectsBeforeWriting(t *testing.T) {
	for name, r := range map[string]*specs.LinuxResources{
		"unified":    {Unified: map[string]string{"memory.high": "1"}},
		"hugetlb":    {HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1 << 21}}},
		"bad device": {Devices: []specs.LinuxDeviceCgroup{rule(true, "z", nil, nil, "r")}},
	} {
		t.Run(name, func(t *testing.T) {
			m, fs := newFakeV1(t, nil)
			err := m.Apply(1, r)
			if err == nil {
				t.Fatal("accepted")
			}
			if len(fs.writes) != 0 || fs.dirs["/cg/memory/berth"] {
				t.Errorf("wrote before rejecting: %q", fs.writes)
			}
			if name != "bad device" && !errors.Is(err, ErrNotSupported) {
				t.Errorf("error %v does not wrap ErrNotSupported", err)
			}
		})
	}
}

func TestV1OptionalControllers(t *testing.T) {
	r := &specs.LinuxResources{
		Network: &specs.LinuxNetwork{
			ClassID:    func() *uint32 { v := uint32(0x100001); return &v }(),
			Priorities: []specs.LinuxInterfacePriority{{Name: "eth0", Priority: 5}},
		},
		Rdma: map[string]specs.LinuxRdma{
			"mlx5_1": {HcaHandles: func() *uint32 { v := uint32(3); return &v }()},
			"mlx5_0": {HcaHandles: func() *uint32 { v := uint32(2); return &v }(), HcaObjects: func() *uint32 { v := uint32(9); return &v }()},
		},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}},
		BlockIO:        &specs.LinuxBlockIO{Weight: u16(300), LeafWeight: u16(400)},
	}
	// Without net_cls, net_prio and rdma the settings are ignored.
	m, fs := newFakeV1(t, map[string]map[string]string{
		"hugetlb": {"hugetlb.2MB.limit_in_bytes": "max", "hugetlb.2MB.rsvd.limit_in_bytes": "max"},
	})
	if err := m.Apply(-1, r); err != nil {
		t.Fatal(err)
	}
	if got := fs.writesUnder("/cg/hugetlb"); !reflect.DeepEqual(got, []string{
		"berth/ctr/hugetlb.2MB.limit_in_bytes=4194304", "berth/ctr/hugetlb.2MB.rsvd.limit_in_bytes=4194304",
	}) {
		t.Errorf("hugetlb writes %q", got)
	}
	if got := fs.writesUnder("/cg/blkio"); !reflect.DeepEqual(got, []string{"berth/ctr/blkio.bfq.weight=300"}) {
		t.Errorf("blkio writes without CFQ %q", got)
	}

	m, fs = newFakeV1(t, map[string]map[string]string{
		"net_cls":  {"net_cls.classid": "0"},
		"net_prio": {"net_prio.ifpriomap": ""},
		"rdma":     {"rdma.max": ""},
		"hugetlb":  {"hugetlb.2MB.limit_in_bytes": "max"},
		"blkio":    {"blkio.weight": "500", "blkio.leaf_weight": "500", "blkio.weight_device": ""},
	})
	if err := m.Apply(-1, r); err != nil {
		t.Fatal(err)
	}
	for ctrl, want := range map[string][]string{
		"net_cls":  {"berth/ctr/net_cls.classid=1048577"},
		"net_prio": {"berth/ctr/net_prio.ifpriomap=eth0 5"},
		"rdma":     {"berth/ctr/rdma.max=mlx5_0 hca_handle=2 hca_object=9", "berth/ctr/rdma.max=mlx5_1 hca_handle=3"},
		"hugetlb":  {"berth/ctr/hugetlb.2MB.limit_in_bytes=4194304"},
		"blkio":    {"berth/ctr/blkio.weight=300", "berth/ctr/blkio.leaf_weight=400"},
	} {
		if got := fs.writesUnder("/cg/" + ctrl); !reflect.DeepEqual(got, want) {
			t.Errorf("%s writes %q, want %q", ctrl, got, want)
		}
	}
}

func TestV1PidsZeroMeansUnlimited(t *testing.T) {
	for _, limit := range []int64{0, -1} {
		m, fs := newFakeV1(t, nil)
		if err := m.Apply(-1, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(limit)}}); err != nil {
			t.Fatal(err)
		}
		if got := fs.files["/cg/pids/berth/ctr/pids.max"]; got != "max" {
			t.Errorf("limit %d wrote %q", limit, got)
		}
	}
}

func TestV1Freeze(t *testing.T) {
	m, fs := newFakeV1(t, nil)
	if err := m.Apply(-1, nil); err != nil {
		t.Fatal(err)
	}
	state := "/cg/freezer/berth/ctr/freezer.state"
	reads := 0
	fs.onRead = func(path, content string) string {
		if path != state {
			return content
		}
		reads++
		if content == "FROZEN" && reads < 4 {
			return "FREEZING\n"
		}
		return content + "\n"
	}
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if frozen, err := m.Frozen(); err != nil || !frozen {
		t.Errorf("Frozen = %v, %v", frozen, err)
	}
	if reads < 4 {
		t.Errorf("Freeze returned after %d reads, before FROZEN", reads)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if frozen, _ := m.Frozen(); frozen {
		t.Error("still frozen after Thaw")
	}

	// A cgroup stuck in FREEZING is thawed again and Freeze gives up.
	old := freezeTimeout
	freezeTimeout = 50 * time.Millisecond
	t.Cleanup(func() { freezeTimeout = old })
	fs.onRead = func(path, content string) string {
		if path == state && content == "FROZEN" {
			return "FREEZING"
		}
		return content
	}
	if err := m.Freeze(); err == nil {
		t.Fatal("Freeze of a stuck cgroup succeeded")
	}
	if got := fs.files[state]; got != "THAWED" {
		t.Errorf("state after failed freeze %q", got)
	}
}

func TestV1PidsAndDestroy(t *testing.T) {
	m, fs := newFakeV1(t, nil)
	if err := m.Apply(10, nil); err != nil {
		t.Fatal(err)
	}
	// The container made a sub-cgroup of its own.
	sub := "/cg/freezer/berth/ctr/inner"
	if err := fs.Mkdir(sub); err != nil {
		t.Fatal(err)
	}
	fs.set(sub+"/cgroup.procs", "30\n20\n")
	pids, err := m.Pids()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pids, []int{10, 20, 30}) {
		t.Errorf("Pids = %v", pids)
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	for d := range fs.dirs {
		if strings.HasSuffix(d, "/ctr") || strings.Contains(d, "/ctr/") {
			t.Errorf("%s not removed", d)
		}
	}
	if err := m.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
	if _, err := m.Pids(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Pids of a removed cgroup: %v", err)
	}
}

func TestV1Stats(t *testing.T) {
	m, fs := newFakeV1(t, map[string]map[string]string{})
	if err := m.Apply(-1, nil); err != nil {
		t.Fatal(err)
	}
	d := func(ctrl, f string) string { return filepath.Join("/cg", ctrl, "berth/ctr", f) }
	fs.set(
		d("cpuacct", "cpuacct.usage"), "5000000000\n",
		d("cpuacct", "cpuacct.usage_user"), "3000000000\n",
		d("cpuacct", "cpuacct.usage_sys"), "2000000000\n",
		d("cpuacct", "cpuacct.usage_percpu"), "4000000000 1000000000 \n",
		d("cpu", "cpu.stat"), "nr_periods 40\nnr_throttled 4\nthrottled_time 123456\nnr_bursts 0\nburst_time 0\n",
		d("memory", "memory.usage_in_bytes"), "10485760\n",
		d("memory", "memory.max_usage_in_bytes"), "20971520\n",
		d("memory", "memory.limit_in_bytes"), "67108864\n",
		d("memory", "memory.failcnt"), "3\n",
		d("memory", "memory.stat"), "cache 100\nrss 200\nswap 0\ntotal_cache 1100\ntotal_rss 1200\ntotal_swap 1300\ntotal_inactive_file 77\n",
		d("memory", "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
		d("pids", "pids.current"), "7\n",
		d("pids", "pids.max"), "max\n",
		d("blkio", "blkio.bfq.io_service_bytes_recursive"), "Total 0\n",
		d("blkio", "blkio.throttle.io_service_bytes_recursive"),
		"8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 0\n8:0 Discard 0\n8:0 Total 12288\n254:0 Read 1\n254:0 Write 2\nTotal 12291\n",
		d("blkio", "blkio.throttle.io_serviced_recursive"), "8:0 Read 1\n8:0 Write 2\n8:0 Total 3\nTotal 3\n",
	)
	// Without cpuacct.usage_user the tick counts of cpuacct.stat are used.
	s, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{
		CPU: CPUStats{UsageTotal: 5e9, UsageUser: 3e9, UsageSystem: 2e9, PerCPU: []uint64{4e9, 1e9},
			ThrottlingPeriods: 40, ThrottledPeriods: 4, ThrottledTime: 123456},
		Memory: MemoryStats{Usage: 10 << 20, MaxUsage: 20 << 20, Limit: 64 << 20, Failcnt: 3,
			Cache: 1100, RSS: 1200, Swap: 1300, OOMKills: 2,
			Stat: map[string]uint64{"cache": 100, "rss": 200, "swap": 0, "total_cache": 1100, "total_rss": 1200,
				"total_swap": 1300, "total_inactive_file": 77}},
		Pids: PidsStats{Current: 7, Limit: 0},
		IO: IOStats{Devices: []IODeviceStats{
			{Major: 8, Minor: 0, ReadBytes: 4096, WriteBytes: 8192, ReadOps: 1, WriteOps: 2},
			{Major: 254, Minor: 0, ReadBytes: 1, WriteBytes: 2},
		}},
	}
	if !reflect.DeepEqual(*s, want) {
		t.Errorf("Stats:\n got %+v\nwant %+v", *s, want)
	}

	delete(fs.files, d("cpuacct", "cpuacct.usage_user"))
	delete(fs.files, d("cpuacct", "cpuacct.usage_sys"))
	fs.set(d("cpuacct", "cpuacct.stat"), "user 30\nsystem 20\n")
	s, err = m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.CPU.UsageUser != 300_000_000 || s.CPU.UsageSystem != 200_000_000 {
		t.Errorf("tick based usage %d/%d", s.CPU.UsageUser, s.CPU.UsageSystem)
	}
	if killed, err := m.OOMKilled(); err != nil || !killed {
		t.Errorf("OOMKilled = %v, %v", killed, err)
	}

	fs.set(d("pids", "pids.max"), "not-a-number")
	if _, err := m.Stats(); err == nil {
		t.Error("garbage in pids.max accepted")
	}
}
