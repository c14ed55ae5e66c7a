package content

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func newStore(t testing.TB) (Store, string) {
	t.Helper()
	root := t.TempDir()
	s, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

func blob(n int, seed int64) ([]byte, ocispec.Descriptor) {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b, ocispec.Descriptor{Digest: digest.FromBytes(b), Size: int64(n)}
}

func readAll(t *testing.T, s Store, desc ocispec.Descriptor) []byte {
	t.Helper()
	ra, err := s.ReaderAt(context.Background(), desc)
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	b, err := io.ReadAll(io.NewSectionReader(ra, 0, ra.Size()))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ingestEntries(t *testing.T, root string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, ingestDir))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteCommitRead(t *testing.T) {
	ctx := context.Background()
	sha512Data := []byte("sha512 content")
	tests := []struct {
		name string
		data []byte
		desc func([]byte) ocispec.Descriptor
	}{
		{"empty", nil, func(b []byte) ocispec.Descriptor {
			return ocispec.Descriptor{Digest: digest.FromBytes(b)}
		}},
		{"small", []byte("hello"), func(b []byte) ocispec.Descriptor {
			return ocispec.Descriptor{Digest: digest.FromBytes(b), Size: int64(len(b))}
		}},
		{"1MiB", bytes.Repeat([]byte{7}, 1<<20), func(b []byte) ocispec.Descriptor {
			return ocispec.Descriptor{Digest: digest.FromBytes(b), Size: int64(len(b))}
		}},
		{"sha512", sha512Data, func(b []byte) ocispec.Descriptor {
			return ocispec.Descriptor{Digest: digest.SHA512.FromBytes(b), Size: int64(len(b))}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, root := newStore(t)
			desc := tc.desc(tc.data)
			if err := WriteBlob(ctx, s, "ref-"+tc.name, bytes.NewReader(tc.data), desc); err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, s, desc); !bytes.Equal(got, tc.data) {
				t.Fatalf("read back %d bytes, want %d", len(got), len(tc.data))
			}
			info, err := s.Info(ctx, desc.Digest)
			if err != nil {
				t.Fatal(err)
			}
			if info.Digest != desc.Digest || info.Size != int64(len(tc.data)) || info.CreatedAt.IsZero() {
				t.Fatalf("info = %+v", info)
			}
			if n := ingestEntries(t, root); len(n) != 0 {
				t.Fatalf("leftover ingests %v", n)
			}
		})
	}
}

func TestCommitMismatch(t *testing.T) {
	ctx := context.Background()
	data, good := blob(4096, 1)
	other := digest.FromString("other")
	tests := []struct {
		name       string
		open       ocispec.Descriptor // descriptor given to Writer
		commitSize int64
		commitDgst digest.Digest
	}{
		{"wrong digest at commit", ocispec.Descriptor{}, good.Size, other},
		{"wrong size at commit", ocispec.Descriptor{}, good.Size + 1, good.Digest},
		{"short size at commit", ocispec.Descriptor{}, good.Size - 1, good.Digest},
		{"wrong digest at open", ocispec.Descriptor{Digest: other, Size: good.Size}, 0, ""},
		{"wrong size at open", ocispec.Descriptor{Digest: good.Digest, Size: good.Size + 10}, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t)
			w, err := s.Writer(ctx, "ref", tc.open)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if _, err := w.Write(data); err != nil {
				t.Fatal(err)
			}
			err = w.Commit(ctx, tc.commitSize, tc.commitDgst)
			if !errdefs.IsFailedPrecondition(err) {
				t.Fatalf("commit err = %v, want failed precondition", err)
			}
			for _, d := range []digest.Digest{good.Digest, other} {
				if _, err := s.Info(ctx, d); !errdefs.IsNotFound(err) {
					t.Fatalf("info %s err = %v, want not found", d, err)
				}
			}
			count := 0
			if err := s.Walk(ctx, func(Info) error { count++; return nil }); err != nil || count != 0 {
				t.Fatalf("walk: %d blobs, err %v", count, err)
			}
		})
	}

	t.Run("WriteBlob aborts ingest", func(t *testing.T) {
		s, root := newStore(t)
		err := WriteBlob(ctx, s, "ref", bytes.NewReader(data), ocispec.Descriptor{Digest: other, Size: good.Size})
		if !errdefs.IsFailedPrecondition(err) {
			t.Fatalf("err = %v", err)
		}
		if n := ingestEntries(t, root); len(n) != 0 {
			t.Fatalf("leftover ingests %v", n)
		}
	})
}

