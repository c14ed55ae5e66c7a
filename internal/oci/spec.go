// Package oci turns a container's Docker configuration (Config and
// HostConfig, already merged with its image's config) into the OCI runtime
// configuration berth's runtime executes.
package oci

import (
	"fmt"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/runtime/specgen"
	"github.com/containerd/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// DefaultStopSignal is the signal `stop` sends first when neither the
// container nor its image names one.
const DefaultStopSignal = "SIGTERM"

// defaultShmSize is Docker's /dev/shm size: 64 MiB.
const defaultShmSize = 64 << 20

// InitPath is where `run --init` mounts berth's reaper in the container.
const InitPath = "/sbin/berth-init"

// Opts is everything Spec needs besides the container's configuration.
type Opts struct {
	ID     string
	Rootfs string // merged root filesystem of the container
	// Files are host files bind-mounted over the container's /etc/hostname,
	// /etc/hosts and /etc/resolv.conf (empty: not mounted).
	HostnamePath, HostsPath, ResolvConfPath string
	// User is the resolved user of the process.
	User specs.User
	// HostCapabilities is the host's capability bounding set, which
	// --privileged grants (not "all capabilities": a host may lack some).
	HostCapabilities []string
	// InitBinary is the host path of the reaper for --init.
	InitBinary string
	// CgroupParent is the cgroup under which containers go ("/berth").
	CgroupParent string
	// NetnsPath is the network namespace prepared for the container
	// (bridge networks); empty: a new one with only lo.
	NetnsPath string
}

// Spec builds the runtime configuration of a container. cfg must already
// hold the image's defaults (Env, Cmd, Entrypoint, WorkingDir, User, ...).
func Spec(cfg *containertypes.Config, hc *containertypes.HostConfig, o Opts) (*specs.Spec, error) {
	if hc == nil {
		hc = &containertypes.HostConfig{}
	}
	s := specgen.Default()
	s.Root = &specs.Root{Path: o.Rootfs, Readonly: hc.ReadonlyRootfs}
	s.Hostname = cfg.Hostname
	s.Domainname = cfg.Domainname

	args := slices.Concat([]string(cfg.Entrypoint), []string(cfg.Cmd))
	if len(args) == 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage("no command specified")
	}
	if hc.Init != nil && *hc.Init {
		if o.InitBinary == "" {
			return nil, errdefs.ErrNotImplemented.WithMessage("--init: no init binary available")
		}
		args = append([]string{InitPath}, args...)
		s.Mounts = append(s.Mounts, specs.Mount{Destination: InitPath, Type: "bind", Source: o.InitBinary, Options: []string{"rbind", "ro", "nosuid", "nodev"}})
	}
	p := s.Process
	p.Args = args
	p.Terminal = cfg.Tty
	p.Env = ProcessEnv(cfg)
	p.Cwd = cfg.WorkingDir
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	p.User = o.User
	p.Rlimits = []specs.POSIXRlimit{defaultNoFile()}
	for _, u := range hc.Ulimits {
		if err := setRlimit(p, u.Name, u.Soft, u.Hard); err != nil {
			return nil, err
		}
	}
	if hc.OomScoreAdj != 0 {
		adj := hc.OomScoreAdj
		p.OOMScoreAdj = &adj
	}

	caps, err := capabilities(hc, o.HostCapabilities)
	if err != nil {
		return nil, err
	}
	p.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: slices.Clone(caps)}
	p.NoNewPrivileges = slices.Contains(hc.SecurityOpt, "no-new-privileges") || slices.Contains(hc.SecurityOpt, "no-new-privileges:true")

	s.Mounts = append(s.Mounts, etcMounts(o)...)
	if err := setNamespaces(s, hc); err != nil {
		return nil, err
	}
	if o.NetnsPath != "" {
		for i := range s.Linux.Namespaces {
			if s.Linux.Namespaces[i].Type == specs.NetworkNamespace {
				s.Linux.Namespaces[i].Path = o.NetnsPath
			}
		}
	}
	if err := setMounts(s, hc); err != nil {
		return nil, err
	}
	s.Linux.Sysctl = hc.Sysctls
	s.Linux.CgroupsPath = path.Join(cgroupParent(o.CgroupParent, hc.CgroupParent), o.ID)
	setResources(s.Linux.Resources, &hc.Resources)

	if hc.Privileged {
		s.Linux.MaskedPaths = nil
		s.Linux.ReadonlyPaths = nil
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		for i, m := range s.Mounts {
			if m.Destination == "/sys" || m.Destination == "/sys/fs/cgroup" {
				s.Mounts[i].Options = slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return o == "ro" })
			}
		}
	}
	if err := setSeccomp(s, hc); err != nil {
		return nil, err
	}
	return s, nil
}

