package builder

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/go-archive"
	"github.com/moby/go-archive/compression"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/ioctx"
)

// buildContext is a build context unpacked in a private directory, with
// the files .dockerignore excludes removed.
type buildContext struct {
	dir        string // the temporary directory holding root
	root       string
	dockerfile []byte
	// sums are the digests of the context's regular files by path.
	sums map[string]fileSum
	// index and data hold a context kept in memory, whose files get their
	// contents from data (or the store, for stubs) when first read.
	store        *ctxStore
	index        *tarIndex
	data         []byte
	once         sync.Once
	materialized bool
	matErr       error
}

// fileSum is the size and sha256 of a file's contents.
type fileSum struct {
	size int64
	sum  [sha256.Size]byte
}

// known returns the digest taken while unpacking of the context file at
// host path p, if p is one and still has that size.
func (bc *buildContext) known(p string, size int64) ([]byte, bool) {
	rel, err := filepath.Rel(bc.root, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return nil, false
	}
	fs, ok := bc.sums[filepath.ToSlash(rel)]
	if !ok || fs.size != size {
		return nil, false
	}
	return fs.sum[:], true
}

// openContext unpacks the context tar src below tmpRoot and reads the
// Dockerfile named dockerfile ("Dockerfile" when empty) from it.
func openContext(ctx context.Context, tmpRoot string, store *ctxStore, src io.Reader, dockerfile string) (_ *buildContext, retErr error) {
	dir, err := os.MkdirTemp(tmpRoot, "context-")
	if err != nil {
		return nil, err
	}
	bc := &buildContext{dir: dir, root: filepath.Join(dir, "root"), store: store}
	defer func() {
		if retErr != nil {
			bc.Close()
		}
	}()
	if err := os.Mkdir(bc.root, 0o755); err != nil {
		return nil, err
	}
	r, err := compression.DecompressStream(ioctx.Reader(ctx, src))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	// The context is indexed (names, headers, where each file's bytes are,
	// their digests) on the second core while it streams in.
	tee := newChunkTee()
	indexed := make(chan *tarIndex, 1)
	go func() { indexed <- indexTar(tee) }()
	in := tee.source(r)
	var mem bytes.Buffer
	n, err := io.CopyN(&mem, in, maxMemoryContext+1)
	if err != nil && !errors.Is(err, io.EOF) {
		tee.close()
		<-indexed
		return nil, fmt.Errorf("reading the build context: %w", err)
	}
	if n > maxMemoryContext {
		// Too large to keep in memory: unpacked to disk as it comes;
		// stubs are filled from the store after.
		err = archive.Untar(io.MultiReader(&mem, in), bc.root, untarOptions)
		tee.close()
		bc.index = <-indexed
		bc.sums = bc.index.sums
		if err == nil {
			err = bc.checkStubs()
		}
		if err == nil {
			err = bc.eachFile(func(f *os.File, e tarEntry) error {
				if e.stub == "" {
					return nil
				}
				data, err := bc.entryData(e)
				if err == nil {
					_, err = f.WriteAt(data, 0)
				}
				return err
			})
		}
		bc.index = nil
		bc.materialized = true
	} else {
		tee.close()
		bc.index = <-indexed
		bc.sums = bc.index.sums
		bc.data = mem.Bytes()
		if err = bc.checkStubs(); err == nil {
			err = bc.unpackSkeleton()
		}
	}
	if errdefs.IsFailedPrecondition(err) {
		return nil, err
	}
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, userError("the build context is not a valid tar archive: %v", err)
		}
		return nil, userError("unpacking the build context: %v", err)
	}

	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	if bc.dockerfile, err = bc.readFile(dockerfile); err != nil {
		if errors.Is(err, fs.ErrNotExist) && dockerfile == "Dockerfile" {
			bc.dockerfile, err = bc.readFile("dockerfile")
		}
		if err != nil {
			return nil, userError("Cannot locate specified Dockerfile: %s", dockerfile)
		}
	}
	if err := bc.applyDockerignore(); err != nil {
		return nil, err
	}
	return bc, nil
}

