package containers

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/container"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	containertypes "github.com/moby/moby/api/types/container"
)

func TestMergeImageConfig(t *testing.T) {
	img := &dockerspec.DockerOCIImageConfig{}
	img.Env = []string{"PATH=/img", "A=img", "B=img"}
	img.Cmd = []string{"img-cmd"}
	img.Entrypoint = []string{"img-entry"}
	img.WorkingDir = "/img"
	img.User = "imguser"
	img.Labels = map[string]string{"l1": "img", "l2": "img"}
	img.ExposedPorts = map[string]struct{}{"80/tcp": {}}
	img.StopSignal = "SIGQUIT"

	for _, tc := range []struct {
		name           string
		cfg            containertypes.Config
		wantEntry, cmd []string
		env            []string
	}{
		{name: "image defaults", wantEntry: []string{"img-entry"}, cmd: []string{"img-cmd"}, env: []string{"PATH=/img", "A=img", "B=img"}},
		{name: "cmd replaces the image's, entrypoint kept", cfg: containertypes.Config{Cmd: []string{"x"}}, wantEntry: []string{"img-entry"}, cmd: []string{"x"}},
		{name: "entrypoint drops the image's cmd", cfg: containertypes.Config{Entrypoint: []string{"e"}}, wantEntry: []string{"e"}, cmd: nil},
		{name: "empty entrypoint resets it", cfg: containertypes.Config{Entrypoint: []string{}, Cmd: []string{"c"}}, wantEntry: []string{}, cmd: []string{"c"}},
		{name: `--entrypoint "" resets it`, cfg: containertypes.Config{Entrypoint: []string{""}, Cmd: []string{"c"}}, wantEntry: []string{}, cmd: []string{"c"}},
		{name: "env merged, container wins", cfg: containertypes.Config{Env: []string{"A=ctr", "C=ctr"}}, wantEntry: []string{"img-entry"}, cmd: []string{"img-cmd"},
			env: []string{"PATH=/img", "B=img", "A=ctr", "C=ctr"}},
	} {
		cfg := tc.cfg
		mergeImageConfig(&cfg, img)
		if !slices.Equal(cfg.Entrypoint, tc.wantEntry) || !slices.Equal(cfg.Cmd, tc.cmd) {
			t.Errorf("%s: entrypoint %q cmd %q", tc.name, cfg.Entrypoint, cfg.Cmd)
		}
		if tc.env != nil && !slices.Equal(cfg.Env, tc.env) {
			t.Errorf("%s: env %q, want %q", tc.name, cfg.Env, tc.env)
		}
		if cfg.WorkingDir != "/img" || cfg.User != "imguser" || cfg.StopSignal != "SIGQUIT" || len(cfg.ExposedPorts) != 1 {
			t.Errorf("%s: copied fields %+v", tc.name, cfg)
		}
	}
	cfg := containertypes.Config{Labels: map[string]string{"l1": "ctr"}, WorkingDir: "/w", User: "u"}
	mergeImageConfig(&cfg, img)
	if cfg.Labels["l1"] != "ctr" || cfg.Labels["l2"] != "img" || cfg.WorkingDir != "/w" || cfg.User != "u" {
		t.Errorf("container values must win: %+v", cfg)
	}
}

func TestStatusString(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		st   container.State
		want string
	}{
		{container.State{}, "Created"},
		{container.State{Running: true, StartedAt: now.Add(-5 * time.Second)}, "Up 5 seconds"},
		{container.State{Running: true, Paused: true, StartedAt: now.Add(-90 * time.Second)}, "Up About a minute (Paused)"},
		{container.State{StartedAt: now.Add(-time.Hour), FinishedAt: now.Add(-3 * time.Minute), ExitCode: 137}, "Exited (137) 3 minutes ago"},
		{container.State{Dead: true, StartedAt: now}, "Dead"},
	} {
		if got := statusString(&tc.st); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.st, got, tc.want)
		}
	}
	for d, want := range map[time.Duration]string{
		0: "Less than a second", time.Second: "1 second", 59 * time.Second: "59 seconds",
		time.Minute: "About a minute", 45 * time.Minute: "45 minutes", time.Hour: "About an hour",
		5 * time.Hour: "5 hours", 72 * time.Hour: "3 days", 21 * 24 * time.Hour: "3 weeks",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestParsePS(t *testing.T) {
	out := "UID        PID  PPID  C STIME TTY          TIME CMD\n" +
		"root         1     0  0 10:00 ?        00:00:01 /sbin/init splash\n" +
		"root       100     1  0 10:01 ?        00:00:00 sleep 1000\n" +
		"root       200     1  0 10:01 ?        00:00:00 sh -c while true; do :; done\n"
	r, err := parsePS(out, []int{100, 200})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Titles) != 8 || len(r.Processes) != 2 {
		t.Fatalf("titles %q processes %q", r.Titles, r.Processes)
	}
	if got := r.Processes[1][7]; got != "sh -c while true; do :; done" {
		t.Errorf("command column %q", got)
	}
	if _, err := parsePS("USER COMMAND\nroot x\n", []int{1}); err == nil {
		t.Error("ps output without PID accepted")
	}
}

