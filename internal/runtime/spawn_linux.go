package runtime

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/berth-dev/berth/internal/runtime/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// nsKinds maps OCI namespace types to the names of /proc/<pid>/ns entries and
// to their clone flags.
var nsKinds = map[specs.LinuxNamespaceType]struct {
	proc string
	flag int
}{
	specs.UserNamespace:    {"user", unix.CLONE_NEWUSER},
	specs.IPCNamespace:     {"ipc", unix.CLONE_NEWIPC},
	specs.UTSNamespace:     {"uts", unix.CLONE_NEWUTS},
	specs.NetworkNamespace: {"net", unix.CLONE_NEWNET},
	specs.PIDNamespace:     {"pid", unix.CLONE_NEWPID},
	specs.MountNamespace:   {"mnt", unix.CLONE_NEWNS},
	specs.CgroupNamespace:  {"cgroup", unix.CLONE_NEWCGROUP},
	specs.TimeNamespace:    {"time", unix.CLONE_NEWTIME},
}

// nsPlan is what the nsenter constructor of a new init process does.
type nsPlan struct {
	join  []string // kind:path
	flags int      // CLONE_NEW* to unshare
	// cgroup says how the child joins the container's cgroup.
	cgroup cgroupJoin
	// timeOffsets is the content of timens_offsets for a new time
	// namespace ("monotonic SECS NANOSECS" lines).
	timeOffsets string
	// userMaps is set when a new user namespace needs uid/gid maps.
	uidMaps, gidMaps []specs.LinuxIDMapping
}

func (p nsPlan) env() []string {
	return []string{
		"_BERTH_NSEXEC_JOIN=" + strings.Join(p.join, ","),
		"_BERTH_NSEXEC_FLAGS=" + strconv.Itoa(p.flags),
		"_BERTH_NSEXEC_CGROUPS=" + strings.Join(p.cgroup.files, "\n"),
		"_BERTH_NSEXEC_TIMEOFFSETS=" + p.timeOffsets,
	}
}

// planFromSpec turns the spec's namespace list into new/joined namespaces.
func planFromSpec(spec *specs.Spec) nsPlan {
	var p nsPlan
	for _, ns := range spec.Linux.Namespaces {
		k := nsKinds[ns.Type]
		if ns.Path != "" {
			p.join = append(p.join, k.proc+":"+ns.Path)
			continue
		}
		p.flags |= k.flag
	}
	if p.flags&unix.CLONE_NEWUSER != 0 {
		p.uidMaps, p.gidMaps = spec.Linux.UIDMappings, spec.Linux.GIDMappings
	}
	if p.flags&unix.CLONE_NEWTIME != 0 {
		for _, clock := range sortedKeys(spec.Linux.TimeOffsets) {
			o := spec.Linux.TimeOffsets[clock]
			p.timeOffsets += fmt.Sprintf("%s %d %d\n", clock, o.Secs, o.Nanosecs)
		}
	}
	return p
}

// planJoin joins every namespace of pid that differs from the caller's.
func planJoin(pid int) nsPlan {
	var p nsPlan
	for _, kind := range []string{"user", "ipc", "uts", "net", "pid", "mnt", "cgroup", "time"} {
		theirs := fmt.Sprintf("/proc/%d/ns/%s", pid, kind)
		var a, b unix.Stat_t
		if unix.Stat(theirs, &a) != nil {
			continue // kernel without that namespace type
		}
		if unix.Stat("/proc/self/ns/"+kind, &b) == nil && a.Ino == b.Ino && a.Dev == b.Dev {
			continue
		}
		p.join = append(p.join, kind+":"+theirs)
	}
	return p
}

// message is one line of the JSON conversation between the runtime and its
// init process after the nsenter stage.
type message struct {
	Type  string `json:"type"`
	Error string `json:"error,omitempty"`
}

// initConfig is what an init process needs to set the container up.
type initConfig struct {
	Mode        string            `json:"mode"` // "create" or "exec"
	ID          string            `json:"id"`
	Bundle      string            `json:"bundle,omitempty"`
	Pid         int               `json:"pid"` // the init's PID as the runtime sees it
	Spec        *specs.Spec       `json:"spec"`
	Process     *specs.Process    `json:"process"`
	Rootfs      string            `json:"rootfs,omitempty"`
	CgroupPaths map[string]string `json:"cgroupPaths,omitempty"`
	CgroupV2    bool              `json:"cgroupV2,omitempty"`
	NoPivot     bool              `json:"noPivot,omitempty"`
	MountNS     bool              `json:"mountNS,omitempty"` // new or joined: the rootfs is set up in it
	InUserNS    bool              `json:"inUserNS,omitempty"`
	Console     bool              `json:"console,omitempty"` // a console socket is fd 5
	// Seccomp is the spec's profile, compiled by the runtime.
	Seccomp *seccomp.Program `json:"seccomp,omitempty"`
}

