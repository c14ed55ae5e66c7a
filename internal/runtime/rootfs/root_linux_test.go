package rootfs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The root tests re-execute the test binary as a child in new mount, pid and
// ipc namespaces (and, in some variants, a new user namespace). The child
// runs Prepare, Pivot and Finalize as the runtime's init would, inspects the
// result from inside and prints a JSON report on stdout; the parent asserts
// on it. The child's mount namespace dies with it, and the parent checks
// that nothing it mounted is left in the host's.

const childEnv = "BERTH_ROOTFS_TEST_CHILD"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		// The init of the runtime runs with its thread locked; so does the
		// child.
		runtime.LockOSThread()
		os.Exit(childMain(cfg))
	}
	os.Exit(m.Run())
}

// scenario is what the parent asks the child to do.
type scenario struct {
	Spec        *specs.Spec
	Rootfs      string
	CgroupPaths map[string]string
	CgroupV2    bool
	InUserNS    bool
	NoPivot     bool
	PrepareOnly bool
	// NoOpenat2 makes the child resolve paths as on a kernel without
	// openat2.
	NoOpenat2 bool
	// Iterations, when positive, makes the child a benchmark: it runs
	// Prepare that many times, detaching the rootfs bind (and everything
	// Prepare stacked on it) after each run, and reports the time spent in
	// Prepare alone.
	Iterations int
}

// report is what the child found.
type report struct {
	PrepareErr  string
	PivotErr    string
	FinalizeErr string
	// Mounts are the mount points of the child's namespace at the end, as
	// the child sees them.
	Mounts []string
	// Facts are observations made inside the finished container.
	Facts map[string]string
	// PrepareNs is the time spent in Prepare over all the iterations of a
	// benchmark child.
	PrepareNs int64
}

func childMain(cfg string) int {
	var sc scenario
	if err := json.Unmarshal([]byte(cfg), &sc); err != nil {
		fmt.Fprintln(os.Stderr, "child: bad scenario:", err)
		return 2
	}
	if sc.NoOpenat2 {
		openat2Supported = func() bool { return false }
	}
	o := Options{Rootfs: sc.Rootfs, CgroupPaths: sc.CgroupPaths, CgroupV2: sc.CgroupV2, InUserNS: sc.InUserNS}
	var rep report
	if sc.Iterations > 0 {
		return benchChild(sc, o)
	}
	if err := Prepare(sc.Spec, o); err != nil {
		rep.PrepareErr = err.Error()
	} else if !sc.PrepareOnly {
		if err := Pivot(o, sc.NoPivot); err != nil {
			rep.PivotErr = err.Error()
		} else if err := Finalize(sc.Spec, o); err != nil {
			rep.FinalizeErr = err.Error()
		} else {
			rep.Facts = gatherFacts()
		}
	}
	infos, err := mountinfo.GetMounts(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: mountinfo:", err)
		return 2
	}
	for _, mi := range infos {
		rep.Mounts = append(rep.Mounts, mi.Mountpoint)
	}
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		fmt.Fprintln(os.Stderr, "child: report:", err)
		return 2
	}
	return 0
}

// errName turns an error into the name of its errno, "ok" for nil.
func errName(err error) string {
	if err == nil {
		return "ok"
	}
	var en unix.Errno
	if errors.As(err, &en) {
		return unix.ErrnoName(en)
	}
	return err.Error()
}

var fsNames = map[int64]string{
	unix.PROC_SUPER_MAGIC:    "proc",
	unix.SYSFS_MAGIC:         "sysfs",
	unix.TMPFS_MAGIC:         "tmpfs",
	unix.DEVPTS_SUPER_MAGIC:  "devpts",
	0x19800202:               "mqueue",
	unix.CGROUP_SUPER_MAGIC:  "cgroup",
	unix.CGROUP2_SUPER_MAGIC: "cgroup2",
}

