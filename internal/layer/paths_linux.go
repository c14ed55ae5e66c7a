package layer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
)

// DriverData returns the overlay2 directories of the image layer chainID as
// dockerd reports them in an image's GraphDriver.Data: UpperDir (the
// layer's files), WorkDir, MergedDir and, for a layer with parents,
// LowerDir, the parents' directories nearest first, separated by ":".
func DriverData(s Store, chainID digest.Digest) (map[string]string, error) {
	st, ok := s.(*store)
	if !ok {
		return nil, fmt.Errorf("layer store %T has no overlay2 directories: %w", s, errdefs.ErrNotImplemented)
	}
	st.mu.Lock()
	l, ok := st.layers[chainID]
	var cacheID, lower string
	if ok {
		cacheID, lower = l.cacheID, l.lower
	}
	st.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("layer %s: %w", chainID, errdefs.ErrNotFound)
	}
	dir := filepath.Join(st.root, cacheID)
	data := map[string]string{
		"UpperDir":  filepath.Join(dir, "diff"),
		"WorkDir":   filepath.Join(dir, "work"),
		"MergedDir": filepath.Join(dir, "merged"),
	}
	if lower == "" {
		return data, nil
	}
	dirs, err := st.lowerDirs(lower, string(chainID))
	if err != nil {
		return nil, err
	}
	data["LowerDir"] = dirs
	return data, nil
}

// lowerDirs resolves a lowerdir of short links into the layers' diff
// directories, separated by ":".
func (st *store) lowerDirs(lower, of string) (string, error) {
	var dirs []string
	for _, link := range strings.Split(lower, ":") {
		target, err := os.Readlink(filepath.Join(st.root, link))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return "", fmt.Errorf("lower layer link %s of %s: %w", link, of, errdefs.ErrNotFound)
			}
			return "", err
		}
		dirs = append(dirs, filepath.Join(st.root, linkDir, target))
	}
	return strings.Join(dirs, ":"), nil
}

// Paths returns the overlay2 directories of a container's read-write
// layer, as dockerd reports them in a container's GraphDriver.Data.
func (r *rwLayer) Paths() map[string]string {
	r.s.mu.Lock()
	lower := r.lower
	r.s.mu.Unlock()
	data := map[string]string{
		"UpperDir":  r.dir("diff"),
		"WorkDir":   r.dir("work"),
		"MergedDir": r.dir("merged"),
	}
	if lower != "" {
		if dirs, err := r.s.lowerDirs(lower, r.id); err == nil {
			data["LowerDir"] = dirs
		}
	}
	return data
}

// Size is the size of the files a container wrote to its layer.
func (r *rwLayer) Size() (int64, error) { return dirSize(r.dir("diff")) }
