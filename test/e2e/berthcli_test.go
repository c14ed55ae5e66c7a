package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/creack/pty"
)

var (
	berthCLIOnce sync.Once
	berthCLIPath string
	berthCLIErr  error
)

// berthCLIBinary returns berth's CLI: $BERTH_BIN, or one built once per
// test binary.
func berthCLIBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("BERTH_BIN"); p != "" {
		return p
	}
	berthCLIOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berth-cli-")
		if err != nil {
			berthCLIErr = err
			return
		}
		berthCLIPath = filepath.Join(dir, "berth")
		cmd := exec.Command("go", "build", "-o", berthCLIPath, "github.com/berth-dev/berth/cmd/berth")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOTOOLCHAIN=local")
		if out, err := cmd.CombinedOutput(); err != nil {
			berthCLIErr = fmt.Errorf("building berth: %v\n%s", err, out)
		}
	})
	if berthCLIErr != nil {
		t.Fatal(berthCLIErr)
	}
	return berthCLIPath
}

// cliRun is one CLI invocation's outcome.
type cliRun struct {
	out, err string
	code     int
}

// cliEnv drives a test daemon with berth's CLI and, when installed, the
// docker CLI for side-by-side comparison.
type cliEnv struct {
	t      *testing.T
	d      *testutil.Berthd
	berth  string
	docker string
}

func newCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	bin := berthCLIBinary(t)
	d := testutil.StartBerthd(t)
	d.ImportBusybox(t, "busybox")
	docker, _ := exec.LookPath("docker")
	return &cliEnv{t: t, d: d, berth: bin, docker: docker}
}

func (c *cliEnv) exec(bin, stdin string, args ...string) cliRun {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = c.d.Env()
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	r := cliRun{out: o.String(), err: e.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			c.t.Fatalf("%s %q: %v", filepath.Base(bin), args, err)
		}
		r.code = ee.ExitCode()
	}
	return r
}

// run runs berth with empty stdin.
func (c *cliEnv) run(args ...string) cliRun {
	c.t.Helper()
	return c.exec(c.berth, "", args...)
}

// runIn runs berth with stdin.
func (c *cliEnv) runIn(stdin string, args ...string) cliRun {
	c.t.Helper()
	return c.exec(c.berth, stdin, args...)
}

// ok runs berth, requires exit status 0 and returns its stdout.
func (c *cliEnv) ok(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("berth %q: exit %d, stdout %q, stderr %q", args, r.code, r.out, r.err)
	}
	return r.out
}

// expect runs berth and checks its exit status and exact stdout.
func (c *cliEnv) expect(code int, want string, args ...string) cliRun {
	c.t.Helper()
	r := c.run(args...)
	if r.code != code || r.out != want {
		c.t.Errorf("berth %q: exit %d, stdout %q (stderr %q); want exit %d, stdout %q", args, r.code, r.out, r.err, code, want)
	}
	return r
}

// expectErr runs berth and checks its exit status and stderr.
func (c *cliEnv) expectErr(code int, wantErr string, args ...string) cliRun {
	c.t.Helper()
	r := c.run(args...)
	if r.code != code || r.err != wantErr {
		c.t.Errorf("berth %q: exit %d, stderr %q (stdout %q); want exit %d, stderr %q", args, r.code, r.err, r.out, code, wantErr)
	}
	return r
}

var (
	agoRE    = regexp.MustCompile(`(Less than a second|About an? (minute|hour)|\d+ (seconds?|minutes?|hours?)) ago`)
	upRE     = regexp.MustCompile(`Up (Less than a second|About an? (minute|hour)|\d+ (seconds?|minutes?|hours?))`)
	columnRE = regexp.MustCompile(`  +`)
)

// normalize makes two outputs taken a moment apart comparable: relative
// times become "T", column padding one " | ", and the program's name
// "berth".
func normalize(s string) string {
	s = agoRE.ReplaceAllString(s, "T ago")
	s = upRE.ReplaceAllString(s, "Up T")
	s = columnRE.ReplaceAllString(s, " | ")
	s = strings.ReplaceAll(s, "docker", "berth")
	s = strings.ReplaceAll(s, "Docker", "berth")
	// berth's CLI words these as docker 29 does; older CLIs differ.
	return docker28Wording.Replace(s)
}

var docker28Wording = strings.NewReplacer(
	"You cannot attach to a", "cannot attach to a",
	"Error: No public port", "no public port",
)

// compare runs the same command with berth and docker on the daemon and
// requires the same exit status, stdout and stderr (docker's name read as
// berth's). It returns berth's run.
func (c *cliEnv) compare(args ...string) cliRun {
	c.t.Helper()
	b := c.run(args...)
	if c.docker == "" {
		return b
	}
	d := c.exec(c.docker, "", args...)
	bOut, dOut := normalize(b.out), normalize(d.out)
	if args[0] == "images" || args[0] == "image" && args[1] == "ls" {
		// docker lists an image's tags in map order.
		bOut, dOut = berthSortLines(bOut), berthSortLines(dOut)
	}
	if b.code != d.code || bOut != dOut || normalize(b.err) != normalize(d.err) {
		c.t.Errorf("berth and docker differ on %q:\nberth  (exit %d):\n%s%s\ndocker (exit %d):\n%s%s",
			args, b.code, b.out, b.err, d.code, d.out, d.err)
	}
	return b
}

