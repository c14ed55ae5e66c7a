package e2e

import (
	"bufio"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDockerCLILifecycle covers create, start, attach, wait, stop, kill,
// restart, rename, pause/unpause, rm and container prune.
func TestDockerCLILifecycle(t *testing.T) {
	c := newDockerCLI(t)

	// create + start -a: output and the exit code of the container.
	id := c.ok("create", "--name", "made", "busybox", "sh", "-c", "echo created-out; echo created-err >&2; exit 6")
	if got := c.inspect("made", "{{.State.Status}} {{.State.Pid}} {{.State.StartedAt}}"); got != "created 0 0001-01-01T00:00:00Z" {
		t.Errorf("created state: %q", got)
	}
	out, errOut, code := c.run("start", "-a", "made")
	if code != 6 || out != "created-out\n" || errOut != "created-err\n" {
		t.Errorf("start -a: exit %d, %q, %q", code, out, errOut)
	}
	if got := c.inspect(id, "{{.State.Status}} {{.State.ExitCode}}"); got != "exited 6" {
		t.Errorf("after start -a: %q", got)
	}
	// start -a -i feeds stdin.
	c.ok("create", "-i", "--name", "cat-in", "busybox", "cat")
	out, _, code = c.runIn(strings.NewReader("fed through start\n"), "start", "-a", "-i", "cat-in")
	if code != 0 || out != "fed through start\n" {
		t.Errorf("start -a -i: exit %d, %q", code, out)
	}
	// start without -a prints the name; starting a running container is fine.
	if got := c.ok("start", "made"); got != "made" {
		t.Errorf("start printed %q", got)
	}
	c.fails(1, "start", "no-such-ctr")

	// attach to a running container: its later output and exit code.
	c.ok("run", "-d", "--name", "talker", "busybox", "sh", "-c", "while [ ! -e /go ]; do sleep 0.05; done; echo after-attach; exit 3")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	att := exec.CommandContext(ctx, c.bin, "attach", "talker")
	att.Env = c.d.Env()
	attOut, err := att.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := att.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // let attach connect before the output
	c.ok("exec", "talker", "touch", "/go")
	line, _ := bufio.NewReader(attOut).ReadString('\n')
	err = att.Wait()
	if line != "after-attach\n" {
		t.Errorf("attach read %q", line)
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Errorf("attach ended with %v, want exit 3", err)
	}

	// wait prints exit codes, one per container.
	c.ok("run", "-d", "--name", "w1", "busybox", "sh", "-c", "sleep 0.3; exit 11")
	c.ok("run", "-d", "--name", "w2", "busybox", "sh", "-c", "exit 12")
	dcWantLines(t, "wait w1 w2", c.ok("wait", "w1", "w2"), "11", "12")

	// stop: SIGTERM, then SIGKILL after -t seconds for a process ignoring it.
	c.ok("run", "-d", "--name", "stubborn", "busybox", "sh", "-c", "trap '' TERM; while true; do sleep 0.1; done")
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	if got := c.ok("stop", "-t", "2", "stubborn"); got != "stubborn" {
		t.Errorf("stop printed %q", got)
	}
	if el := time.Since(start); el < 2*time.Second || el > 5*time.Second {
		t.Errorf("stop -t 2 of a process ignoring SIGTERM took %v", el)
	}
	if got := c.inspect("stubborn", "{{.State.Status}} {{.State.ExitCode}} {{.State.Running}}"); got != "exited 137 false" {
		t.Errorf("after stop -t 2: %q", got)
	}
	// A process that honours SIGTERM stops at once.
	c.ok("run", "-d", "--name", "polite", "busybox", "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done")
	time.Sleep(200 * time.Millisecond)
	start = time.Now()
	c.ok("stop", "polite")
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("stop of a process honouring SIGTERM took %v", el)
	}
	if got := c.inspect("polite", "{{.State.ExitCode}}"); got != "0" {
		t.Errorf("polite exit code %s", got)
	}
	// --stop-signal and --stop-timeout are kept and used.
	c.ok("run", "-d", "--name", "usr1", "--stop-signal", "SIGUSR1", "--stop-timeout", "1", "busybox",
		"sh", "-c", "trap 'echo got-usr1; exit 9' USR1; while true; do sleep 0.1; done")
	if got := c.inspect("usr1", "{{.Config.StopSignal}} {{.Config.StopTimeout}}"); got != "SIGUSR1 1" {
		t.Errorf("stop signal/timeout config: %q", got)
	}
	time.Sleep(200 * time.Millisecond)
	c.ok("stop", "usr1")
	if got := c.inspect("usr1", "{{.State.ExitCode}}"); got != "9" {
		t.Errorf("stop with SIGUSR1: exit %s", got)
	}
	c.ok("run", "-d", "--name", "slowstop", "--stop-timeout", "1", "busybox", "sh", "-c", "trap '' TERM; while true; do sleep 0.1; done")
	time.Sleep(200 * time.Millisecond)
	start = time.Now()
	c.ok("stop", "slowstop")
	if el := time.Since(start); el < time.Second || el > 4*time.Second {
		t.Errorf("stop with --stop-timeout 1 took %v", el)
	}
	// Stopping a stopped container succeeds.
	c.ok("stop", "slowstop")

	// kill: SIGKILL by default, -s for another signal.
	c.ok("run", "-d", "--name", "victim", "busybox", "sh", "-c", "trap 'echo got-hup' HUP; while true; do sleep 0.1; done")
	time.Sleep(200 * time.Millisecond)
	c.ok("kill", "-s", "HUP", "victim")
	c.waitFor("the HUP trap", func() bool { return strings.Contains(c.ok("logs", "victim"), "got-hup") })
	if got := c.inspect("victim", "{{.State.Running}}"); got != "true" {
		t.Errorf("running after kill -s HUP: %s", got)
	}
	if got := c.ok("kill", "victim"); got != "victim" {
		t.Errorf("kill printed %q", got)
	}
	if got := c.ok("wait", "victim"); got != "137" {
		t.Errorf("exit code after kill: %s", got)
	}
	errOut = c.fails(1, "kill", "victim")
	dcWantContains(t, "kill of a stopped container", errOut, "is not running")

	// restart: a new process (new PID and StartedAt), still running.
	c.ok("run", "-d", "--name", "again", "busybox", "sleep", "300")
	before := c.inspect("again", "{{.State.Pid}} {{.State.StartedAt}}")
	if got := c.ok("restart", "-t", "0", "again"); got != "again" {
		t.Errorf("restart printed %q", got)
	}
	after := c.inspect("again", "{{.State.Pid}} {{.State.StartedAt}}")
	if after == before || c.inspect("again", "{{.State.Status}}") != "running" {
		t.Errorf("restart: before %q, after %q", before, after)
	}

	// rename.
	c.ok("rename", "again", "renamed")
	if got := c.inspect("renamed", "{{.Name}}"); got != "/renamed" {
		t.Errorf("renamed: %q", got)
	}
	c.fails(1, "inspect", "again")
	errOut = c.fails(1, "rename", "renamed", "made")
	dcWantContains(t, "rename to a taken name", errOut, `Conflict. The container name "/made" is already in use`)

	// pause / unpause.
	if got := c.ok("pause", "renamed"); got != "renamed" {
		t.Errorf("pause printed %q", got)
	}
	if got := c.inspect("renamed", "{{.State.Status}} {{.State.Paused}} {{.State.Running}}"); got != "paused true true" {
		t.Errorf("paused state: %q", got)
	}
	if got := c.ok("ps", "--filter", "status=paused", "--format", "{{.Names}} {{.Status}}"); !strings.HasPrefix(got, "renamed Up ") || !strings.HasSuffix(got, "(Paused)") {
		t.Errorf("ps of a paused container: %q", got)
	}
	errOut = c.fails(1, "pause", "renamed")
	dcWantContains(t, "pause twice", errOut, "is already paused")
	c.ok("unpause", "renamed")
	if got := c.inspect("renamed", "{{.State.Status}} {{.State.Paused}}"); got != "running false" {
		t.Errorf("unpaused state: %q", got)
	}
	errOut = c.fails(1, "unpause", "renamed")
	dcWantContains(t, "unpause of a running container", errOut, "is not paused")

	// rm: refused while running, -f kills, several at once, -v.
	errOut = c.fails(1, "rm", "renamed")
	dcWantContains(t, "rm of a running container", errOut, "container is running: stop the container before removing or force remove")
	dcWantLines(t, "rm -f", c.ok("rm", "-f", "renamed"), "renamed")
	dcWantLines(t, "rm several", c.ok("rm", "w1", "w2"), "w1", "w2")
	c.ok("rm", "-v", "polite")
	errOut = c.fails(1, "rm", "no-such-ctr")
	dcWantContains(t, "rm of a missing container", errOut, "No such container: no-such-ctr")
	for _, n := range []string{"renamed", "w1", "w2", "polite"} {
		c.fails(1, "inspect", n)
	}

	// container prune removes the stopped containers only.
	c.ok("run", "-d", "--name", "keeper", "busybox", "sleep", "300")
	stopped := dcLines(c.ok("ps", "-aq", "--no-trunc", "--filter", "status=exited", "--filter", "status=created"))
	out = c.ok("container", "prune", "-f")
	if !strings.HasPrefix(out, "Deleted Containers:\n") || !strings.Contains(out, "Total reclaimed space:") {
		t.Errorf("prune output:\n%s", out)
	}
	for _, s := range stopped {
		dcWantContains(t, "prune output", out, s)
	}
	dcWantLines(t, "left after prune", c.ok("ps", "-a", "--format", "{{.Names}}"), "keeper")
}
