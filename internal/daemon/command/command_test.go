package command

import (
	"bytes"
	"context"
	"fmt"
	"github.com/berth-dev/berth/internal/testutil"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as berthd.
func TestMain(m *testing.M) {
	if os.Getenv("BERTH_TEST_BERTHD") == "1" {
		os.Exit(Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}

type daemonProc struct {
	cmd    *exec.Cmd
	sock   string
	dir    string
	stderr *bytes.Buffer
}

func startDaemon(t *testing.T, dir string, extra ...string) *daemonProc {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "berth.sock")
	// A bridge of its own: the host's default berth0 is not the test's.
	bridge := fmt.Sprintf("bc%d", rand.IntN(1_000_000))
	args := append([]string{"-H", "unix://" + sock, "--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"), "--pidfile", filepath.Join(dir, "berthd.pid"),
		"--config-file", filepath.Join(dir, "daemon.json"), "--bridge", bridge}, extra...)
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), "BERTH_TEST_BERTHD=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if _, err := os.Stat(filepath.Join(dir, "daemon.json")); os.IsNotExist(err) {
		if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemonProc{cmd: cmd, sock: sock, dir: dir, stderr: &stderr}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		testutil.RemoveDaemonNetworks(t, filepath.Join(dir, "data"), bridge)
	})
	return d
}

func (d *daemonProc) waitReady(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("unix", d.sock); err == nil {
			c.Close()
			return
		}
	}
	t.Fatalf("berthd did not listen: %s", d.stderr)
}

func (d *daemonProc) client() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.sock)
	}}}
}

func TestBerthdServesAndStops(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, dir)
	d.waitReady(t)

	resp, err := d.client().Head("http://berth/_ping")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Api-Version") == "" || resp.Header.Get("Builder-Version") != "1" {
		t.Errorf("HEAD /_ping: %d %v", resp.StatusCode, resp.Header)
	}
	if fi, err := os.Stat(d.sock); err != nil || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode: %v, %v", fi, err)
	}

	// One daemon per data root.
	second := startDaemon(t, t.TempDir(), "--data-root", filepath.Join(dir, "data"))
	_ = second
	if err := second.cmd.Wait(); err == nil || !strings.Contains(second.stderr.String(), "in use by another berthd") {
		t.Errorf("second daemon on the same data root: %v, %s", err, second.stderr)
	}

	// The docker CLI negotiates its API version with berthd.
	if docker, err := exec.LookPath("docker"); err == nil {
		out, err := exec.Command(docker, "-H", "unix://"+d.sock, "version", "--format", "{{.Server.APIVersion}} {{.Server.MinAPIVersion}}").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "1.56 1.40" {
			t.Errorf("docker version: %q, %v", out, err)
		}
		out, err = exec.Command(docker, "-H", "unix://"+d.sock, "info", "--format", "{{.Driver}} {{.CgroupDriver}} {{.DockerRootDir}}").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "overlay2 cgroupfs "+filepath.Join(dir, "data") {
			t.Errorf("docker info: %q, %v", out, err)
		}
	} else {
		t.Log("docker CLI not installed: skipping its checks")
	}
	if py, err := exec.LookPath("python3"); err == nil && exec.Command(py, "-c", "import docker").Run() == nil {
		out, err := exec.Command(py, "-c", "import docker,sys; c=docker.DockerClient(base_url='unix://'+sys.argv[1]); print(c.ping(), c.version()['MinAPIVersion'])", d.sock).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "True 1.40" {
			t.Errorf("docker-py: %q, %v", out, err)
		}
	} else {
		t.Log("docker-py not installed: skipping its checks")
	}

	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Wait(); err != nil {
		t.Errorf("berthd after SIGTERM: %v, %s", err, d.stderr)
	}
	for _, f := range []string{d.sock, filepath.Join(dir, "berthd.pid")} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s left after shutdown", f)
		}
	}
}

func TestBerthdConfigErrors(t *testing.T) {
	tests := []struct {
		name, config string
		flags        []string
		want         string
	}{
		{"unknown key", `{"not-a-key": 1}`, nil, "the following directives don't match any configuration option: not-a-key"},
		{"flag and file", `{"log-level": "debug"}`, []string{"--log-level", "warn"}, "specified both as a flag and in the configuration file: log-level"},
		{"plain tcp", `{}`, []string{"-H", "tcp://127.0.0.1:0"}, "without TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte(tt.config), 0o644); err != nil {
				t.Fatal(err)
			}
			d := startDaemon(t, dir, tt.flags...)
			done := make(chan error, 1)
			go func() { done <- d.cmd.Wait() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("berthd did not refuse the configuration: %s", d.stderr)
			}
			if err == nil || !strings.Contains(d.stderr.String(), tt.want) {
				t.Errorf("exit %v, stderr %q, want %q", err, d.stderr, tt.want)
			}
		})
	}
}
