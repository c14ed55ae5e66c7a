package cgroups

import (
	"reflect"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestCPUWeight(t *testing.T) {
	// weight = ceil(10^((L^2 + 125 L) / 612 - 7/34)) with L = log2(shares):
	// L = 9 gives 10^1.7647 = 58.2, L = 11 gives 10^2.2386 = 173.2.
	for shares, want := range map[uint64]uint64{
		0: 0, 1: 1, 2: 1, 1024: 100, 262144: 10000, 1 << 20: 10000, 512: 59, 2048: 174,
	} {
		if got := cpuWeight(shares); got != want {
			t.Errorf("cpuWeight(%d) = %d, want %d", shares, got, want)
		}
	}
	// The conversion keeps the order of the shares.
	prev := uint64(0)
	for s := uint64(2); s <= 262144; s *= 2 {
		w := cpuWeight(s)
		if w < prev {
			t.Errorf("cpuWeight(%d) = %d below cpuWeight(%d) = %d", s, w, s/2, prev)
		}
		prev = w
	}
}

func TestIOWeight(t *testing.T) {
	// 1 + (w-10) * 9999 / 990, integer arithmetic.
	for w, want := range map[uint16]uint64{10: 1, 1000: 10000, 500: 4950, 100: 910, 700: 6970, 5: 1} {
		if got := ioWeight(w); got != want {
			t.Errorf("ioWeight(%d) = %d, want %d", w, got, want)
		}
	}
}

func TestSwapMaxV2(t *testing.T) {
	for _, tc := range []struct {
		swap, limit int64
		want        string
		wantErr     bool
	}{
		{swap: 0, limit: 0, want: ""},
		{swap: 0, limit: 100, want: ""},
		{swap: 0, limit: -1, want: "max"},
		{swap: -1, limit: 100, want: "max"},
		{swap: 300, limit: 100, want: "200"},
		{swap: 100, limit: 100, want: "0"}, // swap disabled
		{swap: 50, limit: 100, wantErr: true},
		{swap: 300, limit: 0, wantErr: true},
		{swap: 300, limit: -1, wantErr: true},
		{swap: -2, limit: 100, wantErr: true},
	} {
		got, err := swapMaxV2(tc.swap, tc.limit)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("swapMaxV2(%d, %d) = %q, %v; want %q (error %v)", tc.swap, tc.limit, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestV2Writes(t *testing.T) {
	r := &specs.LinuxResources{
		CPU: &specs.LinuxCPU{Shares: u64(1024), Quota: i64(50000), Period: u64(100000), Burst: u64(2000),
			Idle: i64(1), Cpus: "0-1", Mems: "0", RealtimeRuntime: i64(0)},
		Memory: &specs.LinuxMemory{Limit: i64(1 << 30), Swap: i64(2 << 30), Reservation: i64(512 << 20),
			Swappiness: u64(5), DisableOOMKiller: bptr(true), Kernel: i64(1)},
		Pids: &specs.LinuxPids{Limit: i64(-1)},
		BlockIO: &specs.LinuxBlockIO{
			ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 1000}},
			ThrottleWriteBpsDevice:  []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 0}},
			ThrottleReadIOPSDevice:  []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 16}, Rate: 30}},
			ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 16}, Rate: 40}},
		},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 8 << 20}},
		Rdma:           map[string]specs.LinuxRdma{"mlx5_0": {HcaObjects: func() *uint32 { v := uint32(4); return &v }()}},
		Network:        &specs.LinuxNetwork{ClassID: func() *uint32 { v := uint32(1); return &v }()},
	}
	got, err := v2Writes(r)
	if err != nil {
		t.Fatal(err)
	}
	want := []v2Write{
		{"cpuset.cpus", "0-1"},
		{"cpuset.mems", "0"},
		{"cpu.weight", "100"},
		{"cpu.max", "50000 100000"},
		{"cpu.max.burst", "2000"},
		{"cpu.idle", "1"},
		{"memory.swap.max", "1073741824"},
		{"memory.max", "1073741824"},
		{"memory.low", "536870912"},
		{"pids.max", "max"},
		{"io.max", "8:0 rbps=1000"},
		{"io.max", "8:0 wbps=max"},
		{"io.max", "8:16 riops=30"},
		{"io.max", "8:16 wiops=40"},
		{"hugetlb.2MB.max", "8388608"},
		{"rdma.max", "mlx5_0 hca_object=4"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("writes:\n got %q\nwant %q", got, want)
	}

	for name, c := range map[string]*specs.LinuxCPU{
		"quota without period keeps the period": {Quota: i64(20000)},
		"negative quota is max":                 {Quota: i64(-1), Period: u64(10000)},
	} {
		got, err := v2Writes(&specs.LinuxResources{CPU: c})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"quota without period keeps the period": "20000",
			"negative quota is max":                 "max 10000",
		}[name]
		if len(got) != 1 || got[0] != (v2Write{"cpu.max", want}) {
			t.Errorf("%s: %q", name, got)
		}
	}
	if _, err := v2Writes(&specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: i64(100)}}); err == nil {
		t.Error("swap without a memory limit accepted")
	}
}