// ProcessEnv is the environment of the container's processes: the
// configured variables plus PATH, HOSTNAME and, with a TTY, TERM, as Docker
// adds them.
func ProcessEnv(cfg *containertypes.Config) []string {
	env := make([]string, 0, len(cfg.Env)+3)
	has := func(k string) bool {
		return slices.ContainsFunc(cfg.Env, func(e string) bool { return strings.HasPrefix(e, k+"=") })
	}
	if !has("PATH") {
		env = append(env, "PATH="+specgen.DefaultPath)
	}
	env = append(env, "HOSTNAME="+cfg.Hostname)
	if cfg.Tty && !has("TERM") {
		env = append(env, "TERM=xterm")
	}
	return append(env, cfg.Env...)
}

func etcMounts(o Opts) []specs.Mount {
	var ms []specs.Mount
	for _, f := range []struct{ src, dst string }{
		{o.ResolvConfPath, "/etc/resolv.conf"},
		{o.HostnamePath, "/etc/hostname"},
		{o.HostsPath, "/etc/hosts"},
	} {
		if f.src != "" {
			ms = append(ms, specs.Mount{Destination: f.dst, Type: "bind", Source: f.src, Options: []string{"rbind", "rprivate"}})
		}
	}
	return ms
}

func cgroupParent(def, requested string) string {
	if requested != "" {
		return path.Join("/", requested)
	}
	if def == "" {
		return "/berth"
	}
	return def
}

func setNamespaces(s *specs.Spec, hc *containertypes.HostConfig) error {
	drop := func(t specs.LinuxNamespaceType) {
		s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == t })
	}
	switch mode := string(hc.NetworkMode); {
	case mode == "host":
		drop(specs.NetworkNamespace)
		// With the host's network the container sees the host's sysfs
		// network entries, as in Docker.
	case mode == "", mode == "none", mode == "default", mode == "bridge":
		// A network namespace of its own: only lo, or the one the
		// network service prepared (Opts.NetnsPath).
	case strings.HasPrefix(mode, "container:"):
		// Another container's namespace: Opts.NetnsPath names it.
	default:
		// A user-defined network: the namespace comes from Opts.NetnsPath.
	}
	switch hc.PidMode {
	case "":
	case "host":
		drop(specs.PIDNamespace)
	default:
		return errdefs.ErrInvalidArgument.WithMessage("invalid --pid: " + string(hc.PidMode))
	}
	switch hc.IpcMode {
	case "", "private", "shareable":
	case "host":
		drop(specs.IPCNamespace)
		s.Mounts = slices.DeleteFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/dev/shm" || m.Destination == "/dev/mqueue" })
	default:
		return errdefs.ErrInvalidArgument.WithMessage("invalid --ipc: " + string(hc.IpcMode))
	}
	switch hc.UTSMode {
	case "":
	case "host":
		drop(specs.UTSNamespace)
		s.Hostname = ""
	default:
		return errdefs.ErrInvalidArgument.WithMessage("invalid --uts: " + string(hc.UTSMode))
	}
	switch hc.CgroupnsMode {
	case "", "private":
	case "host":
		drop(specs.CgroupNamespace)
	default:
		return errdefs.ErrInvalidArgument.WithMessage("invalid --cgroupns: " + string(hc.CgroupnsMode))
	}
	return nil
}