func TestMalformedDigest(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	bad := []digest.Digest{
		"sha256:../../x",
		"sha256:../../../../etc/passwd",
		"sha256:" + digest.Digest(bytes.Repeat([]byte("a"), 63)),
		"sha256:" + digest.Digest(bytes.Repeat([]byte("A"), 64)),
		"md5:d41d8cd98f00b204e9800998ecf8427e",
		"../sha256:abc",
		"nocolon",
	}
	for _, d := range bad {
		t.Run(string(d), func(t *testing.T) {
			if _, err := s.Info(ctx, d); !errdefs.IsInvalidArgument(err) {
				t.Errorf("Info err = %v", err)
			}
			if _, err := s.ReaderAt(ctx, ocispec.Descriptor{Digest: d}); !errdefs.IsInvalidArgument(err) {
				t.Errorf("ReaderAt err = %v", err)
			}
			if err := s.Delete(ctx, d); !errdefs.IsInvalidArgument(err) {
				t.Errorf("Delete err = %v", err)
			}
			if _, err := s.Writer(ctx, "r", ocispec.Descriptor{Digest: d}); !errdefs.IsInvalidArgument(err) {
				t.Errorf("Writer err = %v", err)
			}
			w, err := s.Writer(ctx, "r2", ocispec.Descriptor{})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if err := w.Commit(ctx, 0, d); !errdefs.IsInvalidArgument(err) {
				t.Errorf("Commit err = %v", err)
			}
		})
	}
}

func TestResume(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	data, desc := blob(100_000, 2)
	half := int64(len(data) / 2)

	w, err := s.Writer(ctx, "layer", desc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data[:half]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	w, err = s.Writer(ctx, "layer", desc)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Size() != half {
		t.Fatalf("resumed size %d, want %d", w.Size(), half)
	}
	if w.Digest() != digest.FromBytes(data[:half]) {
		t.Fatal("resumed digest does not match written prefix")
	}
	if _, err := w.Write(data[half:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx, desc.Size, desc.Digest); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, s, desc), data) {
		t.Fatal("content mismatch")
	}
	if n := ingestEntries(t, root); len(n) != 0 {
		t.Fatalf("leftover ingests %v", n)
	}

	// WriteBlob resumes from a seekable reader.
	data2, desc2 := blob(50_000, 3)
	w, err = s.Writer(ctx, "layer2", desc2)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data2[:1000])
	w.Close()
	if err := WriteBlob(ctx, s, "layer2", bytes.NewReader(data2), desc2); err != nil {
		t.Fatal(err)
	}
	// and starts over from a plain reader.
	data3, desc3 := blob(50_000, 4)
	w, err = s.Writer(ctx, "layer3", desc3)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("garbage"))
	w.Close()
	if err := WriteBlob(ctx, s, "layer3", io.MultiReader(bytes.NewReader(data3)), desc3); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, s, desc3), data3) {
		t.Fatal("content mismatch")
	}
}

