package e2e

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/internal/testutil"
)

// newGoClient returns a moby client for the daemon at a fixed API version
// (negotiating when version is empty).
func newGoClient(t *testing.T, d *testutil.Berthd, version string) *client.Client {
	t.Helper()
	opts := []client.Opt{client.WithHost(d.Host())}
	if version == "" {
		opts = append(opts, client.WithAPIVersionNegotiation())
	} else {
		opts = append(opts, client.WithAPIVersion(version))
	}
	c, err := client.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// demux splits a multiplexed stream into stdout and stderr.
func demux(t *testing.T, r io.Reader) (string, string) {
	t.Helper()
	var o, e bytes.Buffer
	if _, err := stdcopy.StdCopy(&o, &e, r); err != nil {
		t.Fatalf("stdcopy: %v (stdout so far %q, stderr %q)", err, o.String(), e.String())
	}
	return o.String(), e.String()
}

func waitExit(t *testing.T, ctx context.Context, c *client.Client, id string, cond container.WaitCondition) int64 {
	t.Helper()
	return waitResult(t, ctx, c.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: cond}))
}

// waitResult returns the status a ContainerWait reports.
func waitResult(t *testing.T, ctx context.Context, w client.ContainerWaitResult) int64 {
	t.Helper()
	select {
	case r := <-w.Result:
		if r.Error != nil && r.Error.Message != "" {
			t.Fatalf("wait: %s", r.Error.Message)
		}
		return r.StatusCode
	case err := <-w.Error:
		t.Fatalf("wait: %v", err)
	case <-ctx.Done():
		t.Fatalf("wait: %v", ctx.Err())
	}
	return -1
}

// busyboxDaemon starts a daemon with busybox imported and returns it with
// a negotiating Go client and a context that ends with the test.
func busyboxDaemon(t *testing.T, timeout time.Duration) (*testutil.Berthd, *client.Client, context.Context) {
	t.Helper()
	d := testutil.StartBerthd(t)
	d.ImportBusybox(t, "busybox")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return d, newGoClient(t, d, ""), ctx
}

