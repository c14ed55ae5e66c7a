package testutil

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// CgroupRoot is where cgroup hierarchies are mounted.
const CgroupRoot = "/sys/fs/cgroup"

// leakName is the marker for berth's resources: mounts whose mount point or
// source contains it, and cgroup directories whose name starts with it.
const leakName = "berth"

// cgroupWalkDepth bounds how deep below each hierarchy's root LeakCheck
// looks for berth cgroups.
const cgroupWalkDepth = 4

// leakGrace is how long LeakCheck waits for leftovers to go away by
// themselves before reporting them.
var leakGrace = 2 * time.Second

const (
	cgroupSuperMagic  = 0x27e0eb
	cgroup2SuperMagic = 0x63677270
)

// LeakCheck records the resources a test could leave behind and, when the
// test ends, reports every one that appeared and is still there as a test
// error:
//
//   - mounts in /proc/self/mountinfo whose mount point or source is in the
//     test's temporary directories or contains "berth";
//   - cgroup directories with a path component starting with "berth" in any
//     hierarchy under /sys/fs/cgroup (each v1 controller, the cgroup2
//     "unified" hierarchy of hybrid hosts, or /sys/fs/cgroup itself on
//     cgroup2 hosts), down to a few levels;
//   - processes whose parent is the test process, zombies included.
//
// Leftovers get two seconds to go away by themselves (asynchronous reaping
// or unmounting) before they count. After reporting, it cleans up what it can so that later tests start from
// a clean host: it kills and reaps leaked child processes, detaches leaked
// mounts, and removes leaked cgroups that are empty.
//
// Call it first in a test, before anything that registers cleanups that
// release these resources: cleanups run last-registered first, so the check
// then runs after them. The check compares host-wide state, so it can blame
// a test for resources made at the same time by another test: do not use it
// in parallel tests, and run packages whose tests use it one at a time
// (go test -p 1) when they run as root.
func LeakCheck(t testing.TB) {
	t.Helper()
	sc := leakScope{
		// t.TempDir() returns a new directory below the test's own
		// temporary directory, which all later t.TempDir() calls share.
		tmpRoot: filepath.Dir(t.TempDir()),
		pid:     os.Getpid(),
	}
	before, err := sc.snapshot()
	if err != nil {
		t.Fatalf("LeakCheck: %v", err)
	}
	t.Cleanup(func() {
		t.Helper()
		// Give asynchronous teardown (a process being reaped, a lazy
		// unmount) a moment before calling anything a leak.
		var leaks leakSnapshot
		deadline := time.Now().Add(leakGrace)
		for {
			after, err := sc.snapshot()
			if err != nil {
				t.Errorf("LeakCheck: %v", err)
				return
			}
			leaks = after.since(before)
			if leaks.empty() || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		for _, msg := range leaks.describe() {
			t.Errorf("LeakCheck: %s", msg)
		}
		for _, msg := range leaks.clean() {
			t.Logf("LeakCheck: cleanup: %s", msg)
		}
	})
}

// leakScope says which resources belong to the test.
type leakScope struct {
	tmpRoot string // the test's temporary directory
	pid     int    // the test process
}

type mountEntry struct {
	id         int
	mountPoint string
	source     string
	fsType     string
}

type procEntry struct {
	pid   int
	start uint64 // start time in clock ticks, to tell reused pids apart
	comm  string
	state string
}

type leakSnapshot struct {
	mounts   []mountEntry
	cgroups  []string
	children []procEntry
}

func (sc leakScope) snapshot() (leakSnapshot, error) {
	var s leakSnapshot
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return s, err
	}
	mounts, err := parseMountinfo(data)
	if err != nil {
		return s, err
	}
	for _, m := range mounts {
		if sc.ownsMount(m) {
			s.mounts = append(s.mounts, m)
		}
	}
	s.cgroups = berthCgroups()
	s.children, err = childProcesses(sc.pid)
	return s, err
}

