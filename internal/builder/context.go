package builder

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/go-archive"
	"github.com/moby/go-archive/compression"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// buildContext is a build context unpacked in a private directory, with
// the files .dockerignore excludes removed.
type buildContext struct {
	dir        string // the temporary directory holding root
	root       string
	dockerfile []byte
	// sums are the digests of the context's regular files by path.
	sums map[string]fileSum
}

// fileSum is the size and sha256 of a file's contents.
type fileSum struct {
	size int64
	sum  [sha256.Size]byte
}

// hashTarFiles reads a tar stream to its end and returns the digests of
// its regular files (hard links share their target's). A stream the tar
// reader rejects yields what was read so far: the unpacker reports the
// error.
func hashTarFiles(r io.Reader) map[string]fileSum {
	defer io.Copy(io.Discard, r)
	out := map[string]fileSum{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err != nil {
			return out
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "/"))
		switch h.Typeflag {
		case tar.TypeReg:
			d := sha256.New()
			n, err := io.Copy(d, tr)
			if err != nil {
				return out
			}
			fs := fileSum{size: n}
			d.Sum(fs.sum[:0])
			out[name] = fs
		case tar.TypeLink:
			if t, ok := out[path.Clean(strings.TrimPrefix(h.Linkname, "/"))]; ok {
				out[name] = t
			}
		default:
			delete(out, name)
		}
	}
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
func openContext(ctx context.Context, tmpRoot string, src io.Reader, dockerfile string) (_ *buildContext, retErr error) {
	dir, err := os.MkdirTemp(tmpRoot, "context-")
	if err != nil {
		return nil, err
	}
	bc := &buildContext{dir: dir, root: filepath.Join(dir, "root")}
	defer func() {
		if retErr != nil {
			bc.Close()
		}
	}()
	if err := os.Mkdir(bc.root, 0o755); err != nil {
		return nil, err
	}
	r, err := compression.DecompressStream(&ctxReader{ctx: ctx, r: src})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	// Ownership in the context does not matter: COPY and ADD give files
	// to root or to their --chown. Entries leaving the directory ("../",
	// links through symlinks) are refused by the unpacker.
	// The files' digests are taken as the context streams in, on the
	// second core, so that a cached COPY needs no second read.
	tee := newChunkTee()
	sums := make(chan map[string]fileSum, 1)
	go func() { sums <- hashTarFiles(tee) }()
	err = archive.Untar(tee.source(r), bc.root, &archive.TarOptions{NoLchown: true})
	tee.close()
	bc.sums = <-sums
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, userError("the build context is not a valid tar archive: %v", err)
		}
		return nil, userError("unpacking the build context: %v", err)
	}

	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	if bc.dockerfile, err = readInContext(bc.root, dockerfile); err != nil {
		if errors.Is(err, fs.ErrNotExist) && dockerfile == "Dockerfile" {
			bc.dockerfile, err = readInContext(bc.root, "dockerfile")
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

// readInContext reads a file of the context; symlinks resolve inside it.
func readInContext(root, name string) ([]byte, error) {
	p, err := scopedPath(root, name)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fs.ErrNotExist
	}
	return os.ReadFile(p)
}

// applyDockerignore removes what .dockerignore excludes, as the docker CLI
// does before sending a context: a client that sends everything gets the
// same build.
func (bc *buildContext) applyDockerignore() error {
	f, err := os.Open(filepath.Join(bc.root, ".dockerignore"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	patterns, err := ignorefile.ReadAll(f)
	f.Close()
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

// ctxReader fails reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

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
