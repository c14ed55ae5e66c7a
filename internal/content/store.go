package content

import (
	"context"
	"crypto/sha256"
	_ "crypto/sha512" // makes sha512 digests available to go-digest
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// DefaultIngestExpiry is how long an ingest may go without being written
// to before New removes it.
const DefaultIngestExpiry = 24 * time.Hour

const (
	blobsDir   = "blobs"
	ingestDir  = "ingest"
	dataFile   = "data"
	lockFile   = "lock"
	refFile    = "ref"
	dirPerm    = 0o755
	blobPerm   = 0o444
	ingestPerm = 0o644
)

// Opt configures a store created by New.
type Opt func(*options)

type options struct {
	ingestExpiry time.Duration
}

// WithIngestExpiry sets the age after which New removes an unlocked
// ingest that has not been written to. Zero or a negative value keeps
// every ingest.
func WithIngestExpiry(d time.Duration) Opt {
	return func(o *options) { o.ingestExpiry = d }
}

type store struct {
	root string

	mu     sync.Mutex
	active map[string]struct{} // ingest directory names with an open writer
}

// New opens the store rooted at root, creating its directories if needed.
// Ingests left behind by a crash stay resumable; those whose data has not
// been modified for longer than the ingest expiry (DefaultIngestExpiry
// unless set with WithIngestExpiry) and that no writer holds are removed.
func New(root string, opts ...Opt) (Store, error) {
	o := options{ingestExpiry: DefaultIngestExpiry}
	for _, opt := range opts {
		opt(&o)
	}
	for _, d := range []string{root, filepath.Join(root, blobsDir), filepath.Join(root, ingestDir)} {
		if err := os.MkdirAll(d, dirPerm); err != nil {
			return nil, fmt.Errorf("content: %w", err)
		}
	}
	s := &store{root: root, active: make(map[string]struct{})}
	if o.ingestExpiry > 0 {
		if err := s.removeStaleIngests(time.Now().Add(-o.ingestExpiry)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *store) removeStaleIngests(cutoff time.Time) error {
	dir := filepath.Join(s.root, ingestDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("content: %w", err)
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if !e.IsDir() {
			_ = os.Remove(p)
			continue
		}
		if ingestModTime(p).After(cutoff) {
			continue
		}
		lf, err := tryLock(p)
		if err != nil {
			continue // held by a live writer, or unreadable: leave it
		}
		err = os.RemoveAll(p)
		lf.Close()
		if err != nil {
			return fmt.Errorf("content: removing stale ingest: %w", err)
		}
	}
	return nil
}

// ingestModTime is the latest modification time of an ingest directory
// and its data file.
func ingestModTime(dir string) time.Time {
	var t time.Time
	if fi, err := os.Stat(dir); err == nil {
		t = fi.ModTime()
	}
	if fi, err := os.Stat(filepath.Join(dir, dataFile)); err == nil && fi.ModTime().After(t) {
		t = fi.ModTime()
	}
	return t
}

// blobPath maps a digest to its file, rejecting malformed digests so that
// no digest can name a path outside the store.
func (s *store) blobPath(dgst digest.Digest) (string, error) {
	if err := dgst.Validate(); err != nil {
		return "", fmt.Errorf("content: invalid digest %q: %v: %w", dgst, err, errdefs.ErrInvalidArgument)
	}
	return filepath.Join(s.root, blobsDir, dgst.Algorithm().String(), dgst.Encoded()), nil
}

// ingestName is the directory name of the ingest for ref.
func ingestName(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return hex.EncodeToString(sum[:])
}

func (s *store) Info(ctx context.Context, dgst digest.Digest) (Info, error) {
	p, err := s.blobPath(dgst)
	if err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return Info{}, notFound(dgst, err)
	}
	return Info{Digest: dgst, Size: fi.Size(), CreatedAt: fi.ModTime()}, nil
}

func notFound(dgst digest.Digest, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("content: blob %s: %w", dgst, errdefs.ErrNotFound)
	}
	return fmt.Errorf("content: blob %s: %w", dgst, err)
}

type fileReaderAt struct {
	*os.File
	size int64
}

func (r *fileReaderAt) Size() int64 { return r.size }

func (s *store) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (ReaderAt, error) {
	p, err := s.blobPath(desc.Digest)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, notFound(desc.Digest, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("content: %w", err)
	}
	return &fileReaderAt{File: f, size: fi.Size()}, nil
}

func (s *store) Delete(ctx context.Context, dgst digest.Digest) error {
	p, err := s.blobPath(dgst)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		return notFound(dgst, err)
	}
	return nil
}