func berthSortLines(s string) string {
	l := strings.Split(s, "\n")
	sort.Strings(l)
	return strings.Join(l, "\n")
}

// id returns a container's full ID.
func (c *cliEnv) id(name string) string {
	c.t.Helper()
	return strings.TrimSpace(c.ok("inspect", "-f", "{{.Id}}", name))
}

// field returns inspect -f format for name, trimmed.
func (c *cliEnv) field(name, format string) string {
	c.t.Helper()
	return strings.TrimSpace(c.ok("inspect", "-f", format, name))
}

// waitState polls a container's status until it is want.
func (c *cliEnv) waitState(name, want string) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := c.field(name, "{{.State.Status}}")
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: status %q, want %q", name, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var (
	longIDRE  = regexp.MustCompile(`^[0-9a-f]{64}\n$`)
	imageIDRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`)
)

func TestBerthCLIImages(t *testing.T) {
	c := newCLIEnv(t)
	tarball := testutil.BusyboxTarball(t)

	out := c.ok("import", "-c", `CMD ["sh"]`, "-c", "ENV A=1", "-m", "my msg", tarball, "imp:1")
	if !imageIDRE.MatchString(out) {
		t.Fatalf("import printed %q, want the image ID", out)
	}
	data, err := os.ReadFile(tarball)
	if err != nil {
		t.Fatal(err)
	}
	r := c.exec(c.berth, string(data), "import", "-", "imp:2")
	if r.code != 0 || !imageIDRE.MatchString(r.out) {
		t.Fatalf("import from stdin: exit %d, %q, %q", r.code, r.out, r.err)
	}
	c.expect(0, "[A=1] [\"sh\"] my msg\n", "image", "inspect", "-f", "{{.Config.Env}} {{json .Config.Cmd}} {{.Comment}}", "imp:1")
	c.expect(0, "Imported from -\n", "image", "inspect", "-f", "{{.Comment}}", "imp:2")
	c.expect(0, "", "tag", "imp:1", "other/imp:x")
	c.expectErr(1, "Error response from daemon: No such image: nosuch:latest\n", "tag", "nosuch", "x:y")
	c.compare("image", "inspect", "nosuch")

	c.expect(0, "imp:1 other/imp:x\n", "image", "inspect", "-f", "{{join .RepoTags \" \"}}", "imp:1")
	c.expect(0, "imp:2\nimp:1\n", "images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", "reference=imp")
	if q := c.ok("images", "-q"); len(strings.Fields(q)) != 4 {
		t.Errorf("images -q: %q, want 4 IDs (busybox, imp:1, other/imp:x, imp:2)", q)
	}
	for _, args := range [][]string{
		{"images"}, {"images", "-a", "--no-trunc"}, {"images", "-q"}, {"images", "imp"},
		{"images", "--filter", "reference=imp"}, {"images", "--filter", "dangling=false"},
		{"images", "--filter", "before=imp:2"}, {"images", "--filter", "label=x"},
		{"images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}"},
		{"image", "inspect", "-f", "{{.Id}} {{.Config.Cmd}} {{.Architecture}} {{.Os}}", "busybox", "imp:1"},
		{"history", "imp:1"}, {"history", "-H=false", "imp:1"}, {"history", "--no-trunc", "-q", "imp:1"},
		{"history", "--format", "{{.ID}} {{.Comment}}", "imp:2"},
		{"history", "nosuch"}, {"images", "--filter", "bogus=1"},
		{"history", "--format", "json", "imp:1"}, {"images", "--digests"},
		{"images", "--filter", "dangling=true", "-q"}, {"images", "--filter", "reference=*imp*"},
		{"image", "inspect", "-f", "{{json .RootFS}} {{.Metadata.LastTagTime.IsZero}}", "imp:1"},
	} {
		c.compare(args...)
	}

	// Without a format: an indented JSON array, one object per argument.
	var inspected []struct {
		Id       string
		RepoTags []string
	}
	out = c.ok("image", "inspect", "imp:1", "busybox")
	if err := json.Unmarshal([]byte(out), &inspected); err != nil || len(inspected) != 2 ||
		!strings.HasPrefix(out, "[\n    {\n") || len(inspected[0].RepoTags) != 2 || !strings.HasPrefix(inspected[1].Id, "sha256:") {
		t.Errorf("image inspect: %v, %+v:\n%s", err, inspected, out)
	}

	// rmi: several references, a missing one, -f, an image in use.
	id2 := strings.TrimSpace(c.ok("image", "inspect", "-f", "{{.Id}}", "imp:2"))
	c.expect(0, "Untagged: imp:2\nDeleted: "+id2+"\nUntagged: other/imp:x\n", "rmi", "imp:2", "other/imp:x")
	c.ok("tag", "busybox", "bb:1")
	r = c.expect(1, "Untagged: bb:1\n", "rmi", "bb:1", "nosuch")
	if r.err != "Error response from daemon: No such image: nosuch:latest\n" {
		t.Errorf("rmi nosuch: stderr %q", r.err)
	}
	c.expect(0, "", "rmi", "-f", "nosuch")
	c.ok("create", "--name", "user", "busybox")
	c.expect(0, "imp 0\nbusybox 1\n", "images", "--format", "{{.Repository}} {{.Containers}}",
		"--filter", "reference=busybox", "--filter", "reference=imp:1")
	r = c.compare("rmi", "busybox")
	if r.code != 1 || !strings.Contains(r.err, "conflict: unable to delete busybox:latest (must be forced) - container ") {
		t.Errorf("rmi of an image in use: exit %d, %q", r.code, r.err)
	}
	// Forced, the image goes although a stopped container uses it.
	bbID := strings.TrimSpace(c.ok("image", "inspect", "-f", "{{.Id}}", "busybox"))
	c.expect(0, "Untagged: busybox:latest\nDeleted: "+bbID+"\n", "rmi", "-f", "busybox")
	c.expect(0, bbID+"\n", "inspect", "-f", "{{.Image}}", "user")
	c.compare("ps", "-a")
	c.expect(0, "user\n", "rm", "user")
	c.compare("images", "-a")
	c.expect(0, "imp:1\n", "images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", "dangling=false")
}

func TestBerthCLIRun(t *testing.T) {
	c := newCLIEnv(t)

	c.expect(0, "hello\n", "run", "--rm", "busybox", "echo", "hello")
	c.expect(0, "", "ps", "-aq")
	id := strings.TrimSpace(c.ok("run", "-d", "--rm", "busybox", "sh", "-c", "sleep 0.3"))
	c.run("wait", id) // it may be gone already
	deadline := time.Now().Add(5 * time.Second)
	for c.ok("ps", "-aq") != "" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	c.expect(0, "", "ps", "-aq")
	if r := c.run("run", "--rm", "-a", "stderr", "busybox", "sh", "-c", "echo out; echo err >&2"); r.code != 0 || r.out != "" || r.err != "err\n" {
		t.Errorf("run -a stderr: exit %d, %q, %q", r.code, r.out, r.err)
	}

	envFile := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(envFile, []byte("# comment\nB=from-file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.expect(0, "1 from-file\n/tmp\n1000:1001\nmyhost\n",
		"run", "--name", "opts", "-e", "A=1", "--env-file", envFile, "-w", "/tmp", "-u", "1000:1001", "-h", "myhost",
		"--label", "l=v", "busybox", "sh", "-c", `echo $A $B; pwd; echo $(id -u):$(id -g); hostname`)
	c.expect(0, "v /tmp 1000:1001 myhost\n", "inspect", "-f",
		"{{.Config.Labels.l}} {{.Config.WorkingDir}} {{.Config.User}} {{.Config.Hostname}}", "opts")
	c.expect(0, "hi there\n", "run", "--rm", "--entrypoint", "echo", "busybox", "hi", "there")
	if r := c.runIn("from stdin\n", "run", "--rm", "-i", "busybox", "cat"); r.code != 0 || r.out != "from stdin\n" {
		t.Errorf("run -i: exit %d, %q, %q", r.code, r.out, r.err)
	}
	// -t without a terminal on stdin: a TTY in the container, no error.
	c.expect(0, "tty\r\n", "run", "--rm", "-t", "busybox", "sh", "-c", "test -t 1 && echo tty")
	c.expectErr(1, "the input device is not a TTY\n", "run", "--rm", "-it", "busybox", "true")

	// The container's ID is its hostname; -d prints it.
	out := c.ok("run", "-d", "--name", "bg", "busybox", "sleep", "100")
	if !longIDRE.MatchString(out) {
		t.Fatalf("run -d printed %q", out)
	}
	c.expect(0, "running true\n", "inspect", "-f", "{{.State.Status}} {{.State.Running}}", "bg")
	c.expect(0, out[:12]+"\n", "exec", "bg", "hostname")

	// --init: the reaper is PID 1; without it, the command is.
	c.expect(0, "sh\n", "run", "--rm", "busybox", "sh", "-c", "cat /proc/1/comm; true")
	if r := c.run("run", "--rm", "--init", "busybox", "sh", "-c", "cat /proc/1/comm; echo $$"); r.code != 0 || strings.HasPrefix(r.out, "sh\n") || strings.HasSuffix(r.out, "\n1\n") {
		t.Errorf("run --init: exit %d, %q (%q): want PID 1 to be the init", r.code, r.out, r.err)
	}

	// --stop-signal, --stop-timeout: recorded, and stop uses them.
	c.ok("run", "-d", "--name", "sig", "--stop-signal", "USR1", "--stop-timeout", "1", "busybox",
		"sh", "-c", `trap "echo got-usr1; exit 9" USR1; while true; do sleep 0.1; done`)
	c.expect(0, "USR1 1\n", "inspect", "-f", "{{.Config.StopSignal}} {{.Config.StopTimeout}}", "sig")
	c.expect(0, "sig\n", "stop", "sig")
	c.expect(0, "9\n", "wait", "sig")
	c.expect(0, "got-usr1\n", "logs", "sig")
	c.ok("run", "-d", "--name", "slow", "--stop-timeout", "1", "busybox", "sleep", "100")
	start := time.Now()
	c.expect(0, "slow\n", "stop", "slow")
	if el := time.Since(start); el < time.Second || el > 6*time.Second {
		t.Errorf("stop with --stop-timeout 1 took %v", el)
	}
	c.expect(0, "137\n", "inspect", "-f", "{{.State.ExitCode}}", "slow")

	// Networks: none has only lo; host shares the host's interfaces.
	c.expect(0, "lo\n", "run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net")
	hostIfs, err := os.ReadDir("/sys/class/net")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range hostIfs {
		names = append(names, e.Name())
	}
	c.expect(0, strings.Join(names, "\n")+"\n", "run", "--rm", "--network", "host", "busybox", "ls", "/sys/class/net")
	hn, _ := os.Hostname()
	c.expect(0, hn+"\n", "run", "--rm", "--network", "host", "busybox", "hostname")

	// Exit statuses: the command's, 125 (daemon or flags), 126, 127.
	c.expect(3, "", "run", "--rm", "busybox", "sh", "-c", "exit 3")
	for _, args := range [][]string{
		{"run", "busybox", "nonexistent-cmd"},
		{"run", "busybox", "/etc"},
		{"run", "127.0.0.1:1/nosuch:img"},
		{"run", "--name", "bg", "busybox"},
		{"run", "--bogus-flag", "busybox"},
		{"run", "--network", "nosuchnet", "busybox", "true"},
		{"run", "-u", "nosuchuser", "busybox", "true"},
		{"run"},
	} {
		c.compare(args...)
	}
	c.expectErr(127, "berth: Error response from daemon: failed to create task for container: exec: \"nonexistent-cmd\": executable file not found in $PATH\n\nRun 'berth run --help' for more information\n",
		"run", "busybox", "nonexistent-cmd")
	c.expectErr(126, "berth: Error response from daemon: failed to create task for container: exec: \"/etc\": is a directory\n\nRun 'berth run --help' for more information\n",
		"run", "busybox", "/etc")
	c.expectErr(125, "Unable to find image '127.0.0.1:1/nosuch:img' locally\nberth: Error response from daemon: Get \"http://127.0.0.1:1/v2/\": dial tcp 127.0.0.1:1: connect: connection refused\n\nRun 'berth run --help' for more information\n",
		"run", "127.0.0.1:1/nosuch:img")
	if r := c.run("run", "--bogus-flag", "busybox"); r.code != 125 {
		t.Errorf("unknown flag: exit %d, want 125", r.code)
	}
}

func TestBerthCLILifecycle(t *testing.T) {
	c := newCLIEnv(t)

	// create, then start -a; start -a again replays nothing and reruns.
	out := c.ok("create", "--name", "once", "busybox", "echo", "hello")
	if !longIDRE.MatchString(out) {
		t.Fatalf("create printed %q", out)
	}
	c.expect(0, "created\n", "inspect", "-f", "{{.State.Status}}", "once")
	c.expect(0, "hello\n", "start", "-a", "once")
	c.expect(0, "hello\n", "start", "-a", "once")
	c.expect(0, "hello\nhello\n", "logs", "once")
	c.expect(0, "once\n", "start", "once")
	c.ok("create", "--name", "failing", "busybox", "sh", "-c", "echo bad >&2; exit 6")
	if r := c.run("start", "-a", "failing"); r.code != 6 || r.out != "" || r.err != "bad\n" {
		t.Errorf("start -a of a failing container: exit %d, %q, %q", r.code, r.out, r.err)
	}
	c.ok("create", "-i", "--name", "cat", "busybox", "cat")
	if r := c.runIn("through start -i\n", "start", "-ai", "cat"); r.code != 0 || r.out != "through start -i\n" {
		t.Errorf("start -ai: exit %d, %q, %q", r.code, r.out, r.err)
	}
	c.compare("start", "nosuch")
	c.compare("start", "-a", "nosuch", "once")

	// attach: the output from then on, the container's status as exit
	// status (stdin through attach: TestBerthCLIInteractive).
	c.ok("run", "-d", "--name", "att", "busybox", "sh", "-c", "echo before; sleep 1; echo attached; echo on-stderr >&2; exit 5")
	if r := c.run("attach", "att"); r.code != 5 || r.out != "attached\n" || r.err != "on-stderr\n" {
		t.Errorf("attach: exit %d, %q, %q", r.code, r.out, r.err)
	}
	c.compare("attach", "att")
	c.compare("attach", "nosuch")

	// ps and inspect -f, side by side, with running, paused, created and
	// exited containers.
	c.ok("run", "-d", "--name", "web", "--label", "tier=web", "busybox", "sleep", "100")
	c.ok("run", "-d", "--name", "paused", "busybox", "sleep", "100")
	c.expect(0, "paused\n", "pause", "paused")
	c.ok("create", "--name", "fresh", "--label", "tier=db", "busybox")
	c.expect(0, "paused true\n", "inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "paused")
	c.expect(0, "paused\nweb\n", "ps", "--format", "{{.Names}}")
	c.expect(0, "fresh\n", "ps", "-a", "--filter", "status=created", "--format", "{{.Names}}")
	c.expect(0, c.id("web")[:12]+"\n", "ps", "-q", "--filter", "label=tier=web")
	for _, args := range [][]string{
		{"ps"}, {"ps", "-a"}, {"ps", "-a", "--no-trunc"}, {"ps", "-aq"}, {"ps", "-n", "2"}, {"ps", "-l"},
		{"ps", "-s"}, {"ps", "-a", "--filter", "name=web"}, {"ps", "-a", "--filter", "label=tier"},
		{"ps", "-a", "--filter", "status=exited"}, {"ps", "-a", "--filter", "exited=6"},
		{"ps", "-a", "--filter", "ancestor=busybox"}, {"ps", "--filter", "status=paused"},
		{"ps", "-a", "--filter", "before=web"}, {"ps", "-a", "--filter", "since=att"},
		{"ps", "-a", "--filter", "id=" + c.id("fresh")[:8]}, {"ps", "-a", "--filter", "is-task=false"},
		{"ps", "-a", "--format", "table {{.Names}}\t{{.Label \"tier\"}}\t{{.Command}}"},
		{"ps", "-a", "--format", "{{.ID}} {{.Image}} {{.State}} {{.Labels}} {{.Mounts}} {{.Networks}}"},
		{"ps", "--filter", "bogus=1"}, {"ps", "--filter", "status=bogus"},
		{"inspect", "-f", "{{.State.Status}} {{.Name}} {{.Config.Image}} {{json .Config.Cmd}}", "web", "once", "fresh"},
		{"inspect", "-f", "{{.HostConfig.NetworkMode}} {{.RestartCount}} {{.Path}} {{.Args}}", "web"},
		{"inspect", "--type", "container", "-f", "{{.Name}}", "web"},
		{"inspect", "-f", "{{.Name}}", "web", "nosuch"}, {"inspect", "nosuch"},
		{"container", "inspect", "-f", "{{.Bogus}}", "web"},
		{"top", "web"}, {"top", "web", "-o", "pid,comm"}, {"top", "fresh"}, {"top", "nosuch"},
		{"port", "web"}, {"port", "web", "80"}, {"port", "nosuch"},
		{"pause", "paused"}, {"unpause", "web"}, {"exec", "paused", "true"}, {"attach", "paused"},
		{"stop", "nosuch"}, {"kill", "once"}, {"wait", "nosuch"}, {"rename", "web", "paused"},
		{"rm", "web"}, {"rm", "nosuch"}, {"logs", "nosuch"},
		{"stats", "--no-stream", "nosuch"}, {"stats", "--no-stream", "--format", "{{.Name}} {{.Container}}", "web"},
		{"create", "--name", "bad/name", "busybox"}, {"run", "-d", "--rm", "--name", "x", "nosuch"},
		{"restart", "nosuch"}, {"pause", "fresh"}, {"unpause", "fresh"}, {"top", "fresh"},
		{"ps", "-a", "--format", "json"}, {"container", "ls", "-a", "--format", "{{json .Labels}}"},
		{"inspect", "-s", "-f", "{{.SizeRw}} {{.SizeRootFs}}", "fresh"}, {"inspect", "-f", "{{json .Config.Cmd}} {{json .Config.Labels}} {{json .State.Running}}", "web"},
		{"ps", "-a", "--filter", "name=^/web$", "--filter", "name=fresh", "-q"},
	} {
		c.compare(args...)
	}
	c.expect(0, "paused\n", "unpause", "paused")
	c.expect(0, "running false\n", "inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "paused")

	// top lists the container's processes.
	if out := c.ok("top", "web"); !strings.Contains(out, "sleep 100") || !strings.HasPrefix(out, "UID ") {
		t.Errorf("top: %q", out)
	}
	if st := c.run("stats", "--no-stream", "web"); st.code != 0 || !strings.Contains(st.out, "web") || !strings.HasPrefix(st.out, "CONTAINER ID ") {
		t.Errorf("stats --no-stream: exit %d, %q, %q", st.code, st.out, st.err)
	}

	// wait: each container's status on its line.
	c.ok("run", "-d", "--name", "w7", "busybox", "sh", "-c", "sleep 0.5; exit 7")
	c.ok("run", "-d", "--name", "w0", "busybox", "true")
	c.expect(0, "7\n0\n", "wait", "w7", "w0")

	// stop -t: PID 1 ignores SIGTERM, so the kill comes after 1s.
	c.ok("run", "-d", "--name", "stubborn", "busybox", "sleep", "100")
	start := time.Now()
	c.expect(0, "stubborn\n", "stop", "-t", "1", "stubborn")
	if el := time.Since(start); el < time.Second || el > 6*time.Second {
		t.Errorf("stop -t 1 took %v", el)
	}
	c.expect(0, "exited 137\n", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "stubborn")
	c.expect(0, "stubborn\n", "stop", "stubborn") // stopping a stopped container

	// kill -s: the container's trap sees the signal.
	c.ok("run", "-d", "--name", "trap", "busybox", "sh", "-c", `trap "exit 9" USR1; while true; do sleep 0.1; done`)
	time.Sleep(300 * time.Millisecond) // let the shell install its trap
	c.expect(0, "trap\n", "kill", "-s", "USR1", "trap")
	c.expect(0, "9\n", "wait", "trap")
	c.compare("kill", "-s", "NOSIG", "web")

	// restart: a new start, the same container.
	before := c.field("web", "{{.State.StartedAt}} {{.State.Pid}}")
	c.expect(0, "web\n", "restart", "-t", "1", "web")
	if after := c.field("web", "{{.State.StartedAt}} {{.State.Pid}}"); after == before {
		t.Errorf("restart: StartedAt and Pid unchanged (%s)", after)
	}
	c.expect(0, "running\n", "inspect", "-f", "{{.State.Status}}", "web")
	c.expect(0, "once\n", "restart", "once") // an exited container starts

	// rename.
	webID := c.id("web")
	c.expect(0, "", "rename", "web", "site")
	c.expect(0, "/site "+webID+"\n", "inspect", "-f", "{{.Name}} {{.Id}}", "site")
	c.compare("inspect", "-f", "{{.Name}}", "web")
	c.compare("rename", "site", "once")

	// rm: several at once, -f for running ones; a failure leaves the rest.
	c.ok("create", "--name", "gone1", "busybox")
	c.ok("create", "--name", "gone2", "busybox")
	c.expect(0, "gone1\ngone2\n", "rm", "gone1", "gone2")
	r := c.run("rm", "site", "nosuch")
	if r.code != 1 || !strings.Contains(r.err, "Error response from daemon: cannot remove container \"/site\": container is running: stop the container before removing") ||
		!strings.Contains(r.err, "No such container: nosuch") {
		t.Errorf("rm of a running and a missing container: exit %d, %q", r.code, r.err)
	}
	c.expect(0, "site\n", "rm", "-f", "site")
	c.expect(0, "", "rm", "-f", "site") // docker 29: -f ignores missing containers
	c.compare("inspect", "site")

	// prune: every stopped container goes, running ones stay.
	var stopped []string
	for _, l := range strings.Fields(c.ok("ps", "-aq", "--no-trunc", "--filter", "status=exited", "--filter", "status=created")) {
		stopped = append(stopped, l)
	}
	r = c.run("container", "prune", "-f")
	if r.code != 0 || !strings.HasPrefix(r.out, "Deleted Containers:\n") || !strings.Contains(r.out, "\nTotal reclaimed space: ") {
		t.Errorf("container prune -f: exit %d, %q, %q", r.code, r.out, r.err)
	}
	for _, id := range stopped {
		if !strings.Contains(r.out, id+"\n") {
			t.Errorf("container prune -f did not report %s: %q", id, r.out)
		}
	}
	c.expect(0, "paused\n", "ps", "-a", "--format", "{{.Names}}")
	c.compare("container", "prune", "-f")

	// version and info, against the daemon.
	v := c.ok("version")
	if !strings.Contains(v, "Client:\n") || !strings.Contains(v, "\nServer: berth\n") {
		t.Errorf("version: %q", v)
	}
	c.compare("version", "-f", "{{.Server.Version}} {{.Server.APIVersion}} {{.Server.Os}}")
	c.compare("info", "-f", "{{.Containers}} {{.ContainersRunning}} {{.ContainersPaused}} {{.ContainersStopped}} {{.Images}} {{.Name}}")
	c.expect(0, "1 1 0 0\n", "info", "-f", "{{.Containers}} {{.ContainersRunning}} {{.ContainersPaused}} {{.ContainersStopped}}")
	if info := c.ok("info"); !strings.Contains(info, "Server:\n") || !strings.Contains(info, " Containers: 1\n") {
		t.Errorf("info: %q", info)
	}

	// Without a daemon.
	c.d.Stop()
	for _, args := range [][]string{{"ps"}, {"images"}, {"version", "-f", "{{.Server}}"}} {
		c.compare(args...)
	}
	// docker 29's run reports the failed ping as is.
	c.expectErr(1, "Cannot connect to the berth daemon at "+c.d.Host()+". Is the berth daemon running?\n", "run", "busybox")
	c.d.Start()
}

func TestBerthCLILogs(t *testing.T) {
	c := newCLIEnv(t)
	c.ok("run", "--name", "lg", "busybox", "sh", "-c", "echo out1; echo err1 >&2; sleep 1.2; echo out2; echo err2 >&2")

	if r := c.run("logs", "lg"); r.code != 0 || r.out != "out1\nout2\n" || r.err != "err1\nerr2\n" {
		t.Errorf("logs: exit %d, stdout %q, stderr %q", r.code, r.out, r.err)
	}
	if r := c.run("logs", "--tail", "2", "lg"); r.out != "out2\n" || r.err != "err2\n" {
		t.Errorf("logs --tail 2: stdout %q, stderr %q", r.out, r.err)
	}
	r := c.run("logs", "-t", "lg")
	tsRE := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z out1\n\S+ out2\n$`)
	if r.code != 0 || !tsRE.MatchString(r.out) {
		t.Errorf("logs -t: exit %d, stdout %q", r.code, r.out)
	}
	// --since/--until on the time between the two outputs.
	ts1, err := time.Parse(time.RFC3339Nano, strings.Fields(r.out)[0])
	if err != nil {
		t.Fatal(err)
	}
	mid := ts1.Add(600 * time.Millisecond).Format(time.RFC3339Nano)
	c.expect(0, "out2\n", "logs", "--since", mid, "lg")
	c.expect(0, "out1\n", "logs", "--until", mid, "lg")
	c.expect(0, "", "logs", "--since", "1s", "--until", "2s", "lg")
	for _, args := range [][]string{
		{"logs", "lg"}, {"logs", "--tail", "1", "lg"}, {"logs", "--tail", "0", "lg"}, {"logs", "-n", "all", "lg"},
		{"logs", "--since", mid, "lg"}, {"logs", "--until", mid, "lg"}, {"logs", "--since", "bogus", "lg"},
		{"logs", "-f", "lg"}, {"logs", "--details", "lg"},
	} {
		c.compare(args...)
	}

	// -f follows until the container exits.
	c.ok("run", "-d", "--name", "fl", "busybox", "sh", "-c", "echo first; sleep 1; echo second")
	start := time.Now()
	c.expect(0, "first\nsecond\n", "logs", "-f", "fl")
	if el := time.Since(start); el < 500*time.Millisecond {
		t.Errorf("logs -f returned after %v, before the container ended", el)
	}
	// A TTY container's log is its terminal output.
	c.ok("run", "-t", "--name", "tl", "busybox", "echo", "on a tty")
	c.expect(0, "on a tty\r\n", "logs", "tl")
	c.compare("logs", "tl")
}

