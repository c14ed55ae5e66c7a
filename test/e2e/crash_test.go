package e2e

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

const counterScript = `i=0; while true; do echo $i; i=$((i+1)); sleep 0.01; done`

// runContainer creates and starts a busybox container.
func runContainer(t *testing.T, ctx context.Context, c *client.Client, name string, cmd ...string) string {
	t.Helper()
	cr, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name, Config: &container.Config{Image: "busybox", Cmd: cmd}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ContainerStart(ctx, cr.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	return cr.ID
}

func inspect(t *testing.T, ctx context.Context, c *client.Client, id string) container.InspectResponse {
	t.Helper()
	r, err := c.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatalf("inspect %s: %v", id, err)
	}
	return r.Container
}

// stdoutLog returns a container's stdout log.
func stdoutLog(t *testing.T, ctx context.Context, c *client.Client, id string) string {
	t.Helper()
	rc, err := c.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true})
	if err != nil {
		t.Fatalf("logs %s: %v", id, err)
	}
	defer rc.Close()
	o, _ := demux(t, rc)
	return o
}

// checkSequence verifies that log holds 0, 1, 2, ... with no gap and
// returns the count.
func checkSequence(t *testing.T, name, log string) int {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(log, "\n"), "\n")
	for i, l := range lines {
		if n, err := strconv.Atoi(l); err != nil || n != i {
			t.Errorf("%s: line %d is %q, want %d (lines around: %q)", name, i, l, i, lines[max(0, i-2):min(len(lines), i+3)])
			return i
		}
	}
	return len(lines)
}

// TestCrashKill9 kills the daemon with SIGKILL under running containers:
// they keep running and logging, a container that exits during the outage
// is seen exited with its real status and time, and they can be stopped
// and removed afterwards.
func TestCrashKill9(t *testing.T) {
	d, c, ctx := busyboxDaemon(t, 90*time.Second)

	var counters []string
	for i := range 5 {
		counters = append(counters, runContainer(t, ctx, c, fmt.Sprintf("counter%d", i), "sh", "-c", counterScript))
	}
	late := runContainer(t, ctx, c, "late", "sh", "-c", "sleep 2; exit 7")
	lateStart, err := time.Parse(time.RFC3339Nano, inspect(t, ctx, c, late).State.StartedAt)
	if err != nil {
		t.Fatal(err)
	}
	pids := map[string]int{}
	for _, id := range counters {
		pids[id] = inspect(t, ctx, c, id).State.Pid
	}
	time.Sleep(300 * time.Millisecond)
	before := map[string]int{}
	for _, id := range counters {
		before[id] = checkSequence(t, id[:12]+" before the crash", stdoutLog(t, ctx, c, id))
	}

	killedAt := time.Now()
	d.Kill9()
	time.Sleep(2500 * time.Millisecond)
	restartAt := time.Now()
	d.Start()
	t.Logf("daemon down for %v", time.Since(killedAt).Round(time.Millisecond))

	for i, id := range counters {
		st := inspect(t, ctx, c, id).State
		if !st.Running || st.Status != container.StateRunning || st.Pid != pids[id] {
			t.Errorf("counter%d after the crash: %+v (pid before %d)", i, st, pids[id])
		}
		top, err := c.ContainerTop(ctx, id, client.ContainerTopOptions{})
		if err != nil {
			t.Errorf("top counter%d: %v", i, err)
			continue
		}
		cmd := slices.Index(top.Titles, "CMD")
		found := false
		for _, p := range top.Processes {
			found = found || cmd >= 0 && strings.Contains(p[cmd], "sh -c")
		}
		if !found {
			t.Errorf("top counter%d: no sh process in %v %v", i, top.Titles, top.Processes)
		}
	}

	st := inspect(t, ctx, c, late).State
	if st.Status != container.StateExited || st.ExitCode != 7 || st.Running {
		t.Errorf("late container after the crash: %+v, want exited (7)", st)
	}
	finished, err := time.Parse(time.RFC3339Nano, st.FinishedAt)
	if err != nil {
		t.Errorf("late FinishedAt %q: %v", st.FinishedAt, err)
	} else {
		ran := finished.Sub(lateStart)
		t.Logf("late container ran %v; finished %v after the kill", ran.Round(time.Millisecond), finished.Sub(killedAt).Round(time.Millisecond))
		if ran < 1900*time.Millisecond || finished.After(restartAt) || finished.Before(killedAt) {
			t.Errorf("late FinishedAt %s: ran %v from %s; want about 2s, during the outage [%s, %s]",
				st.FinishedAt, ran, lateStart.Format(time.RFC3339Nano), killedAt.Format(time.RFC3339Nano), restartAt.Format(time.RFC3339Nano))
		}
	}
	if code := waitExit(t, ctx, c, late, ""); code != 7 {
		t.Errorf("wait late: %d, want 7", code)
	}

	// The logs hold every line, across the outage.
	time.Sleep(200 * time.Millisecond)
	for i, id := range counters {
		n := checkSequence(t, fmt.Sprintf("counter%d", i), stdoutLog(t, ctx, c, id))
		// 2.5s of outage at one line per 10ms plus the shell's own time.
		if n < before[id]+100 {
			t.Errorf("counter%d: %d lines after the crash, %d before: the outage's lines are missing", i, n, before[id])
		}
		t.Logf("counter%d: %d lines before the crash, %d after", i, before[id], n)
	}

	// Following the log of a container adopted after the crash works.
	rc, err := c.ContainerLogs(ctx, counters[0], client.ContainerLogsOptions{ShowStdout: true, Follow: true, Tail: "0"})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if n, err := io.ReadAtLeast(rc, buf, 9); err != nil {
		t.Errorf("follow after the crash: %v (%q)", err, buf[:n])
	}
	rc.Close()

	// sh as PID 1 ignores SIGTERM: each stop takes its 1s timeout, so the
	// stops run together.
	stopErrs := make(chan error, len(counters))
	for _, id := range counters {
		go func() {
			timeout := 1
			_, err := c.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &timeout})
			stopErrs <- err
		}()
	}
	for range counters {
		if err := <-stopErrs; err != nil {
			t.Errorf("stop: %v", err)
		}
	}
	for i, id := range counters {
		if st := inspect(t, ctx, c, id).State; st.Running || st.Status != container.StateExited {
			t.Errorf("counter%d after stop: %+v", i, st)
		}
		if _, err := c.ContainerRemove(ctx, id, client.ContainerRemoveOptions{}); err != nil {
			t.Errorf("rm counter%d: %v", i, err)
		}
	}
	if _, err := c.ContainerRemove(ctx, late, client.ContainerRemoveOptions{}); err != nil {
		t.Errorf("rm late: %v", err)
	}
	list, err := c.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil || len(list.Items) != 0 {
		t.Errorf("containers left: %v, %+v", err, list.Items)
	}
}