func TestTruncate(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	data, desc := blob(1000, 5)
	w, err := s.Writer(ctx, "t", ocispec.Descriptor{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write(data[:500])
	w.Write([]byte("corrupt"))
	if err := w.Truncate(500); err != nil {
		t.Fatal(err)
	}
	if err := w.Truncate(501); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("truncate past end err = %v", err)
	}
	w.Write(data[500:])
	if err := w.Commit(ctx, desc.Size, desc.Digest); err != nil {
		t.Fatal(err)
	}
}

func TestRefLock(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	w, err := s.Writer(ctx, "busy", ocispec.Descriptor{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Writer(ctx, "busy", ocispec.Descriptor{}); !errdefs.IsUnavailable(err) {
		t.Fatalf("second writer err = %v", err)
	}
	if err := s.Abort(ctx, "busy"); !errdefs.IsUnavailable(err) {
		t.Fatalf("abort of locked ref err = %v", err)
	}
	// A second store on the same root (as another process would) is
	// excluded by the file lock.
	s2, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Writer(ctx, "busy", ocispec.Descriptor{}); !errdefs.IsUnavailable(err) {
		t.Fatalf("writer from second store err = %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w2, err := s2.Writer(ctx, "busy", ocispec.Descriptor{})
	if err != nil {
		t.Fatal(err)
	}
	w2.Close()
	if err := s.Abort(ctx, "busy"); err != nil {
		t.Fatal(err)
	}
	if err := s.Abort(ctx, "busy"); !errdefs.IsNotFound(err) {
		t.Fatalf("second abort err = %v", err)
	}
	if n := ingestEntries(t, root); len(n) != 0 {
		t.Fatalf("leftover ingests %v", n)
	}
}

func TestAlreadyExists(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	data, desc := blob(2048, 6)
	if err := WriteBlob(ctx, s, "a", bytes.NewReader(data), desc); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Writer(ctx, "b", desc); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("writer err = %v", err)
	}
	// Without an expected digest the duplicate is found at commit.
	w, err := s.Writer(ctx, "c", ocispec.Descriptor{})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Commit(ctx, desc.Size, desc.Digest); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("commit err = %v", err)
	}
	w.Close()
	if n := ingestEntries(t, root); len(n) != 0 {
		t.Fatalf("ingest not discarded: %v", n)
	}
	if err := WriteBlob(ctx, s, "d", bytes.NewReader(data), desc); err != nil {
		t.Fatalf("WriteBlob of existing blob: %v", err)
	}
}

func TestDelete(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	data, desc := blob(10, 7)
	if err := WriteBlob(ctx, s, "x", bytes.NewReader(data), desc); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, desc.Digest); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Info(ctx, desc.Digest); !errdefs.IsNotFound(err) {
		t.Fatalf("info err = %v", err)
	}
	if _, err := s.ReaderAt(ctx, desc); !errdefs.IsNotFound(err) {
		t.Fatalf("readerat err = %v", err)
	}
	if err := s.Delete(ctx, desc.Digest); !errdefs.IsNotFound(err) {
		t.Fatalf("second delete err = %v", err)
	}
}

func TestWalk(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	var want []string
	for i := range 5 {
		data, desc := blob(100+i, int64(100+i))
		if err := WriteBlob(ctx, s, desc.Digest.String(), bytes.NewReader(data), desc); err != nil {
			t.Fatal(err)
		}
		want = append(want, desc.Digest.String())
	}
	d512 := digest.SHA512.FromString("x")
	if err := WriteBlob(ctx, s, "512", bytes.NewReader([]byte("x")), ocispec.Descriptor{Digest: d512, Size: 1}); err != nil {
		t.Fatal(err)
	}
	want = append(want, d512.String())
	// An unfinished ingest and stray files are not blobs.
	w, _ := s.Writer(ctx, "pending", ocispec.Descriptor{})
	w.Write([]byte("partial"))
	w.Close()
	os.WriteFile(filepath.Join(root, blobsDir, "sha256", "junk"), nil, 0o644)
	os.WriteFile(filepath.Join(root, blobsDir, "stray"), nil, 0o644)

	var got []string
	if err := s.Walk(ctx, func(i Info) error {
		got = append(got, i.Digest.String())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	sort.Strings(want)
	if len(got) != len(want) {
		t.Fatalf("walk = %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("walk = %v, want %v", got, want)
		}
	}
	stop := errors.New("stop")
	n := 0
	if err := s.Walk(ctx, func(Info) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("walk stop: n=%d err=%v", n, err)
	}
}

func TestConcurrentWriteBlob(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	data, desc := blob(1<<20, 8)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ref := "pull-" + string(rune('a'+i))
			errs[i] = WriteBlob(ctx, s, ref, bytes.NewReader(data), desc)
		}()
	}
	// Readers of another blob run alongside.
	other, odesc := blob(1000, 9)
	if err := WriteBlob(ctx, s, "other", bytes.NewReader(other), odesc); err != nil {
		t.Fatal(err)
	}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ra, err := s.ReaderAt(ctx, odesc)
			if err != nil {
				t.Error(err)
				return
			}
			defer ra.Close()
			got, err := io.ReadAll(io.NewSectionReader(ra, 0, ra.Size()))
			if err != nil || !bytes.Equal(got, other) {
				t.Errorf("concurrent read mismatch: %v", err)
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	count := 0
	s.Walk(ctx, func(i Info) error {
		if i.Digest == desc.Digest {
			count++
		}
		return nil
	})
	if count != 1 {
		t.Fatalf("%d copies of blob", count)
	}
	if !bytes.Equal(readAll(t, s, desc), data) {
		t.Fatal("content mismatch")
	}
	if n := ingestEntries(t, root); len(n) != 0 {
		t.Fatalf("leftover ingests %v", n)
	}

	// Many writers racing on one ref: exactly the lock holders proceed,
	// the rest get ErrUnavailable, and the blob ends up stored once.
	s2, _ := newStore(t)
	var wg2 sync.WaitGroup
	for range 8 {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			err := WriteBlob(ctx, s2, "same-ref", bytes.NewReader(data), desc)
			if err != nil && !errdefs.IsUnavailable(err) {
				t.Errorf("same ref: %v", err)
			}
		}()
	}
	wg2.Wait()
}

func TestStaleIngestCleanup(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	for _, ref := range []string{"old", "fresh"} {
		w, err := s.Writer(ctx, ref, ocispec.Descriptor{})
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("partial " + ref))
		w.Close()
	}
	old := filepath.Join(root, ingestDir, ingestName("old"))
	past := time.Now().Add(-48 * time.Hour)
	for _, p := range []string{old, filepath.Join(old, dataFile)} {
		if err := os.Chtimes(p, past, past); err != nil {
			t.Fatal(err)
		}
	}
	s, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	names := ingestEntries(t, root)
	if len(names) != 1 || names[0] != ingestName("fresh") {
		t.Fatalf("ingests after New = %v", names)
	}
	w, err := s.Writer(ctx, "fresh", ocispec.Descriptor{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Size() != int64(len("partial fresh")) {
		t.Fatalf("fresh ingest size %d", w.Size())
	}
}

const crashEnv = "BERTH_CONTENT_CRASH_ROOT"

// TestCrashHelper is run in a child process by TestCrash: it writes half
// of a blob and kills itself without closing anything.
func TestCrashHelper(t *testing.T) {
	root := os.Getenv(crashEnv)
	if root == "" {
		t.Skip("helper for TestCrash")
	}
	s, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	data, desc := blob(1<<20, 10)
	w, err := s.Writer(context.Background(), "crash", desc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data[:len(data)/2]); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

func TestCrash(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+root)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("helper did not fail: %v\n%s", err, out)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper was not killed: %v\n%s", err, out)
	}

	s, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	data, desc := blob(1<<20, 10)
	if _, err := s.Info(ctx, desc.Digest); !errdefs.IsNotFound(err) {
		t.Fatalf("info after crash err = %v", err)
	}
	n := 0
	s.Walk(ctx, func(Info) error { n++; return nil })
	if n != 0 {
		t.Fatalf("%d blobs visible after crash", n)
	}
	// The interrupted ingest resumes where the killed process stopped.
	w, err := s.Writer(ctx, "crash", desc)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Size() != int64(len(data)/2) {
		t.Fatalf("resumed at %d, want %d", w.Size(), len(data)/2)
	}
	if _, err := w.Write(data[w.Size():]); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx, desc.Size, desc.Digest); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, s, desc), data) {
		t.Fatal("content mismatch")
	}
}

func BenchmarkWriteBlob16MiB(b *testing.B) {
	ctx := context.Background()
	data := make([]byte, 16<<20)
	rand.New(rand.NewSource(11)).Read(data)
	desc := ocispec.Descriptor{Digest: digest.FromBytes(data), Size: int64(len(data))}
	s, _ := newStore(b)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := WriteBlob(ctx, s, "bench", bytes.NewReader(data), desc); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := s.Delete(ctx, desc.Digest); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
