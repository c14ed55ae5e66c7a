package runtime

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"unsafe"

	"github.com/berth-dev/berth/internal/runtime/seccomp"
	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// procOps is every kernel call the init makes to configure the container's
// process, so that their order can be checked without root.
type procOps interface {
	Sethostname(name string) error
	Setdomainname(name string) error
	WriteFile(path, data string) error
	Setrlimit(resource int, soft, hard uint64) error
	SetNoNewPrivs() error
	LoadSeccomp(p *seccomp.Program) error
	DropBounding(keep []string) error
	SetKeepCaps(on bool) error
	Setgroups(gids []int) error
	Setresgid(gid int) error
	Setresuid(uid int) error
	ApplyCaps(c *specs.LinuxCapabilities) error
	Umask(mask int)
	Chdir(dir string) error
	Exec(path string, args, env []string) error
}

// applyContainer sets what belongs to the container rather than a process:
// hostname, domainname, sysctls.
func applyContainer(spec *specs.Spec, ops procOps) error {
	if spec.Hostname != "" {
		if !hasNS(spec, specs.UTSNamespace) {
			return fmt.Errorf("hostname %q needs a private UTS namespace", spec.Hostname)
		}
		if err := ops.Sethostname(spec.Hostname); err != nil {
			return fmt.Errorf("sethostname: %w", err)
		}
	}
	if spec.Domainname != "" {
		if !hasNS(spec, specs.UTSNamespace) {
			return fmt.Errorf("domainname %q needs a private UTS namespace", spec.Domainname)
		}
		if err := ops.Setdomainname(spec.Domainname); err != nil {
			return fmt.Errorf("setdomainname: %w", err)
		}
	}
	for _, k := range sortedKeys(spec.Linux.Sysctl) {
		if strings.Contains(k, "..") || strings.ContainsAny(k, "\x00") {
			return fmt.Errorf("invalid sysctl %q", k)
		}
		path := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		if err := ops.WriteFile(path, spec.Linux.Sysctl[k]); err != nil {
			return fmt.Errorf("sysctl %s: %w", k, err)
		}
	}
	return nil
}

// applyProcess sets the process' resource limits and OOM score.
func applyProcess(p *specs.Process, ops procOps) error {
	for _, rl := range p.Rlimits {
		res, ok := rlimitByName[rl.Type]
		if !ok {
			return fmt.Errorf("unknown rlimit %q", rl.Type)
		}
		if err := ops.Setrlimit(res, rl.Soft, rl.Hard); err != nil {
			return fmt.Errorf("setrlimit %s: %w", rl.Type, err)
		}
	}
	if p.OOMScoreAdj != nil {
		if err := ops.WriteFile("/proc/self/oom_score_adj", fmt.Sprint(*p.OOMScoreAdj)); err != nil {
			return fmt.Errorf("oom_score_adj: %w", err)
		}
	}
	return nil
}

