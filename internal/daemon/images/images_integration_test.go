package images_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
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
	"github.com/klauspost/compress/zstd"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
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

	// Other compressions and platforms.
	var zbuf bytes.Buffer
	zw, err := zstd.NewWriter(&zbuf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(e.busybox); err != nil || zw.Close() != nil {
		t.Fatal(err)
	}
	arm := e.importTar(zbuf.Bytes(), "busybox-arm", client.ImageImportOptions{Platform: ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}})
	armInfo := must(e.cli.ImageInspect(ctx, arm.String()))
	if armInfo.Architecture != "arm64" || armInfo.Variant != "v8" || armInfo.RootFS.Layers[0] != res.RootFS.Layers[0] {
		t.Errorf("zstd arm64 import = %s/%s %v", armInfo.Architecture, armInfo.Variant, armInfo.RootFS.Layers)
	}
	_, err = e.cli.ImageImport(ctx, client.ImageImportSource{Source: bytes.NewReader(e.busybox), SourceName: "-"}, "", client.ImageImportOptions{Platform: ocispec.Platform{OS: "windows", Architecture: "amd64"}})
	wantErr(t, err, errdefs.IsInvalidArgument, "operating system is not supported")

	// Pulls are not there yet and say so in Docker's form.
	_, err = e.cli.ImagePull(ctx, "unknown-image", client.ImagePullOptions{})
	wantErr(t, err, errdefs.IsNotImplemented, "Error response from daemon: cannot pull unknown-image:latest")

	for _, name := range []string{"busybox", target, "busybox-gz:1", "busybox-arm"} {
		if _, err := e.cli.ImageRemove(ctx, name, client.ImageRemoveOptions{PruneChildren: true}); err != nil {
			t.Fatalf("rmi %s: %v", name, err)
		}
	}
	e.assertClean()
}

