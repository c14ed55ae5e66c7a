package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// peerDockerd is a dockerd started by a test on its own socket, data
// root, exec root and cgroup parent, without networking (no bridge, no
// iptables), so that it changes nothing on the host.
type peerDockerd struct {
	t        *testing.T
	bin      string // the docker CLI
	dir      string
	host     string
	cgParent string
	cmd      *exec.Cmd
	done     chan struct{}
}

func startPeerDockerd(t *testing.T, cli string) *peerDockerd {
	t.Helper()
	bin, err := exec.LookPath("dockerd")
	if err != nil {
		t.Skip("dockerd not installed: skipping the dockerd interoperability test")
	}
	dir, err := os.MkdirTemp("", "dockerd-")
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	rand.Read(b)
	p := &peerDockerd{t: t, bin: cli, dir: dir, host: "unix://" + dir + "/docker.sock", cgParent: "berth-interop-" + hex.EncodeToString(b)}
	t.Cleanup(p.stop)
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{
		"-H", p.host, "--data-root", dir + "/data", "--exec-root", dir + "/exec",
		"--pidfile", dir + "/docker.pid", "--config-file", dir + "/daemon.json",
		"--bridge=none", "--iptables=false", "--ip-masq=false", "--ip-forward=false", "--userland-proxy=false",
		"--cgroup-parent", "/" + p.cgParent, "--log-level=warn",
	}
	if _, err := os.Stat("/run/containerd/containerd.sock"); err == nil {
		// dockerd would use the host's containerd: hide it in a private
		// mount namespace so that dockerd starts its own.
		args = append([]string{"-m", "--propagation", "private", "--", "sh", "-c",
			`mount -t tmpfs -o size=1m tmpfs /run/containerd && exec "$0" "$@"`, bin}, args...)
		bin = "unshare"
	}
	log, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = log, log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func() { p.cmd.Wait(); close(p.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, _, code := p.run("version"); code == 0 {
			return p
		}
		select {
		case <-p.done:
			b, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			t.Skipf("dockerd exited at start (cannot run here):\n%s", b)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			t.Fatalf("dockerd did not answer within 60s:\n%s", b)
		}
	}
}

// run runs the docker CLI against the peer.
func (p *peerDockerd) run(args ...string) (string, string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.bin, args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+p.host)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return o.String(), e.String(), code
}

func (p *peerDockerd) ok(args ...string) string {
	p.t.Helper()
	out, errOut, code := p.run(args...)
	if code != 0 {
		p.t.Fatalf("dockerd: docker %s: exit %d, %q %q", strings.Join(args, " "), code, out, errOut)
	}
	return strings.TrimSpace(out)
}

