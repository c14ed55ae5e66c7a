package images_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	imagerouter "github.com/berth-dev/berth/internal/api/router/image"
	"github.com/berth-dev/berth/internal/api/server"
	"github.com/berth-dev/berth/internal/daemon/images"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/layer"
	"github.com/berth-dev/berth/internal/testutil"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
	"github.com/opencontainers/go-digest"
)

// fakeUsage plays the daemon's container side.
type fakeUsage struct {
	mu               sync.Mutex
	running, stopped map[digest.Digest][]string
}

func (f *fakeUsage) ImageUsers(id digest.Digest) (running, stopped []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running[id], f.stopped[id]
}

func (f *fakeUsage) set(id digest.Digest, running, stopped []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running[id], f.stopped[id] = running, stopped
}

type env struct {
	t       *testing.T
	root    string
	svc     *images.Service
	layers  layer.Store
	refs    image.References
	usage   *fakeUsage
	url     string
	cli     *client.Client
	busybox []byte // uncompressed busybox rootfs tarball
}

func newEnv(t *testing.T) *env {
	t.Helper()
	testutil.RequiresRoot(t)
	testutil.LeakCheck(t)
	tarball, err := os.ReadFile(testutil.BusyboxTarball(t))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	imgs, refs, err := image.New(filepath.Join(root, "image"))
	if err != nil {
		t.Fatal(err)
	}
	layers, err := layer.New(filepath.Join(root, "overlay2"))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := images.New(images.Config{Images: imgs, Refs: refs, Layers: layers})
	if err != nil {
		t.Fatal(err)
	}
	usage := &fakeUsage{running: map[digest.Digest][]string{}, stopped: map[digest.Digest][]string{}}
	svc.SetUsage(usage)
	srv := server.New(server.Options{MinAPIVersion: "1.40", MaxAPIVersion: "1.56", ServerVersion: "test"},
		&imagerouter.Router{Backend: svc})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	cli, err := client.New(client.WithHost("tcp://"+strings.TrimPrefix(ts.URL, "http://")), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return &env{t: t, root: root, svc: svc, layers: layers, refs: refs, usage: usage, url: ts.URL, cli: cli, busybox: tarball}
}

// stream reads a JSON message stream to its end.
func stream(t *testing.T, r io.ReadCloser) []jsonstream.Message {
	t.Helper()
	defer r.Close()
	var out []jsonstream.Message
	dec := json.NewDecoder(r)
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("decoding stream: %v", err)
		}
		out = append(out, m)
	}
}

