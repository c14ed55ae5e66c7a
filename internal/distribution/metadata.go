package distribution

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/opencontainers/go-digest"
)

// BlobSource is where a layer is known to exist as a blob: its digest in
// a repository ("127.0.0.1:5000/busybox", "docker.io/library/busybox").
type BlobSource struct {
	Digest           digest.Digest
	SourceRepository string
	// HMAC is kept for the layout's sake; berth does not sign entries.
	HMAC string
	// MediaType is the blob's media type (gzip, zstd or plain tar).
	MediaType string `json:",omitempty"`
}

// maxSources bounds the sources remembered per layer, newest kept.
const maxSources = 50

// Metadata is the distribution metadata of dockerd's layout:
//
//	<root>/v2metadata-by-diffid/sha256/<hex>  JSON list of BlobSource
//	<root>/diffid-by-digest/sha256/<hex>      the DiffID of a blob
//
// A pull records where each layer came from, so that a push to the same
// registry can skip a blob the repository has or mount it from another
// repository, and a push records where it sent it.
type Metadata struct {
	root string
	mu   sync.Mutex
}

// OpenMetadata opens (creating it) the metadata under root.
func OpenMetadata(root string) (*Metadata, error) {
	for _, d := range []string{"v2metadata-by-diffid", "diffid-by-digest"} {
		if err := os.MkdirAll(filepath.Join(root, d, "sha256"), 0o700); err != nil {
			return nil, err
		}
	}
	return &Metadata{root: root}, nil
}

func (m *Metadata) path(kind string, d digest.Digest) string {
	return filepath.Join(m.root, kind, d.Algorithm().String(), d.Encoded())
}

// Sources returns where the layer with diffID is known to exist, most
// recent first.
func (m *Metadata) Sources(diffID digest.Digest) []BlobSource {
	if diffID.Validate() != nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sourcesLocked(diffID)
}

func (m *Metadata) sourcesLocked(diffID digest.Digest) []BlobSource {
	data, err := os.ReadFile(m.path("v2metadata-by-diffid", diffID))
	if err != nil {
		return nil
	}
	var out []BlobSource
	if json.Unmarshal(data, &out) != nil {
		return nil
	}
	return out
}

// DiffID returns the DiffID of the layer whose blob is dgst.
func (m *Metadata) DiffID(dgst digest.Digest) (digest.Digest, bool) {
	if dgst.Validate() != nil {
		return "", false
	}
	data, err := os.ReadFile(m.path("diffid-by-digest", dgst))
	if err != nil {
		return "", false
	}
	d, err := digest.Parse(string(data))
	return d, err == nil
}

// Add records that the layer diffID exists as src.
func (m *Metadata) Add(diffID digest.Digest, src BlobSource) error {
	if err := diffID.Validate(); err != nil {
		return err
	}
	if err := src.Digest.Validate(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	list := slices.DeleteFunc(m.sourcesLocked(diffID), func(s BlobSource) bool {
		return s.Digest == src.Digest && s.SourceRepository == src.SourceRepository
	})
	list = append([]BlobSource{src}, list...)
	if len(list) > maxSources {
		list = list[:maxSources]
	}
	data, err := json.Marshal(list)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(m.path("v2metadata-by-diffid", diffID), data, 0o600); err != nil {
		return err
	}
	return atomicfile.WriteFile(m.path("diffid-by-digest", src.Digest), []byte(diffID.String()), 0o600)
}

// Remove forgets that the layer diffID exists as src (the registry
// answered that it does not).
func (m *Metadata) Remove(diffID digest.Digest, src BlobSource) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	list := m.sourcesLocked(diffID)
	kept := slices.DeleteFunc(slices.Clone(list), func(s BlobSource) bool {
		return s.Digest == src.Digest && s.SourceRepository == src.SourceRepository
	})
	if len(kept) == len(list) {
		return nil
	}
	if len(kept) == 0 {
		err := os.Remove(m.path("v2metadata-by-diffid", diffID))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	data, err := json.Marshal(kept)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(m.path("v2metadata-by-diffid", diffID), data, 0o600)
}
