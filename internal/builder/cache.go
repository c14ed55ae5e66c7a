package builder

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"sync"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/opencontainers/go-digest"
)

// cache remembers, for a parent image and a step, the image the step
// produced. A hit counts only while that image still exists with the same
// parent, so deleting images needs no cache bookkeeping.
type cache struct {
	mu      sync.Mutex
	path    string
	entries map[string]digest.Digest
	dirty   bool
}

func openCache(path string) (*cache, error) {
	c := &cache{path: path, entries: map[string]digest.Digest{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &c.entries); err != nil {
		// A damaged index costs cache hits, not builds.
		c.entries = map[string]digest.Digest{}
	}
	return c, nil
}

func cacheKey(parent digest.Digest, step string) string {
	return digest.FromString(parent.String() + "\x00" + step).Encoded()
}

// lookup returns the image built by step on parent, if it is still there.
func (c *cache) lookup(parent digest.Digest, step string, images Images) (digest.Digest, bool) {
	c.mu.Lock()
	id, ok := c.entries[cacheKey(parent, step)]
	c.mu.Unlock()
	if !ok {
		return "", false
	}
	img, err := images.Get(id.String())
	if err != nil || img.Parent != parent {
		return "", false
	}
	return id, true
}

// store records a step's result; flush writes the records.
func (c *cache) store(parent digest.Digest, step string, id digest.Digest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := cacheKey(parent, step)
	if c.entries[k] != id {
		c.entries[k] = id
		c.dirty = true
	}
}

// flush writes the index if it changed: once per build, not per step
// (losing it costs cache hits only).
func (c *cache) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirty {
		return nil
	}
	b, err := json.Marshal(c.entries)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(c.path, b, 0o600); err != nil {
		return err
	}
	c.dirty = false
	return nil
}

// clear forgets every entry.
func (c *cache) clear() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = map[string]digest.Digest{}
	c.dirty = false
	if err := os.Remove(c.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
