package layer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	archive "github.com/moby/go-archive"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// A layer tar is unpacked by four stages that run at the same time, each
// on its own goroutine, handing the stream on in chunks of chunkSize:
//
//	read:    reads the diff (decompressing it, when the caller passes a
//	         decompressor);
//	hash:    hashes it for the DiffID;
//	record:  parses the tar for its tar-split record (headers, padding,
//	         payload CRCs);
//	extract: untars it into the layer's diff directory.
//
// A chunk goes from stage to stage and back to a pool, so each byte is
// copied once into a chunk, and stages hand over a chunk at a time rather
// than the 32 KiB a tar reader asks for: the decompression, the hashing,
// the CRCs and the file writes of a large layer overlap instead of taking
// turns (sequentially they take about the same time each).
const (
	chunkSize = 1 << 20
	// queueChunks is how many chunks may wait between two stages.
	queueChunks = 4
)

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// errStopped is what a stage sees once another stage has failed.
var errStopped = errors.New("layer unpacking stopped")

// pipeline is the shared state of one unpack.
type pipeline struct {
	stop chan struct{}

	mu  sync.Mutex
	err error // the first failure, which stopped the others
}

// fail stops every stage; the first failure is the one reported.
func (p *pipeline) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
		close(p.stop)
	}
}

// chunk is a filled part of a chunkPool buffer.
type chunk struct {
	buf *[]byte
	n   int
}

// chunkReader reads the chunks arriving on in; each chunk read to its end
// is passed to next, or returned to the pool when next is nil.
type chunkReader struct {
	p    *pipeline
	in   <-chan chunk
	next chan<- chunk
	cur  chunk
	off  int
	eof  bool
}

func (r *chunkReader) Read(b []byte) (int, error) {
	for r.off == r.cur.n {
		if r.eof {
			return 0, io.EOF
		}
		if err := r.pass(); err != nil {
			return 0, err
		}
		select {
		case c, ok := <-r.in:
			if !ok {
				r.eof = true
				return 0, io.EOF
			}
			r.cur, r.off = c, 0
		case <-r.p.stop:
			return 0, errStopped
		}
	}
	n := copy(b, (*r.cur.buf)[r.off:r.cur.n])
	r.off += n
	return n, nil
}

// pass hands the current chunk on.
func (r *chunkReader) pass() error {
	c := r.cur
	r.cur, r.off = chunk{}, 0
	if c.buf == nil {
		return nil
	}
	if r.next == nil {
		chunkPool.Put(c.buf)
		return nil
	}
	select {
	case r.next <- c:
		return nil
	case <-r.p.stop:
		chunkPool.Put(c.buf)
		return errStopped
	}
}

// drain reads the rest of the stream, passing its chunks on.
func (r *chunkReader) drain() error {
	for {
		r.off = r.cur.n
		if _, err := r.Read(nil); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

// readStage reads diff into chunks sent on out, until EOF.
func (p *pipeline) readStage(ctx context.Context, diff io.Reader, out chan<- chunk) error {
	defer close(out)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		buf := chunkPool.Get().(*[]byte)
		n, err := fill(diff, *buf)
		if n > 0 {
			select {
			case out <- chunk{buf: buf, n: n}:
			case <-p.stop:
				chunkPool.Put(buf)
				return errStopped
			}
		} else {
			chunkPool.Put(buf)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// hashStage hashes the chunks from in and passes them to out.
func (p *pipeline) hashStage(in <-chan chunk, h digest.Digester, out chan<- chunk) {
	defer close(out)
	for c := range in {
		h.Hash().Write((*c.buf)[:c.n])
		select {
		case out <- c:
		case <-p.stop:
			chunkPool.Put(c.buf)
			return
		}
	}
}

// fill reads into b until it is full or r fails; io.EOF is returned only
// at the end of r.
func fill(r io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// unpack extracts the layer tar read from diff into dir and returns its
// DiffID (the digest of every byte of diff, including what follows the
// end-of-archive blocks) and its tar-split record.
func unpack(ctx context.Context, diff io.Reader, dir string) (digest.Digest, []byte, error) {
	p := &pipeline{stop: make(chan struct{})}
	stopOnCancel := context.AfterFunc(ctx, func() { p.fail(ctx.Err()) })
	defer stopOnCancel()

	toHash := make(chan chunk, queueChunks)
	toRecord := make(chan chunk, queueChunks)
	toExtract := make(chan chunk, queueChunks)
	digester := digest.SHA256.Digester()
	var split []byte
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		if err := p.readStage(ctx, diff, toHash); err != nil {
			p.fail(fmt.Errorf("read layer: %w", err))
		}
	}()
	go func() {
		defer wg.Done()
		p.hashStage(toHash, digester, toRecord)
	}()
	go func() {
		defer wg.Done()
		defer close(toExtract)
		in := &chunkReader{p: p, in: toRecord, next: toExtract}
		var err error
		if split, err = recordSplit(in); err == nil {
			err = in.drain()
		}
		if err != nil {
			p.fail(fmt.Errorf("record layer tar: %w", err))
		}
	}()

	in := &chunkReader{p: p, in: toExtract}
	err := inPrivateFS(func() error {
		// Modes come from the archive alone.
		unix.Umask(0)
		return archive.UntarUncompressed(in, dir, &archive.TarOptions{
			WhiteoutFormat: archive.OverlayWhiteoutFormat,
		})
	})
	if err == nil {
		// The end-of-archive padding the tar reader leaves.
		err = in.drain()
	}
	if err != nil {
		p.fail(fmt.Errorf("unpack layer: %w", err))
	}
	wg.Wait()
	p.mu.Lock()
	err = p.err
	p.mu.Unlock()
	if err != nil {
		return "", nil, err
	}
	return digester.Digest(), split, nil
}