// setMounts applies /dev/shm's size, --tmpfs and bind mounts (-v
// /host:/ctr[:opts]). Named and anonymous volumes need the volume store.
func setMounts(s *specs.Spec, hc *containertypes.HostConfig) error {
	shm := hc.ShmSize
	if shm <= 0 {
		shm = defaultShmSize
	}
	for i, m := range s.Mounts {
		if m.Destination == "/dev/shm" {
			s.Mounts[i].Options = append(slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return strings.HasPrefix(o, "size=") }), fmt.Sprintf("size=%dk", shm/1024))
		}
	}
	dsts := make([]string, 0, len(hc.Tmpfs))
	for d := range hc.Tmpfs {
		dsts = append(dsts, d)
	}
	sort.Strings(dsts)
	for _, d := range dsts {
		opts := []string{"nosuid", "nodev", "noexec"}
		if o := hc.Tmpfs[d]; o != "" {
			opts = append(opts, strings.Split(o, ",")...)
		}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: d, Type: "tmpfs", Source: "tmpfs", Options: opts})
	}
	for _, b := range hc.Binds {
		m, err := ParseBind(b)
		if err != nil {
			return err
		}
		s.Mounts = append(s.Mounts, m)
	}
	if len(hc.Mounts) > 0 {
		return errdefs.ErrNotImplemented.WithMessage("--mount is not supported yet; use -v /host/path:/container/path")
	}
	return nil
}

// ParseBind parses a bind in Docker's "-v" syntax: /host:/ctr[:ro|rw|z|Z|
// propagation]. Only absolute host paths are accepted until volumes exist.
func ParseBind(b string) (specs.Mount, error) {
	parts := strings.Split(b, ":")
	if len(parts) < 2 || len(parts) > 3 {
		if len(parts) == 1 && path.IsAbs(parts[0]) {
			return specs.Mount{}, errdefs.ErrNotImplemented.WithMessage("anonymous volumes are not supported yet: " + b)
		}
		return specs.Mount{}, errdefs.ErrInvalidArgument.WithMessage("invalid volume specification: '" + b + "'")
	}
	src, dst := parts[0], parts[1]
	if !path.IsAbs(src) {
		return specs.Mount{}, errdefs.ErrNotImplemented.WithMessage("named volumes are not supported yet: " + b)
	}
	if !path.IsAbs(dst) {
		return specs.Mount{}, errdefs.ErrInvalidArgument.WithMessage("invalid mount config for type \"bind\": invalid mount path: '" + dst + "' mount path must be absolute")
	}
	if path.Clean(dst) == "/" {
		return specs.Mount{}, errdefs.ErrInvalidArgument.WithMessage("invalid specification: destination can't be '/' in '" + b + "'")
	}
	opts := []string{"rbind"}
	prop := "rprivate"
	if len(parts) == 3 {
		for _, o := range strings.Split(parts[2], ",") {
			switch o {
			case "ro", "rw":
				opts = append(opts, o)
			case "z", "Z", "nocopy":
			case "private", "rprivate", "shared", "rshared", "slave", "rslave":
				prop = o
			default:
				return specs.Mount{}, errdefs.ErrInvalidArgument.WithMessage("invalid mode: " + o)
			}
		}
	}
	return specs.Mount{Destination: path.Clean(dst), Type: "bind", Source: src, Options: append(opts, prop)}, nil
}