func TestBerthCLIExec(t *testing.T) {
	c := newCLIEnv(t)
	c.ok("run", "-d", "--name", "box", "busybox", "sleep", "100")

	c.expect(0, "hi\n", "exec", "box", "echo", "hi")
	c.expect(4, "/root\n", "exec", "box", "sh", "-c", "echo $HOME; exit 4")
	c.expect(0, "bar\n/tmp\n1000\n", "exec", "-e", "FOO=bar", "-w", "/tmp", "-u", "1000", "box", "sh", "-c", "echo $FOO; pwd; id -u")
	if r := c.runIn("piped\n", "exec", "-i", "box", "cat"); r.code != 0 || r.out != "piped\n" {
		t.Errorf("exec -i: exit %d, %q, %q", r.code, r.out, r.err)
	}
	if r := c.runIn("piped\n", "exec", "box", "cat"); r.code != 0 || r.out != "" {
		t.Errorf("exec without -i read stdin: exit %d, %q, %q", r.code, r.out, r.err)
	}
	if r := c.run("exec", "box", "sh", "-c", "echo to-stderr >&2"); r.out != "" || r.err != "to-stderr\n" {
		t.Errorf("exec stderr: %q, %q", r.out, r.err)
	}
	c.expect(0, "tty\r\n", "exec", "-t", "box", "sh", "-c", "test -t 1 && echo tty")
	c.expect(0, "", "exec", "-d", "box", "sh", "-c", "sleep 0.2; echo detached > /tmp/d")
	deadline := time.Now().Add(5 * time.Second)
	for c.run("exec", "box", "cat", "/tmp/d").out != "detached\n" {
		if time.Now().After(deadline) {
			t.Fatal("exec -d: the command did not run")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// --privileged: the full capability set.
	capEff := func(args ...string) string {
		out := c.ok(append(append([]string{"exec"}, args...), "box", "grep", "CapEff", "/proc/self/status")...)
		return strings.TrimSpace(strings.TrimPrefix(out, "CapEff:"))
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	bnd := regexp.MustCompile(`CapBnd:\s*(\S+)`).FindSubmatch(status)
	if def, priv := capEff(), capEff("--privileged"); def == priv || bnd == nil || priv != string(bnd[1]) {
		t.Errorf("exec --privileged: CapEff %s (want the host's bounding set %s), without %s", priv, bnd, def)
	}

	c.expect(127, "OCI runtime exec failed: exec failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH\r\n", "exec", "box", "nosuch")
	for _, args := range [][]string{
		{"exec", "box", "nosuch"}, {"exec", "box", "/etc"}, {"exec", "box", "sh", "-c", "exit 42"},
		{"exec", "nosuch", "true"}, {"exec", "box"}, {"exec", "-u", "nosuchuser", "box", "true"},
	} {
		c.compare(args...)
	}
	c.ok("stop", "-t", "0", "box")
	c.compare("exec", "box", "true")
}

// ptyCmd is a CLI process on a pseudo-terminal.
type ptyCmd struct {
	t    *testing.T
	cmd  *exec.Cmd
	tty  *os.File
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{}
}

func (c *cliEnv) startPty(args ...string) *ptyCmd {
	c.t.Helper()
	cmd := exec.Command(c.berth, args...)
	cmd.Env = append(c.d.Env(), "TERM=xterm")
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		c.t.Fatal(err)
	}
	p := &ptyCmd{t: c.t, cmd: cmd, tty: f, done: make(chan struct{})}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := f.Read(b)
			p.mu.Lock()
			p.buf.Write(b[:n])
			p.mu.Unlock()
			if err != nil {
				close(p.done)
				return
			}
		}
	}()
	c.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		f.Close()
	})
	return p
}

