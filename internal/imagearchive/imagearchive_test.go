package imagearchive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// entry is one tar entry of a test archive.
type entry struct {
	name string
	typ  byte
	body []byte
	link string
}

func file(name string, body []byte) entry { return entry{name: name, typ: tar.TypeReg, body: body} }
func symlink(name, target string) entry   { return entry{name: name, typ: tar.TypeSymlink, link: target} }

func tarOf(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644, Size: int64(len(e.body))}
		if e.typ == tar.TypeDir {
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// layer is a layer tar holding one file.
func layer(t *testing.T, name, content string) []byte {
	return tarOf(t, file(name, []byte(content)))
}

// config is an image config over the layers, with a distinguishing label.
func config(t *testing.T, label string, layers ...[]byte) []byte {
	t.Helper()
	c := ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: goruntime.GOARCH},
		Config:   ocispec.ImageConfig{Labels: map[string]string{"l": label}},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{}},
	}
	for _, l := range layers {
		c.RootFS.DiffIDs = append(c.RootFS.DiffIDs, digest.FromBytes(l))
	}
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func chainIDs(diffIDs []digest.Digest) []digest.Digest {
	var out []digest.Digest
	var chain digest.Digest
	for _, d := range diffIDs {
		if chain == "" {
			chain = d
		} else {
			chain = digest.FromString(chain.String() + " " + d.String())
		}
		out = append(out, chain)
	}
	return out
}

// source serves layers by ChainID from the configs' layers, counting opens.
type source struct {
	byChain map[digest.Digest][]byte
	opens   int
}

func newSource(configs [][]byte, layers ...[]byte) *source {
	byDiff := map[digest.Digest][]byte{}
	for _, l := range layers {
		byDiff[digest.FromBytes(l)] = l
	}
	s := &source{byChain: map[digest.Digest][]byte{}}
	for _, c := range configs {
		var cfg ocispec.Image
		_ = json.Unmarshal(c, &cfg)
		for i, chain := range chainIDs(cfg.RootFS.DiffIDs) {
			s.byChain[chain] = byDiff[cfg.RootFS.DiffIDs[i]]
		}
	}
	return s
}

func (s *source) open(_ context.Context, chain digest.Digest) (io.ReadCloser, error) {
	s.opens++
	l, ok := s.byChain[chain]
	if !ok {
		return nil, fmt.Errorf("layer %s: %w", chain, errdefs.ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(l)), nil
}

func tagged(t *testing.T, s string) reference.NamedTagged {
	t.Helper()
	r, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		t.Fatal(err)
	}
	return reference.TagNameOnly(r).(reference.NamedTagged)
}

