// Package rootfs builds a container's root filesystem from an OCI
// runtime-spec bundle: everything the container's init does to the mount
// table, from a fresh mount namespace (a copy of the host's) to a root that is
// the container's rootfs, fully mounted and locked down.
//
// The caller is the runtime's init with its OS thread locked, running as root
// in the new mount namespace (possibly also in a new user namespace, see
// Options.InUserNS). It calls three functions in this order, with its own
// work (hooks, console) in between:
//
// Prepare, before the root changes:
//
//  1. mount("", "/", spec.Linux.RootfsPropagation) — rprivate by default, so
//     nothing that follows propagates back to the host;
//  2. if the mount holding the rootfs is still shared, make it private
//     (pivot_root and MS_MOVE refuse a shared parent);
//  3. bind the rootfs onto itself (MS_BIND|MS_REC) so that it is a mount
//     point, and open a handle on it;
//  4. every entry of spec.Mounts, in order. Each destination is resolved
//     inside the rootfs (symlinks and ".." cannot leave it: openat2 with
//     RESOLVE_IN_ROOT where the kernel has it, filepath-securejoin
//     otherwise), created there, opened, and the mount is made onto
//     /proc/thread-self/fd/N of that handle rather than onto a path that
//     could be swapped in between. A bind that asks for
//     ro/nosuid/nodev/noexec/atime flags gets a second MS_BIND|MS_REMOUNT
//     call; propagation options become extra calls after the mount. /dev
//     stays writable until Finalize;
//  5. unless /dev is bind-mounted from the host: the default device nodes
//     plus spec.Linux.Devices (mknod, or a bind of the host's node inside a
//     user namespace), /dev/ptmx → pts/ptmx, and the /dev/fd, /dev/stdin,
//     /dev/stdout, /dev/stderr (and /dev/core when /proc is mounted) links.
//
// Pivot makes the rootfs the root: pivot_root(".", ".") from inside it, then
// the old root (now stacked under the new one) is made rslave and detached.
// With noPivot, or when pivot_root fails with EINVAL on an initramfs root,
// the host's full proc and sysfs mounts are detached (or covered), the rootfs
// is moved onto "/" with MS_MOVE and the process chroots into it.
//
// Finalize, inside the new root:
//
//  1. spec.Linux.ReadonlyPaths: bind each onto itself, then remount it
//     read-only keeping its nosuid/nodev/noexec flags;
//  2. spec.Linux.MaskedPaths: a read-only tmpfs over directories, the
//     container's /dev/null (checked to be the real 1:3 device) over files;
//     missing paths are skipped;
//  3. /dev remounted read-only when its spec entry says ro;
//  4. "/" remounted read-only when spec.Root.Readonly is set.
//
// Every state-changing kernel call goes through the Syscalls interface so the
// sequence can be asserted without privileges; Options.Sys nil means the real
// kernel.
package rootfs
