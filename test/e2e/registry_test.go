package e2e

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/moby/api/types/jsonstream"
)

// fileLayer is a layer holding one file.
func fileLayer(t *testing.T, file string, content []byte) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: file, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(content)
	tw.Close()
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// platformImage is a one-layer image for arch.
func platformImage(t *testing.T, arch string) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, fileLayer(t, "arch", []byte(arch)))
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

// TestRegistryPushPull pushes busybox to docker-registry with the docker
// CLI (plain and nested names), removes it, pulls it back and runs it:
// the same image; a multi-platform index pulls the host's image or the
// one --platform names; docker-py pulls too.
func TestRegistryPushPull(t *testing.T) {
	c := newDockerCLI(t)
	reg := startRegistry(t, "")
	id := c.inspect("busybox", "{{.Id}}")
	repo := reg.Host + "/busybox"
	nested := reg.Host + "/daocloud.io/library/busybox"

	c.ok("tag", "busybox", repo)
	out := c.ok("push", repo)
	for _, want := range []string{"The push refers to repository [" + repo + "]", ": Pushed", "latest: digest: sha256:"} {
		if !strings.Contains(out, want) {
			t.Errorf("push output lacks %q:\n%s", want, out)
		}
	}
	c.ok("tag", "busybox", nested)
	if out := c.ok("push", nested); !strings.Contains(out, "Mounted from busybox") {
		t.Errorf("nested push did not mount the layer:\n%s", out)
	}
	if out := c.ok("push", repo); !strings.Contains(out, "Layer already exists") {
		t.Errorf("second push:\n%s", out)
	}
	catalog := reg.get(t, "/v2/_catalog")
	if !strings.Contains(catalog, `"busybox"`) || !strings.Contains(catalog, `"daocloud.io/library/busybox"`) {
		t.Errorf("catalog: %s", catalog)
	}
	if tags := reg.get(t, "/v2/busybox/tags/list"); !strings.Contains(tags, `"latest"`) {
		t.Errorf("tags: %s", tags)
	}

	c.ok("rmi", "busybox", repo, nested)
	out = c.ok("pull", repo)
	if !strings.Contains(out, "Pull complete") || !strings.Contains(out, "Status: Downloaded newer image for "+repo+":latest") {
		t.Errorf("pull output:\n%s", out)
	}
	if got := c.inspect(repo, "{{.Id}}"); got != id {
		t.Errorf("pulled image %s, pushed %s", got, id)
	}
	if d := c.inspect(repo, "{{json .RepoDigests}}"); !strings.Contains(d, repo+"@sha256:") {
		t.Errorf("RepoDigests %s", d)
	}
	if out := c.ok("run", "--rm", repo, "echo", "hi"); out != "hi" {
		t.Errorf("run: %q", out)
	}
	if out := c.ok("pull", repo); !strings.Contains(out, "Status: Image is up to date for "+repo+":latest") {
		t.Errorf("second pull:\n%s", out)
	}
	errOut := c.fails(1, "pull", repo+":nope")
	if want := "Error response from daemon: manifest for " + repo + ":nope not found: manifest unknown: manifest unknown"; !strings.Contains(errOut, want) {
		t.Errorf("pull of a missing tag: %q, want %q", errOut, want)
	}

	// A multi-platform index.
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: platformImage(t, "amd64"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: platformImage(t, "arm64"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	ref, err := name.ParseReference(reg.Host + "/multi:latest")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	c.ok("pull", reg.Host+"/multi")
	if arch := c.inspect(reg.Host+"/multi", "{{.Architecture}}"); arch != "amd64" {
		t.Errorf("multi-platform pull gave %s, want amd64", arch)
	}
	c.ok("pull", "--platform", "linux/arm64", reg.Host+"/multi")
	if arch := c.inspect(reg.Host+"/multi", "{{.Architecture}}"); arch != "arm64" {
		t.Errorf("--platform linux/arm64 pull gave %s", arch)
	}

	// docker-py.
	if py, err := exec.LookPath("python3"); err == nil && exec.Command(py, "-c", "import docker").Run() == nil {
		c.ok("rmi", repo)
		script := `import docker, sys; img = docker.from_env().images.pull(sys.argv[1], tag="latest"); print(img.id)`
		out, errOut, code := c.d.Run(t, py, "-c", script, repo)
		if code != 0 || strings.TrimSpace(out) != id {
			t.Errorf("docker-py pull: %q (exit %d, %s), want %s", out, code, errOut, id)
		}
	} else {
		t.Log("docker-py not installed: its pull is not checked")
	}
}

// TestRegistryAuth logs in with the docker CLI to a registry with
// htpasswd (Basic) authentication and to one behind a Bearer token
// server, then pushes and pulls; a wrong password is refused.
func TestRegistryAuth(t *testing.T) {
	c := newDockerCLI(t)
	id := c.inspect("busybox", "{{.Id}}")
	basic := startRegistry(t, htpasswdEntry(t, "alice", "secret"))
	plain := startRegistry(t, "")
	for _, tc := range []struct{ name, host, wrongErr string }{
		{"htpasswd", basic.Host, "login attempt to http://" + basic.Host + "/v2/ failed with status: 401 Unauthorized"},
		{"bearer", tokenFront(t, plain.Host, "alice", "secret"), "unauthorized: incorrect username or password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The docker CLI keeps the credentials in its own
			// configuration directory.
			cl := c.withEnv("DOCKER_CONFIG=" + t.TempDir())
			repo := tc.host + "/private"
			cl.ok("tag", "busybox", repo)
			if _, _, code := cl.run("push", repo); code == 0 {
				t.Fatal("push without login succeeded")
			}
			_, errOut, code := cl.run("login", "-u", "alice", "-p", "wrong", tc.host)
			if code == 0 || !strings.Contains(errOut, tc.wrongErr) {
				t.Errorf("login with a wrong password: exit %d, %q, want %q", code, errOut, tc.wrongErr)
			}
			if out := cl.ok("login", "-u", "alice", "-p", "secret", tc.host); !strings.Contains(out, "Login Succeeded") {
				t.Errorf("login: %q", out)
			}
			cl.ok("push", repo)
			cl.ok("rmi", repo)
			_, errOut, code = c.withEnv("DOCKER_CONFIG="+t.TempDir()).run("pull", repo)
			if code == 0 || !strings.Contains(errOut, "pull access denied") {
				t.Errorf("pull without credentials: exit %d, %q", code, errOut)
			}
			cl.ok("pull", repo)
			if got := c.inspect(repo, "{{.Id}}"); got != id {
				t.Errorf("pulled %s, pushed %s", got, id)
			}
		})
	}
}

// TestRegistryMirror: a daemon with a registry mirror pulls and runs
// Docker Hub's busybox with no way to Docker Hub.
func TestRegistryMirror(t *testing.T) {
	c := newDockerCLI(t)
	reg := startRegistry(t, "")
	id := c.inspect("busybox", "{{.Id}}")
	c.ok("tag", "busybox", reg.Host+"/library/busybox")
	c.ok("push", reg.Host+"/library/busybox")
	c.ok("rmi", "busybox", reg.Host+"/library/busybox")

	cfg, _ := json.Marshal(map[string]any{"registry-mirrors": []string{"http://" + reg.Host}})
	if err := os.WriteFile(c.d.ConfigPath(), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	c.d.Restart()
	if info := c.ok("info", "--format", "{{json .RegistryConfig.Mirrors}}"); info != `["http://`+reg.Host+`/"]` {
		t.Errorf("info mirrors: %s", info)
	}
	out := c.ok("pull", "busybox")
	if !strings.Contains(out, "latest: Pulling from library/busybox") || !strings.Contains(out, "Status: Downloaded newer image for busybox:latest") {
		t.Errorf("pull through the mirror:\n%s", out)
	}
	if got := c.inspect("busybox", "{{.Id}}"); got != id {
		t.Errorf("pulled %s, want %s", got, id)
	}
	if out := c.ok("run", "--rm", "busybox", "echo", "hi"); out != "hi" {
		t.Errorf("run: %q", out)
	}
}

// TestRegistryKill9MidPull kills the daemon in the middle of a pull of a
// large layer: restarted, its stores are consistent and the pull works.
func TestRegistryKill9MidPull(t *testing.T) {
	reg := startRegistry(t, "")
	big := make([]byte, 100<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, fileLayer(t, "big", big), fileLayer(t, "small", []byte("small")))
	if err != nil {
		t.Fatal(err)
	}
	reg.write(t, "big:latest", img)
	want, _ := img.ConfigName()

	d := testutil.StartBerthd(t)
	url := "http://berthd/images/create?fromImage=" + reg.Host + "/big&tag=latest"
	resp, err := d.HTTPClient().Post(url, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var m jsonstream.Message
		if json.Unmarshal(sc.Bytes(), &m) == nil && m.Status == "Downloading" && m.Progress != nil && m.Progress.Current > 1<<20 {
			break
		}
	}
	d.Kill9()
	resp.Body.Close()
	d.Start()

	distRoot := filepath.Join(d.DataRoot, "image", "overlay2", "distribution")
	for _, dir := range []string{"tmp", "pulls"} {
		if entries, _ := os.ReadDir(filepath.Join(distRoot, dir)); len(entries) > 0 {
			t.Errorf("%s holds %d entries after the restart", dir, len(entries))
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(d.DataRoot, "overlay2", "tmp")); len(entries) > 0 {
		t.Errorf("the layer store's tmp holds %d entries after the restart", len(entries))
	}
	var images []map[string]any
	if err := getJSON(d, "/images/json", &images); err != nil || len(images) != 0 {
		t.Errorf("images after the restart: %v (%v)", images, err)
	}

	pullOK(t, d, url)
	var inspect struct{ Id string }
	if err := getJSON(d, "/images/"+reg.Host+"/big:latest/json", &inspect); err != nil || inspect.Id != want.String() {
		t.Errorf("image after the second pull: %q (%v), want %s", inspect.Id, err, want)
	}
	layers, _ := os.ReadDir(filepath.Join(d.DataRoot, "overlay2", "layers", "sha256"))
	if len(layers) != 2 {
		t.Errorf("%d layers in the store, want 2", len(layers))
	}
}

func getJSON(d *testutil.Berthd, path string, v any) error {
	resp, err := d.HTTPClient().Get("http://berthd" + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &httpStatusError{resp.Status}
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

type httpStatusError struct{ status string }

func (e *httpStatusError) Error() string { return e.status }

// pullOK pulls through the API and fails on an error in the stream.
func pullOK(t *testing.T, d *testutil.Berthd, url string) {
	t.Helper()
	client := d.HTTPClient()
	client.Timeout = 3 * time.Minute
	resp, err := client.Post(url, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || bytes.Contains(body, []byte(`"error"`)) {
		t.Fatalf("pull: %s: %s", resp.Status, body)
	}
}