func (p *ptyCmd) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

// waitFor waits until the terminal has shown s.
func (p *ptyCmd) waitFor(s string) {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.output(), s) {
		if time.Now().After(deadline) {
			p.t.Fatalf("terminal never showed %q; it shows %q", s, p.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *ptyCmd) send(s string) {
	p.t.Helper()
	if _, err := p.tty.Write([]byte(s)); err != nil {
		p.t.Fatal(err)
	}
}

// wait returns the process's exit status.
func (p *ptyCmd) wait() int {
	p.t.Helper()
	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	select {
	case err := <-exited:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		} else if err != nil {
			p.t.Fatal(err)
		}
		return 0
	case <-time.After(15 * time.Second):
		p.t.Fatalf("berth did not exit; the terminal shows %q", p.output())
		return -1
	}
}

// exits checks the process's exit status.
func (p *ptyCmd) exits(want int, what string) {
	p.t.Helper()
	if code := p.wait(); code != want {
		p.t.Errorf("%s: exit %d, want %d; terminal %q", what, code, want, p.output())
	}
}

func TestBerthCLIInteractive(t *testing.T) {
	c := newCLIEnv(t)

	p := c.startPty("run", "-it", "--name", "it", "busybox", "sh")
	p.waitFor("/ # ")
	p.send("hostname; exit 3\r")
	p.exits(3, "run -it")
	id := c.id("it")
	if !strings.Contains(p.output(), "\r\n"+id[:12]+"\r\n") {
		t.Errorf("run -it: hostname %s not shown: %q", id[:12], p.output())
	}
	c.expect(0, "exited 3 true\n", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.Config.Tty}}", "it")

	// Detach with ctrl-p ctrl-q: the CLI exits 0, the container runs on.
	p = c.startPty("run", "-it", "--name", "det", "busybox", "sh")
	p.waitFor("/ # ")
	p.send("echo one-$((20+1))\r")
	p.waitFor("one-21")
	p.send("\x10\x11")
	p.exits(0, "detach")
	c.expect(0, "true\n", "inspect", "-f", "{{.State.Running}}", "det")

	// attach brings the same shell back.
	a := c.startPty("attach", "det")
	a.send("echo back-$((1+1))\r")
	a.waitFor("back-2")
	a.send("exit 4\r")
	a.exits(4, "attach")
	c.expect(0, "exited 4\n", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "det")
	// The session's output is in the log, and exec -it runs a shell too.
	if logs := c.ok("logs", "det"); !strings.Contains(logs, "one-21\r\n") || !strings.Contains(logs, "back-2\r\n") {
		t.Errorf("logs of the tty session: %q", logs)
	}
	c.ok("start", "it")
	e := c.startPty("exec", "-it", "it", "sh")
	e.waitFor("/ # ")
	e.send("tty; exit 2\r")
	e.waitFor("/dev/pts/")
	e.exits(2, "exec -it")
}

func TestBerthCLISignalProxy(t *testing.T) {
	c := newCLIEnv(t)
	for _, args := range [][]string{
		{"run", "--name", "proxied", "busybox"},
		{"start", "-a", "proxied"},
	} {
		cmd := exec.Command(c.berth, args...)
		if args[0] == "run" {
			cmd.Args = append(cmd.Args, "sh", "-c", `trap "echo got-usr1; exit 7" USR1; echo ready; while true; do sleep 0.1; done`)
		}
		cmd.Env = c.d.Env()
		var out syncBuffer
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(out.String(), "ready\n") && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		ee, _ := err.(*exec.ExitError)
		if ee == nil || ee.ExitCode() != 7 || !strings.HasSuffix(out.String(), "ready\ngot-usr1\n") {
			t.Errorf("berth %s with SIGUSR1: %v, stdout %q; want exit 7 after got-usr1", args[0], err, out.String())
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