func extract(t *testing.T, data []byte) *Archive {
	t.Helper()
	a, err := Extract(context.Background(), bytes.NewReader(data), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func readLayer(t *testing.T, a *Archive, e *Entry, i int) []byte {
	t.Helper()
	rc, err := a.OpenLayer(e, i)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("layer %d: %v", i, err)
	}
	return data
}

// wantImage checks an entry's config, names and layers.
func wantImage(t *testing.T, a *Archive, e *Entry, cfg []byte, tags []string, layers ...[]byte) {
	t.Helper()
	if e.ID != digest.FromBytes(cfg) || !bytes.Equal(e.Config, cfg) {
		t.Errorf("image %s: config differs from the one written", e.ID)
	}
	if !slices.Equal(e.RepoTags, tags) && !(len(e.RepoTags) == 0 && len(tags) == 0) {
		t.Errorf("image %s: tags %q, want %q", e.ID, e.RepoTags, tags)
	}
	if len(e.DiffIDs) != len(layers) {
		t.Fatalf("image %s: %d layers, want %d", e.ID, len(e.DiffIDs), len(layers))
	}
	for i, l := range layers {
		if got := readLayer(t, a, e, i); !bytes.Equal(got, l) {
			t.Errorf("image %s: layer %d differs (%d bytes, want %d)", e.ID, i, len(got), len(l))
		}
	}
}

func TestWriteThenRead(t *testing.T) {
	base := layer(t, "bin/sh", "shell")
	app := layer(t, "app", "application")
	other := layer(t, "etc/other", "x")
	baseCfg := config(t, "base", base)
	appCfg := config(t, "app", base, app)
	otherCfg := config(t, "other", other)

	tests := []struct {
		name   string
		images []Image
		// want: per written image, the tags read back
		want     [][]string
		cfgs     [][]byte
		layers   [][][]byte
		blobs    int // layer blobs in the archive
		compress bool
	}{
		{
			name:   "one tagged image",
			images: []Image{{Config: baseCfg, Tags: []reference.NamedTagged{tagged(t, "busybox")}}},
			want:   [][]string{{"busybox:latest"}},
			cfgs:   [][]byte{baseCfg}, layers: [][][]byte{{base}}, blobs: 1,
		},
		{
			name: "two images sharing a layer, one with two tags, gzip outside",
			images: []Image{
				{Config: baseCfg, Tags: []reference.NamedTagged{tagged(t, "base:1"), tagged(t, "example.com:5000/team/base:2")}},
				{Config: appCfg, Tags: []reference.NamedTagged{tagged(t, "app")}, Parent: digest.FromBytes(baseCfg)},
			},
			want:   [][]string{{"base:1", "example.com:5000/team/base:2"}, {"app:latest"}},
			cfgs:   [][]byte{baseCfg, appCfg},
			layers: [][][]byte{{base}, {base, app}}, blobs: 2, compress: true,
		},
		{
			name:   "saved by ID",
			images: []Image{{Config: otherCfg}},
			want:   [][]string{nil},
			cfgs:   [][]byte{otherCfg}, layers: [][][]byte{{other}}, blobs: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := newSource([][]byte{baseCfg, appCfg, otherCfg}, base, app, other)
			var buf bytes.Buffer
			if err := Write(context.Background(), &buf, tc.images, src.open); err != nil {
				t.Fatal(err)
			}
			if src.opens != 2*tc.blobs {
				t.Errorf("layers opened %d times, want %d (twice per distinct layer)", src.opens, 2*tc.blobs)
			}
			data := buf.Bytes()
			if tc.compress {
				data = gzipped(t, data)
			}
			a := extract(t, data)
			entries, err := a.Images()
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != len(tc.cfgs) {
				t.Fatalf("%d images read, want %d", len(entries), len(tc.cfgs))
			}
			for i, e := range entries {
				wantImage(t, a, e, tc.cfgs[i], tc.want[i], tc.layers[i]...)
			}
			if len(tc.images) > 1 && tc.images[1].Parent != "" && entries[1].Parent != tc.images[1].Parent {
				t.Errorf("parent %q, want %q", entries[1].Parent, tc.images[1].Parent)
			}
			n := 0
			for name := range a.files {
				if strings.HasPrefix(name, "blobs/sha256/") {
					n++
				}
			}
			// layers + a config and a manifest per image
			if want := tc.blobs + 2*len(tc.cfgs); n != want {
				t.Errorf("%d blobs, want %d", n, want)
			}

			// The same archive read as an OCI layout alone.
			delete(a.files, manifestFile)
			oci, err := a.Images()
			if err != nil {
				t.Fatal(err)
			}
			for i, e := range oci {
				var full []string
				for _, tag := range tc.want[i] {
					full = append(full, tagged(t, tag).String())
				}
				wantImage(t, a, e, tc.cfgs[i], full, tc.layers[i]...)
			}
		})
	}
}

func TestWriteIsDeterministic(t *testing.T) {
	l := layer(t, "f", "content")
	cfg := config(t, "x", l)
	var a, b bytes.Buffer
	for _, buf := range []*bytes.Buffer{&a, &b} {
		src := newSource([][]byte{cfg}, l)
		if err := Write(context.Background(), buf, []Image{{Config: cfg, Tags: []reference.NamedTagged{tagged(t, "x:1")}}}, src.open); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two saves of the same image differ")
	}
}

func TestWriteRefusesCorruptLayer(t *testing.T) {
	l := layer(t, "f", "content")
	cfg := config(t, "x", l)
	src := newSource([][]byte{cfg}, l)
	src.byChain[digest.FromBytes(l)] = layer(t, "f", "tampered")
	err := Write(context.Background(), io.Discard, []Image{{Config: cfg}}, src.open)
	if err == nil || !strings.Contains(err.Error(), "does not match its DiffID") {
		t.Fatalf("err = %v, want a DiffID mismatch", err)
	}
}

