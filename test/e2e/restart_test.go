package e2e

import (
	"strings"
	"testing"
	"time"
)

// A container whose restart policy brings it back shows as restarting
// while it waits out the back-off, as with Docker; stop ends the waiting
// for good, rm needs -f.
func TestDockerCLIRestartingState(t *testing.T) {
	c := newDockerCLI(t)
	c.ok("run", "-d", "--name", "crashy", "--restart", "always", "busybox", "sh", "-c", "exit 3")
	// The back-off doubles from 100 ms: after a few crashes the waiting
	// is long enough to be seen.
	var ps, state string
	c.waitFor("a restarting container", func() bool {
		ps = c.ok("ps", "--filter", "name=crashy", "--format", "{{.Status}}")
		state = c.inspect("crashy", "{{.State.Status}} {{.State.Running}} {{.State.Restarting}} {{.State.ExitCode}}")
		return strings.HasPrefix(ps, "Restarting (3)") && state == "restarting true true 3"
	})
	if got := c.ok("ps", "--filter", "status=restarting", "--format", "{{.Names}}"); got != "crashy" {
		t.Errorf("ps --filter status=restarting: %q", got)
	}
	if errOut := c.fails(1, "rm", "crashy"); !strings.Contains(errOut, "container is restarting: stop the container before removing or force remove") {
		t.Errorf("rm of a restarting container: %s", errOut)
	}
	start := time.Now()
	c.ok("stop", "crashy")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop of a restarting container took %v", d)
	}
	count := c.inspect("crashy", "{{.RestartCount}}")
	time.Sleep(3 * time.Second)
	if got := c.inspect("crashy", "{{.State.Status}} {{.RestartCount}}"); got != "exited "+count {
		t.Errorf("after stop: %q (restart count was %s)", got, count)
	}

	// rm -f of a container waiting to restart.
	c.ok("run", "-d", "--name", "crashy2", "--restart", "on-failure", "busybox", "sh", "-c", "exit 4")
	c.waitFor("the second restarting container", func() bool {
		return c.inspect("crashy2", "{{.State.Status}}") == "restarting"
	})
	c.ok("rm", "-f", "crashy2")
	time.Sleep(2 * time.Second)
	if out, _, _ := c.run("ps", "-a", "--filter", "name=crashy2", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("crashy2 came back after rm -f: %s", out)
	}
}
