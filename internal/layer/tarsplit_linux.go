package layer

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	"github.com/vbatts/tar-split/tar/asm"
	"github.com/vbatts/tar-split/tar/storage"
	"golang.org/x/sys/unix"
)

// tarSplitFile holds, in a layer's metadata directory, what it takes to
// rebuild the layer's tar byte for byte from its diff directory: every
// header and padding segment, and the name and CRC of every file payload
// (the format Docker keeps in the same place).
const tarSplitFile = "tar-split.json.gz"

// splitRecorder records the tar-split metadata of a layer tar while the
// stream passes through it.
type splitRecorder struct {
	buf  bytes.Buffer
	gz   *gzip.Writer
	r    io.ReadCloser
	done <-chan error
}

// recordSplit returns a recorder whose reader yields r's bytes unchanged.
func recordSplit(r io.Reader) (*splitRecorder, error) {
	rec := &splitRecorder{}
	rec.gz = gzip.NewWriter(&rec.buf)
	var err error
	rec.r, rec.done, err = asm.NewInputTarStreamWithDone(r, storage.NewJSONPacker(rec.gz), nil)
	if err != nil {
		return nil, err
	}
	return rec, nil
}

func (rec *splitRecorder) Read(p []byte) (int, error) { return rec.r.Read(p) }

// finish waits for the recorder to see the end of the stream and returns
// the compressed metadata. The stream must have been read to its end.
func (rec *splitRecorder) finish() ([]byte, error) {
	if err := <-rec.done; err != nil {
		return nil, fmt.Errorf("record layer tar: %w", err)
	}
	if err := rec.gz.Close(); err != nil {
		return nil, err
	}
	return rec.buf.Bytes(), nil
}

// abort stops the recorder after a failure of the consumer.
func (rec *splitRecorder) abort() {
	rec.r.Close()
	<-rec.done
}

// TarStream implements Store.
func (s *store) TarStream(ctx context.Context, chainID digest.Digest) (io.ReadCloser, error) {
	s.mu.Lock()
	l := s.layers[chainID]
	if l == nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("layer %s: %w", chainID, errdefs.ErrNotFound)
	}
	// Keep the layer on disk while it is read.
	l.pending++
	s.mu.Unlock()
	release := func() {
		s.mu.Lock()
		l.pending--
		s.collect(l)
		s.mu.Unlock()
	}

	meta, err := os.Open(filepath.Join(s.layerMetaDir(chainID), tarSplitFile))
	if err != nil {
		release()
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("layer %s was stored without its tar layout and cannot be exported: %w", chainID, errdefs.ErrFailedPrecondition)
		}
		return nil, err
	}
	gz, err := gzip.NewReader(meta)
	if err != nil {
		meta.Close()
		release()
		return nil, fmt.Errorf("layer %s: tar layout: %w", chainID, err)
	}
	root, err := unix.Open(filepath.Join(s.root, l.cacheID, "diff"), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		meta.Close()
		release()
		return nil, err
	}
	out := asm.NewOutputTarStream(inRootGetter(root), storage.NewJSONUnpacker(gz))
	return &tarStream{
		ctx:      ctx,
		r:        out,
		digester: digest.SHA256.Digester(),
		want:     l.diffID,
		close: func() {
			out.Close()
			meta.Close()
			unix.Close(root)
			release()
		},
	}, nil
}

// inRootGetter opens the files of a layer's payloads inside its diff
// directory; no name in the metadata can lead outside it.
type inRootGetter int

func (g inRootGetter) Get(name string) (io.ReadCloser, error) {
	fd, err := unix.Openat2(int(g), name, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

// tarStream is a rebuilt layer tar that checks, at its end, that it hashes
// to the layer's DiffID: a changed file in a layer never leaves the store
// under the layer's name.
type tarStream struct {
	ctx      context.Context
	r        io.Reader
	digester digest.Digester
	want     digest.Digest
	close    func()
	closed   bool
}

func (t *tarStream) Read(p []byte) (int, error) {
	if err := t.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := t.r.Read(p)
	t.digester.Hash().Write(p[:n])
	if err == io.EOF {
		if got := t.digester.Digest(); got != t.want {
			return n, fmt.Errorf("layer %s: rebuilt tar has digest %s: %w", t.want, got, errdefs.ErrDataLoss)
		}
	}
	return n, err
}

func (t *tarStream) Close() error {
	if !t.closed {
		t.closed = true
		t.close()
	}
	return nil
}
