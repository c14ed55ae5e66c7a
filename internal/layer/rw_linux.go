package layer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/containerd/errdefs"
	archive "github.com/moby/go-archive"
	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// overlayOptions are added to every overlay mount: no inode index, and
// neither redirected directories nor metadata-only copies in the upper
// directory, so that the upper directory alone describes the changes.
const overlayOptions = "index=off,redirect_dir=off,metacopy=off"

// rwLayer is a container's read-write layer. Fields are guarded by
// store.mu.
type rwLayer struct {
	s      *store
	id     string
	parent digest.Digest
	short  string
	lower  string // lowerdir, relative to the store root; "" on scratch

	mounts  int
	removed bool
}

func (r *rwLayer) ID() string            { return r.id }
func (r *rwLayer) Parent() digest.Digest { return r.parent }
func (r *rwLayer) dir(sub ...string) string {
	return filepath.Join(append([]string{r.s.root, r.id}, sub...)...)
}

func validRWID(id string) error {
	switch {
	case id == "", id == linkDir, id == "layers", id == mountsDir, id == tmpDir,
		strings.HasPrefix(id, "."), strings.ContainsAny(id, "/:,\\\x00"), len(id) > 128:
		return fmt.Errorf("read-write layer id %q: %w", id, errdefs.ErrInvalidArgument)
	}
	return nil
}

// CreateRW implements Store.
func (s *store) CreateRW(ctx context.Context, id string, parent digest.Digest) (_ RWLayer, retErr error) {
	if err := validRWID(id); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The read-write layer's metadata names its parent: the parent must
	// be durable first.
	for {
		if err := s.Sync(parent); err != nil {
			return nil, err
		}
		s.mu.Lock()
		if p := s.layers[parent]; p == nil || !s.unsyncedChain(p) {
			break
		}
		s.mu.Unlock()
	}
	defer s.mu.Unlock()
	if _, ok := s.rws[id]; ok {
		return nil, fmt.Errorf("read-write layer %s: %w", id, errdefs.ErrAlreadyExists)
	}
	r := &rwLayer{s: s, id: id, parent: parent, short: newShortID()}
	var p *roLayer
	if parent != "" {
		p = s.layers[parent]
		if p == nil {
			return nil, fmt.Errorf("parent layer %s: %w", parent, errdefs.ErrNotFound)
		}
		r.lower = p.chain()
	}
	dir := r.dir()
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("read-write layer %s: %w", id, errdefs.ErrAlreadyExists)
		}
		return nil, err
	}
	link := filepath.Join(s.root, linkDir, r.short)
	defer func() {
		if retErr != nil {
			os.Remove(link)
			os.RemoveAll(dir)
		}
	}()
	for _, sub := range []struct {
		name string
		mode os.FileMode
	}{{"diff", 0o755}, {"work", 0o700}, {"merged", 0o700}} {
		if err := os.Mkdir(r.dir(sub.name), sub.mode); err != nil {
			return nil, err
		}
	}
	if err := writeFileSync(r.dir("link"), []byte(r.short)); err != nil {
		return nil, err
	}
	if r.lower != "" {
		if err := writeFileSync(r.dir("lower"), []byte(r.lower)); err != nil {
			return nil, err
		}
	}
	if err := os.Symlink(filepath.Join("..", id, "diff"), link); err != nil {
		return nil, err
	}
	files := map[string]string{"parent": parent.String()}
	if err := writeDirAtomic(filepath.Join(s.root, mountsDir, id), files); err != nil {
		return nil, err
	}
	s.rws[id] = r
	if p != nil {
		p.rw++
	}
	return r, nil
}