// newFakeV2 returns a v2 manager for /cg2/berth/ctr on an in-memory host
// whose root offers the given controllers, and the policies given to the
// device filter.
func newFakeV2(t *testing.T, controllers string, files ...string) (*v2Manager, *memFS, *[]devicePolicy) {
	t.Helper()
	fs := newMemFS("/cg2")
	fs.set("/cg2/cgroup.controllers", controllers, "/cg2/cgroup.subtree_control", "", "/cg2/cgroup.procs", "")
	fs.onMkdir = func(fs *memFS, dir string) {
		parent := strings.TrimSuffix(dir[:strings.LastIndex(dir, "/")], "/")
		enabled := fs.files[parent+"/cgroup.subtree_control"]
		fs.set(dir+"/cgroup.controllers", enabled, dir+"/cgroup.subtree_control", "",
			dir+"/cgroup.procs", "", dir+"/cgroup.freeze", "0", dir+"/cgroup.events", "populated 0\nfrozen 0\n",
			dir+"/cpu.stat", "usage_usec 0\n")
		for _, f := range files {
			fs.set(dir+"/"+f, "")
		}
	}
	var policies []devicePolicy
	m := newV2(fs, "/cg2", "/cg2/berth/ctr", func(dir string, p devicePolicy) error {
		if dir != "/cg2/berth/ctr" {
			t.Errorf("device filter for %s", dir)
		}
		policies = append(policies, p)
		return nil
	})
	return m, fs, &policies
}

func TestV2ApplyEnablesControllersAndWrites(t *testing.T) {
	m, fs, policies := newFakeV2(t, "cpuset cpu io memory pids",
		"memory.max", "memory.swap.max", "memory.low", "pids.max", "cpu.weight", "cpu.max", "io.weight", "io.max")
	r := &specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: i64(100), Swap: i64(100)},
		CPU:     &specs.LinuxCPU{Shares: u64(2)},
		Pids:    &specs.LinuxPids{Limit: i64(64)},
		BlockIO: &specs.LinuxBlockIO{Weight: u16(1000)},
		Devices: []specs.LinuxDeviceCgroup{rule(false, "", nil, nil, "rwm"), rule(true, "c", i64(1), i64(3), "rw")},
		Unified: map[string]string{"memory.max": "200", "cpu.weight": "7"},
	}
	if err := m.Apply(99, r); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/cg2/cgroup.subtree_control=+cpuset +cpu +io +memory +pids",
		"/cg2/berth/cgroup.subtree_control=+cpuset +cpu +io +memory +pids",
		"/cg2/berth/ctr/io.weight=default 10000",
		"/cg2/berth/ctr/cpu.weight=1",
		"/cg2/berth/ctr/memory.swap.max=0",
		"/cg2/berth/ctr/memory.max=100",
		"/cg2/berth/ctr/pids.max=64",
		// unified entries last, in key order, overriding converted values
		"/cg2/berth/ctr/cpu.weight=7",
		"/cg2/berth/ctr/memory.max=200",
		"/cg2/berth/ctr/cgroup.procs=99",
	}
	if !reflect.DeepEqual(fs.writes, want) {
		t.Errorf("writes:\n got %q\nwant %q", fs.writes, want)
	}
	if len(*policies) != 1 || len((*policies)[0].exceptions) != 1 || (*policies)[0].exceptions[0].access != accRead|accWrite {
		t.Errorf("device policies %+v", *policies)
	}

	// A second Apply of the same cgroup does not enable controllers again.
	fs.writes = nil
	if err := m.Apply(-1, nil); err != nil {
		t.Fatal(err)
	}
	if len(fs.writes) != 0 {
		t.Errorf("idempotent Apply wrote %q", fs.writes)
	}
}

