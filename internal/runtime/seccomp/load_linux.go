package seccomp

import (
	"fmt"
	"runtime"
	"unsafe"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// flagTsync is the runtime-spec name of SECCOMP_FILTER_FLAG_TSYNC; the
// runtime-spec Go package has no constant for it.
const flagTsync specs.LinuxSeccompFlag = "SECCOMP_FILTER_FLAG_TSYNC"

// filterFlags converts the profile's flags to SECCOMP_FILTER_FLAG_* bits.
func filterFlags(flags []specs.LinuxSeccompFlag) (uintptr, error) {
	var bits uintptr
	for _, f := range flags {
		switch f {
		case flagTsync:
			bits |= unix.SECCOMP_FILTER_FLAG_TSYNC
		case specs.LinuxSeccompFlagLog:
			bits |= unix.SECCOMP_FILTER_FLAG_LOG
		case specs.LinuxSeccompFlagSpecAllow:
			bits |= unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW
		case specs.LinuxSeccompFlagWaitKillableRecv:
			return 0, fmt.Errorf("flag %s: %w", f, ErrNotifyUnsupported)
		default:
			return 0, fmt.Errorf("unknown seccomp flag %q", f)
		}
	}
	return bits, nil
}

// Load compiles s and installs the filter with seccomp(2)
// SECCOMP_SET_MODE_FILTER, honouring s.Flags (SECCOMP_FILTER_FLAG_TSYNC,
// SECCOMP_FILTER_FLAG_LOG and SECCOMP_FILTER_FLAG_SPEC_ALLOW).
//
// Without SECCOMP_FILTER_FLAG_TSYNC the filter applies to the calling OS
// thread only, so the caller must have locked its goroutine to the thread
// (runtime.LockOSThread). Load does not set PR_SET_NO_NEW_PRIVS: the caller
// either did, or holds CAP_SYS_ADMIN in its user namespace.
func Load(s *specs.LinuxSeccomp) error {
	p, err := Prepare(s)
	if err != nil {
		return err
	}
	return p.Load()
}

// install loads prog into the kernel for the calling thread.
func install(prog []bpf.RawInstruction, flags uintptr) error {
	if len(prog) == 0 || len(prog) > maxInsns {
		return fmt.Errorf("seccomp: invalid program length %d", len(prog))
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}

	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&fprog)))
	if errno == unix.ENOSYS && flags == 0 {
		// Kernels before 3.17 only have the prctl(2) interface.
		_, _, errno = unix.Syscall(unix.SYS_PRCTL, unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&fprog)))
	}
	runtime.KeepAlive(filter)
	runtime.KeepAlive(&fprog)
	switch {
	case errno == unix.EACCES:
		return fmt.Errorf("seccomp: installing filter (set no_new_privs or hold CAP_SYS_ADMIN): %w", errno)
	case errno != 0:
		return fmt.Errorf("seccomp: installing filter: %w", errno)
	case flags&unix.SECCOMP_FILTER_FLAG_TSYNC != 0 && r != 0:
		return fmt.Errorf("seccomp: installing filter: thread %d could not be synchronized", r)
	}
	return nil
}