// fsInfo describes the filesystem of p: its type and its ro/nosuid/nodev/
// noexec flags.
func fsInfo(p string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return errName(err)
	}
	name, ok := fsNames[int64(st.Type)]
	if !ok {
		name = fmt.Sprintf("%#x", st.Type)
	}
	for _, f := range []struct {
		bit  int64
		name string
	}{{unix.ST_RDONLY, "ro"}, {unix.ST_NOSUID, "nosuid"}, {unix.ST_NODEV, "nodev"}, {unix.ST_NOEXEC, "noexec"}} {
		if int64(st.Flags)&f.bit != 0 {
			name += "," + f.name
		}
	}
	return name
}

// nodeInfo describes a file: "c 1:3", "dir", "file", "link -> target".
func nodeInfo(p string) string {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return errName(err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		return fmt.Sprintf("c %d:%d %04o", unix.Major(st.Rdev), unix.Minor(st.Rdev), st.Mode&0o7777)
	case unix.S_IFBLK:
		return fmt.Sprintf("b %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		return fmt.Sprintf("p %04o %d:%d", st.Mode&0o7777, st.Uid, st.Gid)
	case unix.S_IFDIR:
		return "dir"
	case unix.S_IFLNK:
		l, _ := os.Readlink(p)
		return "link -> " + l
	}
	return "file"
}

func readString(p string, max int) string {
	f, err := os.Open(p)
	if err != nil {
		return errName(err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(max)))
	if err != nil {
		return errName(err)
	}
	return string(b)
}

func createErr(p string) string {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
	if err == nil {
		f.Close()
		os.Remove(p)
	}
	return errName(err)
}

func writeErr(p string) string {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return errName(err)
	}
	defer f.Close()
	_, err = f.Write([]byte("x"))
	return errName(err)
}

func entries(p string) string {
	es, err := os.ReadDir(p)
	if err != nil {
		return errName(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return strings.Join(names, " ")
}

func hasLine(p, want string) string {
	f, err := os.Open(p)
	if err != nil {
		return errName(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if strings.TrimSpace(s.Text()) == want {
			return "yes"
		}
	}
	return "no"
}

// gatherFacts looks at the finished container from inside.
func gatherFacts() map[string]string {
	cwd, _ := os.Getwd()
	self, _ := os.Readlink("/proc/self")
	facts := map[string]string{
		"pid":           strconv.Itoa(os.Getpid()),
		"cwd":           cwd,
		"proc":          fsInfo("/proc"),
		"proc/self":     self,
		"proc/1/status": hasLine("/proc/1/status", "Pid:\t1"),
		"dev":           fsInfo("/dev"),
		"dev/null":      nodeInfo("/dev/null"),
		"dev/null w":    writeErr("/dev/null"),
		"dev/zero":      fmt.Sprintf("%q", readString("/dev/zero", 4)),
		"dev/fifo":      nodeInfo("/dev/testfifo"),
		"dev/pts":       fsInfo("/dev/pts"),
		"dev/ptmx":      nodeInfo("/dev/ptmx"),
		"dev/fd":        nodeInfo("/dev/fd"),
		"dev/stderr":    nodeInfo("/dev/stderr"),
		"dev/core":      nodeInfo("/dev/core"),
		"dev/shm":       fsInfo("/dev/shm"),
		"dev/mqueue":    fsInfo("/dev/mqueue"),
		"sys":           fsInfo("/sys"),
		"sys mkdir":     errName(os.Mkdir("/sys/berth-test", 0o755)),
		"proc/sys":      fsInfo("/proc/sys"),
		"proc/sys w":    errName(unix.Access("/proc/sys/kernel/hostname", unix.W_OK)),
		"kcore":         nodeInfo("/proc/kcore"),
		"timer_list":    nodeInfo("/proc/timer_list"),
		"timer_list rd": fmt.Sprintf("%q", readString("/proc/timer_list", 16)),
		"secret":        fsInfo("/secret"),
		"secret ls":     entries("/secret"),
		"secret create": createErr("/secret/x"),
		"root":          fsInfo("/"),
		"root create":   createErr("/x"),
		"data":          fsInfo("/data"),
		"data/hello":    readString("/data/hello", 100),
		"data create":   createErr("/data/new"),
		"etc":           fsInfo("/etc"),
		"etc/passwd":    readString("/etc/passwd", 200),
		"etc create":    createErr("/etc/new"),
		"etc/ro":        fsInfo("/etc/ro"),
		"etc/ro create": createErr("/etc/ro/new"),
		"cgroup":        fsInfo("/sys/fs/cgroup"),
		"cgroup ls":     entries("/sys/fs/cgroup"),
		"cgroup mkdir":  errName(os.Mkdir("/sys/fs/cgroup/berth-test", 0o755)),
	}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.procs"); err == nil {
		facts["cgroup procs"] = hasLine("/sys/fs/cgroup/cgroup.procs", "1")
	} else {
		facts["cgroup procs"] = hasLine("/sys/fs/cgroup/memory/cgroup.procs", "1")
	}
	cmd := exec.Command("/bin/busybox", "sh", "-c",
		`echo ok >/dev/null && test -c /dev/null && test -L /dev/ptmx && cat /data/hello && `+
			`if touch /x 2>/dev/null; then echo root-writable; else echo root-readonly; fi && ls /secret | wc -l`)
	cmd.Env = []string{"PATH=/bin"}
	out, err := cmd.CombinedOutput()
	facts["busybox"] = strings.Join(strings.Fields(string(out)), " ")
	facts["busybox err"] = errName(err)
	return facts
}

// testBase makes a temporary directory whose name marks everything the
// root tests create, and checks at the end that no mount under it is left
// in the host's mount table.
func testBase(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "berth-rootfs-test-")
	if err != nil {
		t.Fatal(err)
	}
	dir, err = filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		assertNoHostMounts(t, dir)
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("clean up %s: %v", dir, err)
		}
	})
	return dir
}

