package e2e

import (
	"os"
	"regexp"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestDockerCLIPsInspectLogs covers ps (flags and filters), inspect, logs,
// exec, top and port.
func TestDockerCLIPsInspectLogs(t *testing.T) {
	c := newDockerCLI(t)
	c.ok("import", "-c", `CMD ["true"]`, testutil.BusyboxTarball(t), "other:tag")

	// Four containers, in this order: exited 0, exited 3, created, running.
	c.ok("run", "--name", "ex0", "--label", "role=batch", "busybox", "true")
	c.fails(3, "run", "--name", "ex3", "--label", "role=batch", "--label", "tier=2", "busybox", "sh", "-c", "exit 3")
	c.ok("create", "--name", "fresh", "other:tag", "true")
	c.ok("run", "-d", "--name", "up", "--label", "role=server", "busybox", "sleep", "300")
	id := func(n string) string { return c.inspect(n, "{{.Id}}") }
	ids := map[string]string{}
	for _, n := range []string{"ex0", "ex3", "fresh", "up"} {
		ids[n] = id(n)
	}

	// ps: running only by default, -a for all (newest first).
	out := c.ok("ps")
	rows := dcLines(out)
	if len(rows) != 2 || !strings.HasPrefix(rows[0], "CONTAINER ID   IMAGE     COMMAND       CREATED") {
		t.Fatalf("ps:\n%s", out)
	}
	f := dcFields(rows[1])
	if len(f) != 6 || f[0] != ids["up"][:12] || f[1] != "busybox" || f[2] != `"sleep 300"` ||
		!strings.HasPrefix(f[4], "Up ") || f[5] != "up" {
		t.Errorf("ps row: %q", f)
	}
	names := []string{"--format", "{{.Names}}"}
	ps := func(args ...string) string { return c.ok(append(append([]string{"ps"}, args...), names...)...) }
	dcWantLines(t, "ps -a", ps("-a"), "up", "fresh", "ex3", "ex0")
	dcWantLines(t, "ps -q", c.ok("ps", "-q"), ids["up"][:12])
	dcWantLines(t, "ps -aq --no-trunc", c.ok("ps", "-aq", "--no-trunc"), ids["up"], ids["fresh"], ids["ex3"], ids["ex0"])
	dcWantLines(t, "ps -l", ps("-l"), "up")
	dcWantLines(t, "ps -n 2", ps("-n", "2"), "up", "fresh")
	out = c.ok("ps", "-a", "--format", "{{.Names}}|{{.Status}}|{{.Image}}|{{.Command}}|{{.Labels}}")
	dcWantContains(t, "ps --format", out, "ex3|Exited (3) ", "fresh|Created|other:tag|\"true\"|", "ex0|Exited (0) ")
	if !regexp.MustCompile(`ex3\|Exited \(3\) (Less than a second|\d+ seconds?) ago\|busybox\|"sh -c exit 3"\|role=batch,tier=2`).MatchString(out) {
		t.Errorf("ps --format row for ex3:\n%s", out)
	}
	out = c.ok("ps", "-s", "--filter", "name=up")
	if rows := dcLines(out); len(rows) != 2 || !strings.HasSuffix(rows[0], "SIZE") ||
		!regexp.MustCompile(`\d+(\.\d+)?k?B \(virtual \d+(\.\d+)?MB\)$`).MatchString(rows[1]) {
		t.Errorf("ps -s:\n%s", out)
	}
	out = c.ok("ps", "--no-trunc", "--filter", "name=up")
	dcWantContains(t, "ps --no-trunc", out, ids["up"])

	// Filters.
	dcWantLines(t, "status=exited", ps("-a", "--filter", "status=exited"), "ex3", "ex0")
	dcWantLines(t, "status=created", ps("-a", "--filter", "status=created"), "fresh")
	dcWantLines(t, "status=running", ps("-a", "--filter", "status=running"), "up")
	dcWantLines(t, "name=ex", ps("-a", "--filter", "name=ex"), "ex3", "ex0")
	dcWantLines(t, "id prefix", ps("-a", "--filter", "id="+ids["ex3"][:6]), "ex3")
	dcWantLines(t, "label=role", ps("-a", "--filter", "label=role"), "up", "ex3", "ex0")
	dcWantLines(t, "label=role=batch", ps("-a", "--filter", "label=role=batch"), "ex3", "ex0")
	dcWantLines(t, "two labels", ps("-a", "--filter", "label=role=batch", "--filter", "label=tier"), "ex3")
	dcWantLines(t, "ancestor=busybox", ps("-a", "--filter", "ancestor=busybox"), "up", "ex3", "ex0")
	dcWantLines(t, "ancestor=other:tag", ps("-a", "--filter", "ancestor=other:tag"), "fresh")
	dcWantLines(t, "exited=3", ps("-a", "--filter", "exited=3"), "ex3")
	dcWantLines(t, "exited=0", ps("-a", "--filter", "exited=0"), "ex0")
	dcWantLines(t, "before=fresh", ps("-a", "--filter", "before=fresh"), "ex3", "ex0")
	dcWantLines(t, "since=ex3", ps("-a", "--filter", "since=ex3"), "up", "fresh")
	dcWantLines(t, "two statuses", ps("-a", "--filter", "status=created", "--filter", "status=running"), "up", "fresh")
	errOut := c.fails(1, "ps", "--filter", "status=sleepy")
	dcWantContains(t, "bad status", errOut, "invalid filter 'status=sleepy'")

	// inspect: Docker's shape.
	var ctr struct {
		Id, Created, Path, Image, Name, Driver string
		Args                                   []string
		RestartCount                           int
		State                                  struct {
			Status                                       string
			Running, Paused, Restarting, OOMKilled, Dead bool
			Pid, ExitCode                                int
			Error, StartedAt, FinishedAt                 string
		}
		Config struct {
			Hostname, Image string
			Cmd             []string
			Labels          map[string]string
		}
		HostConfig struct {
			NetworkMode   string
			RestartPolicy struct{ Name string }
			LogConfig     struct{ Type string }
		}
		GraphDriver struct {
			Name string
			Data map[string]string
		}
		Mounts          []any
		NetworkSettings struct {
			Networks map[string]any
			Ports    map[string]any
		}
	}
	c.inspectJSON("container", "up", &ctr)
	imgID := c.ok("image", "inspect", "-f", "{{.Id}}", "busybox")
	created, err := time.Parse(time.RFC3339Nano, ctr.Created)
	started, err2 := time.Parse(time.RFC3339Nano, ctr.State.StartedAt)
	if ctr.Id != ids["up"] || err != nil || err2 != nil || started.Before(created) || time.Since(created) > time.Minute ||
		ctr.Path != "sleep" || strings.Join(ctr.Args, " ") != "300" || ctr.Image != imgID || ctr.Name != "/up" ||
		ctr.RestartCount != 0 || ctr.Driver != "overlay2" {
		t.Errorf("inspect up: %+v", ctr)
	}
	st := ctr.State
	if st.Status != "running" || !st.Running || st.Paused || st.Restarting || st.OOMKilled || st.Dead ||
		st.Pid <= 0 || st.ExitCode != 0 || st.Error != "" || st.FinishedAt != "0001-01-01T00:00:00Z" {
		t.Errorf("inspect up State: %+v", st)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(st.Pid)); err != nil {
		t.Errorf("State.Pid %d is not a host process: %v", st.Pid, err)
	}
	if ctr.Config.Hostname != ids["up"][:12] || ctr.Config.Image != "busybox" || ctr.Config.Labels["role"] != "server" ||
		ctr.HostConfig.RestartPolicy.Name != "no" || ctr.HostConfig.LogConfig.Type != "json-file" ||
		ctr.GraphDriver.Name != "overlay2" || ctr.GraphDriver.Data["MergedDir"] == "" || ctr.Mounts == nil ||
		ctr.NetworkSettings.Networks == nil {
		t.Errorf("inspect up Config/HostConfig/GraphDriver/Mounts/NetworkSettings: %+v", ctr)
	}
	if _, err := os.Stat(ctr.GraphDriver.Data["MergedDir"] + "/bin/busybox"); err != nil {
		t.Errorf("MergedDir of a running container: %v", err)
	}
	got := c.inspect("ex3", "{{.State.Status}} {{.State.Running}} {{.State.ExitCode}} {{.State.Pid}}")
	if got != "exited false 3 0" {
		t.Errorf("inspect ex3 state: %q", got)
	}
	fin, err := time.Parse(time.RFC3339Nano, c.inspect("ex3", "{{.State.FinishedAt}}"))
	if err != nil || time.Since(fin) > time.Minute {
		t.Errorf("ex3 FinishedAt %v %v", fin, err)
	}
	// Several at once, -f with a JSON template, and a missing one.
	dcWantLines(t, "inspect -f two", c.ok("inspect", "-f", "{{.Name}} {{json .Config.Cmd}}", "ex0", "fresh"),
		`/ex0 ["true"]`, `/fresh ["true"]`)
	out, errOut, code := c.run("inspect", "up", "nothere")
	if code != 1 || !strings.Contains(errOut, "No such object: nothere") || !strings.Contains(out, ids["up"]) {
		t.Errorf("inspect with a missing object: exit %d, %q", code, errOut)
	}

	// logs: streams kept apart, --tail, -t, --since/--until, -f.
	c.ok("run", "-d", "--name", "talk", "busybox", "sh", "-c",
		"echo out1; echo err1 >&2; sleep 0.2; echo out2; while [ ! -e /stop ]; do sleep 0.05; done; echo out3")
	c.waitFor("out2", func() bool { return strings.Contains(c.ok("logs", "talk"), "out2") })
	out, errOut, code = c.run("logs", "talk")
	if code != 0 || out != "out1\nout2\n" || errOut != "err1\n" {
		t.Errorf("logs: %d stdout %q stderr %q", code, out, errOut)
	}
	dcWantLines(t, "logs --tail 1", c.ok("logs", "--tail", "1", "talk"), "out2")
	tOut, tErr, _ := c.run("logs", "-t", "talk")
	stamps := map[string]time.Time{}
	for _, l := range append(dcLines(tOut), dcLines(tErr)...) {
		ts, msg, _ := strings.Cut(l, " ")
		tm, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			t.Errorf("logs -t line %q: %v", l, err)
		}
		stamps[msg] = tm
	}
	if len(stamps) != 3 || !stamps["out1"].Before(stamps["out2"]) || !stamps["err1"].Before(stamps["out2"]) {
		t.Fatalf("logs -t: %q %q", tOut, tErr)
	}
	// since and until are inclusive.
	dcWantLines(t, "logs --since out2", c.ok("logs", "--since", stamps["out2"].Format(time.RFC3339Nano), "talk"), "out2")
	out, errOut, _ = c.run("logs", "--until", stamps["out1"].Format(time.RFC3339Nano), "talk")
	wantErr := ""
	if !stamps["err1"].After(stamps["out1"]) {
		wantErr = "err1\n"
	}
	if out != "out1\n" || errOut != wantErr {
		t.Errorf("logs --until out1's time: %q %q (stamps %v)", out, errOut, stamps)
	}
	if got := c.ok("logs", "--since", "1h", "--until", "1s", "talk"); got != "" {
		t.Errorf("logs until 1s ago: %q", got)
	}
	// -f follows until the container exits.
	follow := make(chan string, 1)
	go func() {
		o, _, _ := c.run("logs", "-f", "--tail", "0", "talk")
		follow <- o
	}()
	time.Sleep(300 * time.Millisecond)
	c.ok("exec", "talk", "touch", "/stop")
	select {
	case o := <-follow:
		if o != "out3\n" {
			t.Errorf("logs -f --tail 0: %q", o)
		}
	case <-time.After(15 * time.Second):
		t.Errorf("logs -f did not end with the container")
	}

	// exec: exit codes, stdin, terminal, detached, env, user, dir, privileged.
	out, _, code = c.run("exec", "up", "sh", "-c", "echo in-exec; exit 42")
	if code != 42 || out != "in-exec\n" {
		t.Errorf("exec exit: %d %q", code, out)
	}
	// As with dockerd, the failure comes back on the exec's (stdout) stream.
	out, _, code = c.run("exec", "up", "no-such-binary")
	if code != 127 || !strings.HasPrefix(out, "OCI runtime exec failed: ") || !strings.Contains(out, `"no-such-binary": executable file not found in $PATH`) {
		t.Errorf("exec of a missing binary: exit %d, %q", code, out)
	}
	c.fails(126, "exec", "up", "/etc/passwd")
	errOut = c.fails(1, "exec", "ex0", "true")
	dcWantContains(t, "exec in a stopped container", errOut, "is not running")
	out, _, code = c.runIn(strings.NewReader("via stdin\n"), "exec", "-i", "up", "cat")
	if code != 0 || out != "via stdin\n" {
		t.Errorf("exec -i: %d %q", code, out)
	}
	if got := c.ok("exec", "-t", "up", "tty"); !strings.HasPrefix(got, "/dev/pts/") {
		t.Errorf("exec -t tty: %q", got)
	}
	if got := c.ok("exec", "-d", "up", "sh", "-c", "sleep 0.2; echo bg > /tmp/bg"); got != "" {
		t.Errorf("exec -d printed %q", got)
	}
	c.waitFor("exec -d's file", func() bool { o, _, code := c.run("exec", "up", "cat", "/tmp/bg"); return code == 0 && o == "bg\n" })
	got = c.ok("exec", "-e", "EX=1", "-u", "berth", "-w", "/tmp", "up", "sh", "-c", "echo $EX; id -un; pwd")
	if got != "1\nberth\n/tmp" {
		t.Errorf("exec -e -u -w: %q", got)
	}
	capEff := func(args ...string) string {
		o := c.ok(append(append([]string{"exec"}, args...), "up", "grep", "CapEff", "/proc/self/status")...)
		return strings.TrimSpace(strings.TrimPrefix(o, "CapEff:"))
	}
	if plain, priv := capEff(), capEff("--privileged"); plain == priv || plain == "" {
		t.Errorf("exec --privileged capabilities %s, without %s", priv, plain)
	}

	// top, with and without ps options.
	out = c.ok("top", "up")
	if rows := dcLines(out); len(rows) != 2 || !strings.HasPrefix(rows[0], "UID ") || !strings.HasSuffix(rows[1], "sleep 300") ||
		dcFields(rows[1])[1] != strconv.Itoa(st.Pid) {
		t.Errorf("top (pid %d):\n%s", st.Pid, out)
	}
	out = c.ok("top", "up", "-o", "pid,comm")
	if rows := dcLines(out); len(rows) != 2 || !strings.HasPrefix(rows[0], "PID") || dcFields(rows[1])[1] != "sleep" {
		t.Errorf("top -o pid,comm:\n%s", out)
	}
	errOut = c.fails(1, "top", "ex0")
	dcWantContains(t, "top of a stopped container", errOut, "is not running")

	// port: no published ports.
	if got := c.ok("port", "up"); got != "" {
		t.Errorf("port: %q", got)
	}
	c.fails(1, "port", "nothere")
}

