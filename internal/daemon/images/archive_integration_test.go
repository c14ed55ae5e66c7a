package images_test

import (
	"archive/tar"
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/api/httputil"
	"github.com/berth-dev/berth/internal/daemon/images"
	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/client"
	"github.com/opencontainers/go-digest"
)

// fileLayer is a layer tar holding one file.
func fileLayer(t *testing.T, name, content string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(content))}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(content))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// chain builds base (busybox) <- child (a layer) <- meta (no layer).
func (e *env) chain() (base, child, meta digest.Digest) {
	e.t.Helper()
	ctx := context.Background()
	base = e.importTar(e.busybox, "base", client.ImageImportOptions{})
	child, err := e.svc.CommitLayer(ctx, images.Commit{
		Parent: base, Config: dockerspec.DockerOCIImageConfig{}, CreatedBy: "add /f", Author: "me", Comment: "c",
	}, bytes.NewReader(fileLayer(e.t, "f", "the child layer")))
	if err != nil {
		e.t.Fatal(err)
	}
	meta, err = e.svc.CommitLayer(ctx, images.Commit{Parent: child, CreatedBy: "ENV x=y", EmptyLayer: true}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return base, child, meta
}

func (e *env) tag(id digest.Digest, name string) {
	e.t.Helper()
	ref, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.svc.TagImage(context.Background(), id, ref); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) save(names ...string) []byte {
	e.t.Helper()
	var buf bytes.Buffer
	if err := e.svc.SaveImages(context.Background(), names, &buf); err != nil {
		e.t.Fatal(err)
	}
	return buf.Bytes()
}

func (e *env) load(archive []byte) string {
	e.t.Helper()
	var out bytes.Buffer
	if err := e.svc.LoadImage(context.Background(), bytes.NewReader(archive), &out, true); err != nil {
		e.t.Fatalf("load: %v (%s)", err, out.String())
	}
	return out.String()
}

func (e *env) rmi(names ...string) {
	e.t.Helper()
	for _, n := range names {
		if _, err := e.svc.ImageDelete(context.Background(), n, true, true); err != nil {
			e.t.Fatalf("rmi %s: %v", n, err)
		}
	}
}

// TestCommitLayerChain: a layer commit and a metadata-only commit on top;
// history and layers as asked; deleting the images leaves nothing.
func TestCommitLayerChain(t *testing.T) {
	e := newEnv(t)
	base, child, meta := e.chain()
	ctx := context.Background()
	hist, err := e.svc.ImageHistory(ctx, meta.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 || hist[0].ID != meta.String() || hist[0].Size != 0 || hist[1].ID != child.String() ||
		hist[1].CreatedBy != "add /f" || hist[1].Comment != "c" || hist[2].ID != base.String() {
		t.Errorf("history: %+v", hist)
	}
	info, err := e.svc.ImageInspect(ctx, meta.String())
	if err != nil || len(info.RootFS.Layers) != 2 || info.Parent != child.String() {
		t.Errorf("inspect: %+v %v", info, err)
	}
	// meta goes with its parent child (prune), then base.
	e.rmi(meta.String(), "base")
	e.assertClean()
}

// TestLoadLayerOwnership: loads that find all, some or none of their
// layers; the layer references stay right (deleting everything leaves
// nothing) and a tampered layer stores nothing.
func TestLoadLayerOwnership(t *testing.T) {
	e := newEnv(t)
	base, child, meta := e.chain()
	e.tag(child, "child:1")
	both := e.save("base", "child:1")
	onlyBase := e.save("base")
	onlyChild := e.save("child:1")

	// Everything present: nothing changes.
	if out := e.load(both); !strings.Contains(out, "Loaded image: child:1") {
		t.Errorf("load output %q", out)
	}
	e.rmi("child:1", meta.String(), "base")
	e.assertClean()

	// The child alone, then its base: the base's layer exists as the
	// child's lower layer but no image holds it yet.
	e.load(onlyChild)
	e.load(onlyBase)
	if id, err := e.svc.ResolveImageID(context.Background(), "base"); err != nil || id != base {
		t.Errorf("base is %s (%v), want %s", id, err, base)
	}
	e.rmi("child:1")
	e.rmi("base")
	e.assertClean()

	// A tampered layer: the load fails, nothing stays.
	bad := bytes.Replace(onlyChild, []byte("the child layer"), []byte("the child LAYER"), 1)
	var out bytes.Buffer
	err := e.svc.LoadImage(context.Background(), bytes.NewReader(bad), &out, true)
	if err == nil || !strings.Contains(err.Error(), "invalid diffID") {
		t.Fatalf("tampered load: %v (%s)", err, out.String())
	}
	e.assertClean()
}

// TestPrune: dangling only by default; every unused image with
// dangling=false; images in use stay.
func TestPrune(t *testing.T) {
	e := newEnv(t)
	base, child, meta := e.chain()
	ctx := context.Background()
	e.usage.set(base, nil, []string{"ctr"})

	f, _ := httputil.ParseFilters(`{"dangling":{"true":true}}`)
	rep, err := e.svc.ImagesPrune(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	// meta is the only dangling image without children; pruning it
	// takes child (its parent, now unused and untagged) along.
	var deleted []string
	for _, d := range rep.ImagesDeleted {
		deleted = append(deleted, d.Deleted)
	}
	if !strings.Contains(strings.Join(deleted, " "), meta.String()) || !strings.Contains(strings.Join(deleted, " "), child.String()) || rep.SpaceReclaimed == 0 {
		t.Errorf("prune: %+v", rep)
	}
	f, _ = httputil.ParseFilters(`{"dangling":{"false":true}}`)
	if rep, err = e.svc.ImagesPrune(ctx, f); err != nil || len(rep.ImagesDeleted) != 0 {
		t.Errorf("prune -a with base in use: %+v %v", rep, err)
	}
	e.usage.set(base, nil, nil)
	if rep, err = e.svc.ImagesPrune(ctx, f); err != nil || len(rep.ImagesDeleted) == 0 {
		t.Errorf("prune -a: %+v %v", rep, err)
	}
	e.assertClean()
	f, _ = httputil.ParseFilters(`{"color":{"red":true}}`)
	if _, err := e.svc.ImagesPrune(ctx, f); err == nil || !strings.Contains(err.Error(), "invalid filter 'color'") {
		t.Errorf("bad filter: %v", err)
	}
}