func (s *store) loadRW(id string) (*rwLayer, error) {
	if err := validRWID(id); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(s.root, mountsDir, id, "parent"))
	if err != nil {
		return nil, err
	}
	r := &rwLayer{s: s, id: id, parent: digest.Digest(strings.TrimSpace(string(b)))}
	if b, err = os.ReadFile(r.dir("link")); err != nil {
		return nil, err
	}
	r.short = strings.TrimSpace(string(b))
	b, err = os.ReadFile(r.dir("lower"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	r.lower = strings.TrimSpace(string(b))
	if err := ensureLink(s.root, r.short, id); err != nil {
		return nil, err
	}
	// A view left mounted by a previous run counts as one mount.
	if m, err := mountinfo.Mounted(r.dir("merged")); err == nil && m {
		r.mounts = 1
	}
	return r, nil
}

// GetRW implements Store.
func (s *store) GetRW(id string) (RWLayer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rws[id]
	if !ok {
		return nil, fmt.Errorf("read-write layer %s: %w", id, errdefs.ErrNotFound)
	}
	return r, nil
}

// ReleaseRW implements Store.
func (s *store) ReleaseRW(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rws[id]
	if !ok {
		return fmt.Errorf("read-write layer %s: %w", id, errdefs.ErrNotFound)
	}
	if err := r.unmountAll(); err != nil {
		return err
	}
	if err := removeDirAtomic(filepath.Join(s.root, mountsDir, id)); err != nil {
		return err
	}
	r.removed = true
	delete(s.rws, id)
	os.Remove(filepath.Join(s.root, linkDir, r.short))
	os.RemoveAll(r.dir())
	if r.parent != "" {
		if p := s.layers[r.parent]; p != nil {
			p.rw--
			s.collect(p)
		}
	}
	return nil
}

// Mount implements RWLayer.
func (r *rwLayer) Mount(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.removed {
		return "", fmt.Errorf("read-write layer %s: %w", r.id, errdefs.ErrNotFound)
	}
	merged := r.dir("merged")
	if r.mounts > 0 {
		r.mounts++
		return merged, nil
	}
	var err error
	if r.lower == "" {
		// Nothing below: the upper directory is the whole view.
		err = unix.Mount(r.dir("diff"), merged, "", unix.MS_BIND, "")
	} else {
		opts := "lowerdir=" + r.lower + ",upperdir=" + r.id + "/diff,workdir=" + r.id + "/work," + overlayOptions
		if len(opts) >= os.Getpagesize() {
			return "", fmt.Errorf("mount %s: %d bytes of overlay options exceed a page: %w", r.id, len(opts), errdefs.ErrResourceExhausted)
		}
		// The relative lowerdir, upperdir and workdir resolve against the
		// store root.
		err = inPrivateFS(func() error {
			if err := unix.Chdir(r.s.root); err != nil {
				return err
			}
			return unix.Mount("overlay", merged, "overlay", 0, opts)
		})
	}
	if err != nil {
		return "", fmt.Errorf("mount %s: %w", merged, err)
	}
	r.mounts = 1
	return merged, nil
}

// Unmount implements RWLayer.
func (r *rwLayer) Unmount(ctx context.Context) error {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.mounts == 0 {
		return fmt.Errorf("read-write layer %s is not mounted: %w", r.id, errdefs.ErrFailedPrecondition)
	}
	if r.mounts > 1 {
		r.mounts--
		return nil
	}
	return r.unmountAll()
}

// unmountAll takes the merged view down whatever the mount count. Called
// with store.mu held.
func (r *rwLayer) unmountAll() error {
	merged := r.dir("merged")
	for {
		m, err := mountinfo.Mounted(merged)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				break
			}
			return err
		}
		if !m {
			break
		}
		err = unix.Unmount(merged, 0)
		if errors.Is(err, unix.EBUSY) {
			err = unix.Unmount(merged, unix.MNT_DETACH)
		}
		if errors.Is(err, unix.EINVAL) {
			break
		}
		if err != nil {
			return fmt.Errorf("unmount %s: %w", merged, err)
		}
	}
	r.mounts = 0
	return nil
}

// Diff implements RWLayer.
func (r *rwLayer) Diff(ctx context.Context) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.s.mu.Lock()
	removed := r.removed
	r.s.mu.Unlock()
	if removed {
		return nil, fmt.Errorf("read-write layer %s: %w", r.id, errdefs.ErrNotFound)
	}
	return archive.TarWithOptions(r.dir("diff"), &archive.TarOptions{
		WhiteoutFormat: archive.OverlayWhiteoutFormat,
	})
}

// inPrivateFS runs fn on an OS thread with its own working directory and
// umask, so that changing them does not affect the rest of the process.
// The thread is discarded afterwards.
func inPrivateFS(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the goroutine exits with the thread locked,
		// which makes the runtime terminate the thread.
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unshare(CLONE_FS): %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