// assertNoHostMounts fails if the host's mount table has anything under
// dir.
func assertNoHostMounts(t testing.TB, dir string) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, dir) {
			t.Errorf("mount left on the host: %s", line)
		}
	}
}

// buildRootfs lays out a busybox image under dir.
func buildRootfs(t testing.TB, dir string) {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox not installed")
	}
	mkdirs(t, dir, "bin", "etc/ro", "secret", "root", "tmp")
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"etc/passwd":  "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":   "root:x:0:\ntty:x:5:\n",
		"secret/file": "top secret\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// hostCgroups returns the CgroupPaths that bind the test process' own
// cgroups, and whether the host is cgroup v2 only.
func hostCgroups(t testing.TB) (map[string]string, bool) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	type line struct{ ctrls, path string }
	var lines []line
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) == 3 {
			lines = append(lines, line{parts[1], parts[2]})
		}
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		for _, l := range lines {
			if l.ctrls == "" {
				return map[string]string{"": filepath.Join("/sys/fs/cgroup", l.path)}, true
			}
		}
		t.Fatal("no cgroup v2 line in /proc/self/cgroup")
	}
	infos, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup"))
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]string{}
	for _, l := range lines {
		if l.ctrls == "" {
			continue
		}
		for _, mi := range infos {
			opts := "," + mi.VFSOptions + ","
			if !strings.Contains(opts, ","+strings.Split(l.ctrls, ",")[0]+",") {
				continue
			}
			rel, err := filepath.Rel(mi.Root, l.path)
			if err != nil || strings.HasPrefix(rel, "..") {
				continue
			}
			for _, c := range strings.Split(l.ctrls, ",") {
				paths[strings.TrimPrefix(c, "name=")] = filepath.Join(mi.Mountpoint, rel)
			}
			break
		}
	}
	return paths, false
}

