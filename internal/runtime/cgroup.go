package runtime

import (
	"errors"
	"syscall"

	"github.com/berth-dev/berth/internal/runtime/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Stats is a container's resource usage, as read from its cgroup.
type Stats = cgroups.Stats

// cgroupManager is the cgroups package's manager of one container's cgroup.
type cgroupManager = cgroups.Manager

func (r *Runtime) newCgroup(cgroupsPath, id string) (cgroupManager, error) {
	if r.Cgroups != nil {
		return r.Cgroups(cgroupsPath, id)
	}
	return cgroups.New(cgroupsPath, id)
}

// cgroup re-attaches to the cgroup recorded at create time: a relative
// cgroupsPath depends on the cgroup of the process that resolved it, so the
// resolved paths are what identifies the container's cgroup later.
func (c *Container) cgroup() (cgroupManager, error) {
	if len(c.rec.CgroupPaths) == 0 {
		return nil, errors.New("container has no cgroup")
	}
	return cgroups.Load(c.rec.CgroupPaths, c.rec.CgroupV2)
}

// signalAll signals every process in the cgroup. For SIGKILL the cgroup is
// frozen first so that nothing can fork away from the signal.
func signalAll(cg cgroupManager, sig syscall.Signal) error {
	if sig == syscall.SIGKILL {
		if err := cg.Freeze(); err == nil {
			defer cg.Thaw()
		}
	}
	pids, err := cg.Pids()
	if err != nil {
		return err
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return err
		}
	}
	return nil
}

// defaultDevices are allowed in every container after the spec's own device
// rules, as other OCI runtimes do: creating device nodes, and using the nodes
// every container gets (null, zero, full, random, urandom, tty, the pty
// devices and tun).
var defaultDevices = func() []specs.LinuxDeviceCgroup {
	i64 := func(v int64) *int64 { return &v }
	wildcard := (*int64)(nil)
	rule := func(typ string, major, minor *int64, access string) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: major, Minor: minor, Access: access}
	}
	return []specs.LinuxDeviceCgroup{
		rule("c", wildcard, wildcard, "m"),
		rule("b", wildcard, wildcard, "m"),
		rule("c", i64(1), i64(3), "rwm"),     // null
		rule("c", i64(1), i64(5), "rwm"),     // zero
		rule("c", i64(1), i64(7), "rwm"),     // full
		rule("c", i64(1), i64(8), "rwm"),     // random
		rule("c", i64(1), i64(9), "rwm"),     // urandom
		rule("c", i64(5), i64(0), "rwm"),     // tty
		rule("c", i64(5), i64(2), "rwm"),     // ptmx
		rule("c", i64(136), wildcard, "rwm"), // pts
		rule("c", i64(10), i64(200), "rwm"),  // tun
	}
}()

// withDefaultDevices returns r with the default device rules appended; r
// itself is not changed.
func withDefaultDevices(r *specs.LinuxResources) *specs.LinuxResources {
	var out specs.LinuxResources
	if r != nil {
		out = *r
	}
	out.Devices = append(append([]specs.LinuxDeviceCgroup(nil), out.Devices...), defaultDevices...)
	return &out
}