// stop removes the peer and all it made: containers, its containerd and
// shims, mounts, cgroups, directories.
func (p *peerDockerd) stop() {
	if p.cmd != nil && p.cmd.Process != nil {
		if ids, _, code := p.run("ps", "-aq"); code == 0 && strings.TrimSpace(ids) != "" {
			p.run(append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
	// Whatever survived: processes started from the peer's directories.
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range procs {
		if b, err := os.ReadFile(f); err == nil && bytes.Contains(b, []byte(p.dir+"/")) {
			var pid int
			if _, err := fmtSscan(filepath.Base(filepath.Dir(f)), &pid); err == nil {
				unix.Kill(pid, unix.SIGKILL)
			}
		}
	}
	if mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(p.dir)); err == nil {
		for i := len(mounts) - 1; i >= 0; i-- {
			unix.Unmount(mounts[i].Mountpoint, unix.MNT_DETACH)
		}
	}
	if err := os.RemoveAll(p.dir); err != nil {
		p.t.Errorf("removing %s: %v", p.dir, err)
	}
	cgs, _ := filepath.Glob("/sys/fs/cgroup/*/" + p.cgParent)
	if _, err := os.Stat("/sys/fs/cgroup/" + p.cgParent); err == nil {
		cgs = append(cgs, "/sys/fs/cgroup/"+p.cgParent)
	}
	for _, cg := range cgs {
		if err := os.Remove(cg); err != nil && !os.IsNotExist(err) {
			p.t.Errorf("removing cgroup %s: %v", cg, err)
		}
	}
}

// TestArchiveInteropDockerd: an image saved by berth loads and runs in
// dockerd, images saved by dockerd (its own layout: <id>/layer.tar,
// shared layers as symbolic links) load and run in berth, with the same
// IDs on both sides.
func TestArchiveInteropDockerd(t *testing.T) {
	c := newDockerCLI(t)
	peer := startPeerDockerd(t, c.bin)
	dir := t.TempDir()

	c.ok("run", "--name", "mk", "busybox", "sh", "-c", "echo from-berth > /f")
	c.ok("commit", "mk", "interop:1")
	berthID := c.ok("image", "inspect", "-f", "{{.Id}}", "interop:1")
	fromBerth := filepath.Join(dir, "berth.tar")
	c.ok("save", "-o", fromBerth, "busybox", "interop:1")

	out := peer.ok("load", "-i", fromBerth)
	dcWantSet(t, "dockerd load", out, "Loaded image: busybox:latest", "Loaded image: interop:1")
	if got := peer.ok("image", "inspect", "-f", "{{.Id}}", "interop:1"); got != berthID {
		t.Errorf("dockerd loaded interop:1 as %s, berth has %s", got, berthID)
	}
	if got := peer.ok("run", "--rm", "--network", "none", "interop:1", "cat", "/f"); got != "from-berth" {
		t.Errorf("berth's image in dockerd printed %q", got)
	}

	peer.ok("run", "--network", "none", "--name", "mk", "busybox", "sh", "-c", "echo from-dockerd > /d")
	peer.ok("commit", "-m", "dockerd made it", "mk", "fromdockerd:1")
	dockerdID := peer.ok("image", "inspect", "-f", "{{.Id}}", "fromdockerd:1")
	dockerdHistory := peer.ok("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}", "fromdockerd:1")
	fromDockerd := filepath.Join(dir, "dockerd.tar")
	peer.ok("save", "-o", fromDockerd, "busybox", "fromdockerd:1")
	a := readSavedArchive(t, fromDockerd)
	if _, ok := a.files["index.json"]; ok {
		t.Log("dockerd wrote an OCI layout: not the 20.10 layout")
	}

	c.ok("rm", "mk")
	c.ok("rmi", "busybox", "interop:1")
	out = c.ok("load", "-i", fromDockerd)
	dcWantSet(t, "berth load", out, "Loaded image: busybox:latest", "Loaded image: fromdockerd:1")
	if got := c.ok("image", "inspect", "-f", "{{.Id}}", "fromdockerd:1"); got != dockerdID {
		t.Errorf("berth loaded fromdockerd:1 as %s, dockerd has %s", got, dockerdID)
	}
	if got := c.ok("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}", "fromdockerd:1"); got != dockerdHistory {
		t.Errorf("history in berth:\n%s\nin dockerd:\n%s", got, dockerdHistory)
	}
	if got := c.ok("run", "--rm", "fromdockerd:1", "cat", "/d"); got != "from-dockerd" {
		t.Errorf("dockerd's image in berth printed %q", got)
	}
}

// TestArchiveInteropSkopeoPodman: skopeo reads berth's archive both as a
// docker-archive and as an OCI archive, with berth's DiffIDs as layer
// digests; podman loads it with berth's image ID, and berth loads what
// podman saves.
func TestArchiveInteropSkopeoPodman(t *testing.T) {
	c := newDockerCLI(t)
	dir := t.TempDir()
	c.ok("run", "--name", "mk", "busybox", "sh", "-c", "echo tools > /t")
	c.ok("commit", "mk", "tools:1")
	id := c.ok("image", "inspect", "-f", "{{.Id}}", "tools:1")
	var diffIDs []string
	if err := json.Unmarshal([]byte(c.ok("image", "inspect", "-f", "{{json .RootFS.Layers}}", "tools:1")), &diffIDs); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "tools.tar")
	c.ok("save", "-o", file, "tools:1")

	t.Run("skopeo", func(t *testing.T) {
		skopeo, err := exec.LookPath("skopeo")
		if err != nil {
			t.Skip("skopeo not installed (apt-get install skopeo): skipping")
		}
		for _, ref := range []string{"docker-archive:" + file, "docker-archive:" + file + ":tools:1", "oci-archive:" + file} {
			out, err := exec.Command(skopeo, "inspect", ref).CombinedOutput()
			if err != nil {
				t.Errorf("skopeo inspect %s: %v\n%s", ref, err, out)
				continue
			}
			var info struct{ Layers []string }
			if err := json.Unmarshal(out, &info); err != nil {
				t.Fatalf("%s: %v", out, err)
			}
			if !slices.Equal(info.Layers, diffIDs) {
				t.Errorf("skopeo inspect %s: layers %q, berth's DiffIDs %q", ref, info.Layers, diffIDs)
			}
			cfg, err := exec.Command(skopeo, "inspect", "--raw", "--config", ref).Output()
			if err != nil {
				t.Errorf("skopeo inspect --config %s: %v", ref, err)
			} else if got := "sha256:" + sha256Hex(cfg); got != id {
				t.Errorf("skopeo's config of %s hashes to %s, berth's ID is %s", ref, got, id)
			}
		}
	})

	t.Run("podman", func(t *testing.T) {
		podman, err := exec.LookPath("podman")
		if err != nil {
			t.Skip("podman not installed: skipping")
		}
		// podman wants a short run root.
		root, err := os.MkdirTemp("", "pm-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(root) })
		pm := func(args ...string) (string, error) {
			base := []string{"--root", root + "/root", "--runroot", root + "/run", "--tmpdir", root + "/tmp",
				"--storage-driver", "vfs", "--events-backend", "none", "--cgroup-manager", "cgroupfs"}
			cmd := exec.Command(podman, append(base, args...)...)
			cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+root+"/xdg", "XDG_CONFIG_HOME="+root+"/config", "XDG_DATA_HOME="+root+"/data")
			out, err := cmd.CombinedOutput()
			return strings.TrimSpace(string(out)), err
		}
		t.Cleanup(func() {
			if out, err := pm("system", "reset", "-f"); err != nil {
				t.Logf("podman system reset: %v: %s", err, out)
			}
		})
		if out, err := pm("load", "-i", file); err != nil {
			t.Fatalf("podman load: %v\n%s", err, out)
		}
		got, err := pm("image", "inspect", "--format", "{{.Id}}", "docker.io/library/tools:1")
		if err != nil || "sha256:"+got != id {
			t.Errorf("podman has tools:1 as %q (%v), berth's ID is %s", got, err, id)
		}
		back := filepath.Join(dir, "podman.tar")
		if out, err := pm("save", "--format", "docker-archive", "-o", back, "docker.io/library/tools:1"); err != nil {
			t.Fatalf("podman save: %v\n%s", err, out)
		}
		c.ok("rm", "mk")
		c.ok("rmi", "tools:1")
		out := c.ok("load", "-i", back)
		dcWantLines(t, "load podman's archive", out, "Loaded image: tools:1")
		if got := c.ok("image", "inspect", "-f", "{{.Id}}", "tools:1"); got != id {
			t.Errorf("berth loaded podman's archive as %s, want %s", got, id)
		}
		if got := c.ok("run", "--rm", "tools:1", "cat", "/t"); got != "tools" {
			t.Errorf("podman's archive in berth printed %q", got)
		}
	})
}