func setResources(r *specs.LinuxResources, res *containertypes.Resources) {
	if res.Memory > 0 || res.MemoryReservation > 0 || res.MemorySwap != 0 || (res.OomKillDisable != nil && *res.OomKillDisable) {
		m := &specs.LinuxMemory{}
		if res.Memory > 0 {
			m.Limit = ptr(res.Memory)
			// Docker's default: swap as large as memory.
			switch {
			case res.MemorySwap > 0:
				m.Swap = ptr(res.MemorySwap)
			case res.MemorySwap == 0:
				m.Swap = ptr(2 * res.Memory)
			default:
				m.Swap = ptr(int64(-1))
			}
		}
		if res.MemoryReservation > 0 {
			m.Reservation = ptr(res.MemoryReservation)
		}
		if res.OomKillDisable != nil && *res.OomKillDisable {
			m.DisableOOMKiller = ptr(true)
		}
		if res.MemorySwappiness != nil && *res.MemorySwappiness >= 0 {
			m.Swappiness = ptr(uint64(*res.MemorySwappiness))
		}
		r.Memory = m
	}
	cpu := &specs.LinuxCPU{}
	set := false
	if res.CPUShares > 0 {
		cpu.Shares, set = ptr(uint64(res.CPUShares)), true
	}
	if res.NanoCPUs > 0 {
		period := uint64(100000)
		cpu.Period, cpu.Quota, set = &period, ptr(res.NanoCPUs*int64(period)/1e9), true
	}
	if res.CPUQuota > 0 {
		cpu.Quota, set = ptr(res.CPUQuota), true
	}
	if res.CPUPeriod > 0 {
		cpu.Period, set = ptr(uint64(res.CPUPeriod)), true
	}
	if res.CpusetCpus != "" {
		cpu.Cpus, set = res.CpusetCpus, true
	}
	if res.CpusetMems != "" {
		cpu.Mems, set = res.CpusetMems, true
	}
	if set {
		r.CPU = cpu
	}
	if res.PidsLimit != nil && *res.PidsLimit != 0 {
		r.Pids = &specs.LinuxPids{Limit: ptr(*res.PidsLimit)}
	}
	if res.BlkioWeight > 0 {
		r.BlockIO = &specs.LinuxBlockIO{Weight: ptr(res.BlkioWeight)}
	}
	for _, d := range res.DeviceCgroupRules {
		if rule, ok := parseDeviceRule(d); ok {
			r.Devices = append(r.Devices, rule)
		}
	}
}

// parseDeviceRule parses "c 1:3 rwm" (major/minor may be "*").
func parseDeviceRule(s string) (specs.LinuxDeviceCgroup, bool) {
	f := strings.Fields(s)
	if len(f) != 3 {
		return specs.LinuxDeviceCgroup{}, false
	}
	majmin := strings.SplitN(f[1], ":", 2)
	if len(majmin) != 2 {
		return specs.LinuxDeviceCgroup{}, false
	}
	num := func(s string) *int64 {
		var n int64
		if s == "*" {
			return nil
		}
		if _, err := fmt.Sscanf(s, "%d", &n); err != nil {
			return nil
		}
		return &n
	}
	return specs.LinuxDeviceCgroup{Allow: true, Type: f[0], Major: num(majmin[0]), Minor: num(majmin[1]), Access: f[2]}, true
}

func setRlimit(p *specs.Process, name string, soft, hard int64) error {
	t := "RLIMIT_" + strings.ToUpper(name)
	if _, ok := rlimitNames[t]; !ok {
		return errdefs.ErrInvalidArgument.WithMessage("invalid ulimit type: " + name)
	}
	p.Rlimits = slices.DeleteFunc(p.Rlimits, func(r specs.POSIXRlimit) bool { return r.Type == t })
	p.Rlimits = append(p.Rlimits, specs.POSIXRlimit{Type: t, Soft: uint64(soft), Hard: uint64(hard)})
	return nil
}

