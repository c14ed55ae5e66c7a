package testutil

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/moby/sys/mountinfo"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Berthd is a berthd process started by a test on its own socket, data
// root and exec root.
type Berthd struct {
	t        testing.TB
	Bin      string
	Dir      string
	Socket   string
	DataRoot string
	ExecRoot string
	LogPath  string
	Args     []string
	// Bridge is the daemon's default bridge, unique per test daemon.
	Bridge string

	cmd  *exec.Cmd
	done chan struct{}
}

var (
	berthdOnce sync.Once
	berthdBin  string
	berthdErr  error
)

// BerthdBinary returns a berthd binary: $BERTHD_BIN when set (make test
// builds bin/berthd first), otherwise one built once per test binary.
func BerthdBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("BERTHD_BIN"); p != "" {
		return p
	}
	berthdOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berthd-bin-")
		if err != nil {
			berthdErr = err
			return
		}
		berthdBin = filepath.Join(dir, "berthd")
		cmd := exec.Command("go", "build", "-o", berthdBin, "github.com/berth-dev/berth/cmd/berthd")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1", "GOTOOLCHAIN=local")
		if out, err := cmd.CombinedOutput(); err != nil {
			berthdErr = fmt.Errorf("building berthd: %v\n%s", err, out)
		}
	})
	if berthdErr != nil {
		t.Fatal(berthdErr)
	}
	return berthdBin
}

// StartBerthd starts a daemon for the test; everything it made (containers,
// monitors, mounts, cgroups) is removed when the test ends.
func StartBerthd(t testing.TB, args ...string) *Berthd {
	t.Helper()
	RequiresRoot(t)
	// Short paths: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "berthd-")
	if err != nil {
		t.Fatal(err)
	}
	d := &Berthd{
		t: t, Bin: BerthdBinary(t), Dir: dir,
		Socket:   filepath.Join(dir, "berth.sock"),
		DataRoot: filepath.Join(dir, "data"),
		ExecRoot: filepath.Join(dir, "exec"),
		LogPath:  filepath.Join(dir, "berthd.log"),
		Args:     args,
		Bridge:   "bt" + randHex(6),
	}
	t.Cleanup(d.cleanup)
	if err := os.WriteFile(d.ConfigPath(), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.Start()
	return d
}

// ConfigPath is the daemon.json the daemon reads (written as "{}").
func (d *Berthd) ConfigPath() string { return filepath.Join(d.Dir, "daemon.json") }

// Host is the daemon's address for DOCKER_HOST, BERTH_HOST or -H.
func (d *Berthd) Host() string { return "unix://" + d.Socket }

// Env returns os.Environ with DOCKER_HOST and BERTH_HOST pointing at the
// daemon.
func (d *Berthd) Env() []string {
	return append(os.Environ(), "DOCKER_HOST="+d.Host(), "BERTH_HOST="+d.Host())
}

// Start starts the daemon process and waits for its socket to answer.
func (d *Berthd) Start() {
	d.t.Helper()
	logf, err := os.OpenFile(d.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		d.t.Fatal(err)
	}
	defer logf.Close()
	args := append([]string{
		"-H", d.Host(), "--data-root", d.DataRoot, "--exec-root", d.ExecRoot,
		"--pidfile", filepath.Join(d.Dir, "berthd.pid"), "--config-file", d.ConfigPath(),
		"--bridge", d.Bridge,
	}, d.Args...)
	d.cmd = exec.Command(d.Bin, args...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(d.cmd, d.done)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if d.ping() == nil {
			return
		}
		select {
		case <-d.done:
			d.t.Fatalf("berthd exited at start:\n%s", d.Log())
		case <-time.After(20 * time.Millisecond):
		}
	}
	d.t.Fatalf("berthd did not answer on %s within 10s:\n%s", d.Socket, d.Log())
}

func (d *Berthd) ping() error {
	c := d.HTTPClient()
	resp, err := c.Get("http://berthd/_ping")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// HTTPClient talks to the daemon's socket (any host name in URLs).
func (d *Berthd) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", d.Socket)
		},
	}}
}

// Log returns what the daemon has logged.
func (d *Berthd) Log() string {
	b, _ := os.ReadFile(d.LogPath)
	return string(b)
}

// Stop sends SIGTERM and waits for the daemon to exit.
func (d *Berthd) Stop() {
	d.t.Helper()
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
		d.t.Errorf("berthd did not stop within 20s of SIGTERM")
	}
	d.cmd = nil
}

// Kill9 kills the daemon with SIGKILL (its containers keep running).
func (d *Berthd) Kill9() {
	d.t.Helper()
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Kill()
	<-d.done
	d.cmd = nil
}

// Restart stops (SIGTERM) and starts the daemon.
func (d *Berthd) Restart() {
	d.t.Helper()
	d.Stop()
	d.Start()
}