// forInit returns what of spec the init process uses: the cgroup limits are
// the runtime's business and the seccomp profile travels compiled (see
// prepareSeccomp), so neither is sent to be decoded again.
func forInit(spec *specs.Spec) *specs.Spec {
	s := *spec
	if spec.Linux != nil {
		l := *spec.Linux
		l.Resources, l.Seccomp = nil, nil
		s.Linux = &l
	}
	return &s
}

// prepareSeccomp compiles the spec's seccomp profile, if it has one.
func prepareSeccomp(spec *specs.Spec) (*seccomp.Program, error) {
	if spec.Linux == nil || spec.Linux.Seccomp == nil {
		return nil, nil
	}
	return seccomp.Prepare(spec.Linux.Seccomp)
}

// Fixed descriptor numbers in an init process.
const (
	initSyncFd    = 3
	initFifoFd    = 4 // the state directory, holding the exec fifo
	initConsoleFd = 5
)

// initProc is the parent's side of a starting init process.
type initProc struct {
	cmd   *exec.Cmd
	sock  *os.File
	rd    *bufio.Reader
	pid   int // the process that continues into Go (may be a grandchild)
	child bool
}

// spawn starts the init binary with the nsenter plan, places it in its
// cgroup, writes uid/gid maps, and returns once the final PID is known.
// extra are the descriptors 4, 5, ... of the child.
//
// Moving another process into a cgroup through cgroup.procs takes the
// kernel's cgroup threadgroup lock for writing, and the first writer after a
// quiet period waits for a full RCU grace period (5 to 15 ms on a 250 Hz
// kernel). So the child never gets moved that way when it can be avoided: on
// cgroup v2 it is cloned straight into its cgroup (CLONE_INTO_CGROUP), on v1
// it moves itself, single-threaded, by writing "0" to each hierarchy's
// "tasks" file, which does not take that lock (see cgroupJoin).
//
// whileStarting, when set, runs after the child is started and before it is
// let past its first wait: work the child does not need yet (the cgroup it
// joins then, the state files) overlaps with its exec.
func (r *Runtime) spawn(plan nsPlan, stdio IO, extra []*os.File, whileStarting func() error) (*initProc, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	parent := os.NewFile(uintptr(fds[0]), "init-sync-parent")
	child := os.NewFile(uintptr(fds[1]), "init-sync-child")
	defer child.Close()

	stdin, c1, err := nullFile(stdio.Stdin, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer c1()
	stdout, c2, err := nullFile(stdio.Stdout, os.O_WRONLY)
	if err != nil {
		return nil, err
	}
	defer c2()
	stderr, c3, err := nullFile(stdio.Stderr, os.O_WRONLY)
	if err != nil {
		return nil, err
	}
	defer c3()

	newCmd := func(attr *syscall.SysProcAttr) *exec.Cmd {
		return &exec.Cmd{
			Path:        r.InitPath,
			Args:        append([]string{"berth-init"}, r.InitArgs...),
			Env:         append(plan.env(), "_BERTH_NSEXEC_FD="+strconv.Itoa(initSyncFd), "GOMAXPROCS=1"),
			Stdin:       stdin,
			Stdout:      stdout,
			Stderr:      stderr,
			ExtraFiles:  append([]*os.File{child}, extra...),
			SysProcAttr: attr,
		}
	}
	add := plan.cgroup.add
	var cmd *exec.Cmd
	if plan.cgroup.dir != "" {
		dir, err := os.Open(plan.cgroup.dir)
		if err != nil {
			parent.Close()
			return nil, fmt.Errorf("cgroup: %w", err)
		}
		defer dir.Close()
		cmd = newCmd(&syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())})
		if err = cmd.Start(); err != nil {
			// A kernel without clone3/CLONE_INTO_CGROUP (before 5.7):
			// start normally and move the child while it waits.
			cmd, add = nil, plan.cgroup.fallback
		}
	}
	if cmd == nil {
		cmd = newCmd(nil)
		err = cmd.Start()
	}
	if err != nil {
		parent.Close()
		return nil, fmt.Errorf("start init: %w", err)
	}
	p := &initProc{cmd: cmd, sock: parent, rd: bufio.NewReader(parent)}
	fail := func(err error) (*initProc, error) {
		p.kill()
		return nil, err
	}
	if whileStarting != nil {
		if err := whileStarting(); err != nil {
			return fail(err)
		}
	}
	if err := p.expectByte('R'); err != nil {
		return fail(err)
	}
	if add != nil {
		if err := add(cmd.Process.Pid); err != nil {
			return fail(err)
		}
	}
	if _, err := parent.Write([]byte{'G'}); err != nil {
		return fail(fmt.Errorf("init sync: %w", err))
	}
	if plan.flags&unix.CLONE_NEWUSER != 0 {
		if err := p.expectByte('U'); err != nil {
			return fail(err)
		}
		if err := writeIDMaps(cmd.Process.Pid, plan.uidMaps, plan.gidMaps); err != nil {
			return fail(err)
		}
		if _, err := parent.Write([]byte{'M'}); err != nil {
			return fail(fmt.Errorf("init sync: %w", err))
		}
	}
	line, err := p.rd.ReadString('\n')
	if err != nil {
		return fail(p.exitError("init exited before reporting its PID"))
	}
	switch {
	case strings.HasPrefix(line, "E"):
		return fail(errors.New(strings.TrimSpace(line[1:])))
	case strings.HasPrefix(line, "P"):
		p.pid, err = strconv.Atoi(strings.TrimSpace(line[1:]))
		if err != nil {
			return fail(fmt.Errorf("init sync: bad PID line %q", line))
		}
	default:
		return fail(fmt.Errorf("init sync: unexpected %q", line))
	}
	if p.pid == cmd.Process.Pid {
		p.child = true
	} else {
		// The intermediate process of the PID namespace dance exits at once.
		if err := cmd.Wait(); err != nil {
			return fail(fmt.Errorf("init (intermediate): %w", err))
		}
	}
	return p, nil
}

