package testutil

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/runtime/specgen"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// NewBundle creates an OCI bundle in a new t.TempDir(): rootfs/ holds the
// busybox root filesystem of BusyboxRootfs, and config.json the default
// configuration of specgen.Default() with process.args set to args (kept as
// ["sh"] when args is empty). It returns the bundle directory and the
// configuration; a test that changes the configuration writes it again
// with WriteSpec.
func NewBundle(t testing.TB, args ...string) (dir string, spec *specs.Spec) {
	t.Helper()
	tpl := requireTemplate(t)
	dir = t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("testutil: %v", err)
	}
	if err := tpl.materialize(filepath.Join(dir, "rootfs")); err != nil {
		t.Fatalf("testutil: writing busybox root filesystem: %v", err)
	}
	makeTraversable(t, dir)
	spec = specgen.Default()
	if len(args) > 0 {
		spec.Process.Args = append([]string(nil), args...)
	}
	WriteSpec(t, dir, spec)
	return dir, spec
}

// WriteSpec writes spec as dir/config.json, replacing any existing one.
func WriteSpec(t testing.TB, dir string, spec *specs.Spec) {
	t.Helper()
	data, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		t.Fatalf("testutil: encoding config.json: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), append(data, '\n'), 0o644); err != nil {
		t.Fatalf("testutil: %v", err)
	}
}
