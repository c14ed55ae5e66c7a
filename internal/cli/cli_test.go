package cli_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/cli"
	"github.com/berth-dev/berth/internal/cli/clitest"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
)

type result struct {
	out, err string
	code     int
}

// run runs berth against the fake daemon with stdin.
func run(t *testing.T, s *clitest.Server, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	host := "unix:///nonexistent/berth.sock"
	if s != nil {
		host = s.Host
	}
	code := cli.Run(context.Background(), append([]string{"-H", host}, args...),
		io.NopCloser(strings.NewReader(stdin)), &out, &errb)
	return result{out.String(), errb.String(), code}
}

func TestGlobalErrors(t *testing.T) {
	s := clitest.New(t)
	for _, tc := range []struct {
		name    string
		srv     *clitest.Server
		args    []string
		code    int
		out     string
		errWant string
	}{
		{"unknown command", s, []string{"xyz"}, 1, "", "berth: unknown command: berth xyz\n\nRun 'berth --help' for more information\n"},
		{"unknown flag", s, []string{"--foo"}, 125, "", "unknown flag: --foo\n\nUsage:  berth [OPTIONS] COMMAND [ARG...]\n\nRun 'berth --help' for more information\n"},
		{"version flag", s, []string{"-v"}, 0, "berth version dev, build unknown\n", ""},
		{"no daemon", nil, []string{"version"}, 1, "", "Cannot connect to the berth daemon at unix:///nonexistent/berth.sock. Is the berth daemon running?\n"},
		{"bad log level", s, []string{"-l", "loud", "version"}, 1, "", "Unable to parse logging level: loud\n"},
		{"unknown subcommand", s, []string{"system", "xyz"}, 1, "", "berth: unknown command: berth system xyz\n\nUsage:  berth system\n\nRun 'berth system --help' for more information\n"},
		{"no args allowed", s, []string{"info", "x"}, 1, "", "berth: 'berth info' accepts no arguments\n\nUsage:  berth info [OPTIONS]\n\nRun 'berth info --help' for more information\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.srv, "", tc.args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, tc.code, r.err)
			}
			if tc.out != "" && !strings.HasPrefix(r.out, tc.out) {
				t.Errorf("stdout %q, want prefix %q", r.out, tc.out)
			}
			if r.err != tc.errWant {
				t.Errorf("stderr %q, want %q", r.err, tc.errWant)
			}
		})
	}
}

func TestHostFromEnvironment(t *testing.T) {
	s := clitest.New(t)
	s.JSON("GET /info", http.StatusOK, system.Info{Name: "envhost"})
	t.Setenv("BERTH_HOST", s.Host)
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), []string{"info", "--format", "{{.Name}}"}, io.NopCloser(strings.NewReader("")), &out, &errb)
	if code != 0 || out.String() != "envhost\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

func TestVersion(t *testing.T) {
	s := clitest.New(t)
	s.JSON("GET /version", http.StatusOK, system.VersionResponse{
		Platform: struct{ Name string }{"berth"}, Version: "1.2.3", APIVersion: "1.51", MinAPIVersion: "1.40",
		Os: "linux", Arch: "amd64",
		Components: []system.ComponentVersion{{Name: "Engine", Version: "1.2.3", Details: map[string]string{
			"ApiVersion": "1.51", "MinAPIVersion": "1.40", "GitCommit": "abc", "GoVersion": "go1.26", "Os": "linux", "Arch": "amd64",
			"BuildTime": "2026-01-02T03:04:05.000000000+00:00", "Experimental": "false",
		}}},
	})
	r := run(t, s, "", "version")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	for _, want := range []string{
		"Client:\n Version:           dev\n API version:       1.51 (downgraded from 1.",
		"\nServer: berth\n Engine:\n  Version:          1.2.3\n  API version:      1.51 (minimum version 1.40)\n",
		"  Built:            Fri Jan  2 03:04:05 2026\n",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("version output lacks %q:\n%s", want, r.out)
		}
	}
	r = run(t, s, "", "version", "--format", "{{.Server.Version}} {{.Client.Version}}")
	if r.out != "1.2.3 dev\n" {
		t.Errorf("--format: %q", r.out)
	}
	r = run(t, s, "", "version", "--format", "{{.Nope")
	if r.code != 64 || !strings.HasPrefix(r.err, "template parsing error:") {
		t.Errorf("bad template: exit %d, %q", r.code, r.err)
	}
}

func TestInfo(t *testing.T) {
	s := clitest.New(t)
	s.JSON("GET /info", http.StatusOK, system.Info{
		Containers: 3, ContainersRunning: 1, ContainersStopped: 2, Images: 4, ServerVersion: "1.2.3",
		Driver: "overlay2", DriverStatus: [][2]string{{"Backing Filesystem", "extfs"}}, CgroupDriver: "cgroupfs",
		CgroupVersion: "1", KernelVersion: "6.1", OperatingSystem: "Debian", OSType: "linux", Architecture: "x86_64",
		NCPU: 2, MemTotal: 2 << 30, Name: "host", ID: "id-1", DockerRootDir: "/var/lib/berth",
		Swarm: swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive}, Warnings: []string{"WARNING: no swap limit support"},
	})
	r := run(t, s, "", "info")
	want := ` Containers: 3
  Running: 1
  Paused: 0
  Stopped: 2
 Images: 4
 Server Version: 1.2.3
 Storage Driver: overlay2
  Backing Filesystem: extfs
 Cgroup Driver: cgroupfs
 Cgroup Version: 1
`
	if r.code != 0 || !strings.Contains(r.out, "Server:\n"+want) {
		t.Fatalf("exit %d, output:\n%s", r.code, r.out)
	}
	for _, line := range []string{" Kernel Version: 6.1\n", " OSType: linux\n", " CPUs: 2\n", " Total Memory: 2GiB\n",
		" Name: host\n", " ID: id-1\n", " Docker Root Dir: /var/lib/berth\n", " Debug Mode: false\n", " Swarm: inactive\n"} {
		if !strings.Contains(r.out, line) {
			t.Errorf("info lacks %q", line)
		}
	}
	if r.err != "WARNING: no swap limit support\n" {
		t.Errorf("stderr %q", r.err)
	}
	r = run(t, s, "", "info", "-f", "{{.ContainersRunning}}/{{.Containers}} {{json .Images}}")
	if r.out != "1/3 4\n" {
		t.Errorf("--format: %q", r.out)
	}
}