// TestDockerCLIVersionInfo covers version and info, with info's container
// counts following the containers' states.
func TestDockerCLIVersionInfo(t *testing.T) {
	c := newDockerCLI(t)
	out := c.ok("version", "--format", "{{.Server.Version}}|{{.Server.APIVersion}}|{{.Server.Os}}|{{.Server.Arch}}|{{.Server.MinAPIVersion}}")
	if p := strings.Split(out, "|"); len(p) != 5 || p[0] == "" || !regexp.MustCompile(`^1\.\d+$`).MatchString(p[1]) ||
		p[2] != "linux" || p[3] != goruntime.GOARCH {
		t.Errorf("version: %q", out)
	}
	out = c.ok("version")
	dcWantContains(t, "version", out, "Client:", "Server:", "Engine:", "API version:")

	counts := func() string {
		return c.ok("info", "--format", "{{.Containers}} {{.ContainersRunning}} {{.ContainersPaused}} {{.ContainersStopped}} {{.Images}}")
	}
	if got := counts(); got != "0 0 0 0 1" {
		t.Errorf("info counts at start: %s", got)
	}
	c.ok("run", "-d", "--name", "r1", "busybox", "sleep", "300")
	c.ok("run", "-d", "--name", "p1", "busybox", "sleep", "300")
	c.ok("pause", "p1")
	c.ok("run", "--name", "s1", "busybox", "true")
	c.ok("create", "--name", "c1", "busybox")
	if got := counts(); got != "4 1 1 2 1" {
		t.Errorf("info counts with running, paused, exited, created: %s", got)
	}
	c.ok("unpause", "p1")
	c.ok("stop", "-t", "0", "r1")
	c.ok("rm", "c1")
	if got := counts(); got != "3 1 0 2 1" {
		t.Errorf("info counts after unpause, stop, rm: %s", got)
	}

	out = c.ok("info")
	host, _ := os.Hostname()
	ncpu := strconv.Itoa(goruntime.NumCPU())
	for _, want := range []string{
		"Containers: 3\n", "  Running: 1\n", "  Paused: 0\n", "  Stopped: 2\n", "Images: 1\n",
		"Storage Driver: overlay2\n", "Cgroup Driver: ", "Cgroup Version: ", "Kernel Version: ",
		"Operating System: ", "OSType: linux\n", "CPUs: " + ncpu + "\n", "Total Memory: ",
		"Name: " + host + "\n", "ID: ", "Server Version: ", "Docker Root Dir: " + c.d.DataRoot + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("info lacks %q", want)
		}
	}
	var uts struct{ release string }
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		uts.release = strings.TrimSpace(string(b))
	}
	fmtd := c.ok("info", "--format", "{{.Driver}}|{{.CgroupDriver}}|{{.CgroupVersion}}|{{.KernelVersion}}|{{.OSType}}|{{.NCPU}}|{{.MemTotal}}|{{.Name}}|{{.DockerRootDir}}|{{.ID}}")
	p := strings.Split(fmtd, "|")
	if len(p) != 10 || p[0] != "overlay2" || (p[1] != "cgroupfs" && p[1] != "systemd") || (p[2] != "1" && p[2] != "2") ||
		p[3] != uts.release || p[4] != "linux" || p[5] != ncpu || p[6] == "0" || p[7] != host || p[8] != c.d.DataRoot || p[9] == "" {
		t.Errorf("info --format: %q", fmtd)
	}
}

// TestDockerCLIPublishedPorts: run -p publishes a port that docker port
// lists.
func TestDockerCLIPublishedPorts(t *testing.T) {
	c := newDockerCLI(t)
	c.ok("run", "-d", "--name", "web", "-p", "127.0.0.1:18080:80", "busybox", "httpd", "-f", "-p", "80")
	dcWantLines(t, "docker port", c.ok("port", "web"), "80/tcp -> 127.0.0.1:18080")
	dcWantLines(t, "docker port web 80", c.ok("port", "web", "80"), "127.0.0.1:18080")
	if got := c.ok("ps", "--format", "{{.Ports}}"); got != "127.0.0.1:18080->80/tcp" {
		t.Errorf("ps Ports: %q", got)
	}
}