// ImportBusybox imports the busybox root filesystem as image name (for
// example "busybox"), with CMD ["sh"], through the API.
func (d *Berthd) ImportBusybox(t testing.TB, name string) {
	t.Helper()
	tar := BusyboxTarball(t)
	data, err := os.ReadFile(tar)
	if err != nil {
		t.Fatal(err)
	}
	repo, tag, _ := strings.Cut(name, ":")
	url := "http://berthd/images/create?fromSrc=-&repo=" + repo + "&changes=" + "CMD%20%5B%22sh%22%5D"
	if tag != "" {
		url += "&tag=" + tag
	}
	resp, err := d.HTTPClient().Post(url, "application/x-tar", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	out.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK || strings.Contains(out.String(), `"error"`) {
		t.Fatalf("import %s: %s: %s", name, resp.Status, out.String())
	}
}

// cleanup removes every trace of the daemon: its containers (through the
// daemon when it still runs), monitors, mounts and directories.
func (d *Berthd) cleanup() {
	if d.cmd != nil {
		if d.t.Failed() {
			d.t.Logf("berthd log:\n%s", d.Log())
		}
		if req, err := http.NewRequest(http.MethodGet, "http://berthd/containers/json?all=1", nil); err == nil {
			if resp, err := d.HTTPClient().Do(req); err == nil {
				var ids []struct{ Id string }
				_ = jsonDecode(resp, &ids)
				for _, c := range ids {
					r, _ := http.NewRequest(http.MethodDelete, "http://berthd/containers/"+c.Id+"?force=1", nil)
					if resp, err := d.HTTPClient().Do(r); err == nil {
						resp.Body.Close()
					}
				}
			}
		}
		if req, err := http.NewRequest(http.MethodPost, "http://berthd/networks/prune", nil); err == nil {
			if resp, err := d.HTTPClient().Do(req); err == nil {
				resp.Body.Close()
			}
		}
		d.Stop()
	}
	killMonitors(d.ExecRoot)
	d.removeNetworks()
	unmountUnder(d.Dir)
	if err := os.RemoveAll(d.Dir); err != nil {
		d.t.Errorf("removing %s: %v", d.Dir, err)
	}
}

// removeNetworks deletes the bridges and the firewall table the daemon
// left on the host (a daemon keeps them across its own restarts).
func (d *Berthd) removeNetworks() { RemoveDaemonNetworks(d.t, d.DataRoot, d.Bridge) }

// RemoveDaemonNetworks deletes the bridges of the networks a daemon on
// dataRoot recorded and its firewall table ("berth_" + its default bridge),
// which a daemon keeps (bridges) or leaves behind when killed (table).
func RemoveDaemonNetworks(t testing.TB, dataRoot, bridge string) {
	var nets []struct {
		Bridge string `json:"bridge"`
	}
	if data, err := os.ReadFile(filepath.Join(dataRoot, "network", "networks.json")); err == nil {
		_ = json.Unmarshal(data, &nets)
	}
	for _, n := range nets {
		if l, err := netlink.LinkByName(n.Bridge); err == nil {
			if err := netlink.LinkDel(l); err != nil {
				t.Errorf("removing bridge %s: %v", n.Bridge, err)
			}
		}
	}
	if c, err := nftables.New(); err == nil {
		tables, _ := c.ListTables()
		for _, tb := range tables {
			if tb.Name == "berth_"+bridge {
				c.DelTable(tb)
				if err := c.Flush(); err != nil {
					t.Errorf("removing table %s: %v", tb.Name, err)
				}
			}
		}
	}
}

func randHex(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// killMonitors kills the monitors (and so the containers) still running
// under execRoot.
func killMonitors(execRoot string) {
	pids, _ := filepath.Glob(filepath.Join(execRoot, "containers", "*", "shim.pid"))
	for _, p := range pids {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var pid int
		if _, err := fmt.Sscan(string(b), &pid); err == nil && pid > 1 {
			// The container's processes first: the monitor is their
			// reaper, and a container without PID namespace may linger.
			if kids, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)); err == nil {
				for _, k := range strings.Fields(string(kids)) {
					var kp int
					if _, err := fmt.Sscan(k, &kp); err == nil {
						_ = unix.Kill(kp, unix.SIGKILL)
					}
				}
			}
			time.Sleep(50 * time.Millisecond)
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
	if len(pids) > 0 {
		time.Sleep(200 * time.Millisecond)
	}
}

// unmountUnder lazily unmounts every mount below dir, deepest first.
func unmountUnder(dir string) {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		_ = unix.Unmount(mounts[i].Mountpoint, unix.MNT_DETACH)
	}
}

// DockerCLI returns the docker CLI's path, skipping the test without it.
func DockerCLI(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("docker CLI not installed: skipping the docker CLI end-to-end test")
	}
	return p
}

// Run runs a command against the daemon (DOCKER_HOST and BERTH_HOST set)
// and returns stdout, stderr and the exit code.
func (d *Berthd) Run(t testing.TB, name string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = d.Env()
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = 0
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else {
			t.Fatalf("%s %v: %v", name, args, err)
		}
	}
	return o.String(), e.String(), code
}

func jsonDecode(resp *http.Response, v any) error {
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}