// applySecurity switches to the process' identity: no_new_privs, seccomp
// (now while CAP_SYS_ADMIN is still held, or returned to be loaded right
// before execve when no_new_privs allows it), the capability bounding set,
// groups, gid, uid, the other capability sets, umask and working directory.
func applySecurity(p *specs.Process, sc *seccomp.Program, ops procOps) (late *seccomp.Program, err error) {
	if p.NoNewPrivileges {
		if err := ops.SetNoNewPrivs(); err != nil {
			return nil, fmt.Errorf("no_new_privs: %w", err)
		}
	}
	if sc != nil {
		if p.NoNewPrivileges {
			late = sc
		} else if err := ops.LoadSeccomp(sc); err != nil {
			return nil, fmt.Errorf("seccomp: %w", err)
		}
	}
	caps := p.Capabilities
	if caps == nil {
		caps = &specs.LinuxCapabilities{}
	}
	if err := ops.DropBounding(caps.Bounding); err != nil {
		return nil, fmt.Errorf("capability bounding set: %w", err)
	}
	if err := ops.SetKeepCaps(true); err != nil {
		return nil, fmt.Errorf("keep capabilities: %w", err)
	}
	// Working directory first as root too: a directory only root may enter
	// still works, one the user may enter is re-entered below.
	_ = ops.Chdir(cwdOf(p))
	gids := make([]int, 0, len(p.User.AdditionalGids))
	for _, g := range p.User.AdditionalGids {
		gids = append(gids, int(g))
	}
	if err := ops.Setgroups(gids); err != nil {
		return nil, fmt.Errorf("setgroups: %w", err)
	}
	if err := ops.Setresgid(int(p.User.GID)); err != nil {
		return nil, fmt.Errorf("setgid %d: %w", p.User.GID, err)
	}
	if err := ops.Setresuid(int(p.User.UID)); err != nil {
		return nil, fmt.Errorf("setuid %d: %w", p.User.UID, err)
	}
	if err := ops.SetKeepCaps(false); err != nil {
		return nil, fmt.Errorf("keep capabilities: %w", err)
	}
	if err := ops.ApplyCaps(caps); err != nil {
		return nil, fmt.Errorf("capabilities: %w", err)
	}
	if p.User.Umask != nil {
		ops.Umask(int(*p.User.Umask))
	} else {
		ops.Umask(0o022)
	}
	if err := ops.Chdir(cwdOf(p)); err != nil {
		return nil, fmt.Errorf("chdir to cwd (%q) set in config.json: %w", cwdOf(p), err)
	}
	return late, nil
}

func cwdOf(p *specs.Process) string {
	if p.Cwd == "" {
		return "/"
	}
	return p.Cwd
}

var rlimitByName = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

// capByName maps "CAP_SYS_ADMIN" to the library's constant.
var capByName = func() map[string]capability.Cap {
	m := map[string]capability.Cap{}
	for _, c := range capability.ListKnown() {
		m["CAP_"+strings.ToUpper(c.String())] = c
	}
	return m
}()

