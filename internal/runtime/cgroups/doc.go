// Package cgroups is the cgroup manager of berth-runtime. It places a
// container's processes in a cgroup, enforces the linux.resources of the
// OCI runtime spec, freezes and thaws the container, lists its processes,
// reads its usage for `docker stats`, and removes the cgroup.
//
// # Versions
//
// New picks the version of the host: cgroup v2 when /sys/fs/cgroup is a
// cgroup2 filesystem, cgroup v1 otherwise. On a hybrid host (v1
// hierarchies plus a cgroup2 mount at /sys/fs/cgroup/unified) the v2 part is
// ignored, as runc does: the controllers that matter are bound to v1.
//
// On v1 the container gets one directory in every mounted hierarchy, found
// in the mount table rather than assumed, so cpu and cpuacct may be
// separate or co-mounted, and named hierarchies such as name=systemd are
// joined too. Paths maps each controller (and "name=<name>") to its
// directory. On v2 there is one directory; Apply first enables every
// available controller in cgroup.subtree_control of each ancestor.
//
// New only resolves directories; Apply creates them. Because a relative
// cgroupsPath depends on the cgroup of the calling process, another process
// re-attaches with Load and the Paths recorded at creation.
//
// # Resource mapping
//
//	OCI field                 v1 file                          v2 file
//	memory.limit              memory.limit_in_bytes            memory.max (-1: max)
//	memory.swap (mem+swap)    memory.memsw.limit_in_bytes      memory.swap.max = swap - limit
//	memory.reservation        memory.soft_limit_in_bytes       memory.low
//	memory.swappiness         memory.swappiness                (none, ignored)
//	memory.disableOOMKiller   memory.oom_control               (none, ignored)
//	memory.useHierarchy       memory.use_hierarchy             (always hierarchical)
//	memory.kernel, kernelTCP  ignored: removed from the kernel, deprecated in the spec
//	cpu.shares                cpu.shares                       cpu.weight (converted)
//	cpu.quota, cpu.period     cpu.cfs_quota_us, cfs_period_us  cpu.max "quota period"
//	cpu.burst                 cpu.cfs_burst_us                 cpu.max.burst
//	cpu.idle                  cpu.idle                         cpu.idle
//	cpu.realtime*             cpu.rt_runtime_us, rt_period_us  error: not supported
//	cpu.cpus, cpu.mems        cpuset.cpus, cpuset.mems         cpuset.cpus, cpuset.mems
//	pids.limit (<=0: none)    pids.max                         pids.max
//	blockIO.weight            blkio.weight or blkio.bfq.weight io.bfq.weight, else io.weight (converted)
//	blockIO.leafWeight        blkio.leaf_weight if present     (none, ignored)
//	blockIO.weightDevice      blkio[.bfq].weight_device        io.bfq.weight / io.weight "maj:min w"
//	blockIO.throttle*         blkio.throttle.*_device          io.max "maj:min rbps=..."
//	devices                   devices.deny/devices.allow       eBPF BPF_CGROUP_DEVICE program
//	hugepageLimits            hugetlb.<size>.limit_in_bytes    hugetlb.<size>.max (+ .rsvd)
//	network.classID           net_cls.classid if mounted       (none, ignored)
//	network.priorities        net_prio.ifpriomap if mounted    (none, ignored)
//	rdma                      rdma.max if mounted              rdma.max if present
//	unified                   error: needs v2                  raw writes, applied last
//
// The v1 to v2 conversions follow runc and crun: cpu.weight comes from the
// logarithmic shares conversion (1024 -> 100, 2 -> 1, 262144 -> 10000),
// io.weight = 1 + (weight-10)*9999/990 (BFQ takes the blkio scale as is),
// and a swap value equal to the memory limit disables swap.
//
// Devices are evaluated the way the v1 kernel controller evaluates a rule
// list written in order, starting from "deny everything"; the resulting
// policy is either written to devices.deny/devices.allow (default first) or
// compiled into the eBPF program, so both versions agree. Updating the
// rules on v1 rewrites the list, which denies access for a moment.
//
// # Use of containerd/cgroups
//
// github.com/containerd/cgroups/v3 provides the host mode detection
// (cgroups.Mode), the parsing of /proc/self/cgroup and the shares to weight
// conversion. The rest is written here because the library does not fit:
//   - cgroup1 assumes every controller at /sys/fs/cgroup/<name>, writes no
//     default "deny all" device rule, writes blkio.weight, which kernels
//     without CFQ do not have, cannot lift a pids limit, and its freezer
//     loops without a deadline;
//   - cgroup2's resource conversion writes the converted weight to
//     io.bfq.weight (BFQ takes 1..1000), turns swap -1 into a negative
//     value, drops a quota given without a period, and ignores idle, burst,
//     devices and unified; its freezer polls cgroup.freeze instead of
//     cgroup.events, without a deadline;
//   - cgroup2's device filter lets an allow rule match when it covers any
//     part of the requested access (a device allowed "r" opens read-write),
//     panics on rules without major or minor, rejects an empty type, and
//     its loader leaves earlier programs attached, so an update can never
//     widen access.
//
// Statistics are read by this package for both versions into Stats, with
// missing files (absent controllers, optional kernel features) left zero.
package cgroups