func (p *initProc) expectByte(want byte) error {
	b, err := p.rd.ReadByte()
	if err != nil {
		return p.exitError("init exited during namespace setup")
	}
	if b == 'E' {
		line, _ := p.rd.ReadString('\n')
		return errors.New(strings.TrimSpace(line))
	}
	if b != want {
		return fmt.Errorf("init sync: expected %q, got %q", want, b)
	}
	return nil
}

// exitError explains a premature end of the init process.
func (p *initProc) exitError(what string) error {
	if rest, _ := io.ReadAll(p.rd); len(rest) > 0 {
		s := strings.TrimSpace(string(rest))
		if strings.HasPrefix(s, "E") {
			return errors.New(s[1:])
		}
	}
	return errors.New(what)
}

func (p *initProc) send(v any) error {
	return json.NewEncoder(p.sock).Encode(v)
}

// recv reads the next message; an error message becomes an error.
func (p *initProc) recv(dec *json.Decoder) (message, error) {
	var m message
	if err := dec.Decode(&m); err != nil {
		if errors.Is(err, io.EOF) {
			return m, io.EOF
		}
		return m, fmt.Errorf("init sync: %w", err)
	}
	if m.Type == "error" {
		return m, errors.New(m.Error)
	}
	return m, nil
}

// kill ends a half-started init process and reaps what can be reaped.
func (p *initProc) kill() {
	if p.pid > 0 {
		_ = unix.Kill(p.pid, unix.SIGKILL)
		if !p.child {
			var ws unix.WaitStatus
			_, _ = unix.Wait4(p.pid, &ws, 0, nil)
		}
	}
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
	p.sock.Close()
}

func writeIDMaps(pid int, uids, gids []specs.LinuxIDMapping) error {
	format := func(m []specs.LinuxIDMapping) []byte {
		var b strings.Builder
		for _, e := range m {
			fmt.Fprintf(&b, "%d %d %d\n", e.ContainerID, e.HostID, e.Size)
		}
		return []byte(b.String())
	}
	if len(uids) > 0 {
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/uid_map", pid), format(uids), 0); err != nil {
			return fmt.Errorf("write uid_map: %w", err)
		}
	}
	if len(gids) > 0 {
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/gid_map", pid), format(gids), 0); err != nil {
			return fmt.Errorf("write gid_map: %w", err)
		}
	}
	return nil
}

// waitStatus turns a wait status into a shell-style exit code.
func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// cgroupJoin is how a new init or exec process enters the container's
// cgroup (see spawn): exactly one of files, dir or add is set.
type cgroupJoin struct {
	files    []string        // cgroup v1: "tasks" files the child writes "0" into
	dir      string          // cgroup v2: the directory the child is cloned into
	add      func(int) error // otherwise: the parent moves the child
	fallback func(int) error // for dir, when the kernel cannot clone into a cgroup
}

func cgroupJoinFor(cg cgroupManager) cgroupJoin {
	paths := cg.Paths()
	if cg.Version() != 1 {
		if dir := paths[""]; dir != "" {
			return cgroupJoin{dir: dir, fallback: cg.Add}
		}
		return cgroupJoin{add: cg.Add}
	}
	var files []string
	for _, dir := range paths {
		files = append(files, filepath.Join(dir, "tasks"))
	}
	sort.Strings(files)
	return cgroupJoin{files: files}
}