// TestReadLayouts reads archives in the layouts other engines write.
func TestReadLayouts(t *testing.T) {
	base := layer(t, "bin/sh", "shell")
	app := layer(t, "app", "application")
	baseCfg := config(t, "base", base)
	appCfg := config(t, "app", base, app)
	hex := func(b []byte) string { return digest.FromBytes(b).Encoded() }
	mustJSON := func(v any) []byte {
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}

	// Docker 20.10: <v1id>/layer.tar, a shared layer linked from the
	// second image's directory, <id>.json configs.
	docker2010 := tarOf(t,
		entry{name: "aaaa/", typ: tar.TypeDir},
		file("aaaa/VERSION", []byte("1.0")),
		file("aaaa/json", []byte("{}")),
		file("aaaa/layer.tar", base),
		entry{name: "bbbb/", typ: tar.TypeDir},
		symlink("bbbb/layer.tar", "../aaaa/layer.tar"),
		file("cccc/layer.tar", app),
		file(hex(baseCfg)+".json", baseCfg),
		file(hex(appCfg)+".json", appCfg),
		file("manifest.json", mustJSON([]manifestItem{
			{Config: hex(baseCfg) + ".json", RepoTags: []string{"base:latest"}, Layers: []string{"aaaa/layer.tar"}},
			{Config: hex(appCfg) + ".json", RepoTags: []string{"app:v1"}, Layers: []string{"bbbb/layer.tar", "cccc/layer.tar"}},
		})),
		file("repositories", []byte(`{"base":{"latest":"aaaa"}}`)),
	)

	// podman docker-archive: <hex>.tar layers, <hex>.json config.
	podman := tarOf(t,
		file(hex(base)+".tar", base),
		file(hex(app)+".tar", app),
		file(hex(appCfg)+".json", appCfg),
		file("manifest.json", mustJSON([]manifestItem{
			{Config: hex(appCfg) + ".json", RepoTags: []string{"localhost/app:v1"}, Layers: []string{hex(base) + ".tar", hex(app) + ".tar"}},
		})),
	)

	// A pure OCI layout: gzip layers, an index per platform nested in
	// index.json, the name in containerd's annotation; a second
	// reference named only by a full ref.name.
	gzBase, gzApp := gzipped(t, base), gzipped(t, app)
	manifest := mustJSON(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(appCfg), Size: int64(len(appCfg))},
		Layers: []ocispec.Descriptor{
			{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(gzBase), Size: int64(len(gzBase))},
			{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(gzApp), Size: int64(len(gzApp))},
		},
	})
	platformIndex := mustJSON(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{
			{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("other"), Size: 1, Platform: &ocispec.Platform{OS: "linux", Architecture: "s390x"}},
			{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(manifest), Size: int64(len(manifest)), Platform: &ocispec.Platform{OS: "linux", Architecture: goruntime.GOARCH}},
		},
	})
	ociLayout := tarOf(t,
		file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)),
		file("blobs/sha256/"+hex(gzBase), gzBase),
		file("blobs/sha256/"+hex(gzApp), gzApp),
		file("blobs/sha256/"+hex(appCfg), appCfg),
		file("blobs/sha256/"+hex(manifest), manifest),
		file("blobs/sha256/"+hex(platformIndex), platformIndex),
		file("index.json", mustJSON(ocispec.Index{
			Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
			Manifests: []ocispec.Descriptor{
				{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(platformIndex), Size: int64(len(platformIndex)),
					Annotations: map[string]string{AnnotationImageName: "docker.io/library/app:oci", AnnotationRefName: "oci"}},
				{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(manifest), Size: int64(len(manifest)),
					Annotations: map[string]string{AnnotationRefName: "example.com/app:second"}},
				{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(manifest), Size: int64(len(manifest)),
					Annotations: map[string]string{AnnotationRefName: "justatag"}},
			},
		})),
	)

	tests := []struct {
		name    string
		archive []byte
		cfgs    [][]byte
		tags    [][]string
		layers  [][][]byte
	}{
		{"docker 20.10", docker2010, [][]byte{baseCfg, appCfg}, [][]string{{"base:latest"}, {"app:v1"}}, [][][]byte{{base}, {base, app}}},
		{"podman docker-archive", podman, [][]byte{appCfg}, [][]string{{"localhost/app:v1"}}, [][][]byte{{base, app}}},
		{"OCI layout", ociLayout, [][]byte{appCfg}, [][]string{{"docker.io/library/app:oci", "example.com/app:second"}}, [][][]byte{{base, app}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := extract(t, tc.archive)
			entries, err := a.Images()
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != len(tc.cfgs) {
				t.Fatalf("%d images, want %d", len(entries), len(tc.cfgs))
			}
			for i, e := range entries {
				wantImage(t, a, e, tc.cfgs[i], tc.tags[i], tc.layers[i]...)
			}
		})
	}
}