func (sc leakScope) ownsMount(m mountEntry) bool {
	for _, p := range []string{m.mountPoint, m.source} {
		if p == sc.tmpRoot || strings.HasPrefix(p, sc.tmpRoot+"/") || strings.Contains(p, leakName) {
			return true
		}
	}
	return false
}

// since returns what s has that before had not.
func (s leakSnapshot) since(before leakSnapshot) leakSnapshot {
	type mkey struct {
		id int
		mp string
	}
	type pkey struct {
		pid   int
		start uint64
	}
	return leakSnapshot{
		mounts:   added(before.mounts, s.mounts, func(m mountEntry) mkey { return mkey{m.id, m.mountPoint} }),
		cgroups:  added(before.cgroups, s.cgroups, func(c string) string { return c }),
		children: added(before.children, s.children, func(p procEntry) pkey { return pkey{p.pid, p.start} }),
	}
}

// added returns the items of after whose key is not among before's.
func added[T any, K comparable](before, after []T, key func(T) K) []T {
	old := make(map[K]bool, len(before))
	for _, x := range before {
		old[key(x)] = true
	}
	var out []T
	for _, x := range after {
		if !old[key(x)] {
			out = append(out, x)
		}
	}
	return out
}

func (s leakSnapshot) empty() bool {
	return len(s.mounts) == 0 && len(s.cgroups) == 0 && len(s.children) == 0
}

func (s leakSnapshot) describe() []string {
	var msgs []string
	for _, m := range s.mounts {
		msgs = append(msgs, fmt.Sprintf("mount left behind: %s (%s, source %s)", m.mountPoint, m.fsType, m.source))
	}
	for _, c := range s.cgroups {
		msgs = append(msgs, "cgroup left behind: "+c)
	}
	for _, p := range s.children {
		state := "state " + p.state
		if p.state == "Z" {
			state = "exited but not waited for"
		}
		msgs = append(msgs, fmt.Sprintf("child process left behind: pid %d (%s), %s", p.pid, p.comm, state))
	}
	return msgs
}

// clean removes the leaked resources as far as it can and returns what
// failed.
func (s leakSnapshot) clean() []string {
	var failed []string
	for _, p := range s.children {
		if err := killAndReap(p.pid); err != nil {
			failed = append(failed, fmt.Sprintf("pid %d: %v", p.pid, err))
		}
	}
	mounts := append([]mountEntry(nil), s.mounts...)
	sort.SliceStable(mounts, func(i, j int) bool { return len(mounts[i].mountPoint) > len(mounts[j].mountPoint) })
	for _, m := range mounts {
		if err := syscall.Unmount(m.mountPoint, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			failed = append(failed, fmt.Sprintf("unmount %s: %v", m.mountPoint, err))
		}
	}
	cgroups := append([]string(nil), s.cgroups...)
	sort.SliceStable(cgroups, func(i, j int) bool { return strings.Count(cgroups[i], "/") > strings.Count(cgroups[j], "/") })
	for _, c := range cgroups {
		if err := syscall.Rmdir(c); err != nil && !errors.Is(err, syscall.ENOENT) {
			failed = append(failed, fmt.Sprintf("remove %s: %v", c, err))
		}
	}
	return failed
}