// checkStubs fails, as a failed precondition the client answers by
// sending the whole context, when a stub names a file the store lacks.
func (bc *buildContext) checkStubs() error {
	if bc.index.bad != nil {
		return userError("build context: %v", bc.index.bad)
	}
	for _, e := range bc.index.entries {
		if e.stub != "" && (bc.store == nil || !bc.store.has(e.stub)) {
			return fmt.Errorf("build context: %s was sent as %s, which berthd no longer has; send the whole context: %w", e.hdr.Name, e.stub, errdefs.ErrFailedPrecondition)
		}
	}
	return nil
}

// maxMemoryContext is the largest context kept in memory and unpacked
// lazily; larger ones are unpacked to disk as they arrive.
const maxMemoryContext = 256 << 20

// Ownership in the context does not matter: COPY and ADD give files to
// root or to their --chown. Entries leaving the directory ("../", links
// through symlinks) are refused by the unpacker.
var untarOptions = &archive.TarOptions{NoLchown: true}

// tarIndex is what indexTar learnt of a context tar.
type tarIndex struct {
	// bad is a malformed stub entry.
	bad     error
	entries []tarEntry
	sums    map[string]fileSum
	// files maps a name to the entry holding its bytes.
	files map[string]int
}

// tarEntry is one entry of a context tar; for a regular file, where its
// bytes are in the stream.
type tarEntry struct {
	hdr    tar.Header
	offset int64
	// stub is, for an entry sent as a digest, the file's digest: its
	// bytes are in the context store, not in the stream.
	stub digest.Digest
	sum  [sha256.Size]byte
}

// indexTar reads a tar stream to its end and returns its entries and the
// digests of its regular files (hard links share their target's). A
// stream the tar reader rejects yields what was read so far: unpacking
// reports the error.
func indexTar(r io.Reader) *tarIndex {
	cr := &countReader{r: r}
	defer io.Copy(io.Discard, cr)
	idx := &tarIndex{sums: map[string]fileSum{}, files: map[string]int{}}
	tr := tar.NewReader(cr)
	for {
		h, err := tr.Next()
		if err != nil {
			return idx
		}
		e := tarEntry{hdr: *h, offset: cr.n}
		name := path.Clean(strings.TrimPrefix(h.Name, "/"))
		switch {
		case h.Typeflag == tar.TypeReg && h.PAXRecords[paxDigest] != "":
			fs, ok := stubEntry(&e)
			if !ok {
				idx.bad = fmt.Errorf("entry %s: invalid %s/%s records", h.Name, paxDigest, paxSize)
				return idx
			}
			idx.sums[name] = fs
			idx.files[name] = len(idx.entries)
		case h.Typeflag == tar.TypeReg:
			d := sha256.New()
			n, err := io.Copy(d, tr)
			if err != nil {
				return idx
			}
			fs := fileSum{size: n}
			d.Sum(fs.sum[:0])
			e.sum = fs.sum
			idx.sums[name] = fs
			idx.files[name] = len(idx.entries)
		case h.Typeflag == tar.TypeLink:
			target := path.Clean(strings.TrimPrefix(h.Linkname, "/"))
			if t, ok := idx.sums[target]; ok {
				idx.sums[name] = t
				idx.files[name] = idx.files[target]
			}
		default:
			delete(idx.sums, name)
			delete(idx.files, name)
		}
		idx.entries = append(idx.entries, e)
	}
}

