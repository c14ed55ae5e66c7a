package distribution

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// tarLayer is a layer holding one file of the given content.
func tarLayer(t *testing.T, file string, content []byte, opts ...tarball.LayerOption) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: file, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(content)
	tw.Close()
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// imageOf builds an image of layers with the given platform.
func imageOf(t *testing.T, base v1.Image, arch string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(base, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

func imageID(t *testing.T, img v1.Image) digest.Digest {
	t.Helper()
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return digest.Digest(h.String())
}

func manifestDigest(t *testing.T, img interface{ Digest() (v1.Hash, error) }) string {
	t.Helper()
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

func TestPullFormats(t *testing.T) {
	reg := newTestRegistry(t)
	schema2, err := random.Image(2048, 3)
	if err != nil {
		t.Fatal(err)
	}
	oci := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	oci = mutate.ConfigMediaType(oci, types.OCIConfigJSON)
	oci = imageOf(t, oci, "amd64",
		tarLayer(t, "gz", []byte("gzip layer"), tarball.WithMediaType(types.OCILayer)),
		tarLayer(t, "zst", []byte("zstd layer"), tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd)),
	)
	plain, err := mutate.Append(oci, mutate.Addendum{Layer: tarLayer(t, "plain", []byte("plain")), MediaType: types.OCIUncompressedLayer})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		img  v1.Image
	}{
		{"docker schema2 gzip", schema2},
		{"oci gzip and zstd", oci},
		{"oci uncompressed layer", plain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg.write(t, "img:latest", tc.img)
			s, layers, images := newTestService(t, Config{})
			ref := reg.host + "/img:latest"
			msgs, err := pull(t, s, images, ref, PullOptions{})
			if err != nil {
				t.Fatalf("pull: %v\n%s", err, statuses(msgs))
			}
			id := imageID(t, tc.img)
			raw, _ := tc.img.RawConfigFile()
			if got := images.configs[id]; !bytes.Equal(got, raw) {
				t.Fatalf("stored config differs from the registry's:\n%s\n%s", got, raw)
			}
			out := statuses(msgs)
			n, _ := tc.img.Layers()
			for _, want := range []string{"latest: Pulling from img\n", "Pull complete", "Digest: " + manifestDigest(t, tc.img),
				"Status: Downloaded newer image for " + ref + "\n"} {
				if !strings.Contains(out, want) {
					t.Errorf("progress lacks %q:\n%s", want, out)
				}
			}
			bars := map[string]bool{}
			for _, m := range msgs {
				if m.Progress != nil && m.Progress.Total > 0 && m.Progress.Current > 0 {
					bars[m.Status] = true
				}
			}
			if !bars["Downloading"] || !bars["Extracting"] {
				t.Errorf("no Downloading/Extracting progress bars: %v", bars)
			}
			if c := strings.Count(out, "Pull complete"); c != len(n) {
				t.Errorf("%d layers pulled, want %d:\n%s", c, len(n), out)
			}
			if layers.count() != len(n) {
				t.Errorf("%d layers stored, want %d", layers.count(), len(n))
			}
			// The config names the layers the store holds.
			cf, _ := tc.img.ConfigFile()
			for i, d := range cf.RootFS.DiffIDs {
				found := false
				for _, l := range layers.Layers() {
					found = found || l.DiffID().String() == d.String()
				}
				if !found {
					t.Errorf("layer %d (%s) not in the store", i, d)
				}
			}
			// Pulled again: up to date, nothing downloaded.
			before := layers.registered
			msgs, err = pull(t, s, images, ref, PullOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if out := statuses(msgs); !strings.Contains(out, "Status: Image is up to date for "+ref) || strings.Contains(out, "Pull complete") {
				t.Errorf("second pull:\n%s", out)
			}
			if layers.registered != before {
				t.Errorf("second pull registered %d layers", layers.registered-before)
			}
			if l := leftovers(t, s); len(l) > 0 {
				t.Errorf("files left behind: %v", l)
			}
		})
	}
}

func TestPullAlreadyExists(t *testing.T) {
	reg := newTestRegistry(t)
	l1, l2, l3 := tarLayer(t, "a", []byte("a")), tarLayer(t, "b", []byte("b")), tarLayer(t, "c", []byte("c"))
	base := imageOf(t, empty.Image, "amd64", l1, l2)
	child := imageOf(t, base, "amd64", l3)
	reg.write(t, "base:1", base)
	reg.write(t, "child:1", child)
	s, _, images := newTestService(t, Config{})
	if _, err := pull(t, s, images, reg.host+"/base:1", PullOptions{}); err != nil {
		t.Fatal(err)
	}
	msgs, err := pull(t, s, images, reg.host+"/child:1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := statuses(msgs)
	for _, l := range []v1.Layer{l1, l2} {
		d, _ := l.Digest()
		if !strings.Contains(out, d.Hex[:12]+": Already exists") {
			t.Errorf("layer %s not reported as existing:\n%s", d, out)
		}
	}
	d3, _ := l3.Digest()
	if !strings.Contains(out, d3.Hex[:12]+": Pull complete") || strings.Count(out, "Pull complete") != 1 {
		t.Errorf("only the new layer must be pulled:\n%s", out)
	}
	// The metadata knows where each layer came from.
	diff3, _ := l3.DiffID()
	srcs := s.metadata.Sources(digest.Digest(diff3.String()))
	if len(srcs) != 1 || srcs[0].Digest.String() != d3.String() || srcs[0].SourceRepository != reg.host+"/child" {
		t.Errorf("metadata of layer 3: %+v", srcs)
	}
}

func TestPullPlatform(t *testing.T) {
	reg := newTestRegistry(t)
	amd := imageOf(t, empty.Image, "amd64", tarLayer(t, "arch", []byte("amd64")))
	arm := imageOf(t, empty.Image, "arm64", tarLayer(t, "arch", []byte("arm64")))
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	ref := reg.host + "/multi:latest"
	if err := remoteWriteIndex(reg.host+"/multi:latest", idx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		platform *ocispec.Platform
		want     v1.Image
		err      string
	}{
		{"host default", nil, amd, ""},
		{"arm64", &ocispec.Platform{OS: "linux", Architecture: "arm64"}, arm, ""},
		{"arm64/v8", &ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, arm, ""},
		{"missing", &ocispec.Platform{OS: "linux", Architecture: "s390x"}, nil, "no matching manifest for linux/s390x in the manifest list entries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, images := newTestService(t, Config{})
			msgs, err := pull(t, s, images, ref, PullOptions{Platform: tc.platform})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errdefs.IsNotFound(err) {
					t.Fatalf("error %v, want %q (not found)", err, tc.err)
				}
				if len(images.configs) != 0 {
					t.Error("an image was stored")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := images.configs[imageID(t, tc.want)]; !ok || len(images.configs) != 1 {
				t.Errorf("pulled %v, want %s", images.configs, imageID(t, tc.want))
			}
			// The repository digest is the index's.
			if !strings.Contains(statuses(msgs), "Digest: "+manifestDigest(t, idx)) {
				t.Errorf("progress:\n%s", statuses(msgs))
			}
		})
	}
}

func TestPullNotFound(t *testing.T) {
	reg := newTestRegistry(t)
	reg.write(t, "img:latest", imageOf(t, empty.Image, "amd64", tarLayer(t, "a", []byte("a"))))
	s, layers, images := newTestService(t, Config{})
	for _, ref := range []string{reg.host + "/img:nope", reg.host + "/nosuch:latest"} {
		msgs, err := pull(t, s, images, ref, PullOptions{})
		want := "manifest for " + ref + " not found: "
		if err == nil || !strings.HasPrefix(err.Error(), want) || !errdefs.IsNotFound(err) {
			t.Errorf("pull %s: %v, want %q", ref, err, want)
		}
		if len(msgs) != 0 {
			t.Errorf("pull %s wrote progress before failing: %s", ref, statuses(msgs))
		}
	}
	if layers.count() != 0 || len(images.configs) != 0 {
		t.Error("a failed pull stored something")
	}
}

// TestPullFaults: broken transfers are retried, corrupt data never stored.
func TestPullFaults(t *testing.T) {
	content := make([]byte, 1<<20)
	if _, err := rand.Read(content); err != nil {
		t.Fatal(err)
	}
	l := tarLayer(t, "big", content)
	img := imageOf(t, empty.Image, "amd64", l)
	ld, _ := l.Digest()
	blobPath := "/blobs/" + ld.String()
	for _, tc := range []struct {
		name string
		// fault answers the n-th GET of the layer blob (from 1) or
		// returns false to let the registry answer.
		fault func(n int, w http.ResponseWriter, r *http.Request, next http.Handler) bool
		err   string
	}{
		{"connection dropped mid-blob once", func(n int, w http.ResponseWriter, r *http.Request, next http.Handler) bool {
			if n > 1 {
				return false
			}
			rec := &truncating{ResponseWriter: w, limit: 100000}
			next.ServeHTTP(rec, r)
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
				}
			}
			return true
		}, ""},
		{"500 twice", func(n int, w http.ResponseWriter, r *http.Request, next http.Handler) bool {
			if n > 2 {
				return false
			}
			http.Error(w, "boom", http.StatusInternalServerError)
			return true
		}, ""},
		{"500 always", func(n int, w http.ResponseWriter, r *http.Request, next http.Handler) bool {
			http.Error(w, "boom", http.StatusInternalServerError)
			return true
		}, "received unexpected HTTP status: 500 Internal Server Error"},
		{"wrong blob served", func(n int, w http.ResponseWriter, r *http.Request, next http.Handler) bool {
			rec := &corrupting{ResponseWriter: w}
			next.ServeHTTP(rec, r)
			return true
		}, "filesystem layer verification failed for digest " + ld.String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := newTestRegistry(t)
			reg.write(t, "img:latest", img)
			var gets atomic.Int32
			reg.wrap = func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
				if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, blobPath) {
					return false
				}
				return tc.fault(int(gets.Add(1)), w, r, next)
			}
			s, layers, images := newTestService(t, Config{})
			s.maxAttempts = 3
			msgs, err := pull(t, s, images, reg.host+"/img:latest", PullOptions{})
			if tc.err == "" {
				if err != nil {
					t.Fatalf("pull: %v\n%s", err, statuses(msgs))
				}
				if !strings.Contains(statuses(msgs), "Retrying in") {
					t.Errorf("no retry reported:\n%s", statuses(msgs))
				}
				if layers.count() != 1 || len(images.configs) != 1 {
					t.Errorf("stored %d layers, %d images", layers.count(), len(images.configs))
				}
			} else {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				if layers.count() != 0 || len(images.configs) != 0 {
					t.Errorf("a failed pull left %d layers, %d images", layers.count(), len(images.configs))
				}
			}
			if l := leftovers(t, s); len(l) > 0 {
				t.Errorf("files left behind: %v", l)
			}
		})
	}
}