func (s *store) Walk(ctx context.Context, fn func(Info) error) error {
	algs, err := os.ReadDir(filepath.Join(s.root, blobsDir))
	if err != nil {
		return fmt.Errorf("content: %w", err)
	}
	for _, a := range algs {
		if !a.IsDir() {
			continue
		}
		alg := digest.Algorithm(a.Name())
		if !alg.Available() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(s.root, blobsDir, a.Name()))
		if err != nil {
			return fmt.Errorf("content: %w", err)
		}
		for _, f := range files {
			if err := ctx.Err(); err != nil {
				return err
			}
			dgst := digest.NewDigestFromEncoded(alg, f.Name())
			if !f.Type().IsRegular() || dgst.Validate() != nil {
				continue
			}
			fi, err := f.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // deleted meanwhile
				}
				return fmt.Errorf("content: %w", err)
			}
			if err := fn(Info{Digest: dgst, Size: fi.Size(), CreatedAt: fi.ModTime()}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *store) Abort(ctx context.Context, ref string) error {
	if ref == "" {
		return fmt.Errorf("content: empty ref: %w", errdefs.ErrInvalidArgument)
	}
	name := ingestName(ref)
	if err := s.claim(name, ref); err != nil {
		return err
	}
	defer s.release(name)
	dir := filepath.Join(s.root, ingestDir, name)
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("content: ingest %q: %w", ref, errdefs.ErrNotFound)
		}
		return fmt.Errorf("content: %w", err)
	}
	lf, err := tryLock(dir)
	if err != nil {
		return lockError(ref, err)
	}
	defer lf.Close()
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("content: aborting ingest %q: %w", ref, err)
	}
	return nil
}

// claim marks the ingest as in use within this process.
func (s *store) claim(name, ref string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, busy := s.active[name]; busy {
		return fmt.Errorf("content: ref %q locked: %w", ref, errdefs.ErrUnavailable)
	}
	s.active[name] = struct{}{}
	return nil
}

func (s *store) release(name string) {
	s.mu.Lock()
	delete(s.active, name)
	s.mu.Unlock()
}

var errLocked = errors.New("ingest locked")

// tryLock takes the cross-process lock of an ingest directory without
// blocking. The lock is held until the returned file is closed.
func tryLock(dir string) (*os.File, error) {
	p := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, ingestPerm)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, errLocked
		}
		return nil, err
	}
	// The directory may have been committed or aborted between open and
	// flock; the lock only counts if it is on the file still in place.
	fi, err1 := f.Stat()
	cur, err2 := os.Stat(p)
	if err1 != nil || err2 != nil || !os.SameFile(fi, cur) {
		f.Close()
		return nil, errLocked
	}
	return f, nil
}

func lockError(ref string, err error) error {
	if errors.Is(err, errLocked) {
		return fmt.Errorf("content: ref %q locked: %w", ref, errdefs.ErrUnavailable)
	}
	return fmt.Errorf("content: locking ingest %q: %w", ref, err)
}

func (s *store) Writer(ctx context.Context, ref string, expected ocispec.Descriptor) (Writer, error) {
	if ref == "" {
		return nil, fmt.Errorf("content: empty ref: %w", errdefs.ErrInvalidArgument)
	}
	if expected.Size < 0 {
		return nil, fmt.Errorf("content: negative size: %w", errdefs.ErrInvalidArgument)
	}
	alg := digest.Canonical
	if expected.Digest != "" {
		p, err := s.blobPath(expected.Digest)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(p); err == nil {
			return nil, fmt.Errorf("content: blob %s: %w", expected.Digest, errdefs.ErrAlreadyExists)
		}
		alg = expected.Digest.Algorithm()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	name := ingestName(ref)
	if err := s.claim(name, ref); err != nil {
		return nil, err
	}
	w, err := s.openIngest(ref, name, alg, expected)
	if err != nil {
		s.release(name)
		return nil, err
	}
	return w, nil
}

func (s *store) openIngest(ref, name string, alg digest.Algorithm, expected ocispec.Descriptor) (*writer, error) {
	dir := filepath.Join(s.root, ingestDir, name)
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return nil, fmt.Errorf("content: %w", err)
	}
	lf, err := tryLock(dir)
	if err != nil {
		return nil, lockError(ref, err)
	}
	if err := os.WriteFile(filepath.Join(dir, refFile), []byte(ref), ingestPerm); err != nil {
		lf.Close()
		return nil, fmt.Errorf("content: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, dataFile), os.O_RDWR|os.O_CREATE, ingestPerm)
	if err != nil {
		lf.Close()
		return nil, fmt.Errorf("content: %w", err)
	}
	w := &writer{
		s:        s,
		ref:      ref,
		name:     name,
		dir:      dir,
		f:        f,
		lock:     lf,
		expected: expected,
		digester: alg.Digester(),
	}
	fi, err := f.Stat()
	if err == nil {
		size := fi.Size()
		if expected.Size > 0 && size > expected.Size {
			size = 0 // cannot be a prefix of the expected blob
		}
		err = w.reset(size)
	}
	if err != nil {
		w.closeFiles()
		return nil, err
	}
	return w, nil
}

type writer struct {
	s        *store
	ref      string
	name     string
	dir      string
	f        *os.File
	lock     *os.File
	expected ocispec.Descriptor
	digester digest.Digester
	offset   int64
	done     bool
}

var errClosed = errors.New("content: writer closed")

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errClosed
	}
	n, err := w.f.Write(p)
	w.digester.Hash().Write(p[:n])
	w.offset += int64(n)
	return n, err
}