// stubEntry reads the digest and size of a stub entry into e.
func stubEntry(e *tarEntry) (fileSum, bool) {
	d, err := digest.Parse(e.hdr.PAXRecords[paxDigest])
	if err != nil || d.Algorithm() != digest.SHA256 {
		return fileSum{}, false
	}
	size, err := strconv.ParseInt(e.hdr.PAXRecords[paxSize], 10, 64)
	if err != nil || size < 0 {
		return fileSum{}, false
	}
	sum, err := hex.DecodeString(d.Encoded())
	if err != nil || len(sum) != sha256.Size {
		return fileSum{}, false
	}
	e.stub = d
	e.hdr.Size = size
	e.hdr.PAXRecords = maps.Clone(e.hdr.PAXRecords)
	delete(e.hdr.PAXRecords, paxDigest)
	delete(e.hdr.PAXRecords, paxSize)
	fs := fileSum{size: size}
	copy(fs.sum[:], sum)
	copy(e.sum[:], sum)
	return fs, true
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// unpackSkeleton unpacks the context without the contents of its files:
// directories, links, and every regular file at its size but as a hole
// (its mode and times as in the tar). What COPY needs for its cache key
// (names, modes, sizes, the digests of the index) is there at once; the
// bytes are written by materialize, when a step first reads them.
func (bc *buildContext) unpackSkeleton() error {
	var skel bytes.Buffer
	tw := tar.NewWriter(&skel)
	for _, e := range bc.index.entries {
		h := e.hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(&h); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := archive.Untar(&skel, bc.root, untarOptions); err != nil {
		return err
	}
	return bc.eachFile(func(f *os.File, e tarEntry) error {
		return f.Truncate(e.hdr.Size)
	})
}

// eachFile calls fn, in tar order, with every regular file of the index
// that is still in the context (.dockerignore removes some), opened for
// writing, then gives the file back its time from the tar.
func (bc *buildContext) eachFile(fn func(*os.File, tarEntry) error) error {
	for _, e := range bc.index.entries {
		if e.hdr.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean(strings.TrimPrefix(e.hdr.Name, "/"))
		p, err := scopedPath(bc.root, name)
		if err != nil {
			return err
		}
		if rel, _ := filepath.Rel(bc.root, p); filepath.ToSlash(rel) != name {
			// Written through a symlink of the context: the digests
			// by name would not describe what is on disk.
			bc.sums = nil
		}
		f, err := os.OpenFile(p, os.O_WRONLY|unix.O_NOFOLLOW, 0)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		st, err := f.Stat()
		if err == nil && st.Mode().IsRegular() {
			err = fn(f, e)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		mt := unix.NsecToTimespec(e.hdr.ModTime.UnixNano())
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{mt, mt}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	return nil
}

// materialize writes the contents of the context's files, once, before
// anything reads them.
func (bc *buildContext) materialize() error {
	bc.once.Do(func() {
		if bc.materialized || bc.index == nil {
			return
		}
		bc.matErr = bc.eachFile(func(f *os.File, e tarEntry) error {
			data, err := bc.entryData(e)
			if err != nil {
				return err
			}
			_, err = f.WriteAt(data, 0)
			return err
		})
		bc.materialized = true
		bc.data = nil
	})
	return bc.matErr
}

// entryData returns the bytes of a regular file entry: from the stream
// kept in memory, or from the context store for a stub.
func (bc *buildContext) entryData(e tarEntry) ([]byte, error) {
	if e.stub != "" {
		if bc.store == nil {
			return nil, fmt.Errorf("build context: %s was sent as a digest, but there is no context store", e.hdr.Name)
		}
		return bc.store.read(e.stub, e.hdr.Size)
	}
	if e.offset+e.hdr.Size > int64(len(bc.data)) {
		return nil, fmt.Errorf("build context: %s is cut short", e.hdr.Name)
	}
	return bc.data[e.offset : e.offset+e.hdr.Size], nil
}

// keep puts the files of an in-memory context into the context store,
// for the next build to refer to.
func (bc *buildContext) keep() {
	if bc.store == nil || bc.index == nil || bc.data == nil {
		return
	}
	for _, e := range bc.index.entries {
		if e.hdr.Typeflag != tar.TypeReg || e.stub != "" || e.offset+e.hdr.Size > int64(len(bc.data)) {
			continue
		}
		d := digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(e.sum[:]))
		if err := bc.store.put(d, bc.data[e.offset:e.offset+e.hdr.Size]); err != nil {
			return
		}
	}
	bc.store.trim()
}

// readFile reads a file of the context by name (symlinks resolve inside
// the context), from memory while the files are not written yet.
func (bc *buildContext) readFile(name string) ([]byte, error) {
	p, err := scopedPath(bc.root, name)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(p); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, fs.ErrNotExist
	}
	if !bc.materialized && bc.index != nil {
		rel, _ := filepath.Rel(bc.root, p)
		if i, ok := bc.index.files[filepath.ToSlash(rel)]; ok {
			return bc.entryData(bc.index.entries[i])
		}
		if err := bc.materialize(); err != nil {
			return nil, err
		}
	}
	return os.ReadFile(p)
}

// applyDockerignore removes what .dockerignore excludes, as the docker CLI
// does before sending a context: a client that sends everything gets the
// same build.
func (bc *buildContext) applyDockerignore() error {
	data, err := bc.readFile(".dockerignore")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	patterns, err := ignorefile.ReadAll(bytes.NewReader(data))
	if err != nil {
		return userError("reading .dockerignore: %v", err)
	}
	if len(patterns) == 0 {
		return nil
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return userError("invalid .dockerignore pattern: %v", err)
	}
	var remove []string
	parents := map[string]patternmatcher.MatchInfo{}
	err = filepath.WalkDir(bc.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(bc.root, p)
		if rel == "." {
			return nil
		}
		parent := parents[filepath.Dir(rel)]
		matched, info, err := pm.MatchesUsingParentResults(rel, parent)
		if err != nil {
			return err
		}
		if d.IsDir() {
			parents[rel] = info
		}
		if matched {
			// A directory with re-included entries below stays, the rest
			// of its contents is judged one by one.
			if d.IsDir() && pm.Exclusions() {
				remove = append(remove, "dir:"+p)
				return nil
			}
			remove = append(remove, p)
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Files first; excluded directories go when nothing re-included is
	// left in them.
	for i := len(remove) - 1; i >= 0; i-- {
		p := remove[i]
		if dir, ok := strings.CutPrefix(p, "dir:"); ok {
			os.Remove(dir) // only if empty
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	return nil
}

// Close removes the unpacked context.
func (bc *buildContext) Close() error { return os.RemoveAll(bc.dir) }

// scopedPath resolves name below root as if root were "/": ".." and
// symlinks never lead outside root (Docker's FollowSymlinkInScope).
func scopedPath(root, name string) (string, error) {
	p, err := secureJoin(root, name)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", name, err)
	}
	return p, nil
}

func secureJoin(root, name string) (string, error) { return securejoin.SecureJoin(root, name) }

// maxRemoteDockerfile bounds a Dockerfile fetched as a remote context.
const maxRemoteDockerfile = 10 << 20

// fetchRemote downloads a remote context: a tar archive (compressed or
// not) is the context; anything else is a Dockerfile alone in one.
func fetchRemote(ctx context.Context, url string, st *stream) (_ io.ReadCloser, dockerfileOnly bool, _ error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, false, userError("remote context %s: %v", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("downloading the build context: %w", err)
	}
	if resp.StatusCode >= 400 {
		resp.Body.Close()
		return nil, false, userError("downloading the build context from %s: %s", url, resp.Status)
	}
	st.line(fmt.Sprintf("Downloading build context from remote url: %s\n", url))
	br := bufio.NewReaderSize(resp.Body, 1<<16)
	head, _ := br.Peek(512)
	if compression.Detect(head) != compression.None || (len(head) == 512 && isTarHeader(head)) {
		return struct {
			io.Reader
			io.Closer
		}{br, resp.Body}, false, nil
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(br, maxRemoteDockerfile+1))
	if err != nil {
		return nil, false, fmt.Errorf("downloading the build context: %w", err)
	}
	if len(data) > maxRemoteDockerfile {
		return nil, false, userError("remote context %s is neither a tar archive nor a Dockerfile of at most %d bytes", url, maxRemoteDockerfile)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		return nil, false, err
	}
	tw.Write(data)
	tw.Close()
	return io.NopCloser(&buf), true, nil
}

// chunkTee passes what a reader yields to a second consumer through a
// buffered queue of copies, so that the two run side by side instead of
// in lock step as with io.Pipe.
type chunkTee struct {
	ch   chan []byte
	cur  []byte
	done bool
}

func newChunkTee() *chunkTee { return &chunkTee{ch: make(chan []byte, 256)} }

// source wraps r: every read is also queued for the second consumer.
func (t *chunkTee) source(r io.Reader) io.Reader { return teeSource{r: r, t: t} }

type teeSource struct {
	r io.Reader
	t *chunkTee
}

func (s teeSource) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.t.ch <- append([]byte(nil), p[:n]...)
	}
	return n, err
}

// close ends the second consumer's stream.
func (t *chunkTee) close() { close(t.ch) }

// Read is the second consumer's side.
func (t *chunkTee) Read(p []byte) (int, error) {
	for len(t.cur) == 0 {
		c, ok := <-t.ch
		if !ok {
			return 0, io.EOF
		}
		t.cur = c
	}
	n := copy(p, t.cur)
	t.cur = t.cur[n:]
	return n, nil
}