func TestV2IOWeightWithBFQ(t *testing.T) {
	m, fs, _ := newFakeV2(t, "io", "io.bfq.weight", "io.weight")
	r := &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
		Weight: u16(500),
		WeightDevice: []specs.LinuxWeightDevice{{
			LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Weight: u16(700), LeafWeight: u16(1),
		}},
		LeafWeight: u16(100),
	}}
	if err := m.Apply(-1, r); err != nil {
		t.Fatal(err)
	}
	want := []string{"io.bfq.weight=500", "io.bfq.weight=8:0 700"}
	if got := fs.writesUnder("/cg2/berth/ctr"); !reflect.DeepEqual(got, want) {
		t.Errorf("writes %q, want %q", got, want)
	}

	m, fs, _ = newFakeV2(t, "io", "io.weight")
	if err := m.Apply(-1, r); err != nil {
		t.Fatal(err)
	}
	want = []string{"io.weight=default 4950", "io.weight=8:0 6970"}
	if got := fs.writesUnder("/cg2/berth/ctr"); !reflect.DeepEqual(got, want) {
		t.Errorf("writes without BFQ %q, want %q", got, want)
	}
}

func TestV2PeriodAloneKeepsQuota(t *testing.T) {
	m, fs, _ := newFakeV2(t, "cpu", "cpu.max")
	if err := m.Apply(-1, nil); err != nil {
		t.Fatal(err)
	}
	fs.set("/cg2/berth/ctr/cpu.max", "30000 100000\n")
	if err := m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Period: u64(50000)}}); err != nil {
		t.Fatal(err)
	}
	if got := fs.files["/cg2/berth/ctr/cpu.max"]; got != "30000 50000" {
		t.Errorf("cpu.max = %q", got)
	}
}

func TestV2Rejects(t *testing.T) {
	for name, r := range map[string]*specs.LinuxResources{
		"realtime":       {CPU: &specs.LinuxCPU{RealtimeRuntime: i64(1000)}},
		"swap only":      {Memory: &specs.LinuxMemory{Swap: i64(1000)}},
		"unified path":   {Unified: map[string]string{"../memory.max": "1"}},
		"unified procs":  {Unified: map[string]string{"cgroup.procs": "1"}},
		"bad device":     {Devices: []specs.LinuxDeviceCgroup{rule(true, "c", nil, nil, "x")}},
		"bad page size":  {HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "../2MB"}}},
		"swap below mem": {Memory: &specs.LinuxMemory{Limit: i64(1000), Swap: i64(10)}},
	} {
		m, fs, _ := newFakeV2(t, "cpu memory")
		if err := m.Apply(1, r); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if len(fs.writes) != 0 || fs.dirs["/cg2/berth"] {
			t.Errorf("%s: wrote %q before rejecting", name, fs.writes)
		}
	}
	m, _, _ := newFakeV2(t, "cpu")
	err := m.Apply(-1, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(1 << 20)}})
	if err == nil || !strings.Contains(err.Error(), `controller "memory" not enabled`) {
		t.Errorf("missing controller: %v", err)
	}
}

func TestV2HugetlbReservations(t *testing.T) {
	m, fs, _ := newFakeV2(t, "hugetlb", "hugetlb.2MB.max", "hugetlb.2MB.rsvd.max", "hugetlb.1GB.max")
	r := &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{
		{Pagesize: "2MB", Limit: 4 << 20}, {Pagesize: "1GB", Limit: 1 << 30},
	}}
	if err := m.Apply(-1, r); err != nil {
		t.Fatal(err)
	}
	want := []string{"hugetlb.2MB.max=4194304", "hugetlb.2MB.rsvd.max=4194304", "hugetlb.1GB.max=1073741824"}
	if got := fs.writesUnder("/cg2/berth/ctr"); !reflect.DeepEqual(got, want) {
		t.Errorf("writes %q, want %q", got, want)
	}
}