// TestPullDiffIDMismatch: a layer that is not the one the configuration
// names is released again.
func TestPullDiffIDMismatch(t *testing.T) {
	reg := newTestRegistry(t)
	img := imageOf(t, empty.Image, "amd64", tarLayer(t, "a", []byte("a")), tarLayer(t, "b", []byte("b")))
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.RootFS.DiffIDs[1] = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}
	bad, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	reg.write(t, "bad:latest", bad)
	s, layers, images := newTestService(t, Config{})
	_, err = pull(t, s, images, reg.host+"/bad:latest", PullOptions{})
	if err == nil || !strings.Contains(err.Error(), "failed to register layer") {
		t.Fatalf("error %v", err)
	}
	if layers.count() != 0 || len(images.configs) != 0 {
		t.Errorf("left %d layers, %d images", layers.count(), len(images.configs))
	}
}

// truncating passes the first limit bytes of a response body.
type truncating struct {
	http.ResponseWriter
	limit, n int
}

func (t *truncating) Write(p []byte) (int, error) {
	if t.n >= t.limit {
		return 0, errors.New("truncated")
	}
	p = p[:min(len(p), t.limit-t.n)]
	n, err := t.ResponseWriter.Write(p)
	t.n += n
	if f, ok := t.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
	return n, err
}

// corrupting flips the bytes of a response body.
type corrupting struct{ http.ResponseWriter }

func (c *corrupting) Write(p []byte) (int, error) {
	q := make([]byte, len(p))
	for i, b := range p {
		q[i] = ^b
	}
	return c.ResponseWriter.Write(q)
}