// TestHostileArchives: archives that try to escape, lie or lack content
// fail with a clear error.
func TestHostileArchives(t *testing.T) {
	l := layer(t, "f", "content")
	cfg := config(t, "x", l)
	cfgName := digest.FromBytes(cfg).Encoded() + ".json"
	manifest := func(layers ...string) entry {
		data, _ := json.Marshal([]manifestItem{{Config: cfgName, Layers: layers}})
		return file("manifest.json", data)
	}

	tests := []struct {
		name    string
		archive []byte
		// stage at which the error comes: "extract", "images" or "layer"
		stage string
		want  string
	}{
		{"parent directory entry", tarOf(t, file("../evil", []byte("x"))), "extract", `entry "../evil" is outside the archive`},
		{"nested parent directory entry", tarOf(t, file("a/../../evil", []byte("x"))), "extract", "is outside the archive"},
		{"absolute entry", tarOf(t, file("/etc/evil", []byte("x"))), "extract", `entry "/etc/evil" is outside the archive`},
		{"absolute symlink", tarOf(t, symlink("layer.tar", "/etc/shadow")), "extract", `symbolic link "layer.tar" points outside the archive ("/etc/shadow")`},
		{"relative symlink out", tarOf(t, symlink("a/layer.tar", "../../etc/shadow")), "extract", "points outside the archive"},
		{"hard link out", tarOf(t, entry{name: "h", typ: tar.TypeLink, link: "../x"}), "extract", "points outside the archive"},
		{"device", tarOf(t, entry{name: "dev", typ: tar.TypeChar}), "extract", "unsupported entry"},
		{"not a tar", []byte("hello, this is not an archive at all, it is plain text that goes on and on for more than a tar block....................................................................................................................................................................................................................................................................................................................................................................................................................................................................."), "extract", "invalid archive"},
		{"empty", tarOf(t), "images", "neither manifest.json nor index.json found"},
		{"missing layer", tarOf(t, file(cfgName, cfg), manifest("gone/layer.tar")), "images", "gone/layer.tar is missing"},
		{"missing config", tarOf(t, file("l.tar", l), manifest("l.tar")), "images", cfgName + " is missing"},
		{"layer count mismatch", tarOf(t, file(cfgName, cfg), file("l.tar", l), manifest("l.tar", "l.tar")), "images", "layers length mismatch"},
		{"dangling symlink", tarOf(t, file(cfgName, cfg), symlink("l.tar", "nothing.tar"), manifest("l.tar")), "images", "l.tar is missing"},
		{"symlink loop", tarOf(t, file(cfgName, cfg), symlink("a", "b"), symlink("b", "a"), manifest("a")), "images", "too many levels of links"},
		{"DiffID mismatch", tarOf(t, file(cfgName, cfg), file("l.tar", layer(t, "f", "other")), manifest("l.tar")), "layer", "invalid diffID for layer 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Extract(context.Background(), bytes.NewReader(tc.archive), t.TempDir())
			if err == nil {
				defer a.Close()
				var entries []*Entry
				entries, err = a.Images()
				if err == nil {
					if tc.stage != "layer" {
						t.Fatalf("no error listing the images, want one at %s", tc.stage)
					}
					var rc io.ReadCloser
					if rc, err = a.OpenLayer(entries[0], 0); err == nil {
						_, err = io.Copy(io.Discard, rc)
						rc.Close()
					}
				} else if tc.stage != "images" {
					t.Fatalf("error listing the images (%v), want one at %s", err, tc.stage)
				}
			} else if tc.stage != "extract" {
				t.Fatalf("error extracting (%v), want one at %s", err, tc.stage)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("err %v is not an invalid argument", err)
			}
		})
	}
}

// TestExtractStaysInside: whatever the names, extraction writes only in
// its own directory.
func TestExtractStaysInside(t *testing.T) {
	parent := t.TempDir()
	data := tarOf(t, file("a/b/c.json", []byte("{}")), file("./d", []byte("x")), symlink("e", "a/b/c.json"))
	a, err := Extract(context.Background(), bytes.NewReader(data), parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range a.files {
		if !strings.HasPrefix(p, a.dir+"/") || strings.Count(strings.TrimPrefix(p, a.dir+"/"), "/") != 0 {
			t.Errorf("file stored at %s, outside the flat directory %s", p, a.dir)
		}
	}
	if _, err := a.readJSON("e", nil); err != nil {
		t.Errorf("reading through the link: %v", err)
	}
	a.Close()
	if entries, _ := readDir(parent); len(entries) != 0 {
		t.Errorf("Close left %v", entries)
	}
}

func readDir(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, err
}