// startSleeper runs a busybox "sleep 300" and returns its ID.
func startSleeper(t *testing.T, ctx context.Context, c *client.Client) string {
	t.Helper()
	cr, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: "busybox", Cmd: []string{"sleep", "300"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ContainerStart(ctx, cr.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	return cr.ID
}

func TestGoClient(t *testing.T) {
	d := testutil.StartBerthd(t)
	d.ImportBusybox(t, "busybox")
	for _, v := range []string{"1.40", client.MaxAPIVersion} {
		t.Run("api-"+v, func(t *testing.T) { goClientLifecycle(t, d, v) })
	}
}

func goClientLifecycle(t *testing.T, d *testutil.Berthd, version string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := newGoClient(t, d, version)
	suffix := strings.ReplaceAll(version, ".", "")

	// Images: list, inspect, tag, remove.
	imgs, err := c.ImageList(ctx, client.ImageListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var bbID string
	for _, im := range imgs.Items {
		if slices.Contains(im.RepoTags, "busybox:latest") {
			bbID = im.ID
		}
	}
	if bbID == "" {
		t.Fatalf("busybox:latest not in image list %+v", imgs.Items)
	}
	ii, err := c.ImageInspect(ctx, "busybox")
	if err != nil || ii.ID != bbID || !slices.Equal(ii.Config.Cmd, []string{"sh"}) {
		t.Fatalf("image inspect: %v, ID %s (want %s), Config %+v", err, ii.ID, bbID, ii.Config)
	}
	tag := "gotag" + suffix + ":v1"
	if _, err := c.ImageTag(ctx, client.ImageTagOptions{Source: "busybox", Target: tag}); err != nil {
		t.Fatal(err)
	}
	if ti, err := c.ImageInspect(ctx, tag); err != nil || ti.ID != bbID {
		t.Fatalf("inspect %s: %v, ID %s", tag, err, ti.ID)
	}
	rm, err := c.ImageRemove(ctx, tag, client.ImageRemoveOptions{})
	if err != nil || len(rm.Items) != 1 || rm.Items[0].Untagged != tag {
		t.Fatalf("image remove %s: %v, %+v (want one Untagged)", tag, err, rm.Items)
	}
	if _, err := c.ImageInspect(ctx, tag); !cerrdefs.IsNotFound(err) {
		t.Fatalf("inspect removed tag: %v, want not found", err)
	}
	if _, err := c.ImageInspect(ctx, "busybox"); err != nil {
		t.Fatalf("busybox gone after untagging another name: %v", err)
	}

	// Create, wait (registered before start), start, logs demultiplexed.
	name := "go-logs-" + suffix
	cr, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{Image: "busybox", Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 3"},
			Labels: map[string]string{"go": suffix}},
	})
	if err != nil {
		t.Fatal(err)
	}
	waitC := c.ContainerWait(ctx, cr.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := c.ContainerStart(ctx, cr.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	if code := waitResult(t, ctx, waitC); code != 3 {
		t.Fatalf("wait: status %d, want 3", code)
	}
	logs, err := c.ContainerLogs(ctx, name, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	o, e := demux(t, logs)
	logs.Close()
	if o != "out\n" || e != "err\n" {
		t.Fatalf("logs: stdout %q, stderr %q", o, e)
	}
	ins, err := c.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil || ins.Container.State.ExitCode != 3 || ins.Container.State.Status != container.StateExited {
		t.Fatalf("inspect: %v, state %+v", err, ins.Container.State)
	}
	list, err := c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", "go="+suffix)})
	if err != nil || len(list.Items) != 1 || list.Items[0].ID != cr.ID {
		t.Fatalf("list by label: %v, %+v", err, list.Items)
	}

	// Attach (hijacked): stdin round trip through cat, ends on stdin EOF.
	cr, err = c.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{
		Image: "busybox", Cmd: []string{"cat"}, OpenStdin: true, StdinOnce: true,
		AttachStdin: true, AttachStdout: true, AttachStderr: true,
	}})
	if err != nil {
		t.Fatal(err)
	}
	att, err := c.ContainerAttach(ctx, cr.ID, client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ContainerStart(ctx, cr.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	payload := strings.Repeat("round trip through cat\n", 2000)
	go func() {
		io.WriteString(att.Conn, payload)
		att.CloseWrite()
	}()
	o, e = demux(t, att.Reader)
	att.Close()
	if o != payload || e != "" {
		t.Fatalf("attach: stdout %d bytes (want %d), stderr %q", len(o), len(payload), e)
	}
	if code := waitExit(t, ctx, c, cr.ID, container.WaitConditionNotRunning); code != 0 {
		t.Fatalf("cat exited %d after stdin EOF", code)
	}

	// Exec: attached with exit code, and detached.
	cr.ID = startSleeper(t, ctx, c)
	ex, err := c.ExecCreate(ctx, cr.ID, client.ExecCreateOptions{
		Cmd: []string{"sh", "-c", "echo $E; echo e2 >&2; exit 4"}, Env: []string{"E=exec-env"},
		AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ea, err := c.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	o, e = demux(t, ea.Reader)
	ea.Close()
	if o != "exec-env\n" || e != "e2\n" {
		t.Fatalf("exec output: stdout %q, stderr %q", o, e)
	}
	ei, err := c.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
	if err != nil || ei.Running || ei.ExitCode != 4 || ei.ContainerID != cr.ID {
		t.Fatalf("exec inspect: %v, %+v", err, ei)
	}
	ex, err = c.ExecCreate(ctx, cr.ID, client.ExecCreateOptions{Cmd: []string{"touch", "/tmp/detached"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExecStart(ctx, ex.ID, client.ExecStartOptions{Detach: true}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ei, err = c.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !ei.Running && ei.PID != 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ei.Running || ei.ExitCode != 0 {
		t.Fatalf("detached exec: %+v", ei)
	}
	ex, _ = c.ExecCreate(ctx, cr.ID, client.ExecCreateOptions{Cmd: []string{"ls", "/tmp/detached"}, AttachStdout: true})
	ea, err = c.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if o, _ = demux(t, ea.Reader); o != "/tmp/detached\n" {
		t.Fatalf("file from the detached exec: %q", o)
	}
	ea.Close()

	// Kill, then remove; a running container needs force.
	if _, err := c.ContainerKill(ctx, cr.ID, client.ContainerKillOptions{Signal: "SIGKILL"}); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, ctx, c, cr.ID, ""); code != 137 {
		t.Fatalf("killed container exited %d, want 137", code)
	}
	cr.ID = startSleeper(t, ctx, c)
	if _, err := c.ContainerRemove(ctx, cr.ID, client.ContainerRemoveOptions{}); !cerrdefs.IsConflict(err) {
		t.Fatalf("remove running: %v, want conflict", err)
	}
	removed := c.ContainerWait(ctx, cr.ID, client.ContainerWaitOptions{Condition: container.WaitConditionRemoved})
	if _, err := c.ContainerRemove(ctx, cr.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	waitResult(t, ctx, removed)
	if _, err := c.ContainerInspect(ctx, cr.ID, client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("inspect removed container: %v, want not found", err)
	}
}

func TestGoClientVersionNegotiation(t *testing.T) {
	d := testutil.StartBerthd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sv, err := newGoClient(t, d, client.MaxAPIVersion).ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sv.APIVersion == "" || sv.MinAPIVersion == "" || sv.Os != "linux" {
		t.Fatalf("version: %+v", sv)
	}
	t.Logf("server API %s (min %s)", sv.APIVersion, sv.MinAPIVersion)

	neg := newGoClient(t, d, "")
	p, err := neg.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	if err != nil {
		t.Fatal(err)
	}
	want := sv.APIVersion
	if client.MaxAPIVersion < want {
		want = client.MaxAPIVersion
	}
	if p.APIVersion != sv.APIVersion || neg.ClientVersion() != want {
		t.Fatalf("negotiated: ping %s, client %s; want client %s", p.APIVersion, neg.ClientVersion(), want)
	}
	// Both ends of the client's range work.
	for _, v := range []string{client.MinAPIVersion, client.MaxAPIVersion} {
		if _, err := newGoClient(t, d, v).ContainerList(ctx, client.ContainerListOptions{All: true}); err != nil {
			t.Fatalf("list at API %s: %v", v, err)
		}
	}
	// Too new a version is refused with dockerd's message.
	_, err = newGoClient(t, d, "1.99").ServerVersion(ctx, client.ServerVersionOptions{})
	if err == nil || !strings.Contains(err.Error(), "client version 1.99 is too new") {
		t.Fatalf("API 1.99: %v, want \"client version 1.99 is too new\"", err)
	}
}
