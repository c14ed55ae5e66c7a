// Package testutil holds helpers for berth's tests: root gating, a busybox
// root filesystem built from the host's static busybox, OCI bundles with
// berth's default configuration, and a check for mounts, cgroups and child
// processes that a test leaves behind.
//
// It is pure Go and only for use from _test.go files.
package testutil

import (
	"os"
	"testing"
)

// RequiresRoot skips the test unless it runs as root (effective uid 0).
func RequiresRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("test requires root")
	}
}
