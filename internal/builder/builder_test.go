package builder

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/daemon/images"
	"github.com/berth-dev/berth/internal/image"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/opencontainers/go-digest"
)

func strp(s string) *string { return &s }

func TestPlan(t *testing.T) {
	df := `ARG BASE=busybox
ARG TAG
FROM ${BASE}:${TAG:-latest} AS base
FROM base AS build
RUN make
FROM busybox AS unrelated
RUN false
FROM scratch AS final
COPY --from=build /out /out
COPY --from=0 /x /x
`
	tests := []struct {
		target    string
		buildArgs map[string]*string
		want      []int
		wantErr   string
	}{
		{target: "", want: []int{0, 1, 3}},
		{target: "build", want: []int{0, 1}},
		{target: "UNRELATED", want: []int{2}},
		{target: "nope", wantErr: "failed to reach build target nope in Dockerfile"},
	}
	for _, tt := range tests {
		d, err := parseDockerfile([]byte(df))
		if err != nil {
			t.Fatal(err)
		}
		p, err := d.plan(tt.target, tt.buildArgs)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errdefs.IsInvalidArgument(err) {
				t.Errorf("target %q: err %v, want %q", tt.target, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(p.needed, tt.want) {
			t.Errorf("target %q: needed %v (%v), want %v", tt.target, p.needed, err, tt.want)
		}
	}
	d, _ := parseDockerfile([]byte(df))
	if d.steps != 2+1+1+1+1+1+1+2 {
		t.Errorf("steps = %d", d.steps)
	}
	p, err := d.plan("", map[string]*string{"TAG": strp("1.36"), "OTHER": strp("x")})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := p.expandFrom(shell.NewLex(d.escape), d.stages[0].BaseName)
	if base != "busybox:1.36" {
		t.Errorf("FROM expands to %q", base)
	}
	if got := d.unusedArgs(map[string]*string{"TAG": nil, "OTHER": nil, "HTTP_PROXY": nil}, map[string]bool{"TAG": true}); !slices.Equal(got, []string{"OTHER"}) {
		t.Errorf("unused args %v", got)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ df, want string }{
		{"FROM busybox\nFOO bar\n", "dockerfile parse error on line 2: unknown instruction: FOO"},
		{"FROM busybox\nENV\n", "ENV requires at least one argument"},
		{"RUN true\n", "no build stage in current context"},
		{"# just a comment\n", "file with no instructions"},
	}
	for _, tt := range tests {
		_, err := parseDockerfile([]byte(tt.df))
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errdefs.IsInvalidArgument(err) {
			t.Errorf("%q: %v, want %q", tt.df, err, tt.want)
		}
	}
}

func TestRunCommand(t *testing.T) {
	tests := []struct {
		name, df string
		shell    []string
		want     []string
	}{
		{"shell form", "RUN echo hi", nil, []string{"/bin/sh", "-c", "echo hi"}},
		{"exec form", `RUN ["echo", "hi"]`, nil, []string{"echo", "hi"}},
		{"under SHELL", "RUN echo hi", []string{"/bin/bash", "-eu", "-c"}, []string{"/bin/bash", "-eu", "-c", "echo hi"}},
		{"heredoc alone is the script", "RUN <<EOF\necho a\necho b\nEOF", nil, []string{"/bin/sh", "-c", "echo a\necho b\n"}},
		{"heredoc fed to a command", "RUN cat > /f <<EOT\nline\nEOT", nil, []string{"/bin/sh", "-c", "cat > /f <<EOT\nline\nEOT"}},
	}
	for _, tt := range tests {
		d, err := parseDockerfile([]byte("FROM busybox\n" + tt.df + "\n"))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		s := &stage{}
		s.img.Config.Shell = tt.shell
		got := runCommand(s, d.stages[0].Commands[0].(*instructions.RunCommand))
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestChecksumSources(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("d/a", "a")
	write("d/b", "b")
	sum := func() string {
		_, s, err := checksumSources([]copySource{{path: filepath.Join(dir, "d"), name: "d", isDir: true}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	first := sum()
	if sum() != first {
		t.Fatal("checksum is not stable")
	}
	// A new time alone does not change it (Docker's cache ignores times).
	os.Chtimes(filepath.Join(dir, "d/a"), testTime, testTime)
	if sum() != first {
		t.Error("mtime changed the checksum")
	}
	for _, change := range []func(){
		func() { write("d/a", "A") },
		func() { os.Chmod(filepath.Join(dir, "d/b"), 0o600) },
		func() { write("d/c", "") },
		func() { os.Symlink("a", filepath.Join(dir, "d/l")) },
	} {
		before := sum()
		change()
		if sum() == before {
			t.Error("a change to the sources kept the checksum")
		}
	}
	kind, _, _ := checksumSources([]copySource{{path: filepath.Join(dir, "d/a"), name: "a"}, {path: filepath.Join(dir, "d/b"), name: "b"}}, nil)
	if kind != "multi" {
		t.Errorf("kind %q", kind)
	}
}

func TestDockerignore(t *testing.T) {
	dir := t.TempDir()
	files := []string{"Dockerfile", ".dockerignore", "app.go", "secret.key", "logs/a.log", "logs/keep.log", "vendor/x/y.go", "docs/readme.md"}
	for _, f := range files {
		p := filepath.Join(dir, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(f), 0o644)
	}
	os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("# comment\n*.key\nlogs\n!logs/keep.log\nvendor/\n**/*.md\n.dockerignore\n"), 0o644)
	bc := &buildContext{root: dir}
	if err := bc.applyDockerignore(); err != nil {
		t.Fatal(err)
	}
	var got []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			got = append(got, rel)
		}
		return nil
	})
	slices.Sort(got)
	want := []string{"Dockerfile", "app.go", "logs/keep.log"}
	if !slices.Equal(got, want) {
		t.Errorf("left %v, want %v", got, want)
	}
}

func TestOpenContext(t *testing.T) {
	mk := func(hdrs ...tar.Header) *bytes.Buffer {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range hdrs {
			body := "FROM busybox\n"
			if h.Typeflag == tar.TypeReg {
				h.Size = int64(len(body))
			}
			tw.WriteHeader(&h)
			if h.Typeflag == tar.TypeReg {
				tw.Write([]byte(body))
			}
		}
		tw.Close()
		return &buf
	}
	tmp := t.TempDir()
	bc, err := openContext(context.Background(), tmp, nil, mk(tar.Header{Name: "sub/Dockerfile.dev", Typeflag: tar.TypeReg, Mode: 0o644}), "sub/Dockerfile.dev")
	if err != nil {
		t.Fatal(err)
	}
	if string(bc.dockerfile) != "FROM busybox\n" {
		t.Errorf("dockerfile %q", bc.dockerfile)
	}
	bc.Close()
	if _, err := os.Stat(bc.dir); !errors.Is(err, os.ErrNotExist) {
		t.Error("context left behind")
	}
	_, err = openContext(context.Background(), tmp, nil, mk(tar.Header{Name: "x", Typeflag: tar.TypeReg, Mode: 0o644}), "")
	if err == nil || !strings.Contains(err.Error(), "Cannot locate specified Dockerfile: Dockerfile") {
		t.Errorf("missing Dockerfile: %v", err)
	}
	// A Dockerfile symlinked out of the context is read inside it.
	_, err = openContext(context.Background(), tmp, nil, mk(tar.Header{Name: "Dockerfile", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}), "")
	if err == nil {
		t.Error("a Dockerfile symlinked outside the context was read")
	}
	_, err = openContext(context.Background(), tmp, nil, strings.NewReader("not a tar at all, just text that is long enough to look like something"), "")
	if err == nil || !errdefs.IsInvalidArgument(err) {
		t.Errorf("garbage context: %v", err)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("failed opens left %d entries", len(entries))
	}
}

// fakeImages serves images for cache tests.
type fakeImages struct {
	imgs map[digest.Digest]*image.Image
}

func (f fakeImages) Get(id string) (*image.Image, error) {
	if img, ok := f.imgs[digest.Digest(id)]; ok {
		return img, nil
	}
	return nil, errdefs.ErrNotFound
}
func (fakeImages) CreateImage([]byte, digest.Digest) (digest.Digest, error)       { return "", nil }
func (fakeImages) TagImage(context.Context, digest.Digest, reference.Named) error { return nil }
func (fakeImages) CommitLayer(context.Context, images.Commit, io.Reader) (digest.Digest, error) {
	return "", nil
}

func TestCache(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.json")
	c, err := openCache(path)
	if err != nil {
		t.Fatal(err)
	}
	parent, child := digest.FromString("p"), digest.FromString("c")
	imgs := fakeImages{imgs: map[digest.Digest]*image.Image{child: {ID: child, Parent: parent}}}
	c.store(parent, "RUN x", child)
	if err := c.flush(); err != nil {
		t.Fatal(err)
	}
	c2, _ := openCache(path)
	if id, ok := c2.lookup(parent, "RUN x", imgs); !ok || id != child {
		t.Errorf("lookup after reopen: %s %v", id, ok)
	}
	if _, ok := c2.lookup(parent, "RUN y", imgs); ok {
		t.Error("other step hit")
	}
	// The image went away, or was re-parented: no hit.
	delete(imgs.imgs, child)
	if _, ok := c2.lookup(parent, "RUN x", imgs); ok {
		t.Error("hit on a deleted image")
	}
	os.WriteFile(path, []byte("{broken"), 0o600)
	if c3, err := openCache(path); err != nil || len(c3.entries) != 0 {
		t.Errorf("damaged index: %v", err)
	}
	if err := c.clear(); err != nil || len(c.entries) != 0 {
		t.Errorf("clear: %v", err)
	}
}

var testTime = time.Unix(1600000000, 0)

// The digests taken while the context streams in are those of the
// unpacked files, and a COPY's checksum is the same with or without them.
func TestContextDigests(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	files := []struct{ name, body string }{{"Dockerfile", "FROM busybox\n"}, {"./dir/a", "aaa"}, {"dir/b", strings.Repeat("b", 100000)}}
	for _, f := range files {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(f.body))
	}
	tw.WriteHeader(&tar.Header{Name: "dir/hard", Typeflag: tar.TypeLink, Linkname: "dir/b"})
	tw.Close()
	bc, err := openContext(context.Background(), t.TempDir(), nil, &buf, "")
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	want := map[string]string{"dir/a": "aaa", "dir/b": strings.Repeat("b", 100000), "dir/hard": strings.Repeat("b", 100000)}
	check := func(materialized bool) {
		for name, body := range want {
			p := filepath.Join(bc.root, name)
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if len(data) != len(body) || (materialized && string(data) != body) {
				t.Errorf("%s (materialized %v): %d bytes %q…", name, materialized, len(data), data[:min(len(data), 8)])
			}
			sum, ok := bc.known(p, int64(len(body)))
			wantSum := sha256.Sum256([]byte(body))
			if !ok || !bytes.Equal(sum, wantSum[:]) {
				t.Errorf("%s: digest %x (%v), want %x", name, sum, ok, wantSum)
			}
			if _, ok := bc.known(p, int64(len(body))+1); ok {
				t.Errorf("%s: a digest for another size", name)
			}
		}
	}
	// Files have their sizes but not yet their bytes; the Dockerfile
	// was read from memory.
	if string(bc.dockerfile) != "FROM busybox\n" {
		t.Errorf("Dockerfile %q", bc.dockerfile)
	}
	if data, _ := os.ReadFile(filepath.Join(bc.root, "dir/a")); string(data) != "\x00\x00\x00" {
		t.Errorf("file written before it was needed: %q", data)
	}
	check(false)
	src := []copySource{{path: filepath.Join(bc.root, "dir"), name: "dir", isDir: true}}
	_, lazy, err := checksumSources(src, bc)
	if err != nil {
		t.Fatal(err)
	}
	if err := bc.materialize(); err != nil {
		t.Fatal(err)
	}
	check(true)
	if _, ok := bc.known(filepath.Join(bc.root, "..", "x"), 0); ok {
		t.Error("a digest outside the context")
	}
	_, read, _ := checksumSources(src, nil)
	if lazy != read {
		t.Errorf("checksum with recorded digests %s, reading the files %s", lazy, read)
	}
}

// A context may send, for files the context store holds, stub entries:
// the build sees their bytes from the store; a stub for a file the store
// lacks asks the client for the whole context.
func TestContextStubs(t *testing.T) {
	store, err := newCtxStore(t.TempDir(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 10000)
	sum := sha256.Sum256([]byte(big))
	d := digest.NewDigestFromBytes(digest.SHA256, sum[:])
	mk := func(stubDigest string, size string) *bytes.Buffer {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: 13, Typeflag: tar.TypeReg})
		tw.Write([]byte("FROM busybox\n"))
		tw.WriteHeader(&tar.Header{Name: "big", Mode: 0o600, Typeflag: tar.TypeReg, Format: tar.FormatPAX,
			PAXRecords: map[string]string{paxDigest: stubDigest, paxSize: size}})
		tw.Close()
		return &buf
	}
	// Not in the store yet.
	_, err = openContext(context.Background(), t.TempDir(), store, mk(d.String(), "10000"), "")
	if !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), "send the whole context") {
		t.Fatalf("stub of a missing file: %v", err)
	}
	if err := store.put(d, []byte(big)); err != nil {
		t.Fatal(err)
	}
	if got := store.Have([]digest.Digest{d, digest.FromString("other")}); len(got) != 1 || got[0] != d {
		t.Errorf("Have: %v", got)
	}
	bc, err := openContext(context.Background(), t.TempDir(), store, mk(d.String(), "10000"), "")
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	p := filepath.Join(bc.root, "big")
	if s, ok := bc.known(p, 10000); !ok || !bytes.Equal(s, sum[:]) {
		t.Errorf("stub digest not known: %x %v", s, ok)
	}
	if err := bc.materialize(); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(p); string(data) != big {
		t.Errorf("stub file has %d bytes %q…", len(data), data[:min(len(data), 8)])
	}
	for _, bad := range [][2]string{{"sha256:nothex", "1"}, {d.String(), "-1"}, {"md5:00", "1"}} {
		if _, err := openContext(context.Background(), t.TempDir(), store, mk(bad[0], bad[1]), ""); !errdefs.IsInvalidArgument(err) {
			t.Errorf("stub %v: %v", bad, err)
		}
	}
	// A damaged store copy is refused when read.
	os.WriteFile(store.path(d), []byte(strings.Repeat("y", 10000)), 0o600)
	bc2, err := openContext(context.Background(), t.TempDir(), store, mk(d.String(), "10000"), "")
	if err != nil {
		t.Fatal(err)
	}
	defer bc2.Close()
	if err := bc2.materialize(); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("damaged store file: %v", err)
	}
}
