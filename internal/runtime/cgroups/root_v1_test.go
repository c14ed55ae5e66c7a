package cgroups

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/cgroups/v3"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The tests in this file run as root on a cgroup v1 (or hybrid) host and
// use the real hierarchies mounted there.

func requireV1(t *testing.T) {
	t.Helper()
	requireRoot(t)
	if cgroups.Mode() == cgroups.Unified || cgroups.Mode() == cgroups.Unavailable {
		t.Skip("needs a cgroup v1 host")
	}
}

// newV1Test returns a manager for /<unique>/<name> and removes both levels
// when the test ends, after killing any process left inside.
func newV1Test(t *testing.T, name string) (Manager, string) {
	t.Helper()
	parent := "/" + testGroupName()
	m, err := New(parent+"/"+name, "ignored")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		emptyAndDestroy(t, m)
		pm, err := New(parent, "ignored")
		if err != nil {
			t.Error(err)
			return
		}
		if err := pm.Destroy(); err != nil {
			t.Errorf("remove test parent: %v", err)
		}
		assertGone(t, pm)
	})
	return m, parent
}

// diskDevice returns the numbers of a whole disk, for a throttling rule.
func diskDevice() (major, minor int64, ok bool) {
	entries, _ := os.ReadDir("/sys/block")
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, "loop") || strings.HasPrefix(n, "ram") || strings.HasPrefix(n, "zram") {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/sys/block", n, "dev"))
		if err != nil {
			continue
		}
		if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d:%d", &major, &minor); err == nil {
			return major, minor, true
		}
	}
	return 0, 0, false
}

