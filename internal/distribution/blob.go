package distribution

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
)

// blobURL is the address of a blob of repo.
func blobURL(repo name.Repository, d digest.Digest) string {
	return fmt.Sprintf("%s://%s/v2/%s/blobs/%s", repo.Registry.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), d)
}

// retryableError marks a transfer failure worth another attempt.
type retryableError struct{ err error }

func (e retryableError) Error() string { return e.err.Error() }
func (e retryableError) Unwrap() error { return e.err }

// retryable reports whether a transfer that failed with err may succeed
// if tried again: dropped connections, short reads, 5xx and 429 answers.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var re retryableError
	if errors.As(err, &re) {
		return true
	}
	var rerr *registryError
	if errors.As(err, &rerr) {
		return rerr.status >= 500 || rerr.status == http.StatusTooManyRequests
	}
	var nerr net.Error
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) || errors.As(err, &nerr)
}

// copyBuffers are the buffers blobs are downloaded through: larger than
// io.Copy's 32 KiB, for fewer reads and writes of a fast registry.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// download is one blob being fetched into a temporary file.
type download struct {
	client *http.Client
	repo   name.Repository
	digest digest.Digest
	size   int64
	// id and progress report the transfer; progress may discard.
	id       string
	progress *Progress
}

// fetch downloads the blob into a new file in dir, retried with back-off
// and resumed with a range request where the registry allows it, and
// returns its path once its digest and size are verified. Nothing is left
// in dir on failure. The file is not synced: it is temporary (New empties
// the directory) and removed once unpacked, mostly before the kernel
// writes it back at all.
func (s *Service) fetch(ctx context.Context, dir string, dl download) (_ string, retErr error) {
	f, err := os.CreateTemp(dir, "blob-")
	if err != nil {
		return "", err
	}
	defer func() {
		f.Close()
		if retErr != nil {
			os.Remove(f.Name())
		}
	}()
	verifier := dl.digest.Algorithm().Hash()
	var written int64
	for attempt := 1; ; attempt++ {
		err := dl.attempt(ctx, f, verifier, &written)
		if err == nil {
			break
		}
		if !retryable(err) || attempt >= s.maxAttempts {
			return "", err
		}
		delay := s.retryStep * time.Duration(attempt)
		for left := delay; left > 0; left -= time.Second {
			secs := int((left + time.Second - 1) / time.Second)
			plural := "s"
			if secs == 1 {
				plural = ""
			}
			dl.progress.Status(dl.id, fmt.Sprintf("Retrying in %d second%s", secs, plural))
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(min(left, time.Second)):
			}
		}
	}
	dl.progress.Status(dl.id, "Verifying Checksum")
	got := digest.NewDigest(dl.digest.Algorithm(), verifier)
	if got != dl.digest || (dl.size > 0 && written != dl.size) {
		return "", fmt.Errorf("filesystem layer verification failed for digest %s", dl.digest)
	}
	dl.progress.Status(dl.id, "Download complete")
	return f.Name(), nil
}

// attempt fetches the rest of the blob, from *written on, into f.
func (dl download) attempt(ctx context.Context, f *os.File, verifier interface {
	io.Writer
	Reset()
}, written *int64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, blobURL(dl.repo, dl.digest), nil)
	if err != nil {
		return err
	}
	if *written > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(*written, 10)+"-")
	}
	resp, err := dl.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && *written > 0 &&
		strings.HasPrefix(resp.Header.Get("Content-Range"), "bytes "+strconv.FormatInt(*written, 10)+"-"):
		// Resumed.
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && *written > 0:
		// The registry cannot resume: start again from the beginning.
		if err := restart(f, verifier); err != nil {
			return err
		}
		*written = 0
		return retryableError{fmt.Errorf("blob %s: the registry cannot resume the download", dl.digest)}
	case resp.StatusCode == http.StatusOK:
		if *written > 0 {
			if err := restart(f, verifier); err != nil {
				return err
			}
			*written = 0
		}
	default:
		return asRegistryError(transport.CheckError(resp, http.StatusOK))
	}
	var r io.Reader = resp.Body
	if dl.size > 0 {
		r = io.LimitReader(resp.Body, dl.size-*written+1)
	}
	pr := newProgressReader(r, dl.progress, dl.id, "Downloading", *written, dl.size)
	buf := copyBuffers.Get().(*[]byte)
	n, err := io.CopyBuffer(io.MultiWriter(f, verifier), pr, *buf)
	copyBuffers.Put(buf)
	*written += n
	if err != nil {
		return err
	}
	if dl.size > 0 && *written > dl.size {
		return fmt.Errorf("blob %s is larger than its descriptor says (%d bytes)", dl.digest, dl.size)
	}
	if dl.size > 0 && *written < dl.size {
		return retryableError{fmt.Errorf("blob %s: short read: %d of %d bytes: %w", dl.digest, *written, dl.size, io.ErrUnexpectedEOF)}
	}
	return nil
}

// restart empties a partial download.
func restart(f *os.File, verifier interface{ Reset() }) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	verifier.Reset()
	return nil
}