// runChild runs a scenario in a child in new namespaces and returns its
// report.
func runChild(t testing.TB, sc scenario, userns bool) report {
	t.Helper()
	cfg, err := json.Marshal(sc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(cfg))
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWIPC,
		Pdeathsig:  syscall.SIGKILL,
	}
	if userns {
		cmd.SysProcAttr.Cloneflags |= unix.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 65536}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 65536}}
		cmd.SysProcAttr.GidMappingsEnableSetgroups = true
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	var rep report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("child report: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	if sc.Iterations > 0 {
		return rep
	}
	t.Logf("child report: prepare %q, pivot %q, finalize %q\nmounts:\n  %s",
		rep.PrepareErr, rep.PivotErr, rep.FinalizeErr, strings.Join(rep.Mounts, "\n  "))
	return rep
}

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// TestContainerRootfs builds a busybox container with a default-like spec
// and checks it from inside, with pivot_root and with MS_MOVE, as real root
// and inside a user namespace.
func TestContainerRootfs(t *testing.T) {
	needRoot(t)
	cgroupPaths, cgroupV2 := hostCgroups(t)
	for _, v := range []struct {
		name      string
		userns    bool
		noPivot   bool
		noOpenat2 bool
	}{
		{"pivot_root", false, false, false},
		{"no pivot", false, true, false},
		{"userns pivot_root", true, false, false},
		{"userns no pivot", true, true, false},
		{"pivot_root without openat2", false, false, true},
		{"userns without openat2", true, false, true},
	} {
		t.Run(v.name, func(t *testing.T) {
			base := testBase(t)
			rootfs := filepath.Join(base, "rootfs")
			buildRootfs(t, rootfs)
			hostData := filepath.Join(base, "data")
			mkdirs(t, hostData, ".")
			if err := os.WriteFile(filepath.Join(hostData, "hello"), []byte("hello from the host\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			spec := &specs.Spec{
				Root: &specs.Root{Path: rootfs, Readonly: true},
				Mounts: append(defaultMounts(),
					specs.Mount{Destination: "/data", Type: "bind", Source: hostData, Options: []string{"rbind", "ro", "nosuid", "rprivate"}},
					specs.Mount{Destination: "/etc", Type: "tmpfs", Source: "tmpfs", Options: []string{"tmpcopyup", "nosuid", "nodev", "mode=755"}},
				),
				Linux: &specs.Linux{
					Devices:       []specs.LinuxDevice{{Path: "/dev/testfifo", Type: "p", FileMode: fileMode(0o640), UID: id(7), GID: id(8)}},
					ReadonlyPaths: []string{"/proc/sys", "/proc/sysrq-trigger", "/etc/ro"},
					MaskedPaths:   []string{"/proc/kcore", "/proc/timer_list", "/secret", "/proc/berth-missing"},
				},
			}
			rep := runChild(t, scenario{
				Spec: spec, Rootfs: rootfs, CgroupPaths: cgroupPaths, CgroupV2: cgroupV2,
				InUserNS: v.userns, NoPivot: v.noPivot, NoOpenat2: v.noOpenat2,
			}, v.userns)
			if rep.PrepareErr != "" || rep.PivotErr != "" || rep.FinalizeErr != "" {
				t.Fatalf("child failed: prepare %q, pivot %q, finalize %q", rep.PrepareErr, rep.PivotErr, rep.FinalizeErr)
			}
			want := map[string]string{
				"pid":           "1",
				"cwd":           "/",
				"proc":          "proc",
				"proc/self":     "1",
				"proc/1/status": "yes",
				"dev":           "tmpfs,nosuid",
				"dev/null":      "c 1:3 0666",
				"dev/null w":    "ok",
				"dev/zero":      `"\x00\x00\x00\x00"`,
				"dev/fifo":      "p 0640 7:8",
				"dev/pts":       "devpts,nosuid,noexec",
				"dev/ptmx":      "link -> pts/ptmx",
				"dev/fd":        "link -> /proc/self/fd",
				"dev/stderr":    "link -> /proc/self/fd/2",
				"dev/core":      "link -> /proc/kcore",
				"dev/shm":       "tmpfs,nosuid,nodev,noexec",
				"dev/mqueue":    "mqueue,nosuid,nodev,noexec",
				"sys":           "sysfs,ro,nosuid,nodev,noexec",
				"sys mkdir":     "EROFS",
				"proc/sys":      "proc,ro",
				"proc/sys w":    "EROFS",
				"timer_list":    "c 1:3 0666",
				"timer_list rd": `""`,
				"secret":        "tmpfs,ro,nosuid,nodev,noexec",
				"secret ls":     "",
				"secret create": "EROFS",
				"root":          fsInfo(rootfs) + ",ro",
				"root create":   "EROFS",
				"data":          fsInfo(hostData) + ",ro,nosuid",
				"data/hello":    "hello from the host\n",
				"data create":   "EROFS",
				"etc":           "tmpfs,nosuid,nodev",
				"etc/passwd":    "root:x:0:0:root:/root:/bin/sh\n",
				"etc create":    "ok",
				"etc/ro":        "tmpfs,ro,nosuid,nodev",
				"etc/ro create": "EROFS",
				"cgroup procs":  "yes",
				"cgroup mkdir":  "EROFS",
				"busybox":       "hello from the host root-readonly 0",
				"busybox err":   "ok",
			}
			// /proc/kcore exists only with CONFIG_PROC_KCORE; masking skips
			// it when it is missing.
			if _, err := os.Stat("/proc/kcore"); err == nil {
				want["kcore"] = want["dev/null"]
			} else {
				want["kcore"] = "ENOENT"
			}
			if v.userns {
				// Host nodes bound onto the tmpfs keep their own mode.
				want["dev/null"] = nodeInfo("/dev/null")
				want["timer_list"] = want["dev/null"]
				if want["kcore"] != "ENOENT" {
					want["kcore"] = want["dev/null"]
				}
			}
			if cgroupV2 {
				want["cgroup"] = "cgroup2,ro,nosuid,nodev,noexec"
			} else {
				want["cgroup"] = "tmpfs,ro,nosuid,nodev,noexec"
			}
			for k, w := range want {
				if g, ok := rep.Facts[k]; !ok || g != w {
					t.Errorf("%s: got %q, want %q", k, g, w)
				}
			}
			if !cgroupV2 {
				ls := " " + rep.Facts["cgroup ls"] + " "
				for ctrl := range cgroupPaths {
					if !strings.Contains(ls, " "+ctrl+" ") {
						t.Errorf("/sys/fs/cgroup lacks %q: %q", ctrl, rep.Facts["cgroup ls"])
					}
				}
			}
			// Inside, the mount table shows the container's mounts under
			// "/", not the host paths.
			for _, mp := range rep.Mounts {
				if strings.HasPrefix(mp, base) {
					t.Errorf("host path visible in the container's mount table: %s", mp)
				}
			}
			assertNoHostMounts(t, base)
		})
	}
}

// TestHostileImage runs Prepare on images whose symlinks point out of the
// rootfs. Either Prepare refuses, or every mount lands inside the rootfs;
// in no case does anything appear in the outside directory.
func TestHostileImage(t *testing.T) {
	needRoot(t)
	t.Run("openat2", func(t *testing.T) {
		if !openat2Supported() {
			t.Skip("the kernel has no openat2")
		}
		testHostileImage(t, false)
	})
	t.Run("securejoin", func(t *testing.T) { testHostileImage(t, true) })
}

func testHostileImage(t *testing.T, noOpenat2 bool) {
	// Through the container's procfs, /proc/self/root is the host's root.
	// openat2 refuses such a magic link; filepath-securejoin reads it as a
	// link to "/", which is the rootfs.
	magicErr, magicLands := "too many levels of symbolic links", ""
	if noOpenat2 {
		magicErr, magicLands = "", "/OUT"
	}
	tests := []struct {
		name string
		// links are symlinks to create in the rootfs; "OUT" in a target
		// stands for the outside directory without its leading "/".
		links   map[string]string
		mounts  func(src string) []specs.Mount
		errHas  string
		landsAt string // mount point, relative to the rootfs, that must exist; "OUT" as above
		nodeAt  string // device node, relative to the rootfs, that must exist afterwards
	}{
		{
			name:   "proc relative symlink",
			links:  map[string]string{"proc": "../../../../../../../../OUT"},
			mounts: func(string) []specs.Mount { return defaultMounts() },
			errHas: "symlink",
		},
		{
			name:   "proc absolute symlink",
			links:  map[string]string{"proc": "/../../../OUT"},
			mounts: func(string) []specs.Mount { return defaultMounts() },
			errHas: "symlink",
		},
		{
			name:    "dev to root",
			links:   map[string]string{"dev": "/"},
			mounts:  func(string) []specs.Mount { return defaultMounts() },
			errHas:  "container's root",
			landsAt: "/proc",
		},
		{
			name:  "dev symlink out without a dev mount",
			links: map[string]string{"dev": "../../../../../../../OUT"},
			mounts: func(string) []specs.Mount {
				return []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}}
			},
			nodeAt: "/OUT/null",
		},
		{
			name:  "bind destination climbing out",
			links: map[string]string{"data": "../../../../../../../../OUT", "mnt": "/OUT/../../.."},
			mounts: func(src string) []specs.Mount {
				return []specs.Mount{
					{Destination: "/data", Type: "bind", Source: src, Options: []string{"rbind", "ro"}},
					{Destination: "/mnt/x", Type: "tmpfs", Source: "tmpfs"},
					{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid"}},
				}
			},
			landsAt: "/OUT",
		},
		{
			name:  "bind destination through /proc/self/root",
			links: map[string]string{"data": "/proc/self/root/OUT"},
			mounts: func(src string) []specs.Mount {
				return []specs.Mount{
					{Destination: "/proc", Type: "proc", Source: "proc"},
					{Destination: "/data", Type: "bind", Source: src, Options: []string{"rbind"}},
					{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid"}},
				}
			},
			errHas:  magicErr,
			landsAt: magicLands,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := testBase(t)
			rootfs := filepath.Join(base, "rootfs")
			outside := filepath.Join(base, "outside")
			src := filepath.Join(base, "src")
			mkdirs(t, base, "rootfs", "outside", "src")
			if err := os.WriteFile(filepath.Join(src, "marker"), []byte("m"), 0o644); err != nil {
				t.Fatal(err)
			}
			out := strings.TrimPrefix(outside, "/")
			for name, target := range tt.links {
				if err := os.Symlink(strings.ReplaceAll(target, "OUT", out), filepath.Join(rootfs, name)); err != nil {
					t.Fatal(err)
				}
			}
			spec := &specs.Spec{Root: &specs.Root{Path: rootfs}, Mounts: tt.mounts(src), Linux: &specs.Linux{}}
			rep := runChild(t, scenario{Spec: spec, Rootfs: rootfs, PrepareOnly: true, NoOpenat2: noOpenat2}, false)

			if tt.errHas != "" {
				if !strings.Contains(rep.PrepareErr, tt.errHas) {
					t.Errorf("Prepare error = %q, want one containing %q", rep.PrepareErr, tt.errHas)
				}
			} else if rep.PrepareErr != "" {
				t.Errorf("Prepare: %s", rep.PrepareErr)
			}
			// The child's own mount table: every mount under the test's
			// directory is under the rootfs, and none is on the outside
			// directory.
			mounted := map[string]bool{}
			for _, mp := range rep.Mounts {
				mounted[mp] = true
				if strings.HasPrefix(mp, base) && mp != rootfs && !strings.HasPrefix(mp, rootfs+"/") {
					t.Errorf("mount outside the rootfs: %s", mp)
				}
			}
			if !mounted[rootfs] {
				t.Errorf("the rootfs bind is missing from the child's mount table")
			}
			if tt.landsAt != "" {
				want := rootfs + strings.ReplaceAll(tt.landsAt, "OUT", out)
				if !mounted[want] {
					t.Errorf("no mount at %s inside the rootfs; mounts: %q", want, rep.Mounts)
				}
			}
			if tt.nodeAt != "" {
				p := rootfs + strings.ReplaceAll(tt.nodeAt, "OUT", out)
				if got := nodeInfo(p); !strings.HasPrefix(got, "c 1:3 ") {
					t.Errorf("%s: %s, want the null device", p, got)
				}
			}
			// And on the host, after the child is gone.
			if es, err := os.ReadDir(outside); err != nil || len(es) != 0 {
				t.Errorf("outside directory touched: %v, %v", es, err)
			}
			assertNoHostMounts(t, base)
		})
	}
}
