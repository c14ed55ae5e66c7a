package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
)

// richTar writes a layer using every kind of entry a real image has, in
// the forms different tar writers produce, with extra zero blocks at the
// end as some writers leave them.
func richTar(t *testing.T, format tar.Format, trailing int) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(1700000000, 123456789)
	hdrs := []struct {
		h    tar.Header
		body string
	}{
		{h: tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755}},
		{h: tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644, Uname: "root"}, body: "root:x:0:0::/root:/bin/sh\n"},
		{h: tar.Header{Name: "etc/empty", Typeflag: tar.TypeReg, Mode: 0o600, Uid: 1000, Gid: 1000}},
		{h: tar.Header{Name: "etc/link", Typeflag: tar.TypeLink, Linkname: "etc/passwd"}},
		{h: tar.Header{Name: "etc/sym", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd", Mode: 0o777}},
		{h: tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755}},
		{h: tar.Header{Name: "bin/tool", Typeflag: tar.TypeReg, Mode: 0o4755}, body: strings.Repeat("x", 10000)},
		{h: tar.Header{Name: "var/" + strings.Repeat("long", 40) + "/", Typeflag: tar.TypeDir, Mode: 0o755}},
		{h: tar.Header{Name: "var/" + strings.Repeat("long", 40) + "/f", Typeflag: tar.TypeReg, Mode: 0o644}, body: "deep\n"},
		{h: tar.Header{Name: "opt/", Typeflag: tar.TypeDir, Mode: 0o755}},
		{h: tar.Header{Name: "opt/.wh..wh..opq", Typeflag: tar.TypeReg}},
		{h: tar.Header{Name: "opt/.wh.gone", Typeflag: tar.TypeReg}},
	}
	for _, e := range hdrs {
		h := e.h
		h.ModTime = mtime
		h.Size = int64(len(e.body))
		h.Format = format
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	buf.Write(make([]byte, trailing))
	return buf.Bytes()
}

func TestTarStreamIsByteForByte(t *testing.T) {
	root := storeRoot(t)
	s := newStore(t, root)
	ctx := context.Background()
	cases := []struct {
		name     string
		format   tar.Format
		trailing int
	}{
		{"pax", tar.FormatPAX, 0},
		{"gnu", tar.FormatGNU, 0},
		{"pax with extra zero blocks", tar.FormatPAX, 10240},
	}
	var parent digest.Digest
	var last []byte
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := richTar(t, tc.format, tc.trailing)
			l := register(t, s, data, parent)
			parent, last = l.ChainID(), data
			rc, err := s.TarStream(ctx, l.ChainID())
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("rebuilt tar differs: %d bytes, want %d", len(got), len(data))
			}
			if digest.FromBytes(got) != l.DiffID() {
				t.Fatalf("digest %s, DiffID %s", digest.FromBytes(got), l.DiffID())
			}
		})
	}
	// The record survives a reload of the store.
	s2 := newStore(t, root)
	rc, err := s2.TarStream(ctx, parent)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(rc); err != nil || !bytes.Equal(got, last) {
		t.Fatalf("after reload: %v (%d bytes, want %d)", err, len(got), len(last))
	}
	rc.Close()
}

func TestTarStreamRefusesChangedFiles(t *testing.T) {
	root := storeRoot(t)
	s := newStore(t, root)
	ctx := context.Background()
	l := register(t, s, richTar(t, tar.FormatPAX, 0), "")
	// Same size, other bytes: the tar-split CRC or the final DiffID check
	// must catch it.
	s.mu.Lock()
	cacheID := s.layers[l.ChainID()].cacheID
	s.mu.Unlock()
	if err := os.WriteFile(filepath.Join(root, cacheID, "diff", "bin", "tool"), []byte(strings.Repeat("y", 10000)), 0o755); err != nil {
		t.Fatal(err)
	}
	rc, err := s.TarStream(ctx, l.ChainID())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err == nil {
		t.Fatal("a layer whose files changed was streamed without error")
	}

	if _, err := s.TarStream(ctx, digest.FromString("none")); !errdefs.IsNotFound(err) {
		t.Errorf("unknown layer: %v", err)
	}
	// A layer without its record (stored by an older berth) says why.
	os.Remove(filepath.Join(s.layerMetaDir(l.ChainID()), tarSplitFile))
	if _, err := s.TarStream(ctx, l.ChainID()); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("layer without tar-split: %v", err)
	}
}

func TestTarStreamKeepsLayerUntilClosed(t *testing.T) {
	root := storeRoot(t)
	s := newStore(t, root)
	ctx := context.Background()
	data := richTar(t, tar.FormatPAX, 0)
	l := register(t, s, data, "")
	rc, err := s.TarStream(ctx, l.ChainID())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Release(l.ChainID()); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("stream of a released layer: %v (%d bytes)", err, len(got))
	}
	rc.Close()
	if _, err := s.Get(l.ChainID()); !errdefs.IsNotFound(err) {
		t.Errorf("layer still there after the stream closed: %v", err)
	}
}

// tarStreamBytes reads a layer's TarStream to its end.
func tarStreamBytes(t *testing.T, s Store, chainID digest.Digest) []byte {
	t.Helper()
	rc, err := s.TarStream(context.Background(), chainID)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("TarStream of %s: %v", chainID, err)
	}
	return got
}

// failingReader returns data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestRegisterLargeAndFailing(t *testing.T) {
	root := storeRoot(t)
	ctx := context.Background()
	s := newStore(t, root)
	// Payloads spanning several unpack chunks, unaligned, with padding
	// after the end-of-archive blocks.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	big := bytes.Repeat([]byte("0123456789abcdef"), (3*chunkSize+12345)/16)
	for _, f := range []struct {
		name string
		body []byte
	}{{"big", big}, {"small", []byte("s")}, {"big2", big[:chunkSize+1]}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(f.body))}); err != nil {
			t.Fatal(err)
		}
		tw.Write(f.body)
	}
	tw.Close()
	buf.Write(make([]byte, 5000))
	data := buf.Bytes()

	l := register(t, s, data, "")
	if l.DiffID() != digest.FromBytes(data) {
		t.Errorf("DiffID %s, want the digest of the whole stream", l.DiffID())
	}
	if !bytes.Equal(tarStreamBytes(t, s, l.ChainID()), data) {
		t.Fatal("TarStream of a large layer differs")
	}

	boom := errors.New("boom")
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		r    io.Reader
		want error
	}{
		{"truncated", ctx, bytes.NewReader(data[:2*chunkSize+100]), nil},
		{"not a tar", ctx, bytes.NewReader(bytes.Repeat([]byte("garbage!"), 1000)), nil},
		{"read error", ctx, &failingReader{data: data[:chunkSize+7], err: boom}, boom},
		{"cancelled", cancelled, bytes.NewReader(data), context.Canceled},
	} {
		_, err := s.Register(tc.ctx, tc.r, "")
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: Register error %v, want %v", tc.name, err, tc.want)
		}
		if n := len(s.Layers()); n != 1 {
			t.Errorf("%s: %d layers", tc.name, n)
		}
		if left := listDir(t, filepath.Join(root, tmpDir)); len(left) != 0 {
			t.Errorf("%s: left in tmp: %v", tc.name, left)
		}
	}
}