// parseCaps converts names; unknown names are an error, capabilities this
// kernel does not have or this process does not hold are skipped (they
// cannot be granted by anyone).
func parseCaps(names []string, held func(capability.Cap) bool) ([]capability.Cap, error) {
	last, err := capability.LastCap()
	if err != nil {
		return nil, err
	}
	out := make([]capability.Cap, 0, len(names))
	for _, n := range names {
		c, ok := capByName[strings.ToUpper(n)]
		if !ok {
			return nil, fmt.Errorf("unknown capability %q", n)
		}
		if c > last || (held != nil && !held(c)) {
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// realOps performs procOps on the calling thread.
type realOps struct{}

func (realOps) Sethostname(n string) error   { return unix.Sethostname([]byte(n)) }
func (realOps) Setdomainname(n string) error { return unix.Setdomainname([]byte(n)) }
func (realOps) WriteFile(path, data string) error {
	return os.WriteFile(path, []byte(data), 0)
}
func (realOps) Setrlimit(res int, soft, hard uint64) error {
	// Through package syscall, so that the Go runtime forgets the
	// RLIMIT_NOFILE it raised at start-up instead of restoring it at exec.
	return syscall.Setrlimit(res, &syscall.Rlimit{Cur: soft, Max: hard})
}
func (realOps) SetNoNewPrivs() error { return unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }
func (realOps) LoadSeccomp(p *seccomp.Program) error {
	return p.Load()
}
func (realOps) DropBounding(keep []string) error {
	// Nothing is loaded from /proc (a container without a mount namespace
	// has none): the wanted bounding set is given in full.
	c, err := capability.NewPid2(0)
	if err != nil {
		return err
	}
	caps, err := parseCaps(keep, nil)
	if err != nil {
		return err
	}
	c.Clear(capability.BOUNDS)
	c.Set(capability.BOUNDING, caps...)
	return c.Apply(capability.BOUNDS)
}
func (realOps) SetKeepCaps(on bool) error {
	v := 0
	if on {
		v = 1
	}
	return unix.Prctl(unix.PR_SET_KEEPCAPS, uintptr(v), 0, 0, 0)
}
func (realOps) Setgroups(gids []int) error {
	err := unix.Setgroups(gids)
	if err != nil && len(gids) == 0 && setgroupsDenied() {
		return nil // a user namespace with setgroups denied: nothing to drop
	}
	return err
}
func (realOps) Setresgid(gid int) error { return unix.Setresgid(gid, gid, gid) }
func (realOps) Setresuid(uid int) error { return unix.Setresuid(uid, uid, uid) }
func (realOps) ApplyCaps(spec *specs.LinuxCapabilities) error {
	c, err := capability.NewPid2(0)
	if err != nil {
		return err
	}
	permitted, err := permittedCaps()
	if err != nil {
		return err
	}
	held := func(x capability.Cap) bool { return x < 64 && permitted&(1<<uint(x)) != 0 }
	sets := []struct {
		which capability.CapType
		names []string
	}{
		{capability.EFFECTIVE, spec.Effective},
		{capability.PERMITTED, spec.Permitted},
		{capability.INHERITABLE, spec.Inheritable},
		{capability.AMBIENT, spec.Ambient},
	}
	parsed := make([][]capability.Cap, len(sets))
	for i, s := range sets {
		if parsed[i], err = parseCaps(s.names, held); err != nil {
			return err
		}
	}
	c.Clear(capability.CAPS | capability.AMBS)
	for i, s := range sets[:3] {
		c.Set(s.which, parsed[i]...)
	}
	if err := c.Apply(capability.CAPS); err != nil {
		return err
	}
	// An ambient capability can only be raised when it is both permitted
	// and inheritable; like other runtimes, skip those that cannot be
	// rather than failing a spec that lists ambient without inheritable.
	if err := capability.ResetAmbient(); err != nil && !errors.Is(err, unix.EINVAL) {
		return err
	}
	for _, a := range parsed[3] {
		_ = capability.SetAmbient(true, a)
	}
	return nil
}
func (realOps) Umask(mask int)         { unix.Umask(mask) }
func (realOps) Chdir(dir string) error { return unix.Chdir(dir) }
func (realOps) Exec(path string, args, env []string) error {
	defaultIgnoredSignals()
	err := unix.Exec(path, args, env)
	return fmt.Errorf("exec %s: %w", path, err)
}

// defaultIgnoredSignals gives the default action back to the signals this
// init inherited as ignored (its monitor ignores SIGHUP, SIGINT, SIGTSTP and
// more): an ignored signal stays ignored across exec, and a shell cannot
// even trap a signal that was ignored when it started. Handled signals need
// nothing: exec resets them.
func defaultIgnoredSignals() {
	// Only the first word (the handler) is read; the rest is room for
	// the kernel's struct sigaction on any architecture.
	var old, dfl [8]uintptr
	for sig := 1; sig <= 64; sig++ { // real-time signals too
		_, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), 0, uintptr(unsafe.Pointer(&old)), 8, 0, 0)
		if e == 0 && old[0] == 1 { // SIG_IGN
			unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&dfl)), 0, 8, 0, 0)
		}
	}
}

// permittedCaps returns the calling thread's permitted capability set, with
// capget(2) rather than /proc, which may not exist in the container.
func permittedCaps() (uint64, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return 0, fmt.Errorf("capget: %w", err)
	}
	return uint64(data[0].Permitted) | uint64(data[1].Permitted)<<32, nil
}

func setgroupsDenied() bool {
	data, err := os.ReadFile("/proc/self/setgroups")
	return err == nil && strings.TrimSpace(string(data)) == "deny"
}

// KnownCapabilities lists the capability names this runtime understands.
func KnownCapabilities() []string {
	names := make([]string, 0, len(capByName))
	for _, c := range capability.ListKnown() {
		names = append(names, "CAP_"+strings.ToUpper(c.String()))
	}
	return names
}