func (w *writer) Digest() digest.Digest { return w.digester.Digest() }

func (w *writer) Size() int64 { return w.offset }

// reset truncates the ingest to size and rehashes what remains.
func (w *writer) reset(size int64) error {
	if err := w.f.Truncate(size); err != nil {
		return fmt.Errorf("content: %w", err)
	}
	d := w.digester.Hash()
	d.Reset()
	if _, err := io.Copy(d, io.NewSectionReader(w.f, 0, size)); err != nil {
		return fmt.Errorf("content: rehashing ingest: %w", err)
	}
	if _, err := w.f.Seek(size, io.SeekStart); err != nil {
		return fmt.Errorf("content: %w", err)
	}
	w.offset = size
	return nil
}

func (w *writer) Truncate(size int64) error {
	if w.done {
		return errClosed
	}
	if size < 0 || size > w.offset {
		return fmt.Errorf("content: truncate to %d of %d bytes: %w", size, w.offset, errdefs.ErrInvalidArgument)
	}
	return w.reset(size)
}

// verify checks the written data against want, rehashing the file when
// want uses another algorithm than the running digest.
func (w *writer) verify(want digest.Digest) error {
	if err := want.Validate(); err != nil {
		return fmt.Errorf("content: invalid digest %q: %v: %w", want, err, errdefs.ErrInvalidArgument)
	}
	got := w.digester.Digest()
	if want.Algorithm() != got.Algorithm() {
		d := want.Algorithm().Digester()
		if _, err := io.Copy(d.Hash(), io.NewSectionReader(w.f, 0, w.offset)); err != nil {
			return fmt.Errorf("content: rehashing ingest: %w", err)
		}
		got = d.Digest()
	}
	if got != want {
		return fmt.Errorf("content: unexpected commit digest %s, expected %s: %w", got, want, errdefs.ErrFailedPrecondition)
	}
	return nil
}

func (w *writer) Commit(ctx context.Context, size int64, expected digest.Digest) error {
	if w.done {
		return errClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, want := range []int64{size, w.expected.Size} {
		if want > 0 && want != w.offset {
			return fmt.Errorf("content: unexpected commit size %d, expected %d: %w", w.offset, want, errdefs.ErrFailedPrecondition)
		}
	}
	target := w.digester.Digest()
	for _, want := range []digest.Digest{w.expected.Digest, expected} {
		if want == "" {
			continue
		}
		if err := w.verify(want); err != nil {
			return err
		}
		target = want
	}
	p, err := w.s.blobPath(target)
	if err != nil {
		return err
	}

	if err := w.f.Chmod(blobPerm); err != nil {
		return fmt.Errorf("content: %w", err)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("content: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(p), dirPerm); err != nil {
		return fmt.Errorf("content: %w", err)
	}
	exists, err := publish(filepath.Join(w.dir, dataFile), p)
	if err != nil {
		_ = w.f.Chmod(ingestPerm)
		return fmt.Errorf("content: committing %s: %w", target, err)
	}
	if !exists {
		if err := syncDir(filepath.Dir(p)); err != nil {
			return fmt.Errorf("content: %w", err)
		}
	}
	// The blob is in place (or was already): the ingest has served its
	// purpose whatever happens next.
	rmErr := os.RemoveAll(w.dir)
	w.closeFiles()
	if exists {
		return fmt.Errorf("content: blob %s: %w", target, errdefs.ErrAlreadyExists)
	}
	if rmErr != nil {
		return fmt.Errorf("content: removing ingest: %w", rmErr)
	}
	return nil
}

// publish makes src visible as dst in one atomic step without replacing
// an existing dst, reporting whether dst already existed.
func publish(src, dst string) (exists bool, err error) {
	err = os.Link(src, dst)
	if err == nil {
		return false, nil
	}
	if errors.Is(err, fs.ErrExist) {
		return true, nil
	}
	// Filesystems without hard links: fall back to rename, checking first
	// so that an existing blob is reported. Content at a digest is fixed,
	// so a race here can only replace a blob with identical bytes.
	if _, serr := os.Lstat(dst); serr == nil {
		return true, nil
	}
	return false, os.Rename(src, dst)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (w *writer) closeFiles() {
	w.f.Close()
	w.lock.Close()
	w.s.release(w.name)
	w.done = true
}

// Close releases the writer and keeps the ingest for a later writer with
// the same ref. Closing after Commit is a no-op.
func (w *writer) Close() error {
	if w.done {
		return nil
	}
	err := w.f.Close()
	w.lock.Close()
	w.s.release(w.name)
	w.done = true
	return err
}
