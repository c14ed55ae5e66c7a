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
	"github.com/vbatts/tar-split/archive/tar"
	"github.com/vbatts/tar-split/tar/asm"
	"github.com/vbatts/tar-split/tar/storage"
	"golang.org/x/sys/unix"
)

// tarSplitFile holds, in a layer's metadata directory, what it takes to
// rebuild the layer's tar byte for byte from its diff directory: every
// header and padding segment, and the name and CRC of every file payload
// (the format Docker keeps in the same place).
const tarSplitFile = "tar-split.json.gz"

// recordSplit reads a layer tar to its end and returns its tar-split
// record, gzipped. It parses the stream as tar-split's
// asm.NewInputTarStream does, minus the pipe that function hands the
// bytes on through: the unpack pipeline hands them on itself.
func recordSplit(r io.Reader) ([]byte, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	p := storage.NewJSONPacker(gz)
	fp := storage.NewDiscardFilePutter()
	tr := tar.NewReader(r)
	tr.RawAccounting = true
	segment := func(b []byte) error {
		if len(b) == 0 {
			return nil
		}
		_, err := p.AddEntry(storage.Entry{Type: storage.SegmentType, Payload: b})
		return err
	}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			// The end-of-archive blocks.
			if err := segment(tr.RawBytes()); err != nil {
				return nil, err
			}
			break
		}
		if err != nil {
			return nil, err
		}
		if hdr == nil {
			break
		}
		if err := segment(tr.RawBytes()); err != nil {
			return nil, err
		}
		var crc []byte
		if hdr.Size > 0 {
			if _, crc, err = fp.Put(hdr.Name, tr); err != nil {
				return nil, err
			}
		}
		e := storage.Entry{Type: storage.FileType, Size: hdr.Size, Payload: crc}
		e.SetName(hdr.Name)
		if _, err := p.AddEntry(e); err != nil {
			return nil, err
		}
		if err := segment(tr.RawBytes()); err != nil {
			return nil, err
		}
	}
	// Whatever follows the end-of-archive blocks is kept too, so that the
	// rebuilt tar has the DiffID of the whole stream.
	pad := make([]byte, 32<<10)
	for {
		n, err := r.Read(pad)
		if err := segment(pad[:n]); err != nil {
			return nil, err
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
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
