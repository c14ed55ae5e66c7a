package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestDockerPy runs py/engine_test_script.py, which drives the daemon
// through docker-py (system, images, run, create/start/wait, logs, exec,
// attach, lifecycle, list filters, prune, low-level APIClient and errors).
func TestDockerPy(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed: skipping the docker-py test")
	}
	if out, err := exec.Command(py, "-c", "import docker").CombinedOutput(); err != nil {
		t.Skipf("docker-py not installed (pip install docker): %s", bytes.TrimSpace(out))
	}
	d := testutil.StartBerthd(t)
	d.ImportBusybox(t, "busybox")

	script, err := filepath.Abs(filepath.Join("py", "engine_test_script.py"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-u", script)
	cmd.Env = append(d.Env(), "DOCKER_CONFIG="+t.TempDir())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	t.Logf("docker-py script (%v):\n%s", time.Since(start).Round(time.Millisecond), out.String())
	if err != nil {
		t.Fatalf("docker-py script failed: %v", err)
	}
	if !strings.Contains(out.String(), "all sections passed") {
		t.Fatal("docker-py script did not reach its end")
	}
	// The daemon is still healthy afterwards.
	if _, _, code := d.Run(t, py, "-c", "import docker; assert docker.from_env().ping()"); code != 0 {
		t.Fatal("daemon does not answer docker-py's ping after the script")
	}
}