func TestV2FreezeWaitsForEvents(t *testing.T) {
	m, fs, _ := newFakeV2(t, "")
	if err := m.Apply(-1, nil); err != nil {
		t.Fatal(err)
	}
	events := "/cg2/berth/ctr/cgroup.events"
	polls := 0
	fs.onRead = func(path, content string) string {
		if path != events {
			return content
		}
		polls++
		if fs.files["/cg2/berth/ctr/cgroup.freeze"] == "1" && polls > 3 {
			return "populated 1\nfrozen 1\n"
		}
		return "populated 1\nfrozen 0\n"
	}
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if polls < 4 {
		t.Errorf("Freeze returned after %d polls, before frozen 1", polls)
	}
	if frozen, err := m.Frozen(); err != nil || !frozen {
		t.Errorf("Frozen = %v, %v", frozen, err)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if frozen, _ := m.Frozen(); frozen {
		t.Error("frozen after Thaw")
	}

	old := freezeTimeout
	freezeTimeout = 30 * time.Millisecond
	t.Cleanup(func() { freezeTimeout = old })
	fs.onRead = func(path, content string) string {
		if path == events {
			return "populated 1\nfrozen 0\n"
		}
		return content
	}
	if err := m.Freeze(); err == nil {
		t.Fatal("Freeze that never completes succeeded")
	}
	if got := fs.files["/cg2/berth/ctr/cgroup.freeze"]; got != "0" {
		t.Errorf("cgroup.freeze left at %q after a failed freeze", got)
	}
}

func TestV2StatsAndOOM(t *testing.T) {
	m, fs, _ := newFakeV2(t, "")
	if err := m.Apply(-1, nil); err != nil {
		t.Fatal(err)
	}
	if killed, err := m.OOMKilled(); err != nil || killed {
		t.Errorf("without memory controller OOMKilled = %v, %v", killed, err)
	}
	if s, err := m.Stats(); err != nil || s.Memory.Usage != 0 || s.Pids.Limit != 0 {
		t.Errorf("stats without controllers: %+v, %v", s, err)
	}
	dir := "/cg2/berth/ctr/"
	fs.set(
		dir+"cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 2\nthrottled_usec 300\n",
		dir+"memory.current", "4096\n",
		dir+"memory.peak", "8192\n",
		dir+"memory.max", "max\n",
		dir+"memory.swap.current", "512\n",
		dir+"memory.stat", "anon 1024\nfile 2048\ninactive_file 100\n",
		dir+"memory.events", "low 0\nhigh 0\nmax 5\noom 3\noom_kill 1\noom_group_kill 0\n",
		dir+"pids.current", "4\n",
		dir+"pids.max", "32\n",
		dir+"io.stat", "8:16 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n",
	)
	s, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{
		CPU: CPUStats{UsageTotal: 1500000, UsageUser: 1000000, UsageSystem: 500000,
			ThrottlingPeriods: 10, ThrottledPeriods: 2, ThrottledTime: 300000},
		Memory: MemoryStats{Usage: 4096, MaxUsage: 8192, Limit: ^uint64(0), Cache: 2048, RSS: 1024, Swap: 512,
			OOMEvents: 3, OOMKills: 1, Stat: map[string]uint64{"anon": 1024, "file": 2048, "inactive_file": 100}},
		Pids: PidsStats{Current: 4, Limit: 32},
		IO: IOStats{Devices: []IODeviceStats{
			{Major: 8, Minor: 0, ReadBytes: 1, WriteBytes: 2, ReadOps: 3, WriteOps: 4},
			{Major: 8, Minor: 16, ReadBytes: 10, WriteBytes: 20, ReadOps: 1, WriteOps: 2},
		}},
	}
	if !reflect.DeepEqual(*s, want) {
		t.Errorf("Stats:\n got %+v\nwant %+v", *s, want)
	}
	if killed, err := m.OOMKilled(); err != nil || !killed {
		t.Errorf("OOMKilled = %v, %v", killed, err)
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Stats(); err == nil {
		t.Error("Stats of a removed cgroup succeeded")
	}
	if _, err := m.OOMKilled(); err == nil {
		t.Error("OOMKilled of a removed cgroup succeeded")
	}
	if err := m.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}