// TestCrashSIGTERMRestart restarts the daemon with SIGTERM: running
// containers keep running, and images, names and states survive.
func TestCrashSIGTERMRestart(t *testing.T) {
	d, c, ctx := busyboxDaemon(t, 60*time.Second)
	if _, err := c.ImageTag(ctx, client.ImageTagOptions{Source: "busybox", Target: "keep:v1"}); err != nil {
		t.Fatal(err)
	}
	keeper := runContainer(t, ctx, c, "keeper", "sh", "-c", "echo up; exec sleep 300")
	pid := inspect(t, ctx, c, keeper).State.Pid
	idle, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{Name: "idle", Config: &container.Config{Image: "keep:v1", Cmd: []string{"true"}}})
	if err != nil {
		t.Fatal(err)
	}
	done := runContainer(t, ctx, c, "done", "sh", "-c", "exit 3")
	if code := waitExit(t, ctx, c, done, ""); code != 3 {
		t.Fatalf("done exited %d", code)
	}

	d.Restart()

	st := inspect(t, ctx, c, "keeper").State
	if !st.Running || st.Pid != pid {
		t.Errorf("keeper after restart: %+v (pid before %d)", st, pid)
	}
	if st := inspect(t, ctx, c, "idle").State; st.Status != container.StateCreated {
		t.Errorf("idle after restart: %+v", st)
	}
	if st := inspect(t, ctx, c, "done").State; st.Status != container.StateExited || st.ExitCode != 3 {
		t.Errorf("done after restart: %+v", st)
	}
	if got := inspect(t, ctx, c, idle.ID).Name; got != "/idle" {
		t.Errorf("idle's name after restart: %q", got)
	}
	imgs, err := c.ImageList(ctx, client.ImageListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, im := range imgs.Items {
		tags = append(tags, im.RepoTags...)
	}
	slices.Sort(tags)
	if !slices.Equal(tags, []string{"busybox:latest", "keep:v1"}) {
		t.Errorf("image tags after restart: %v", tags)
	}
	// The adopted container still takes exec, logs and a clean stop.
	ex, err := c.ExecCreate(ctx, keeper, client.ExecCreateOptions{Cmd: []string{"echo", "exec-after-restart"}, AttachStdout: true})
	if err != nil {
		t.Fatal(err)
	}
	ea, err := c.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := demux(t, ea.Reader); o != "exec-after-restart\n" {
		t.Errorf("exec after restart: %q", o)
	}
	ea.Close()
	if o := stdoutLog(t, ctx, c, keeper); o != "up\n" {
		t.Errorf("keeper's log after restart: %q", o)
	}
	// The idle container starts from its kept image.
	if _, err := c.ContainerStart(ctx, idle.ID, client.ContainerStartOptions{}); err != nil {
		t.Errorf("start idle after restart: %v", err)
	} else if code := waitExit(t, ctx, c, idle.ID, ""); code != 0 {
		t.Errorf("idle exited %d", code)
	}
	timeout := 1
	if _, err := c.ContainerStop(ctx, keeper, client.ContainerStopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	if st := inspect(t, ctx, c, keeper).State; st.Running || st.ExitCode != 137 {
		t.Errorf("keeper after stop: %+v", st)
	}
	for _, id := range []string{keeper, idle.ID, done} {
		if _, err := c.ContainerRemove(ctx, id, client.ContainerRemoveOptions{}); err != nil {
			t.Errorf("rm %s: %v", id[:12], err)
		}
	}
}
