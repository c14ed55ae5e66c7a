package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestDockerCLIRun covers docker run's flags, exit codes and errors.
func TestDockerCLIRun(t *testing.T) {
	c := newDockerCLI(t)
	overlayDirs := func() int {
		ents, err := os.ReadDir(filepath.Join(c.d.DataRoot, "overlay2"))
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	layersBefore := overlayDirs()

	// --rm: the container and its writable layer are gone afterwards.
	out, errOut, code := c.run("run", "--rm", "--name", "gone", "busybox", "sh", "-c", "echo out; echo err >&2; exit 4")
	if code != 4 || out != "out\n" || errOut != "err\n" {
		t.Errorf("run --rm: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if got := c.ok("ps", "-aq", "--filter", "name=gone"); got != "" {
		t.Errorf("run --rm left the container: %q", got)
	}
	if n := overlayDirs(); n != layersBefore {
		t.Errorf("overlay2 holds %d entries after run --rm, %d before", n, layersBefore)
	}

	// -d prints the full ID; the hostname is the short ID; a random name.
	id := c.ok("run", "-d", "busybox", "sleep", "300")
	if !dcFullIDRe.MatchString(id) {
		t.Fatalf("run -d printed %q", id)
	}
	if got := c.inspect(id, "{{.State.Running}} {{.Config.Hostname}}"); got != "true "+id[:12] {
		t.Errorf("running/hostname: %q", got)
	}
	if got := c.ok("exec", id, "hostname"); got != id[:12] {
		t.Errorf("hostname %q, want %q", got, id[:12])
	}
	name := strings.TrimPrefix(c.inspect(id, "{{.Name}}"), "/")
	if !regexp.MustCompile(`^[a-z]+_[a-z]+$`).MatchString(name) {
		t.Errorf("random name %q is not adjective_surname", name)
	}
	if got := c.ok("ps", "-q", "--no-trunc", "--filter", "name="+name); got != id {
		t.Errorf("ps by random name: %q", got)
	}

	// A duplicate --name is a conflict (409), exit 125.
	c.ok("create", "--name", "taken", "busybox")
	takenID := c.inspect("taken", "{{.Id}}")
	errOut = c.fails(125, "run", "--name", "taken", "busybox", "true")
	dcWantContains(t, "duplicate name", errOut,
		`Conflict. The container name "/taken" is already in use by container "`+takenID+`"`)

	// -i: stdin reaches the process; -t: a terminal.
	out, errOut, code = c.runIn(strings.NewReader("line one\nline two\n"), "run", "--rm", "-i", "busybox", "cat")
	if code != 0 || out != "line one\nline two\n" {
		t.Errorf("run -i cat: exit %d, %q, %q", code, out, errOut)
	}
	if out := c.ok("run", "--rm", "-t", "busybox", "tty"); !strings.HasPrefix(out, "/dev/pts/") {
		t.Errorf("run -t tty: %q", out)
	}
	if out := c.ok("run", "--rm", "busybox", "sh", "-c", "tty || true"); out != "not a tty" {
		t.Errorf("run without -t, tty: %q", out)
	}

	// Environment, working directory, user, entrypoint, hostname, labels.
	envFile := dcWriteFile(t, "env.list", "# comment\nFROM_FILE=yes\nSPACED=a b\n\nPASSED\n")
	out, errOut, code = c.runIn(nil, "run", "--rm", "-e", "ONE=1", "--env", "TWO=2", "--env-file", envFile,
		"busybox", "sh", "-c", `echo "$ONE $TWO $FROM_FILE [$SPACED] ${PASSED-unset}"`)
	if code != 0 || out != "1 2 yes [a b] unset\n" {
		t.Errorf("env: exit %d, %q, %q", code, out, errOut)
	}
	if got := c.ok("run", "--rm", "-w", "/not/there/yet", "busybox", "pwd"); got != "/not/there/yet" {
		t.Errorf("-w: %q", got)
	}
	if got := c.ok("run", "--rm", "-u", "berth", "-w", "/made", "busybox", "sh", "-c", "id; stat -c %u /made"); got != "uid=1000(berth) gid=1000(berth) groups=29(audio)\n1000" {
		t.Errorf("-u berth: %q", got)
	}
	if got := c.ok("run", "--rm", "-u", "1000", "busybox", "id"); got != "uid=1000(berth) gid=1000(berth) groups=29(audio)" {
		t.Errorf("-u 1000: %q", got)
	}
	if got := c.ok("run", "--rm", "-u", "4242:4343", "busybox", "id"); !strings.HasPrefix(got, "uid=4242 gid=4343") {
		t.Errorf("-u 4242:4343: %q", got)
	}
	errOut = c.fails(125, "run", "--rm", "-u", "nobody-here", "busybox", "true")
	dcWantContains(t, "unknown user", errOut, "Error response from daemon: unable to find user nobody-here: no matching entries in passwd file\n")
	if got := c.ok("run", "--rm", "--entrypoint", "echo", "busybox", "from", "entrypoint"); got != "from entrypoint" {
		t.Errorf("--entrypoint: %q", got)
	}
	if got := c.ok("run", "--rm", "-h", "box.example", "busybox", "hostname"); got != "box.example" {
		t.Errorf("-h: %q", got)
	}
	lid := c.ok("create", "--label", "a=1", "--label", "b", "busybox")
	if got := c.inspect(lid, "{{json .Config.Labels}}"); got != `{"a":"1","b":""}` {
		t.Errorf("labels: %s", got)
	}

	// --init: PID 1 is berth's init, the exit code passes through.
	out, errOut, code = c.run("run", "--rm", "--init", "busybox", "sh", "-c", `tr '\0' ' ' </proc/1/cmdline; echo; echo $$; exit 7`)
	if code != 7 {
		t.Errorf("--init: exit %d, want 7 (stderr %q)", code, errOut)
	}
	if l := dcLines(out); len(l) != 2 || !strings.Contains(l[0], "berth-init") || l[1] == "1" {
		t.Errorf("--init: PID 1 and the shell's PID: %q", out)
	}
	// The container's process starts with no signal ignored.
	if got := c.ok("run", "--rm", "busybox", "grep", "SigIgn", "/proc/self/status"); got != "SigIgn:\t0000000000000000" {
		t.Errorf("ignored signals at start: %q", got)
	}
	if got := c.ok("run", "--rm", "busybox", "sh", "-c", "echo $$"); got != "1" {
		t.Errorf("without --init the command is PID 1, got %q", got)
	}

	// Networks: none has only lo, host shares the host's UTS and interfaces.
	if got := c.ok("run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net"); got != "lo" {
		t.Errorf("--network none interfaces: %q", got)
	}
	host, _ := os.Hostname()
	hostIfs, _ := os.ReadDir("/sys/class/net")
	out = c.ok("run", "--rm", "--network", "host", "busybox", "sh", "-c", "hostname; ls /sys/class/net | wc -l")
	if l := dcLines(out); len(l) != 2 || l[0] != host || strings.TrimSpace(l[1]) != strconv.Itoa(len(hostIfs)) {
		t.Errorf("--network host: %q (host %s, %d interfaces)", out, host, len(hostIfs))
	}
	if got := c.inspect(lid, "{{.HostConfig.NetworkMode}}"); got != "bridge" && got != "default" {
		t.Errorf("default NetworkMode %q", got)
	}

	// Exit codes: 125 for docker's own failures, 126 not executable, 127 not found.
	errOut = c.fails(125, "run", "--no-such-flag", "busybox")
	dcWantContains(t, "bad flag", errOut, "unknown flag: --no-such-flag")
	errOut = c.fails(125, "run", "no-such-image")
	dcWantContains(t, "unknown image", errOut, "Unable to find image 'no-such-image:latest' locally", "Error response from daemon:")
	errOut = c.fails(126, "run", "busybox", "/etc")
	dcWantContains(t, "directory", errOut, "is a directory")
	errOut = c.fails(126, "run", "busybox", "/etc/passwd")
	dcWantContains(t, "not executable", errOut, "permission denied")
	errOut = c.fails(127, "run", "busybox", "no-such-command")
	dcWantContains(t, "missing command", errOut, "executable file not found in $PATH")
	errOut = c.fails(127, "run", "busybox", "/no/such/binary")
	dcWantContains(t, "missing path", errOut, "no such file or directory")
	c.fails(0, "run", "busybox", "true")
	c.fails(255, "run", "busybox", "sh", "-c", "exit 255")
	// A start failure leaves the container Created, with the error recorded.
	fid := c.ok("create", "busybox", "/etc")
	c.fails(1, "start", fid)
	if got := c.inspect(fid, "{{.State.Status}} {{.State.ExitCode}}|{{.State.Error}}"); !strings.HasPrefix(got, "created 126|") || !strings.Contains(got, "is a directory") {
		t.Errorf("state after a failed start: %q", got)
	}
}
