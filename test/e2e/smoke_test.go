// Package e2e drives a real berthd through independent clients: the docker
// CLI, docker-py, berth's own CLI and the moby Go client.
package e2e

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

func TestDockerRunSmoke(t *testing.T) {
	docker := testutil.DockerCLI(t)
	d := testutil.StartBerthd(t)
	d.ImportBusybox(t, "busybox")
	out, errOut, code := d.Run(t, docker, "run", "--rm", "busybox", "echo", "hello")
	if code != 0 || out != "hello\n" {
		t.Fatalf("docker run: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, errOut, code = d.Run(t, docker, "run", "--name", "hn", "busybox", "hostname")
	if code != 0 || len(strings.TrimSpace(out)) != 12 {
		t.Fatalf("hostname: code %d, %q (want the 12-character ID), stderr %q", code, out, errOut)
	}
	_, _, code = d.Run(t, docker, "run", "busybox", "sh", "-c", "exit 3")
	if code != 3 {
		t.Fatalf("exit code %d, want 3", code)
	}
	_, errOut, code = d.Run(t, docker, "run", "busybox", "nonexistent-cmd")
	if code != 127 {
		t.Fatalf("missing command: exit code %d, want 127 (stderr %q)", code, errOut)
	}
}