// importTar imports data and returns the image ID the stream reports.
func (e *env) importTar(data []byte, ref string, opts client.ImageImportOptions) digest.Digest {
	e.t.Helper()
	rc, err := e.cli.ImageImport(context.Background(), client.ImageImportSource{Source: bytes.NewReader(data), SourceName: "-"}, ref, opts)
	if err != nil {
		e.t.Fatalf("import: %v", err)
	}
	msgs := stream(e.t, rc)
	if len(msgs) != 1 || msgs[0].Error != nil {
		e.t.Fatalf("import stream = %+v", msgs)
	}
	id, err := digest.Parse(msgs[0].Status)
	if err != nil {
		e.t.Fatalf("import status %q: %v", msgs[0].Status, err)
	}
	return id
}

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// assertClean checks that no image, reference or layer is left.
func (e *env) assertClean() {
	e.t.Helper()
	if n := e.svc.Count(); n != 0 {
		e.t.Errorf("%d images left", n)
	}
	if ls := e.layers.Layers(); len(ls) != 0 {
		e.t.Errorf("%d layers left", len(ls))
	}
	data, err := os.ReadFile(filepath.Join(e.root, "image", "repositories.json"))
	if err != nil || strings.TrimSpace(string(data)) != `{"Repositories":{}}` {
		e.t.Errorf("repositories.json = %s, %v", data, err)
	}
	for _, dir := range []string{"l", "layers/sha256", "mounts", "tmp"} {
		entries, err := os.ReadDir(filepath.Join(e.root, "overlay2", dir))
		if err != nil || len(entries) != 0 {
			e.t.Errorf("overlay2/%s: %d entries, %v", dir, len(entries), err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(e.root, "overlay2"))
	if len(entries) != 4 {
		var names []string
		for _, en := range entries {
			names = append(names, en.Name())
		}
		e.t.Errorf("overlay2 holds %v", names)
	}
}

func wantErr(t *testing.T, err error, class func(error) bool, msg string) {
	t.Helper()
	if err == nil || !class(err) || !strings.Contains(err.Error(), msg) {
		t.Fatalf("error = %v, want %q", err, msg)
	}
}

func TestImportInspectTagHistory(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	changes := []string{`CMD ["sh"]`, "ENV A=b", "LABEL x=y"}
	plain := e.importTar(e.busybox, "busybox", client.ImageImportOptions{Changes: changes, Message: "plain import"})
	gz := e.importTar(gzipped(t, e.busybox), "busybox-gz:1", client.ImageImportOptions{Changes: changes})
	if plain == gz {
		t.Fatal("two imports gave the same image")
	}

	short := plain.Encoded()[:12]
	for _, name := range []string{plain.String(), plain.Encoded(), short, "busybox", "docker.io/library/busybox:latest"} {
		res, err := e.cli.ImageInspect(ctx, name)
		if err != nil {
			t.Fatalf("inspect %s: %v", name, err)
		}
		if res.ID != plain.String() {
			t.Fatalf("inspect %s = %s, want %s", name, res.ID, plain)
		}
	}
	res, err := e.cli.ImageInspect(ctx, "busybox")
	if err != nil {
		t.Fatal(err)
	}
	cfg := res.Config
	if !slices.Equal(cfg.Cmd, []string{"sh"}) || !slices.Equal(cfg.Env, []string{"A=b"}) || cfg.Labels["x"] != "y" {
		t.Errorf("config = %+v", cfg)
	}
	if res.Comment != "plain import" || res.Os != "linux" || res.Architecture != goruntime.GOARCH || res.Size <= 0 ||
		len(res.RootFS.Layers) != 1 || res.RootFS.Type != "layers" || !slices.Equal(res.RepoTags, []string{"busybox:latest"}) {
		t.Errorf("inspect = %+v", res.InspectResponse)
	}
	if created, err := time.Parse(time.RFC3339Nano, res.Created); err != nil || time.Since(created) > time.Minute {
		t.Errorf("Created = %q, %v", res.Created, err)
	}
	if res.GraphDriver == nil || res.GraphDriver.Name != "overlay2" {
		t.Fatalf("GraphDriver = %+v", res.GraphDriver)
	}
	upper := res.GraphDriver.Data["UpperDir"]
	if _, err := os.Stat(filepath.Join(upper, "bin", "busybox")); err != nil || !strings.HasPrefix(upper, filepath.Join(e.root, "overlay2")) {
		t.Errorf("UpperDir %s: %v", upper, err)
	}
	if res.GraphDriver.Data["LowerDir"] != "" || res.GraphDriver.Data["MergedDir"] == "" || res.GraphDriver.Data["WorkDir"] == "" {
		t.Errorf("GraphDriver.Data = %v", res.GraphDriver.Data)
	}
	gzRes, err := e.cli.ImageInspect(ctx, "busybox-gz:1")
	if err != nil {
		t.Fatal(err)
	}
	if gzRes.Comment != "Imported from -" || gzRes.RootFS.Layers[0] != res.RootFS.Layers[0] {
		t.Errorf("gzip import: comment %q, layers %v vs %v", gzRes.Comment, gzRes.RootFS.Layers, res.RootFS.Layers)
	}

	// Tag with a registry port and path.
	const target = "127.0.0.1:5000/daocloud.io/library/busybox:1"
	if _, err := e.cli.ImageTag(ctx, client.ImageTagOptions{Source: short, Target: target}); err != nil {
		t.Fatal(err)
	}
	tagged, err := e.cli.ImageInspect(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	if tagged.ID != plain.String() || !slices.Equal(tagged.RepoTags, []string{target, "busybox:latest"}) || tagged.Metadata.LastTagTime.IsZero() {
		t.Errorf("tagged = %s %v %v", tagged.ID, tagged.RepoTags, tagged.Metadata)
	}

	hist, err := e.cli.ImageHistory(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist.Items) != 1 {
		t.Fatalf("history = %+v", hist.Items)
	}
	h := hist.Items[0]
	if h.ID != plain.String() || h.Comment != "plain import" || h.Size != res.Size || h.Created == 0 ||
		!slices.Equal(h.Tags, []string{target, "busybox:latest"}) {
		t.Errorf("history item = %+v", h)
	}

	// Errors.
	_, err = e.cli.ImageInspect(ctx, "x")
	wantErr(t, err, errdefs.IsNotFound, "No such image: x:latest")
	_, err = e.cli.ImageHistory(ctx, "nope:1")
	wantErr(t, err, errdefs.IsNotFound, "No such image: nope:1")
	_, err = e.cli.ImageInspect(ctx, "NotValid")
	wantErr(t, err, errdefs.IsInvalidArgument, "invalid reference format")
	_, err = e.cli.ImageTag(ctx, client.ImageTagOptions{Source: "nope", Target: "x"})
	wantErr(t, err, errdefs.IsNotFound, "No such image: nope:latest")
	// The client checks references itself; raw requests get the daemon's words.
	for _, q := range []string{"repo=Busybox", "repo=busybox&tag=a:b", "repo=sha256"} {
		resp, err := http.Post(e.url+"/v1.45/images/busybox/tag?"+q, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("tag %s: %d %s", q, resp.StatusCode, body)
		}
	}
	resp, err := http.Post(e.url+"/images/create?fromSrc=-&repo=Bad", "application/x-tar", bytes.NewReader(e.busybox))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "must be lowercase") {
		t.Errorf("import with bad repo: %d %s", resp.StatusCode, body)
	}

	// A bad change and garbage input.
	_, err = e.cli.ImageImport(ctx, client.ImageImportSource{Source: bytes.NewReader(e.busybox), SourceName: "-"}, "", client.ImageImportOptions{Changes: []string{"RUN true"}})
	wantErr(t, err, errdefs.IsInvalidArgument, "RUN is not a valid change command")
	_, err = e.cli.ImageImport(ctx, client.ImageImportSource{Source: strings.NewReader("this is not a tar archive, not even close to one......"), SourceName: "-"}, "", client.ImageImportOptions{})
	if err == nil {
		t.Error("importing garbage succeeded")
	}

	// Pulls are not there yet and say so in Docker's form.
	_, err = e.cli.ImagePull(ctx, "unknown-image", client.ImagePullOptions{})
	wantErr(t, err, errdefs.IsNotImplemented, "Error response from daemon: cannot pull unknown-image:latest")

	for _, name := range []string{"busybox", target, "busybox-gz:1"} {
		if _, err := e.cli.ImageRemove(ctx, name, client.ImageRemoveOptions{PruneChildren: true}); err != nil {
			t.Fatalf("rmi %s: %v", name, err)
		}
	}
	e.assertClean()
}