var rlimitNames = map[string]struct{}{
	"RLIMIT_AS": {}, "RLIMIT_CORE": {}, "RLIMIT_CPU": {}, "RLIMIT_DATA": {}, "RLIMIT_FSIZE": {},
	"RLIMIT_LOCKS": {}, "RLIMIT_MEMLOCK": {}, "RLIMIT_MSGQUEUE": {}, "RLIMIT_NICE": {},
	"RLIMIT_NOFILE": {}, "RLIMIT_NPROC": {}, "RLIMIT_RSS": {}, "RLIMIT_RTPRIO": {},
	"RLIMIT_RTTIME": {}, "RLIMIT_SIGPENDING": {}, "RLIMIT_STACK": {},
}

// capabilities returns the container's capability set: Docker's default
// adjusted by --cap-add/--cap-drop (with "ALL"), or the host's set for
// --privileged.
func capabilities(hc *containertypes.HostConfig, host []string) ([]string, error) {
	if hc.Privileged {
		return slices.Clone(host), nil
	}
	norm := func(c string) string {
		c = strings.ToUpper(c)
		if c != "ALL" && !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		return c
	}
	caps := specgen.DefaultCapabilities()
	var add, drop []string
	for _, c := range hc.CapAdd {
		add = append(add, norm(c))
	}
	for _, c := range hc.CapDrop {
		drop = append(drop, norm(c))
	}
	for _, c := range slices.Concat(add, drop) {
		if c != "ALL" && !slices.Contains(capNames, c) {
			return nil, errdefs.ErrInvalidArgument.WithMessage("invalid capability: " + c)
		}
	}
	if slices.Contains(drop, "ALL") {
		caps = nil
	}
	if slices.Contains(add, "ALL") {
		caps = slices.Clone(host)
	}
	for _, c := range add {
		if c != "ALL" && !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	if !slices.Contains(drop, "ALL") {
		caps = slices.DeleteFunc(caps, func(c string) bool { return slices.Contains(drop, c) && !slices.Contains(add, c) })
	}
	return caps, nil
}

// HostCapabilities lists the capabilities in the calling process's
// bounding set: what --privileged can grant on this host.
func HostCapabilities() []string {
	data, _ := os.ReadFile("/proc/self/status")
	var bnd uint64
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			bnd, _ = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	var caps []string
	for i, name := range capNames {
		if bnd&(1<<uint(i)) != 0 {
			caps = append(caps, name)
		}
	}
	return caps
}

// capNames holds the capability names by number.
var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
	"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
	"CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// setSeccomp applies Docker's default seccomp profile unless the container
// is privileged or asks for seccomp=unconfined.
func setSeccomp(s *specs.Spec, hc *containertypes.HostConfig) error {
	for _, o := range hc.SecurityOpt {
		switch {
		case o == "seccomp=unconfined" || o == "seccomp:unconfined":
			return nil
		case strings.HasPrefix(o, "seccomp"):
			return errdefs.ErrNotImplemented.WithMessage("custom seccomp profiles are not supported yet: " + o)
		case strings.HasPrefix(o, "no-new-privileges"), strings.HasPrefix(o, "apparmor"), strings.HasPrefix(o, "label"):
		default:
			return errdefs.ErrInvalidArgument.WithMessage("invalid --security-opt: " + o)
		}
	}
	if hc.Privileged {
		return nil
	}
	prof, err := seccomp.GetDefaultProfile(s)
	if err != nil {
		return fmt.Errorf("default seccomp profile: %w", err)
	}
	s.Linux.Seccomp = prof
	return nil
}

func ptr[T any](v T) *T { return &v }

// defaultNoFile gives containers the daemon's own hard limit on open
// files as both limits, as containers under Docker inherit containerd's.
// Raising it further would need CAP_SYS_RESOURCE, which a host may lack.
func defaultNoFile() specs.POSIXRlimit {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Max == 0 {
		rl.Max = 1024
	}
	return specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Soft: rl.Max, Hard: rl.Max}
}
