package distribution

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/layer"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
)

// mountingRegistry answers cross-repository mounts (go-containerregistry's
// registry keeps blobs for all repositories but does not mount): a mount
// of a blob the source repository has is a 201.
func mountingRegistry(t *testing.T, mounts *[]string) *testRegistry {
	reg := newTestRegistry(t)
	reg.wrap = func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		q := r.URL.Query()
		if r.Method != http.MethodPost || q.Get("mount") == "" {
			return false
		}
		head := httptest.NewRequest(http.MethodHead, "/v2/"+q.Get("from")+"/blobs/"+q.Get("mount"), nil)
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, head)
		if rec.Code != http.StatusOK {
			return false
		}
		*mounts = append(*mounts, q.Get("from"))
		w.Header().Set("Location", "/v2/x/blobs/"+q.Get("mount"))
		w.WriteHeader(http.StatusCreated)
		return true
	}
	return reg
}

func push(t *testing.T, s *Service, repo string, imgs []PushImage) (string, error) {
	t.Helper()
	ref, err := reference.ParseNormalizedNamed(repo)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	err = s.Push(context.Background(), ref, imgs, PushOptions{Progress: NewProgress(&buf)})
	return statuses(decodeMessages(t, &buf)), err
}

// TestPushPullBack pushes an image pulled from one repository to others:
// uploaded, then existing, then mounted; pulled back it is the same image.
func TestPushPullBack(t *testing.T) {
	var mounts []string
	reg := mountingRegistry(t, &mounts)
	src := imageOf(t, empty.Image, "amd64", tarLayer(t, "a", []byte("layer a")), tarLayer(t, "b", []byte("layer b")))
	reg.write(t, "origin:1", src)
	s, layers, images := newTestService(t, Config{})
	if _, err := pull(t, s, images, reg.host+"/origin:1", PullOptions{}); err != nil {
		t.Fatal(err)
	}
	id := imageID(t, src)
	raw := images.configs[id]
	cf, _ := src.ConfigFile()
	var pl []PushLayer
	var parent digest.Digest
	for _, d := range cf.RootFS.DiffIDs {
		diffID := digest.Digest(d.String())
		chain := layer.NextChainID(parent, diffID)
		parent = chain
		pl = append(pl, PushLayer{DiffID: diffID, Size: 10, Open: func(ctx context.Context) (io.ReadCloser, error) { return layers.TarStream(ctx, chain) }})
	}
	img := PushImage{Tag: "v1", RawConfig: raw, Layers: pl}

	// A repository of the same registry: the layers are mounted.
	out, err := push(t, s, reg.host+"/copy", []PushImage{img})
	if err != nil {
		t.Fatalf("push: %v\n%s", err, out)
	}
	if strings.Count(out, "Mounted from origin") != 2 || len(mounts) != 2 {
		t.Errorf("layers not mounted (%v):\n%s", mounts, out)
	}
	for _, want := range []string{"The push refers to repository [" + reg.host + "/copy]", "Preparing", "v1: digest: sha256:"} {
		if !strings.Contains(out, want) {
			t.Errorf("push output lacks %q:\n%s", want, out)
		}
	}
	// Pushed again: the repository has them.
	out, err = push(t, s, reg.host+"/copy", []PushImage{img})
	if err != nil || strings.Count(out, "Layer already exists") != 2 {
		t.Errorf("second push (%v):\n%s", err, out)
	}
	// A repository the metadata knows nothing of: uploaded.
	s2, _, _ := newTestService(t, Config{})
	out, err = push(t, s2, reg.host+"/fresh", []PushImage{img})
	if err != nil || strings.Count(out, "Pushed") != 2 {
		t.Fatalf("push to a new repository (%v):\n%s", err, out)
	}
	// Pulled back: the same image ID.
	r, _ := name.ParseReference(reg.host + "/fresh:v1")
	got, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	if imageID(t, got) != id {
		t.Errorf("pulled back %s, pushed %s", imageID(t, got), id)
	}
	mt, _ := got.MediaType()
	if mt != mediaTypeManifest {
		t.Errorf("manifest media type %s", mt)
	}
	s3, _, images3 := newTestService(t, Config{})
	if _, err := pull(t, s3, images3, reg.host+"/fresh:v1", PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := images3.configs[id]; !ok {
		t.Error("pull of the pushed image gave another image ID")
	}
}
