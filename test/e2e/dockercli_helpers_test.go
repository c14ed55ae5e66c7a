package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// dockerCLI drives one berthd through the real docker CLI.
type dockerCLI struct {
	t   *testing.T
	d   *testutil.Berthd
	bin string
	// env is added to the daemon's environment for each command.
	env []string
}

// newDockerCLI starts a daemon with the busybox image imported as
// "busybox" (CMD ["sh"]).
func newDockerCLI(t *testing.T) *dockerCLI {
	t.Helper()
	bin := testutil.DockerCLI(t)
	d := testutil.StartBerthd(t)
	d.ImportBusybox(t, "busybox")
	return &dockerCLI{t: t, d: d, bin: bin}
}

// run runs docker with args and no stdin.
func (c *dockerCLI) run(args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	return c.runIn(nil, args...)
}

// runIn runs docker with args, stdin read from in (nil: no stdin).
func (c *dockerCLI) runIn(in io.Reader, args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = append(c.d.Env(), c.env...)
	cmd.Stdin = in
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok || ctx.Err() != nil {
			c.t.Fatalf("docker %s: %v (stdout %q, stderr %q)", strings.Join(args, " "), err, o.String(), e.String())
		}
		code = ee.ExitCode()
	}
	return o.String(), e.String(), code
}

// ok runs docker, fails the test unless it exits 0, and returns stdout
// with surrounding white space trimmed.
func (c *dockerCLI) ok(args ...string) string {
	c.t.Helper()
	out, errOut, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("docker %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), code, out, errOut)
	}
	return strings.TrimSpace(out)
}

// fails runs docker, fails the test unless it exits with code, and
// returns stderr.
func (c *dockerCLI) fails(code int, args ...string) string {
	c.t.Helper()
	out, errOut, got := c.run(args...)
	if got != code {
		c.t.Fatalf("docker %s: exit %d, want %d (stdout %q, stderr %q)", strings.Join(args, " "), got, code, out, errOut)
	}
	return errOut
}

// inspect returns `docker inspect -f format name`, trimmed.
func (c *dockerCLI) inspect(name, format string) string {
	c.t.Helper()
	return c.ok("inspect", "-f", format, name)
}

// inspectJSON decodes `docker inspect name` (one object) into v.
func (c *dockerCLI) inspectJSON(kind, name string, v any) {
	c.t.Helper()
	out := c.ok(kind, "inspect", name)
	var arr []json.RawMessage
	if err := json.Unmarshal([]byte(out), &arr); err != nil || len(arr) != 1 {
		c.t.Fatalf("%s inspect %s: %v: %s", kind, name, err, out)
	}
	if err := json.Unmarshal(arr[0], v); err != nil {
		c.t.Fatalf("%s inspect %s: %v", kind, name, err)
	}
}

// waitFor polls cond every 50ms until it holds or 10s have passed.
func (c *dockerCLI) waitFor(what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lines splits trimmed output into lines (none for empty output).
func dcLines(s string) []string {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// sortedLines is lines, sorted.
func dcSortedLines(s string) []string {
	l := dcLines(s)
	slices.Sort(l)
	return l
}

// wantLines fails unless got (as lines, in order) equals want.
func dcWantLines(t *testing.T, what, got string, want ...string) {
	t.Helper()
	if l := dcLines(got); !slices.Equal(l, want) {
		t.Errorf("%s: got %q, want %q", what, l, want)
	}
}

// wantSet fails unless got's lines, in any order, equal want.
func dcWantSet(t *testing.T, what, got string, want ...string) {
	t.Helper()
	w := slices.Clone(want)
	slices.Sort(w)
	if l := dcSortedLines(got); !slices.Equal(l, w) {
		t.Errorf("%s: got %q, want %q (any order)", what, l, w)
	}
}

// wantContains fails unless s contains every one of subs.
func dcWantContains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s: %q does not contain %q", what, s, sub)
		}
	}
}

var (
	dcFullIDRe  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	dcShortIDRe = regexp.MustCompile(`^[0-9a-f]{12}$`)
)

// fields splits a table row on runs of two or more spaces.
func dcFields(row string) []string {
	return regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(row), -1)
}

// writeFile writes a file in a test temp dir and returns its path.
func dcWriteFile(t *testing.T, name, content string) string {
	t.Helper()
	p := t.TempDir() + "/" + name
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
