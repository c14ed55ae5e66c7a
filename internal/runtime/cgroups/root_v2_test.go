package cgroups

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The tests in this file run as root and mount a cgroup2 filesystem of
// their own. On a hybrid host that is the same hierarchy as the one at
// /sys/fs/cgroup/unified, whose controllers (memory, cpu, io, pids) are
// bound to v1 and cannot be enabled there. What v2 needs no controller for
// is tested on the real kernel: creating the group, moving processes,
// listing them, the core freezer, the core cpu.stat, the eBPF device filter
// and removal; hugetlb limits are tested too when hugetlb is available in
// v2. The files and values written for memory, cpu, pids and io are
// checked against an in-memory filesystem in v2_test.go, and here only to
// fail cleanly when the controller is missing.

// mountCgroup2 mounts a cgroup2 filesystem on a temporary directory and
// unmounts it when the test ends. Controllers the test enables in the root
// cgroup are disabled again first.
func mountCgroup2(t *testing.T) string {
	t.Helper()
	requireRoot(t)
	mnt := filepath.Join(t.TempDir(), "cgroup2")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("cgroup2", mnt, "cgroup2", 0, ""); err != nil {
		t.Skipf("cannot mount cgroup2: %v", err)
	}
	before := readCgroupFile(t, mnt, "cgroup.subtree_control")
	t.Cleanup(func() {
		was := map[string]bool{}
		for _, c := range strings.Fields(before) {
			was[c] = true
		}
		now, err := os.ReadFile(filepath.Join(mnt, "cgroup.subtree_control"))
		if err == nil {
			for _, c := range strings.Fields(string(now)) {
				if !was[c] {
					if err := os.WriteFile(filepath.Join(mnt, "cgroup.subtree_control"), []byte("-"+c), 0); err != nil {
						t.Errorf("disable %s again in the root cgroup: %v", c, err)
					}
				}
			}
		}
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	return mnt
}

// newV2Test returns a manager for /<unique>/<name> below mnt and removes
// both levels when the test ends.
func newV2Test(t *testing.T, mnt, name string) (Manager, string) {
	t.Helper()
	parent := "/" + testGroupName()
	m, err := NewV2(mnt, parent+"/"+name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		emptyAndDestroy(t, m)
		if err := removeCgroup(hostFS{}, filepath.Join(mnt, parent)); err != nil {
			t.Errorf("remove test parent: %v", err)
		}
	})
	return m, parent
}

func TestRootV2Lifecycle(t *testing.T) {
	mnt := mountCgroup2(t)
	m, parent := newV2Test(t, mnt, "ctr")
	dir := m.Paths()[""]
	if m.Version() != 2 || dir != filepath.Join(mnt, parent, "ctr") {
		t.Fatalf("manager %d %v", m.Version(), m.Paths())
	}
	sleep := startSleep(t)
	if err := m.Apply(sleep.Process.Pid, nil); err != nil {
		t.Fatal(err)
	}
	if got := procCgroups(t, sleep.Process.Pid)[""]; got != parent+"/ctr" {
		t.Errorf("/proc/%d/cgroup has 0::%s, want %s/ctr", sleep.Process.Pid, got, parent)
	}
	// Every controller the root offers was enabled down to the parent.
	if got, want := readCgroupFile(t, filepath.Join(mnt, parent), "cgroup.subtree_control"),
		readCgroupFile(t, mnt, "cgroup.controllers"); strings.Join(strings.Fields(got), " ") != strings.Join(strings.Fields(want), " ") {
		t.Errorf("parent subtree_control %q, want %q", got, want)
	}

	work := startHelper(t, "work")
	if err := m.Add(work.pid()); err != nil {
		t.Fatal(err)
	}
	work.send(t, "4")
	if got := work.readLine(t, 10*time.Second); got != "ready" {
		t.Fatalf("helper said %q", got)
	}
	pids, err := m.Pids()
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) != 2 || !containsInt(pids, sleep.Process.Pid) || !containsInt(pids, work.pid()) {
		t.Errorf("Pids = %v, want %d and %d", pids, sleep.Process.Pid, work.pid())
	}

	time.Sleep(200 * time.Millisecond)
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.CPU.UsageTotal == 0 || st.CPU.UsageUser == 0 {
		t.Errorf("cpu stats %+v", st.CPU)
	}

	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if frozen, err := m.Frozen(); err != nil || !frozen {
		t.Fatalf("Frozen = %v, %v", frozen, err)
	}
	if ev := readCgroupFile(t, dir, "cgroup.events"); !strings.Contains(ev, "frozen 1") {
		t.Errorf("cgroup.events %q", ev)
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

	controllers := strings.Fields(readCgroupFile(t, dir, "cgroup.controllers"))
	if !containsString(controllers, "memory") {
		// Limits of a controller that is not enabled fail with a clear error.
		err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(64 << 20)}})
		if err == nil || !strings.Contains(err.Error(), `controller "memory" not enabled`) {
			t.Errorf("memory limit without the memory controller: %v", err)
		}
	}
	if containsString(controllers, "hugetlb") && fileExists(filepath.Join(dir, "hugetlb.2MB.max")) {
		err := m.Set(&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}}})
		if err != nil {
			t.Fatal(err)
		}
		if got := readCgroupFile(t, dir, "hugetlb.2MB.max"); got != "4194304" {
			t.Errorf("hugetlb.2MB.max = %q", got)
		}
	} else {
		t.Log("hugetlb not available in cgroup v2 here; limit not exercised")
	}

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
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func containsString(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// attachedDevicePrograms counts the device programs attached to dir.
func attachedDevicePrograms(t *testing.T, dir string) int {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := link.QueryPrograms(link.QueryOptions{Target: int(f.Fd()), Attach: ebpf.AttachCGroupDevice})
	if err != nil {
		t.Fatal(err)
	}
	return len(res.Programs)
}

func TestRootV2DeviceFilter(t *testing.T) {
	mnt := mountCgroup2(t)
	m, _ := newV2Test(t, mnt, "dev")
	rules := []specs.LinuxDeviceCgroup{
		rule(false, "", nil, nil, "rwm"),
		rule(true, "c", i64(1), i64(3), "rwm"),
		// Read-only: opening it read-write must fail, which the filter of
		// containerd/cgroups would allow.
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
	dir := m.Paths()[""]
	if n := attachedDevicePrograms(t, dir); n != 1 {
		t.Errorf("%d device programs attached, want 1", n)
	}
	probe(map[string]string{
		"null_rw": "ok", "zero_r": "ok", "zero_rw": "EPERM", "full_r": "EPERM",
		"mknod_null": "ok", "mknod_full": "EPERM",
	})

	// An update can widen access: the old program is detached.
	rules = append(rules, rule(true, "c", i64(1), i64(7), "rm"))
	if err := m.Set(&specs.LinuxResources{Devices: rules}); err != nil {
		t.Fatal(err)
	}
	if n := attachedDevicePrograms(t, dir); n != 1 {
		t.Errorf("after update %d device programs attached, want 1", n)
	}
	probe(map[string]string{"full_r": "ok", "mknod_full": "ok", "zero_rw": "EPERM", "null_rw": "ok"})

	// A deny list: everything but writes to /dev/null.
	err := m.Set(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		rule(true, "a", nil, nil, "rwm"),
		rule(false, "c", i64(1), i64(3), "w"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	probe(map[string]string{"null_rw": "EPERM", "zero_rw": "ok", "full_r": "ok", "mknod_null": "ok"})
}
