// Package content is berth's content-addressed blob store. Image blobs
// (layers, manifests, configs) are kept by digest under a root directory:
//
//	<root>/blobs/<algorithm>/<hex>   committed blobs, read-only
//	<root>/ingest/<sha256(ref)>/     in-progress writes, resumable by ref
//
// A blob becomes visible only once it has been written completely, verified
// against its expected size and digest, fsynced, and linked into place in a
// single atomic step; a crash therefore leaves either no blob or the whole
// blob, never a partial one.
package content

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/ioctx"
)

// Info describes a committed blob.
type Info struct {
	Digest    digest.Digest
	Size      int64
	CreatedAt time.Time
}

// ReaderAt gives random access to a committed blob.
type ReaderAt interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// Writer streams data into an ingest. A Writer is meant for one goroutine
// at a time; different writers may run concurrently. Writers are resumable: opening a
// writer again with the ref of an ingest that was closed without Commit
// continues at the previous offset.
type Writer interface {
	io.WriteCloser
	// Digest returns the digest of the data written so far.
	Digest() digest.Digest
	// Size returns the number of bytes written so far.
	Size() int64
	// Commit verifies the written data against size (when > 0) and expected
	// (when non-empty), as well as against the descriptor given when the
	// writer was opened, and moves it into the store atomically. A mismatch
	// returns an error wrapping errdefs.ErrFailedPrecondition and nothing is
	// stored; the writer stays usable (Truncate, Close or Abort it). If the
	// blob already exists, the ingest is discarded and an error wrapping
	// errdefs.ErrAlreadyExists is returned.
	Commit(ctx context.Context, size int64, expected digest.Digest) error
	// Truncate discards everything after size bytes.
	Truncate(size int64) error
}

// Store holds blobs by digest. Implementations are safe for concurrent use.
type Store interface {
	// Info returns information about a committed blob, or an error
	// wrapping errdefs.ErrNotFound.
	Info(ctx context.Context, dgst digest.Digest) (Info, error)
	// ReaderAt opens a committed blob, or returns an error wrapping
	// errdefs.ErrNotFound.
	ReaderAt(ctx context.Context, desc ocispec.Descriptor) (ReaderAt, error)
	// Writer opens the ingest for ref. Only one writer per ref may be open
	// at a time; a second one gets an error wrapping errdefs.ErrUnavailable.
	// If expected.Digest is already stored, the error wraps
	// errdefs.ErrAlreadyExists.
	Writer(ctx context.Context, ref string, expected ocispec.Descriptor) (Writer, error)
	// Delete removes a committed blob.
	Delete(ctx context.Context, dgst digest.Digest) error
	// Walk calls fn for every committed blob, stopping at the first error.
	Walk(ctx context.Context, fn func(Info) error) error
	// Abort discards the ingest for ref.
	Abort(ctx context.Context, ref string) error
}

// WriteBlob copies r into the store under ref and commits it against desc.
// A blob that is already present counts as success. If the ingest for ref
// holds data from an interrupted earlier attempt, the copy resumes when r is
// an io.Seeker and starts over otherwise. On failure the ingest is aborted
// so that a retry does not resume from bad data.
func WriteBlob(ctx context.Context, s Store, ref string, r io.Reader, desc ocispec.Descriptor) error {
	w, err := s.Writer(ctx, ref, desc)
	if err != nil {
		if errdefs.IsAlreadyExists(err) {
			return nil
		}
		return err
	}
	err = writeAndCommit(ctx, w, r, desc)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if errdefs.IsAlreadyExists(err) {
			return nil
		}
		if aerr := s.Abort(ctx, ref); aerr != nil && !errdefs.IsNotFound(aerr) {
			err = errors.Join(err, aerr)
		}
		return err
	}
	return nil
}

func writeAndCommit(ctx context.Context, w Writer, r io.Reader, desc ocispec.Descriptor) error {
	if off := w.Size(); off > 0 {
		resumed := false
		if seeker, ok := r.(io.Seeker); ok {
			if _, err := seeker.Seek(off, io.SeekStart); err == nil {
				resumed = true
			}
		}
		if !resumed {
			if err := w.Truncate(0); err != nil {
				return err
			}
		}
	}
	if _, err := io.Copy(w, ioctx.Reader(ctx, r)); err != nil {
		return fmt.Errorf("content: copying %s: %w", desc.Digest, err)
	}
	return w.Commit(ctx, desc.Size, desc.Digest)
}