// fileTar is a layer tarball holding one file.
func fileTar(t testing.TB, name string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Unix(946684800, 0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// buildChild makes an image built on parent, as a build would: with
// layerTar, a new layer on parent's; without, a metadata-only step on the
// same top layer. It returns the child's ID.
func (e *env) buildChild(parent digest.Digest, layerTar []byte, createdBy string) digest.Digest {
	e.t.Helper()
	ctx := context.Background()
	p, err := e.svc.Get(parent.String())
	if err != nil {
		e.t.Fatal(err)
	}
	diffIDs := slices.Clone(p.Config.RootFS.DiffIDs)
	h := ocispec.History{CreatedBy: createdBy, EmptyLayer: layerTar == nil}
	if layerTar != nil {
		l, err := e.layers.Register(ctx, bytes.NewReader(layerTar), e.svc.ChainID(p))
		if err != nil {
			e.t.Fatal(err)
		}
		diffIDs = append(diffIDs, l.DiffID())
	} else if _, err := e.layers.Register(ctx, bytes.NewReader(e.busybox), ""); err != nil {
		// A metadata-only step hands over a reference on the same layer.
		e.t.Fatal(err)
	}
	now := time.Now().UTC()
	h.Created = &now
	cfg := *p.Config
	cfg.Created = &now
	cfg.RootFS.DiffIDs = diffIDs
	cfg.History = append(slices.Clone(cfg.History), h)
	cfg.Config.Env = append(slices.Clone(cfg.Config.Env), "STEP="+createdBy)
	raw, err := json.Marshal(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	id, err := e.svc.CreateImage(raw, parent)
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

func listIDs(t *testing.T, cli *client.Client, opts client.ImageListOptions) []string {
	t.Helper()
	res, err := cli.ImageList(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range res.Items {
		ids = append(ids, s.ID)
	}
	return ids
}

func filters(kv ...string) client.Filters {
	f := client.Filters{}
	for i := 0; i < len(kv); i += 2 {
		f.Add(kv[i], kv[i+1])
	}
	return f
}

func TestList(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	plain := e.importTar(e.busybox, "busybox", client.ImageImportOptions{Changes: []string{"LABEL tier=base", "LABEL x=1"}})
	gz := e.importTar(gzipped(t, e.busybox), "busybox-gz:1", client.ImageImportOptions{Changes: []string{"LABEL tier=gz"}})
	dangling := e.importTar(fileTar(t, "dangling", []byte("d")), "", client.ImageImportOptions{})
	base := e.importTar(fileTar(t, "base", []byte("b")), "", client.ImageImportOptions{})
	app := e.buildChild(base, fileTar(t, "app", []byte("a")), "COPY app /")
	if _, err := e.cli.ImageTag(ctx, client.ImageTagOptions{Source: app.String(), Target: "app:1"}); err != nil {
		t.Fatal(err)
	}
	e.usage.set(plain, []string{strings.Repeat("1", 64)}, []string{strings.Repeat("2", 64)})
	ids := func(d ...digest.Digest) []string {
		var out []string
		for _, id := range d {
			out = append(out, id.String())
		}
		return out
	}

	tests := []struct {
		name string
		opts client.ImageListOptions
		want []string // newest first
	}{
		{"default hides intermediate", client.ImageListOptions{}, ids(app, dangling, gz, plain)},
		{"all", client.ImageListOptions{All: true}, ids(app, base, dangling, gz, plain)},
		{"dangling=true", client.ImageListOptions{Filters: filters("dangling", "true")}, ids(dangling)},
		{"dangling=false", client.ImageListOptions{Filters: filters("dangling", "false")}, ids(app, gz, plain)},
		{"reference glob", client.ImageListOptions{Filters: filters("reference", "busy*")}, ids(gz, plain)},
		{"reference name", client.ImageListOptions{Filters: filters("reference", "busybox")}, ids(plain)},
		{"reference tag", client.ImageListOptions{Filters: filters("reference", "*:1")}, ids(app, gz)},
		{"label key", client.ImageListOptions{Filters: filters("label", "tier")}, ids(gz, plain)},
		{"label key=value", client.ImageListOptions{Filters: filters("label", "tier=gz")}, ids(gz)},
		{"labels ANDed", client.ImageListOptions{Filters: filters("label", "tier", "label", "x=1")}, ids(plain)},
		{"before", client.ImageListOptions{Filters: filters("before", "busybox-gz:1")}, ids(plain)},
		{"since", client.ImageListOptions{Filters: filters("since", gz.Encoded()[:12])}, ids(app, dangling)},
		{"since all", client.ImageListOptions{All: true, Filters: filters("since", gz.String())}, ids(app, base, dangling)},
		{"since and before", client.ImageListOptions{Filters: filters("since", "busybox", "before", "app:1")}, ids(dangling, gz)},
		{"until", client.ImageListOptions{Filters: filters("until", "2000-01-01")}, nil},
		{"until duration", client.ImageListOptions{Filters: filters("until", "-1h")}, ids(app, dangling, gz, plain)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := listIDs(t, e.cli, tt.opts); !slices.Equal(got, tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}

	res, err := e.cli.ImageList(ctx, client.ImageListOptions{SharedSize: true, All: true})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]int{}
	for i, s := range res.Items {
		byID[s.ID] = i
	}
	p, g, d, a := res.Items[byID[plain.String()]], res.Items[byID[gz.String()]], res.Items[byID[dangling.String()]], res.Items[byID[app.String()]]
	if p.Containers != 2 || g.Containers != 0 || !slices.Equal(p.RepoTags, []string{"busybox:latest"}) || p.RepoDigests == nil || len(p.RepoDigests) != 0 ||
		p.Labels["tier"] != "base" || p.Size <= 0 || p.SharedSize != p.Size || g.SharedSize != g.Size || d.SharedSize != 0 ||
		a.ParentID != base.String() || len(d.RepoTags) != 0 || d.RepoTags == nil || a.SharedSize == 0 || a.SharedSize >= a.Size {
		t.Errorf("summaries = %+v", res.Items)
	}

	// Older API versions: <none>:<none> before 1.43, no container count before 1.51.
	old, err := client.New(client.WithHost("tcp://"+strings.TrimPrefix(e.url, "http://")), client.WithAPIVersion("1.42"))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	res, err = old.ImageList(ctx, client.ImageListOptions{Filters: filters("dangling", "true")})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Items) != 1 || !slices.Equal(res.Items[0].RepoTags, []string{"<none>:<none>"}) ||
		!slices.Equal(res.Items[0].RepoDigests, []string{"<none>@<none>"}) || res.Items[0].Containers != -1 {
		t.Errorf("API 1.42 dangling = %+v", res.Items)
	}

	// Bad filters.
	_, err = e.cli.ImageList(ctx, client.ImageListOptions{Filters: filters("bogus", "x")})
	wantErr(t, err, errdefs.IsInvalidArgument, "invalid filter 'bogus'")
	_, err = e.cli.ImageList(ctx, client.ImageListOptions{Filters: filters("dangling", "maybe")})
	wantErr(t, err, errdefs.IsInvalidArgument, "invalid filter 'dangling=[maybe]'")
	_, err = e.cli.ImageList(ctx, client.ImageListOptions{Filters: filters("before", "nope")})
	wantErr(t, err, errdefs.IsNotFound, "No such image: nope:latest")
	_, err = e.cli.ImageList(ctx, client.ImageListOptions{Filters: filters("until", "yesterday")})
	wantErr(t, err, errdefs.IsInvalidArgument, "failed to parse value as time or duration")
	resp, err := http.Get(e.url + "/images/json?filters=" + url.QueryEscape(`{"dangling":"true"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"invalid filter"`) {
		t.Errorf("malformed filters: %d %s", resp.StatusCode, body)
	}
	// The legacy filter encoding.
	resp, err = http.Get(e.url + "/images/json?filters=" + url.QueryEscape(`{"reference":["app"]}`))
	if err != nil {
		t.Fatal(err)
	}
	var legacy []struct {
		ID string `json:"Id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&legacy); err != nil || len(legacy) != 1 || legacy[0].ID != app.String() {
		t.Errorf("legacy filters = %+v, %v", legacy, err)
	}
	resp.Body.Close()

	e.usage.set(plain, nil, nil)
	rmiAll(t, e)
}

// rmiAll does what "docker rmi -f $(docker images -aq)" does: one removal
// per listed row, IDs repeated for images with several tags.
func rmiAll(t *testing.T, e *env) {
	t.Helper()
	ctx := context.Background()
	res, err := e.cli.ImageList(ctx, client.ImageListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, s := range res.Items {
		for range max(1, len(s.RepoTags)) {
			rows = append(rows, digest.Digest(s.ID).Encoded()[:12])
		}
	}
	for _, id := range rows {
		// Repeated IDs and parents pruned with their child are gone.
		_, err := e.cli.ImageRemove(ctx, id, client.ImageRemoveOptions{Force: true, PruneChildren: true})
		if err != nil && !errdefs.IsNotFound(err) {
			t.Errorf("rmi -f %s: %v", id, err)
		}
	}
	e.assertClean()
}

func deleted(t *testing.T, e *env, name string, opts client.ImageRemoveOptions) []string {
	t.Helper()
	res, err := e.cli.ImageRemove(context.Background(), name, opts)
	if err != nil {
		t.Fatalf("rmi %s: %v", name, err)
	}
	var out []string
	for _, r := range res.Items {
		if r.Untagged != "" {
			out = append(out, "Untagged: "+r.Untagged)
		}
		if r.Deleted != "" {
			out = append(out, "Deleted: "+r.Deleted)
		}
	}
	return out
}

func TestDelete(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tag := func(id digest.Digest, target string) {
		t.Helper()
		if _, err := e.cli.ImageTag(ctx, client.ImageTagOptions{Source: id.String(), Target: target}); err != nil {
			t.Fatal(err)
		}
	}
	rmiErr := func(name string, opts client.ImageRemoveOptions, class func(error) bool, msg string) {
		t.Helper()
		_, err := e.cli.ImageRemove(ctx, name, opts)
		wantErr(t, err, class, msg)
	}
	force := client.ImageRemoveOptions{Force: true, PruneChildren: true}
	prune := client.ImageRemoveOptions{PruneChildren: true}

	img := e.importTar(e.busybox, "a:1", client.ImageImportOptions{})
	short := img.Encoded()[:12]
	busyboxLayer := digest.Digest(must(e.cli.ImageInspect(ctx, img.String())).RootFS.Layers[0])

	// Untag while other references remain.
	tag(img, "a:2")
	if got := deleted(t, e, "a:2", prune); !slices.Equal(got, []string{"Untagged: a:2"}) {
		t.Errorf("rmi a:2 = %v", got)
	}
	// By ID with several repositories: must be forced.
	tag(img, "b:1")
	rmiErr(short, prune, errdefs.IsConflict, "conflict: unable to delete "+short+" (must be forced) - image is referenced in multiple repositories")

	// A stopped container: by ID, by reference.
	stoppedID := strings.Repeat("5", 64)
	e.usage.set(img, nil, []string{stoppedID})
	if got := deleted(t, e, "b:1", prune); !slices.Equal(got, []string{"Untagged: b:1"}) {
		t.Errorf("rmi b:1 = %v", got) // another reference remains: only untagged
	}
	rmiErr(short, prune, errdefs.IsConflict, "conflict: unable to delete "+short+" (must be forced) - image is being used by stopped container 555555555555")
	rmiErr("a:1", prune, errdefs.IsConflict, "conflict: unable to delete a:1 (must be forced) - container 555555555555 is using its referenced image "+short)

	// A running container cannot be forced by ID; by reference force only untags.
	runningID := strings.Repeat("7", 64)
	e.usage.set(img, []string{runningID}, nil)
	rmiErr(img.String(), force, errdefs.IsConflict, "conflict: unable to delete "+short+" (cannot be forced) - image is being used by running container 777777777777")
	if got := deleted(t, e, "a:1", force); !slices.Equal(got, []string{"Untagged: a:1"}) {
		t.Errorf("rmi -f a:1 with a running container = %v", got)
	}
	if _, err := e.cli.ImageInspect(ctx, img.String()); err != nil {
		t.Fatalf("image of a running container deleted: %v", err)
	}
	// Stopped now: force deletes it and its layer.
	e.usage.set(img, nil, []string{stoppedID})
	if got := deleted(t, e, short, force); !slices.Equal(got, []string{"Deleted: " + img.String(), "Deleted: " + busyboxLayer.String()}) {
		t.Errorf("rmi -f %s = %v", short, got)
	}
	e.usage.set(img, nil, nil)
	rmiErr(short, force, errdefs.IsNotFound, "No such image: "+short)

	// Parents and children.
	base := e.importTar(e.busybox, "base", client.ImageImportOptions{})
	mid := e.buildChild(base, nil, "ENV X=1") // same top layer as base
	top := e.buildChild(mid, fileTar(t, "top", []byte("top")), "COPY top /")
	tag(top, "top")
	baseShort := base.Encoded()[:12]
	rmiErr(baseShort, force, errdefs.IsConflict, "conflict: unable to delete "+baseShort+" (cannot be forced) - image has dependent child images")
	rmiErr(mid.String(), force, errdefs.IsConflict, "(cannot be forced) - image has dependent child images")

	topInfo := must(e.cli.ImageInspect(ctx, "top"))
	if len(topInfo.RootFS.Layers) != 2 || topInfo.GraphDriver.Data["LowerDir"] == "" ||
		!strings.HasSuffix(topInfo.GraphDriver.Data["LowerDir"], "/diff") || strings.Contains(topInfo.GraphDriver.Data["LowerDir"], ":") {
		t.Errorf("top: layers %v, graph driver %v", topInfo.RootFS.Layers, topInfo.GraphDriver.Data)
	}
	if _, err := os.Stat(filepath.Join(topInfo.GraphDriver.Data["LowerDir"], "bin", "busybox")); err != nil {
		t.Errorf("LowerDir: %v", err)
	}
	hist := must(e.cli.ImageHistory(ctx, "top")).Items
	if len(hist) != 3 || hist[0].ID != top.String() || hist[1].ID != mid.String() || hist[2].ID != base.String() ||
		hist[0].CreatedBy != "COPY top /" || hist[0].Size == 0 || hist[1].Size != 0 || hist[2].Size == 0 ||
		!slices.Equal(hist[0].Tags, []string{"top:latest"}) || !slices.Equal(hist[2].Tags, []string{"base:latest"}) {
		t.Errorf("history of top = %+v", hist)
	}

	// Untagging the child deletes it and prunes untagged parents; the
	// tagged base stays.
	topLayer := digest.Digest(topInfo.RootFS.Layers[1])
	topChain := digest.FromString(topInfo.RootFS.Layers[0] + " " + topLayer.String())
	if got, want := deleted(t, e, "top", prune), []string{"Untagged: top:latest", "Deleted: " + top.String(), "Deleted: " + topChain.String(), "Deleted: " + mid.String()}; !slices.Equal(got, want) {
		t.Errorf("rmi top =\n%v\nwant\n%v", got, want)
	}
	// noprune keeps the parent.
	mid = e.buildChild(base, nil, "ENV X=2")
	if got := deleted(t, e, mid.String(), client.ImageRemoveOptions{}); !slices.Equal(got, []string{"Deleted: " + mid.String()}) {
		t.Errorf("rmi --no-prune = %v", got)
	}
	rmiAll(t, e)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestImportFromURL(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	gz := gzipped(t, e.busybox)
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/busybox.tar.gz" {
			http.Error(w, "no such file", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(gz)))
		_, _ = w.Write(gz)
	}))
	defer files.Close()

	rc, err := e.cli.ImageImport(ctx, client.ImageImportSource{SourceName: files.URL + "/busybox.tar.gz"}, "fromurl:v1", client.ImageImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	msgs := stream(t, rc)
	if len(msgs) < 3 || msgs[0].Status != "Downloading from "+files.URL+"/busybox.tar.gz" {
		t.Fatalf("stream = %+v", msgs)
	}
	last := msgs[len(msgs)-1]
	if _, err := digest.Parse(last.Status); err != nil {
		t.Fatalf("last message = %+v", last)
	}
	final := msgs[len(msgs)-2]
	if final.Status != "Importing" || final.Progress == nil || final.Progress.Current != int64(len(gz)) || final.Progress.Total != int64(len(gz)) {
		t.Errorf("progress = %+v %+v", final, final.Progress)
	}
	info := must(e.cli.ImageInspect(ctx, "fromurl:v1"))
	if info.ID != last.Status || info.Comment != "Imported from "+files.URL+"/busybox.tar.gz" {
		t.Errorf("inspect = %s %q", info.ID, info.Comment)
	}

	// A missing file is an error response; a scheme-less host gets http://.
	_, err = e.cli.ImageImport(ctx, client.ImageImportSource{SourceName: files.URL + "/nope.tar"}, "", client.ImageImportOptions{})
	wantErr(t, err, errdefs.IsNotFound, "failed to GET "+files.URL+"/nope.tar with status 404 Not Found: no such file")
	rc, err = e.cli.ImageImport(ctx, client.ImageImportSource{SourceName: strings.TrimPrefix(files.URL, "http://") + "/busybox.tar.gz"}, "", client.ImageImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if msgs := stream(t, rc); msgs[len(msgs)-1].Error != nil || !strings.HasPrefix(msgs[len(msgs)-1].Status, "sha256:") {
		t.Errorf("scheme-less import: %+v", msgs[len(msgs)-1])
	}
	// A download that is not a tar fails inside the stream.
	files.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(bytes.Repeat([]byte("not a tar "), 200))
	})
	rc, err = e.cli.ImageImport(ctx, client.ImageImportSource{SourceName: files.URL + "/x"}, "", client.ImageImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	msgs = stream(t, rc)
	if last := msgs[len(msgs)-1]; last.Error == nil || last.Error.Message == "" {
		t.Errorf("bad download: %+v", msgs)
	}
	rmiAll(t, e)
}

// TestImportTiming imports a 10 MB single-file layer and reports the time.
func TestImportTiming(t *testing.T) {
	e := newEnv(t)
	data := make([]byte, 10<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	layerTar := fileTar(t, "blob", data)
	for _, c := range []struct {
		name string
		data []byte
	}{{"plain", layerTar}, {"gzip", gzipped(t, layerTar)}} {
		start := time.Now()
		e.importTar(c.data, "timing:"+c.name, client.ImageImportOptions{})
		t.Logf("import of a 10 MB layer (%s, %d bytes sent): %v", c.name, len(c.data), time.Since(start))
	}
	rmiAll(t, e)
}
