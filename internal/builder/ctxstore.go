package builder

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
)

// Stub entries: a client that knows berthd has a file (POST
// /build/context/have) sends, instead of its bytes, a tar entry of size 0
// carrying these PAX records. The daemon takes the bytes from its context
// store; the entry's digest is what the file's digest would be.
const (
	paxDigest = "BERTH.digest"
	paxSize   = "BERTH.size"
)

// ctxStore keeps the files of recent build contexts by digest, so that a
// rebuild need not send them again. It is a cache: files are written
// without sync and checked against their digest when used; the least
// recently used go first once the store passes its size.
type ctxStore struct {
	dir string
	max int64
	mu  sync.Mutex
}

func newCtxStore(dir string, max int64) (*ctxStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &ctxStore{dir: dir, max: max}, nil
}

func (s *ctxStore) path(d digest.Digest) string { return filepath.Join(s.dir, d.Encoded()) }

// Have returns the digests of ds the store holds (and marks them used).
func (s *ctxStore) Have(ds []digest.Digest) []digest.Digest {
	out := []digest.Digest{}
	now := time.Now()
	for _, d := range ds {
		if d.Validate() != nil || d.Algorithm() != digest.SHA256 {
			continue
		}
		if err := os.Chtimes(s.path(d), now, now); err == nil {
			out = append(out, d)
		}
	}
	return out
}

// has tells whether the store holds d.
func (s *ctxStore) has(d digest.Digest) bool {
	_, err := os.Stat(s.path(d))
	return err == nil
}

// put stores data under its digest d unless it is there.
func (s *ctxStore) put(d digest.Digest, data []byte) error {
	p := s.path(d)
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	f, err := os.CreateTemp(s.dir, ".tmp-")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// read returns the bytes stored under d, checked against d.
func (s *ctxStore) read(d digest.Digest, size int64) ([]byte, error) {
	data, err := os.ReadFile(s.path(d))
	if err != nil {
		return nil, fmt.Errorf("build context: %s is not in the context store: %w", d, err)
	}
	sum := sha256.Sum256(data)
	if int64(len(data)) != size || hex.EncodeToString(sum[:]) != d.Encoded() {
		os.Remove(s.path(d))
		return nil, fmt.Errorf("build context: the context store's copy of %s is damaged", d)
	}
	return data, nil
}

// trim removes the least recently used files while the store is larger
// than its maximum, and leftovers of interrupted writes.
func (s *ctxStore) trim() {
	s.mu.Lock()
	defer s.mu.Unlock()
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	type file struct {
		name  string
		size  int64
		mtime time.Time
	}
	var files []file
	var total int64
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			continue
		}
		if bytes.HasPrefix([]byte(e.Name()), []byte(".tmp-")) && time.Since(info.ModTime()) > time.Hour {
			os.Remove(filepath.Join(s.dir, e.Name()))
			continue
		}
		files = append(files, file{e.Name(), info.Size(), info.ModTime()})
		total += info.Size()
	}
	sort.Slice(files, func(i, j int) bool { return files[i].mtime.Before(files[j].mtime) })
	for _, f := range files {
		if total <= s.max {
			return
		}
		if err := os.Remove(filepath.Join(s.dir, f.name)); err == nil || errors.Is(err, fs.ErrNotExist) {
			total -= f.size
		}
	}
}

// clear removes every file.
func (s *ctxStore) clear() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.Remove(filepath.Join(s.dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