func TestResolvConf(t *testing.T) {
	got := string(resolvConf(false, []string{"1.1.1.1"}, []string{"example.com"}, []string{"ndots:2"}))
	want := "nameserver 1.1.1.1\nsearch example.com\noptions ndots:2\n"
	if got != want {
		t.Errorf("resolv.conf %q, want %q", got, want)
	}
	// Loopback resolvers never reach a container with its own network.
	for _, line := range strings.Split(string(resolvConf(false, nil, nil, nil)), "\n") {
		if strings.HasPrefix(line, "nameserver 127.") {
			t.Errorf("loopback nameserver kept: %q", line)
		}
	}
}

func TestSmallParsers(t *testing.T) {
	if k, err := detachKeys(""); err != nil || !slices.Equal(k, []byte{16, 17}) {
		t.Errorf("default detach keys %v %v", k, err)
	}
	if _, err := detachKeys("ctrl-"); err == nil {
		t.Error("bad detach keys accepted")
	}
	for msg, want := range map[string]int{
		`exec: "x": executable file not found in $PATH`:  127,
		`exec: "/x": stat /x: no such file or directory`: 127,
		`exec: "/etc": is a directory`:                   126,
		`exec: "/etc/passwd": permission denied`:         126,
		`cgroup: something else`:                         128,
	} {
		if got := startExitCode(msg); got != want {
			t.Errorf("startExitCode(%q) = %d, want %d", msg, got, want)
		}
	}
	if !labelsMatch(map[string]string{"a": "1", "b": "2"}, []string{"a", "b=2"}, []string{"c"}) {
		t.Error("labels should match")
	}
	if labelsMatch(map[string]string{"a": "1"}, []string{"a=2"}, nil) || labelsMatch(map[string]string{"a": "1"}, nil, []string{"a"}) {
		t.Error("labels should not match")
	}
	if ts, err := parseUntil("1700000000"); err != nil || ts.Unix() != 1700000000 {
		t.Errorf("parseUntil unix: %v %v", ts, err)
	}
	if ts, err := parseUntil("1h"); err != nil || time.Since(ts) < 59*time.Minute {
		t.Errorf("parseUntil duration: %v %v", ts, err)
	}
	if _, err := parseUntil("yesterday"); err == nil {
		t.Error("parseUntil accepted garbage")
	}
}

func TestRestartPolicy(t *testing.T) {
	always := containertypes.RestartPolicy{Name: containertypes.RestartPolicyAlways}
	unless := containertypes.RestartPolicy{Name: containertypes.RestartPolicyUnlessStopped}
	onFail2 := containertypes.RestartPolicy{Name: containertypes.RestartPolicyOnFailure, MaximumRetryCount: 2}
	onFail := containertypes.RestartPolicy{Name: containertypes.RestartPolicyOnFailure}
	for _, tc := range []struct {
		p        containertypes.RestartPolicy
		code, n  int
		stopped  bool
		expected bool
	}{
		{containertypes.RestartPolicy{}, 1, 0, false, false},
		{containertypes.RestartPolicy{Name: "no"}, 1, 0, false, false},
		{always, 0, 5, false, true},
		{always, 0, 0, true, false},
		{unless, 3, 0, false, true},
		{unless, 3, 0, true, false},
		{onFail2, 0, 0, false, false},
		{onFail2, 1, 1, false, true},
		{onFail2, 1, 2, false, false},
		{onFail, 1, 100, false, true},
	} {
		if got := shouldRestart(tc.p, tc.code, tc.n, tc.stopped); got != tc.expected {
			t.Errorf("%+v exit %d after %d restarts (stopped %v): %v", tc.p, tc.code, tc.n, tc.stopped, got)
		}
	}
	for _, tc := range []struct {
		n    int
		ran  time.Duration
		want time.Duration
	}{
		{0, 0, 100 * time.Millisecond},
		{3, time.Second, 800 * time.Millisecond},
		{20, 0, time.Minute},
		{20, 11 * time.Second, 100 * time.Millisecond},
	} {
		if got := restartDelay(tc.n, tc.ran); got != tc.want {
			t.Errorf("restartDelay(%d, %v) = %v, want %v", tc.n, tc.ran, got, tc.want)
		}
	}
}
