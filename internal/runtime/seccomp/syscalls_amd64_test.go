//go:build linux && amd64

package seccomp

import (
	"testing"

	"golang.org/x/sys/unix"
)

// The x86_64 table agrees with the syscall numbers the Go toolchain uses.
func TestX86_64TableMatchesUnix(t *testing.T) {
	for name, want := range map[string]uint32{
		"read": unix.SYS_READ, "getcwd": unix.SYS_GETCWD, "mkdirat": unix.SYS_MKDIRAT,
		"unshare": unix.SYS_UNSHARE, "clone3": unix.SYS_CLONE3, "personality": unix.SYS_PERSONALITY,
		"seccomp": unix.SYS_SECCOMP, "socket": unix.SYS_SOCKET, "pidfd_open": unix.SYS_PIDFD_OPEN,
		"open_tree_attr": unix.SYS_OPEN_TREE_ATTR, "rseq_slice_yield": unix.SYS_RSEQ_SLICE_YIELD,
	} {
		if got := syscallsX86_64[name]; got != want {
			t.Errorf("%s = %d, unix has %d", name, got, want)
		}
	}
}