func TestRootV1Lifecycle(t *testing.T) {
	requireV1(t)
	m, parent := newV1Test(t, "ctr")
	if m.Version() != 1 {
		t.Fatalf("version %d on a v1 host", m.Version())
	}
	paths := m.Paths()
	for _, ctrl := range []string{"memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "devices", "freezer"} {
		if paths[ctrl] == "" {
			t.Skipf("controller %s is not mounted: %v", ctrl, paths)
		}
	}

	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(128 << 20), Swap: i64(128 << 20), Reservation: i64(64 << 20)},
		CPU:    &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(100000), Cpus: "0", Mems: "0"},
		Pids:   &specs.LinuxPids{Limit: i64(64)},
		Devices: []specs.LinuxDeviceCgroup{
			rule(false, "a", nil, nil, "rwm"),
			rule(true, "c", i64(1), i64(3), "rwm"),
			rule(true, "c", i64(1), i64(5), "r"),
			rule(true, "c", i64(136), nil, "rw"),
		},
		BlockIO: &specs.LinuxBlockIO{Weight: u16(300)},
	}
	major, minor, haveDisk := diskDevice()
	if haveDisk {
		r.BlockIO.ThrottleReadBpsDevice = []specs.LinuxThrottleDevice{{
			LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: major, Minor: minor}, Rate: 50 << 20,
		}}
	}
	sleep := startSleep(t)
	if err := m.Apply(sleep.Process.Pid, r); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct{ ctrl, file, want string }{
		{"memory", "memory.limit_in_bytes", "134217728"},
		{"memory", "memory.memsw.limit_in_bytes", "134217728"},
		{"memory", "memory.soft_limit_in_bytes", "67108864"},
		{"cpu", "cpu.shares", "512"},
		{"cpu", "cpu.cfs_quota_us", "50000"},
		{"cpu", "cpu.cfs_period_us", "100000"},
		{"cpuset", "cpuset.cpus", "0"},
		{"cpuset", "cpuset.mems", "0"},
		{"pids", "pids.max", "64"},
	} {
		if got := readCgroupFile(t, paths[c.ctrl], c.file); got != c.want {
			t.Errorf("%s = %q, want %q", c.file, got, c.want)
		}
	}
	// The intermediate cpuset level was initialised from the root.
	parentDir := filepath.Dir(paths["cpuset"])
	if got, want := readCgroupFile(t, parentDir, "cpuset.cpus"),
		readCgroupFile(t, filepath.Dir(parentDir), "cpuset.cpus"); got != want {
		t.Errorf("parent cpuset.cpus %q, want the root's %q", got, want)
	}
	if w := filepath.Join(paths["blkio"], "blkio.bfq.weight"); fileExists(w) {
		if got := readCgroupFile(t, paths["blkio"], "blkio.bfq.weight"); !strings.HasSuffix(got, "300") {
			t.Errorf("blkio.bfq.weight = %q", got)
		}
	}
	if haveDisk {
		want := fmt.Sprintf("%d:%d %d", major, minor, 50<<20)
		if got := readCgroupFile(t, paths["blkio"], "blkio.throttle.read_bps_device"); got != want {
			t.Errorf("read_bps_device = %q, want %q", got, want)
		}
	}
	devs := strings.Split(readCgroupFile(t, paths["devices"], "devices.list"), "\n")
	sort.Strings(devs)
	want := []string{"c 1:3 rwm", "c 1:5 r", "c 136:* rw"}
	sort.Strings(want)
	if strings.Join(devs, "|") != strings.Join(want, "|") {
		t.Errorf("devices.list = %q, want %q", devs, want)
	}

	// The process is in every hierarchy, and Pids sees it.
	pids, err := m.Pids()
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) != 1 || pids[0] != sleep.Process.Pid {
		t.Errorf("Pids = %v, want [%d]", pids, sleep.Process.Pid)
	}
	member := procCgroups(t, sleep.Process.Pid)
	for key, path := range member {
		if key == "" {
			continue // the cgroup2 line of a hybrid host
		}
		if path != parent+"/ctr" {
			t.Errorf("/proc/%d/cgroup: %s:%s, want %s/ctr", sleep.Process.Pid, key, path, parent)
		}
	}

	// An exec'd process joins with Add and is accounted.
	work := startHelper(t, "work")
	if err := m.Add(work.pid()); err != nil {
		t.Fatal(err)
	}
	work.send(t, "16")
	if got := work.readLine(t, 10*time.Second); got != "ready" {
		t.Fatalf("helper said %q", got)
	}
	time.Sleep(300 * time.Millisecond)
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.CPU.UsageTotal == 0 || st.CPU.UsageUser == 0 || len(st.CPU.PerCPU) == 0 {
		t.Errorf("cpu stats %+v", st.CPU)
	}
	if st.CPU.ThrottlingPeriods == 0 {
		t.Errorf("no CFS periods counted with a quota set: %+v", st.CPU)
	}
	if st.Memory.Usage < 16<<20 || st.Memory.Limit != 128<<20 || st.Memory.RSS == 0 || len(st.Memory.Stat) == 0 {
		t.Errorf("memory stats usage=%d limit=%d rss=%d", st.Memory.Usage, st.Memory.Limit, st.Memory.RSS)
	}
	if st.Pids.Current < 2 || st.Pids.Limit != 64 {
		t.Errorf("pids stats %+v", st.Pids)
	}

	// Freeze stops the busy helper; Thaw lets it run again.
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if frozen, err := m.Frozen(); err != nil || !frozen {
		t.Fatalf("Frozen = %v, %v", frozen, err)
	}
	if got := readCgroupFile(t, paths["freezer"], "freezer.state"); got != "FROZEN" {
		t.Errorf("freezer.state = %q", got)
	}
	before := cpuTicks(t, work.pid())
	time.Sleep(200 * time.Millisecond)
	if after := cpuTicks(t, work.pid()); after != before {
		t.Errorf("frozen helper ran: %d -> %d ticks", before, after)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if frozen, err := m.Frozen(); err != nil || frozen {
		t.Errorf("after Thaw Frozen = %v, %v", frozen, err)
	}
	time.Sleep(200 * time.Millisecond)
	if after := cpuTicks(t, work.pid()); after == before {
		t.Error("thawed helper does not run")
	}

	// Update: lower the memory limit, lift the pids limit, change the quota.
	err = m.Set(&specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(96 << 20), Swap: i64(96 << 20)},
		Pids:   &specs.LinuxPids{Limit: i64(-1)},
		CPU:    &specs.LinuxCPU{Quota: i64(20000), Period: u64(50000)},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ ctrl, file, want string }{
		{"memory", "memory.limit_in_bytes", "100663296"},
		{"memory", "memory.memsw.limit_in_bytes", "100663296"},
		{"pids", "pids.max", "max"},
		{"cpu", "cpu.cfs_quota_us", "20000"},
		{"cpu", "cpu.cfs_period_us", "50000"},
	} {
		if got := readCgroupFile(t, paths[c.ctrl], c.file); got != c.want {
			t.Errorf("after Set %s = %q, want %q", c.file, got, c.want)
		}
	}

	// A populated cgroup cannot be destroyed, and that is reported at once.
	start := time.Now()
	if err := m.Destroy(); !errors.Is(err, errPopulated) {
		t.Errorf("Destroy of a populated cgroup: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Destroy of a populated cgroup took %v", d)
	}
	work.kill()
	_ = sleep.Process.Kill()
	_ = sleep.Wait()
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, m)
	if err := m.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func TestRootV1OOMKill(t *testing.T) {
	requireV1(t)
	m, _ := newV1Test(t, "oom")
	h := startHelper(t, "work")
	r := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(8 << 20), Swap: i64(8 << 20)}}
	if err := m.Apply(h.pid(), r); err != nil {
		t.Fatal(err)
	}
	if killed, err := m.OOMKilled(); err != nil || killed {
		t.Fatalf("OOMKilled before any allocation = %v, %v", killed, err)
	}
	h.send(t, "64")
	done := make(chan error, 1)
	go func() { done <- h.cmd.Wait() }()
	select {
	case err := <-done:
		var ee interface{ Sys() any }
		if !errors.As(err, &ee) {
			t.Fatalf("helper ended with %v", err)
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Errorf("helper ended with %v, want SIGKILL", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("helper allocating 64 MiB under an 8 MiB limit was not killed")
	}
	killed, err := m.OOMKilled()
	if err != nil || !killed {
		t.Errorf("OOMKilled = %v, %v", killed, err)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Memory.OOMKills == 0 {
		t.Errorf("memory stats after OOM kill: oom_kill=%d", st.Memory.OOMKills)
	}
}

func TestRootV1DeviceRules(t *testing.T) {
	requireV1(t)
	m, _ := newV1Test(t, "dev")
	rules := []specs.LinuxDeviceCgroup{
		rule(false, "", nil, nil, "rwm"),
		rule(true, "c", i64(1), i64(3), "rwm"),
		rule(true, "c", i64(1), i64(5), "r"),
	}
	probe := func(want map[string]string) {
		t.Helper()
		h := startHelper(t, "devices")
		if err := m.Add(h.pid()); err != nil {
			t.Fatal(err)
		}
		h.send(t, t.TempDir())
		var got map[string]string
		if err := json.Unmarshal([]byte(h.readLine(t, 10*time.Second)), &got); err != nil {
			t.Fatal(err)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s, want %s", k, got[k], v)
			}
		}
		h.kill()
	}
	if err := m.Apply(-1, &specs.LinuxResources{Devices: rules}); err != nil {
		t.Fatal(err)
	}
	probe(map[string]string{
		"null_rw": "ok", "zero_r": "ok", "zero_rw": "EPERM", "full_r": "EPERM",
		"mknod_null": "ok", "mknod_full": "EPERM",
	})
	// Widening the rules on update takes effect.
	rules = append(rules, rule(true, "c", i64(1), i64(7), "rm"))
	if err := m.Set(&specs.LinuxResources{Devices: rules}); err != nil {
		t.Fatal(err)
	}
	probe(map[string]string{"full_r": "ok", "mknod_full": "ok", "zero_rw": "EPERM"})
}

func TestRootV1RelativePath(t *testing.T) {
	requireV1(t)
	// The helper is placed in a test cgroup first, so that the relative
	// path resolves below it and nothing is created under the cgroups of
	// the test process itself.
	base, parent := newV1Test(t, "base")
	if err := base.Apply(-1, nil); err != nil {
		t.Fatal(err)
	}
	h := startHelper(t, "relative")
	if err := base.Add(h.pid()); err != nil {
		t.Fatal(err)
	}
	h.send(t, "rel/ctr")
	var out struct {
		Paths map[string]string `json:"paths"`
		Error string            `json:"error"`
	}
	if err := json.Unmarshal([]byte(h.readLine(t, 10*time.Second)), &out); err != nil {
		t.Fatal(err)
	}
	if out.Error != "" {
		t.Fatal(out.Error)
	}
	loaded, err := Load(out.Paths, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emptyAndDestroy(t, loaded) })
	basePaths := base.Paths()
	for ctrl, dir := range out.Paths {
		if want := filepath.Join(basePaths[ctrl], "rel/ctr"); dir != want {
			t.Errorf("%s: %s, want %s", ctrl, dir, want)
		}
		if !fileExists(dir) {
			t.Errorf("%s not created", dir)
		}
	}
	for key, path := range procCgroups(t, h.pid()) {
		if key != "" && path != parent+"/base/rel/ctr" {
			t.Errorf("helper in %s:%s", key, path)
		}
	}
	pids, err := loaded.Pids()
	if err != nil || len(pids) != 1 || pids[0] != h.pid() {
		t.Errorf("Pids of loaded manager = %v, %v", pids, err)
	}
	h.kill()
	if err := loaded.Destroy(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, loaded)
}
