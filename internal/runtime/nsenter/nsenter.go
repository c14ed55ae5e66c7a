//go:build linux && cgo

// Package nsenter holds the one piece of C in berth: a constructor that runs
// before the Go runtime starts its threads, so that a re-executed berth binary
// can join existing namespaces (setns), create new ones (unshare) and fork into
// a new or joined PID namespace while it is still single-threaded. A
// multi-threaded Go process cannot setns into a mount or user namespace, which
// is why this has to happen before the Go runtime exists.
//
// Importing this package (for its side effect) arms the constructor. It does
// nothing unless the environment carries _BERTH_NSEXEC_FD; the protocol is
// driven from Go by the runtime package, see Protocol below.
//
// Protocol on the socket whose number is in _BERTH_NSEXEC_FD:
//
//	child  -> 'R'             waiting: the parent prepares the cgroup
//	child  <- 'G'             go on (on cgroup v2 the child is already in it)
//	(write "0" to every file in _BERTH_NSEXEC_CGROUPS: cgroup v1 "tasks")
//	(setns into every path in _BERTH_NSEXEC_JOIN, user namespace first)
//	(unshare(CLONE_NEWUSER) if requested, then:)
//	child  -> 'U'             please write my uid_map/gid_map
//	child  <- 'M'             maps written
//	(unshare the other requested namespaces, write _BERTH_NSEXEC_TIMEOFFSETS
//	 for a new time namespace; fork when a PID or time namespace was created
//	 or a PID namespace joined — the grandchild is created with CLONE_PARENT so the
//	 caller can wait for it; the intermediate process exits 0)
//	child  -> "P<pid>\n"      the pid of the process that continues into Go
//	child  -> "E<message>\n"  instead, on any failure (then exit 1)
//
// _BERTH_NSEXEC_JOIN is a comma-separated list of kind:path (kind is one of
// user, ipc, uts, net, pid, mnt, cgroup, time); _BERTH_NSEXEC_FLAGS is the
// decimal CLONE_NEW* mask to unshare; _BERTH_NSEXEC_CGROUPS is a
// newline-separated list of cgroup files.
package nsenter

/*
#cgo CFLAGS: -Wall -Wextra -O2
extern void berth_nsexec(void);
void __attribute__((constructor)) berth_nsexec_init(void) { berth_nsexec(); }
*/
import "C"

// Enabled reports that the constructor is linked into this binary.
const Enabled = true
