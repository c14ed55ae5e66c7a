// Package specgen generates berth's default OCI runtime configuration: the
// config.json that `berth-runtime spec` prints and that tests start from.
//
// The default follows the shape of the configuration that OCI runtimes
// conventionally generate for a new bundle, with Docker's defaults where the
// two differ:
//
//   - process: args ["sh"], terminal false, uid 0 / gid 0, cwd "/", PATH and
//     TERM=xterm in the environment, RLIMIT_NOFILE 1024, noNewPrivileges, and
//     Docker's default capability set as the bounding, effective and
//     permitted sets (no inheritable or ambient capabilities);
//   - root: "rootfs", writable;
//   - hostname "berth";
//   - mounts: /proc, a tmpfs on /dev, /dev/pts (devpts), /dev/shm (tmpfs),
//     /dev/mqueue, a read-only /sys and a read-only /sys/fs/cgroup;
//   - namespaces: pid, network, ipc, uts, mount and cgroup (new ones, no
//     paths);
//   - device cgroup: deny everything (the runtime adds the standard devices);
//   - masked and read-only paths under /proc and /sys.
package specgen

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultPath is the PATH in the default process environment.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// DefaultHostname is the container hostname in the default configuration.
const DefaultHostname = "berth"

// DefaultCapabilities returns Docker's default capability set, in a new slice.
func DefaultCapabilities() []string {
	return []string{
		"CAP_CHOWN",
		"CAP_DAC_OVERRIDE",
		"CAP_FSETID",
		"CAP_FOWNER",
		"CAP_MKNOD",
		"CAP_NET_RAW",
		"CAP_SETGID",
		"CAP_SETUID",
		"CAP_SETFCAP",
		"CAP_SETPCAP",
		"CAP_NET_BIND_SERVICE",
		"CAP_SYS_CHROOT",
		"CAP_KILL",
		"CAP_AUDIT_WRITE",
	}
}

// DefaultMaskedPaths returns the paths hidden from the container (an empty
// read-only file or directory is mounted over each), in a new slice.
func DefaultMaskedPaths() []string {
	return []string{
		"/proc/acpi",
		"/proc/asound",
		"/proc/kcore",
		"/proc/keys",
		"/proc/latency_stats",
		"/proc/timer_list",
		"/proc/timer_stats",
		"/proc/sched_debug",
		"/proc/scsi",
		"/sys/firmware",
		"/sys/devices/virtual/powercap",
	}
}

// DefaultReadonlyPaths returns the paths remounted read-only in the
// container, in a new slice.
func DefaultReadonlyPaths() []string {
	return []string{
		"/proc/bus",
		"/proc/fs",
		"/proc/irq",
		"/proc/sys",
		"/proc/sysrq-trigger",
	}
}

// DefaultNamespaces returns the namespaces a default container gets, in a
// new slice.
func DefaultNamespaces() []specs.LinuxNamespace {
	return []specs.LinuxNamespace{
		{Type: specs.PIDNamespace},
		{Type: specs.NetworkNamespace},
		{Type: specs.IPCNamespace},
		{Type: specs.UTSNamespace},
		{Type: specs.MountNamespace},
		{Type: specs.CgroupNamespace},
	}
}

// DefaultMounts returns the default mounts, in a new slice.
func DefaultMounts() []specs.Mount {
	return []specs.Mount{
		{
			Destination: "/proc",
			Type:        "proc",
			Source:      "proc",
		},
		{
			Destination: "/dev",
			Type:        "tmpfs",
			Source:      "tmpfs",
			Options:     []string{"nosuid", "strictatime", "mode=755", "size=65536k"},
		},
		{
			Destination: "/dev/pts",
			Type:        "devpts",
			Source:      "devpts",
			Options:     []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"},
		},
		{
			Destination: "/dev/shm",
			Type:        "tmpfs",
			Source:      "shm",
			Options:     []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"},
		},
		{
			Destination: "/dev/mqueue",
			Type:        "mqueue",
			Source:      "mqueue",
			Options:     []string{"nosuid", "noexec", "nodev"},
		},
		{
			Destination: "/sys",
			Type:        "sysfs",
			Source:      "sysfs",
			Options:     []string{"nosuid", "noexec", "nodev", "ro"},
		},
		{
			Destination: "/sys/fs/cgroup",
			Type:        "cgroup",
			Source:      "cgroup",
			Options:     []string{"nosuid", "noexec", "nodev", "relatime", "ro"},
		},
	}
}

// Default returns a new default configuration (see the package
// documentation). Every call returns an independent value that the caller
// may modify.
func Default() *specs.Spec {
	caps := DefaultCapabilities
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Terminal: false,
			User:     specs.User{UID: 0, GID: 0},
			Args:     []string{"sh"},
			Env: []string{
				"PATH=" + DefaultPath,
				"TERM=xterm",
			},
			Cwd: "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  caps(),
				Effective: caps(),
				Permitted: caps(),
			},
			Rlimits: []specs.POSIXRlimit{
				{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024},
			},
			NoNewPrivileges: true,
		},
		Root: &specs.Root{
			Path:     "rootfs",
			Readonly: false,
		},
		Hostname: DefaultHostname,
		Mounts:   DefaultMounts(),
		Linux: &specs.Linux{
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{
					{Allow: false, Access: "rwm"},
				},
			},
			Namespaces:    DefaultNamespaces(),
			MaskedPaths:   DefaultMaskedPaths(),
			ReadonlyPaths: DefaultReadonlyPaths(),
		},
	}
}
