package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

type entry struct {
	name string
	dir  bool
	body string
}

func mkTar(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		if e.dir {
			h = &tar.Header{Name: e.name + "/", Mode: 0o755, Typeflag: tar.TypeDir}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if !e.dir {
			if _, err := io.WriteString(tw, e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// storeRoot returns a fresh store root for a root-only test. Every mount
// below it is detached when the test ends, before the directory is removed.
func storeRoot(t *testing.T) string {
	t.Helper()
	testutil.RequiresRoot(t)
	testutil.LeakCheck(t)
	root := filepath.Join(t.TempDir(), "berth-overlay2")
	t.Cleanup(func() {
		mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(root))
		if err != nil {
			t.Errorf("mountinfo: %v", err)
			return
		}
		sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
		for _, m := range mounts {
			if err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH); err != nil {
				t.Errorf("unmount %s: %v", m.Mountpoint, err)
			}
		}
	})
	return root
}

func newStore(t *testing.T, root string) *store {
	t.Helper()
	s, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	return s.(*store)
}

func register(t *testing.T, s Store, tarData []byte, parent digest.Digest) Layer {
	t.Helper()
	l, err := s.Register(context.Background(), bytes.NewReader(tarData), parent)
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	return l
}

func refs(s *store, id digest.Digest) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.layers[id]; l != nil {
		return l.refs
	}
	return -1
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func tarNames(t *testing.T, rc io.ReadCloser) map[string]string {
	t.Helper()
	defer rc.Close()
	out := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[strings.TrimSuffix(h.Name, "/")] = string(b)
	}
}

func TestRegisterMountDiff(t *testing.T) {
	root := storeRoot(t)
	s := newStore(t, root)
	ctx := context.Background()

	base := register(t, s, mkTar(t,
		entry{name: "a", body: "A"},
		entry{name: "dir", dir: true},
		entry{name: "dir/b", body: "B"},
		entry{name: "keep", body: "K"},
	), "")
	top := register(t, s, mkTar(t,
		entry{name: ".wh.a"},
		entry{name: "dir", dir: true},
		entry{name: "dir/.wh..wh..opq"},
		entry{name: "dir/new", body: "N"},
	), base.ChainID())
	if top.Parent() != base.ChainID() {
		t.Fatalf("parent = %s, want %s", top.Parent(), base.ChainID())
	}
	if want := NextChainID(base.ChainID(), top.DiffID()); top.ChainID() != want {
		t.Fatalf("ChainID = %s, want %s", top.ChainID(), want)
	}

	// The whiteouts are stored the overlay way.
	s.mu.Lock()
	topDiff := filepath.Join(root, s.layers[top.ChainID()].cacheID, "diff")
	s.mu.Unlock()
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(topDiff, "a"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("whiteout of a: mode %o rdev %d", st.Mode, st.Rdev)
	}
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(filepath.Join(topDiff, "dir"), "trusted.overlay.opaque", buf)
	if err != nil || string(buf[:n]) != "y" {
		t.Errorf("opaque xattr of dir: %q, %v", buf[:n], err)
	}

	rw, err := s.CreateRW(ctx, "c1", top.ChainID())
	if err != nil {
		t.Fatal(err)
	}
	merged, err := rw.Mount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if merged != filepath.Join(root, "c1", "merged") {
		t.Errorf("merged = %s", merged)
	}
	if got := strings.Join(listDir(t, merged), ","); got != "dir,keep" {
		t.Errorf("merged root = %s, want dir,keep", got)
	}
	if got := strings.Join(listDir(t, filepath.Join(merged, "dir")), ","); got != "new" {
		t.Errorf("merged dir = %s, want new", got)
	}

	// A second Mount only counts.
	if m2, err := rw.Mount(ctx); err != nil || m2 != merged {
		t.Fatalf("second Mount: %s, %v", m2, err)
	}
	if err := rw.Unmount(ctx); err != nil {
		t.Fatal(err)
	}
	if m, _ := mountinfo.Mounted(merged); !m {
		t.Fatal("unmounted while a mount reference remains")
	}

	if err := os.WriteFile(filepath.Join(merged, "hello"), []byte("world"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(merged, "keep")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "c1", "diff", "hello")); err != nil || string(b) != "world" {
		t.Errorf("upper hello: %q, %v", b, err)
	}

	rc, err := rw.Diff(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := tarNames(t, rc)
	if names["hello"] != "world" {
		t.Errorf("diff lacks hello: %v", names)
	}
	if _, ok := names[".wh.keep"]; !ok {
		t.Errorf("diff lacks .wh.keep: %v", names)
	}
	if _, ok := names["keep"]; ok {
		t.Errorf("diff has keep itself: %v", names)
	}

	if err := rw.Unmount(ctx); err != nil {
		t.Fatal(err)
	}
	if m, _ := mountinfo.Mounted(merged); m {
		t.Fatal("still mounted after the last Unmount")
	}
	if err := rw.Unmount(ctx); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("Unmount of an unmounted layer: %v", err)
	}

	// ReleaseRW unmounts too.
	if _, err := rw.Mount(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseRW("c1"); err != nil {
		t.Fatal(err)
	}
	if m, _ := mountinfo.Mounted(merged); m {
		t.Fatal("ReleaseRW left the view mounted")
	}
	if _, err := os.Stat(filepath.Join(root, "c1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("read-write dir left behind: %v", err)
	}
	if _, err := s.GetRW("c1"); !errdefs.IsNotFound(err) {
		t.Errorf("GetRW after ReleaseRW: %v", err)
	}
}

func TestScratchRW(t *testing.T) {
	root := storeRoot(t)
	s := newStore(t, root)
	ctx := context.Background()
	rw, err := s.CreateRW(ctx, "scratch", "")
	if err != nil {
		t.Fatal(err)
	}
	merged, err := rw.Mount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(merged, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	rc, err := rw.Diff(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if names := tarNames(t, rc); names["f"] != "x" {
		t.Errorf("diff: %v", names)
	}
	if _, err := s.CreateRW(ctx, "scratch", ""); !errdefs.IsAlreadyExists(err) {
		t.Errorf("duplicate CreateRW: %v", err)
	}
	if _, err := s.CreateRW(ctx, "x", digest.Digest("sha256:"+strings.Repeat("0", 64))); !errdefs.IsNotFound(err) {
		t.Errorf("CreateRW on a missing parent: %v", err)
	}
	if _, err := s.CreateRW(ctx, "../x", ""); !errdefs.IsInvalidArgument(err) {
		t.Errorf("CreateRW with a bad id: %v", err)
	}
	if err := s.ReleaseRW("scratch"); err != nil {
		t.Fatal(err)
	}
}

func TestDiffIDIsTarDigest(t *testing.T) {
	root := storeRoot(t)
	s := newStore(t, root)
	data := mkTar(t, entry{name: "etc", dir: true}, entry{name: "etc/hostname", body: "box\n"})
	l := register(t, s, data, "")
	want := digest.NewDigestFromBytes(digest.SHA256, func() []byte { h := sha256.Sum256(data); return h[:] }())
	if l.DiffID() != want || l.ChainID() != want {
		t.Errorf("DiffID %s ChainID %s, want %s", l.DiffID(), l.ChainID(), want)
	}
	if l.Size() != 4 {
		t.Errorf("Size = %d, want 4", l.Size())
	}
	got, err := s.Get(want)
	if err != nil || got.DiffID() != want {
		t.Errorf("Get: %v, %v", got, err)
	}
	if _, err := s.Get(digest.Digest("sha256:" + strings.Repeat("1", 64))); !errdefs.IsNotFound(err) {
		t.Errorf("Get of a missing layer: %v", err)
	}
	if _, err := s.Register(context.Background(), bytes.NewReader(data), digest.Digest("sha256:"+strings.Repeat("1", 64))); !errdefs.IsNotFound(err) {
		t.Errorf("Register on a missing parent: %v", err)
	}
}

func TestRefcounting(t *testing.T) {
	root := storeRoot(t)
	s := newStore(t, root)
	ctx := context.Background()
	data := mkTar(t, entry{name: "a", body: "A"})

	l1 := register(t, s, data, "")
	l2 := register(t, s, data, "")
	if l1.ChainID() != l2.ChainID() {
		t.Fatalf("ChainIDs differ: %s %s", l1.ChainID(), l2.ChainID())
	}
	id := l1.ChainID()
	if r := refs(s, id); r != 2 {
		t.Fatalf("refs = %d, want 2", r)
	}
	if n := len(listDir(t, filepath.Join(root, linkDir))); n != 1 {
		t.Errorf("%d links for one layer", n)
	}
	if err := s.Release(id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(id); err != nil {
		t.Fatalf("layer gone with one reference left: %v", err)
	}
	s.mu.Lock()
	cacheDir := filepath.Join(root, s.layers[id].cacheID)
	s.mu.Unlock()
	if err := s.Release(id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(id); !errdefs.IsNotFound(err) {
		t.Fatalf("Get after the last Release: %v", err)
	}
	if _, err := os.Stat(cacheDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("layer dir left behind: %v", err)
	}
	if _, err := os.Stat(s.layerMetaDir(id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("metadata left behind: %v", err)
	}
	if n := len(listDir(t, filepath.Join(root, linkDir))); n != 0 {
		t.Errorf("%d links left behind", n)
	}
	if err := s.Release(id); !errdefs.IsNotFound(err) {
		t.Errorf("Release of a removed layer: %v", err)
	}

	// Removal is deferred while a child or a read-write layer uses it.
	base := register(t, s, data, "")
	child := register(t, s, mkTar(t, entry{name: "b", body: "B"}), base.ChainID())
	rw, err := s.CreateRW(ctx, "c", base.ChainID())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Release(base.ChainID()); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(base.ChainID()); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("Release past zero: %v", err)
	}
	if _, err := s.Get(base.ChainID()); err != nil {
		t.Fatalf("base removed while in use: %v", err)
	}
	if _, err := rw.Mount(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(child.ChainID()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(child.ChainID()); !errdefs.IsNotFound(err) {
		t.Errorf("child kept: %v", err)
	}
	if _, err := s.Get(base.ChainID()); err != nil {
		t.Fatalf("base removed while a read-write layer uses it: %v", err)
	}
	if err := s.ReleaseRW("c"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(base.ChainID()); !errdefs.IsNotFound(err) {
		t.Errorf("base kept after its last user: %v", err)
	}
	if got := listDir(t, root); strings.Join(got, ",") != "l,layers,mounts,tmp" {
		t.Errorf("store root holds %v", got)
	}
	if got := listDir(t, filepath.Join(root, layersDir)); len(got) != 0 {
		t.Errorf("metadata left: %v", got)
	}
}

func TestReload(t *testing.T) {
	root := storeRoot(t)
	ctx := context.Background()
	s := newStore(t, root)
	base := register(t, s, mkTar(t, entry{name: "a", body: "A"}), "")
	register(t, s, mkTar(t, entry{name: "a", body: "A"}), "")
	top := register(t, s, mkTar(t, entry{name: "b", body: "BB"}), base.ChainID())
	rw, err := s.CreateRW(ctx, "c", top.ChainID())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rw.Mount(ctx); err != nil {
		t.Fatal(err)
	}
	// Leftovers of an interrupted unpack go away on reload.
	junk := filepath.Join(root, tmpDir, "junk")
	if err := os.MkdirAll(filepath.Join(junk, "diff"), 0o700); err != nil {
		t.Fatal(err)
	}
	orphan := filepath.Join(root, strings.Repeat("f", 64))
	if err := os.MkdirAll(filepath.Join(orphan, "diff"), 0o700); err != nil {
		t.Fatal(err)
	}

	s2 := newStore(t, root)
	if len(s2.Layers()) != 2 {
		t.Fatalf("reloaded %d layers, want 2", len(s2.Layers()))
	}
	got, err := s2.Get(top.ChainID())
	if err != nil {
		t.Fatal(err)
	}
	if got.DiffID() != top.DiffID() || got.Parent() != base.ChainID() || got.Size() != 2 {
		t.Errorf("reloaded layer %+v", got)
	}
	if r := refs(s2, base.ChainID()); r != 2 {
		t.Errorf("reloaded refs = %d, want 2", r)
	}
	for _, p := range []string{junk, orphan} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived reload: %v", p, err)
		}
	}
	rw2, err := s2.GetRW("c")
	if err != nil {
		t.Fatal(err)
	}
	// The view left mounted counts as one mount.
	if err := rw2.Unmount(ctx); err != nil {
		t.Fatal(err)
	}
	merged, err := rw2.Mount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"a", "b"} {
		if _, err := os.Stat(filepath.Join(merged, f)); err != nil {
			t.Error(err)
		}
	}
	if err := s2.ReleaseRW("c"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []digest.Digest{top.ChainID(), base.ChainID(), base.ChainID()} {
		if err := s2.Release(id); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(s2.Layers()); n != 0 {
		t.Errorf("%d layers left", n)
	}
}

func TestDeepChain(t *testing.T) {
	root := storeRoot(t)
	s := newStore(t, root)
	ctx := context.Background()
	const depth = 130
	var parent digest.Digest
	var diffIDs []digest.Digest
	for i := 0; i < depth; i++ {
		l := register(t, s, mkTar(t, entry{name: fmt.Sprintf("f%03d", i), body: fmt.Sprint(i)}), parent)
		parent = l.ChainID()
		diffIDs = append(diffIDs, l.DiffID())
	}
	if chain := ChainIDs(diffIDs); chain[depth-1] != parent {
		t.Fatalf("top ChainID %s, ChainIDs says %s", parent, chain[depth-1])
	}
	rw, err := s.CreateRW(ctx, strings.Repeat("c", 64), parent)
	if err != nil {
		t.Fatal(err)
	}
	merged, err := rw.Mount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"f000", fmt.Sprintf("f%03d", depth-1)} {
		if _, err := os.Stat(filepath.Join(merged, f)); err != nil {
			t.Error(err)
		}
	}
	if n := len(listDir(t, merged)); n != depth {
		t.Errorf("merged view has %d files, want %d", n, depth)
	}
	if err := rw.Unmount(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseRW(rw.ID()); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(parent); err != nil {
		t.Fatal(err)
	}
	// Each layer still has its own reference from Register.
	if n := len(s.Layers()); n != depth-1 {
		t.Errorf("%d layers left, want %d", n, depth-1)
	}
}

// unsyncedOnDisk reports whether a layer's metadata carries the unsynced
// marker.
func unsyncedOnDisk(t *testing.T, s *store, chainID digest.Digest) bool {
	t.Helper()
	_, err := os.Lstat(filepath.Join(s.layerMetaDir(chainID), unsyncedFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

func TestRegisterNoSync(t *testing.T) {
	root := storeRoot(t)
	ctx := context.Background()
	s := newStore(t, root)
	baseTar := mkTar(t, entry{name: "a", body: "A"})
	topTar := mkTar(t, entry{name: "b", body: "BB"})
	noSync := func(s *store, data []byte, parent digest.Digest) Layer {
		t.Helper()
		l, err := s.RegisterNoSync(ctx, bytes.NewReader(data), parent)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}

	// Never synced: gone after a restart, files and all.
	base := noSync(s, baseTar, "")
	top := noSync(s, topTar, base.ChainID())
	if !unsyncedOnDisk(t, s, base.ChainID()) || !unsyncedOnDisk(t, s, top.ChainID()) {
		t.Fatal("layers registered without sync are not marked")
	}
	if l, err := s.Get(top.ChainID()); err != nil || l.Parent() != base.ChainID() {
		t.Fatalf("an unsynced layer is usable at once: %v %v", l, err)
	}
	s2 := newStore(t, root)
	if n := len(s2.Layers()); n != 0 {
		t.Fatalf("%d unsynced layers survived a restart", n)
	}
	for _, e := range listDir(t, root) {
		if e != linkDir && e != "layers" && e != mountsDir && e != tmpDir {
			t.Errorf("left behind: %s", e)
		}
	}
	if l := listDir(t, filepath.Join(root, linkDir)); len(l) != 0 {
		t.Errorf("links left behind: %v", l)
	}

	// Synced through the top layer: both kept.
	base = noSync(s2, baseTar, "")
	top = noSync(s2, topTar, base.ChainID())
	if err := s2.Sync(top.ChainID()); err != nil {
		t.Fatal(err)
	}
	if unsyncedOnDisk(t, s2, base.ChainID()) || unsyncedOnDisk(t, s2, top.ChainID()) {
		t.Fatal("Sync left a marker")
	}
	s3 := newStore(t, root)
	if n := len(s3.Layers()); n != 2 {
		t.Fatalf("%d synced layers reloaded, want 2", n)
	}
	if !bytes.Equal(tarStreamBytes(t, s3, top.ChainID()), topTar) {
		t.Fatal("TarStream after reload differs")
	}

	// Register on an unsynced parent syncs it; so does CreateRW.
	mid := noSync(s3, mkTar(t, entry{name: "c", body: "C"}), top.ChainID())
	last := register(t, s3, mkTar(t, entry{name: "d", body: "D"}), mid.ChainID())
	if unsyncedOnDisk(t, s3, mid.ChainID()) || unsyncedOnDisk(t, s3, last.ChainID()) {
		t.Error("Register on an unsynced parent left it unsynced")
	}
	other := noSync(s3, mkTar(t, entry{name: "e", body: "E"}), top.ChainID())
	if _, err := s3.CreateRW(ctx, "rw", other.ChainID()); err != nil {
		t.Fatal(err)
	}
	if unsyncedOnDisk(t, s3, other.ChainID()) {
		t.Error("CreateRW on an unsynced layer left it unsynced")
	}
	// Register of a layer that exists unsynced syncs it.
	again := noSync(s3, mkTar(t, entry{name: "f", body: "F"}), "")
	register(t, s3, mkTar(t, entry{name: "f", body: "F"}), "")
	if unsyncedOnDisk(t, s3, again.ChainID()) {
		t.Error("Register of an unsynced layer left it unsynced")
	}
	if err := s3.ReleaseRW("rw"); err != nil {
		t.Fatal(err)
	}
}