// killAndReap kills a child process and waits up to two seconds for it.
func killAndReap(pid int) error {
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.ECHILD):
			return nil // reaped elsewhere
		case err != nil:
			return err
		case got == pid:
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("still running after SIGKILL")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// parseMountinfo parses /proc/<pid>/mountinfo (see proc(5)).
func parseMountinfo(data []byte) ([]mountEntry, error) {
	var mounts []mountEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		fields := strings.Fields(line)
		sep := -1
		for i := 6; i < len(fields); i++ {
			if fields[i] == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 5 || sep < 0 || sep+2 >= len(fields) {
			return nil, fmt.Errorf("malformed mountinfo line %q", line)
		}
		id, err := strconv.Atoi(fields[0])
		if err != nil {
			return nil, fmt.Errorf("malformed mountinfo line %q", line)
		}
		mounts = append(mounts, mountEntry{
			id:         id,
			mountPoint: unescapeMountinfo(fields[4]),
			fsType:     unescapeMountinfo(fields[sep+1]),
			source:     unescapeMountinfo(fields[sep+2]),
		})
	}
	return mounts, sc.Err()
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space,
// \011, \012, \134) in mountinfo fields.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// cgroupHierarchies returns the mount points of the cgroup hierarchies.
func cgroupHierarchies() []string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(CgroupRoot, &st); err != nil {
		return nil
	}
	if st.Type == cgroup2SuperMagic {
		return []string{CgroupRoot}
	}
	ents, err := os.ReadDir(CgroupRoot)
	if err != nil {
		return nil
	}
	var roots []string
	for _, e := range ents {
		if !e.IsDir() { // skips the cpu -> cpu,cpuacct style symlinks
			continue
		}
		p := filepath.Join(CgroupRoot, e.Name())
		if err := syscall.Statfs(p, &st); err != nil {
			continue
		}
		if st.Type == cgroupSuperMagic || st.Type == cgroup2SuperMagic {
			roots = append(roots, p)
		}
	}
	return roots
}

// sharedCgroupParent is the parent cgroup of containers without a
// cgroupsPath of their own.
const sharedCgroupParent = "berth"

// berthCgroups lists the cgroup directories that have a path component
// starting with "berth", in every hierarchy.
func berthCgroups() []string {
	var found []string
	var walk func(dir string, depth int, inBerth bool)
	walk = func(dir string, depth int, inBerth bool) {
		if depth > cgroupWalkDepth {
			return
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return // removed meanwhile, or unreadable
		}
		for _, e := range ents {
			if !e.IsDir() {
				continue
			}
			p := filepath.Join(dir, e.Name())
			berth := inBerth || strings.HasPrefix(e.Name(), leakName)
			// The runtime's parent for default cgroup paths (/berth) is kept
			// on purpose, like Docker's /docker; what is below it is not.
			shared := depth == 1 && e.Name() == sharedCgroupParent
			if berth && !shared {
				found = append(found, p)
			}
			walk(p, depth+1, berth)
		}
	}
	for _, root := range cgroupHierarchies() {
		walk(root, 1, false)
	}
	return found
}

// childProcesses lists the processes whose parent is ppid.
func childProcesses(ppid int) ([]procEntry, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var kids []procEntry
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		p, parent, err := parseProcStat(data)
		if err != nil || parent != ppid {
			continue
		}
		p.pid = pid
		kids = append(kids, p)
	}
	return kids, nil
}

// parseProcStat parses /proc/<pid>/stat (see proc(5)) into the command
// name, state, start time and parent pid. The command name may itself
// contain spaces and parentheses; it ends at the last ')'.
func parseProcStat(data []byte) (p procEntry, ppid int, err error) {
	s := strings.TrimSpace(string(data))
	open := strings.IndexByte(s, '(')
	end := strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return p, 0, fmt.Errorf("malformed stat %q", s)
	}
	p.comm = s[open+1 : end]
	fields := strings.Fields(s[end+1:])
	// fields[0] is field 3 of proc(5) (state), fields[1] field 4 (ppid),
	// fields[19] field 22 (starttime).
	if len(fields) < 20 {
		return p, 0, fmt.Errorf("malformed stat %q", s)
	}
	p.state = fields[0]
	if ppid, err = strconv.Atoi(fields[1]); err != nil {
		return p, 0, fmt.Errorf("malformed stat %q", s)
	}
	if p.start, err = strconv.ParseUint(fields[19], 10, 64); err != nil {
		return p, 0, fmt.Errorf("malformed stat %q", s)
	}
	return p, ppid, nil
}
