// Package image keeps image metadata on disk: the image configs (content
// addressed by the sha256 digest of their JSON bytes, which is the image
// ID), per-image metadata such as the parent of a built image, and the
// tag/digest reference store. The layout matches dockerd's image root:
//
//	imagedb/content/sha256/<hex>               image config JSON
//	imagedb/metadata/sha256/<hex>/parent       parent image ID ("sha256:<hex>")
//	imagedb/metadata/sha256/<hex>/lastUpdated  RFC 3339 time of the last tag
//	repositories.json                          reference store
//
// Every file is replaced atomically. An image config is always written
// before any reference to it, so a crash never leaves a reference to a
// config that was never stored.
package image

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/atomicfile"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
)

// Image is one stored image config with its metadata.
type Image struct {
	// ID is the sha256 digest of RawConfig.
	ID digest.Digest
	// RawConfig holds the config JSON exactly as stored.
	RawConfig []byte
	// Config is RawConfig parsed; it includes Docker's extensions
	// (Healthcheck, OnBuild, Shell, ...).
	Config *dockerspec.DockerOCIImage
	// Parent is the image this one was built from, if any.
	Parent digest.Digest
	// LastUpdated is the time the image was last tagged, or zero.
	LastUpdated time.Time
}

// Store holds image configs and their metadata.
type Store interface {
	// Create stores rawConfig and returns its ID. Storing the same bytes
	// again returns the same ID and changes nothing.
	Create(rawConfig []byte) (digest.Digest, error)
	// Get returns the image with the given ID; an unknown ID gives an
	// error matching errdefs.IsNotFound.
	Get(id digest.Digest) (*Image, error)
	// Search finds the one image whose ID starts with prefix, with or
	// without the "sha256:" algorithm prefix.
	Search(prefix string) (digest.Digest, error)
	// Delete removes an image and its metadata. Children of the image
	// lose their parent link.
	Delete(id digest.Digest) error
	// SetParent records parent as the image id was built from.
	SetParent(id, parent digest.Digest) error
	// SetLastUpdated records when the image was last tagged.
	SetLastUpdated(id digest.Digest, t time.Time) error
	// Children returns the IDs of the images whose parent is id, sorted.
	Children(id digest.Digest) []digest.Digest
	// List returns all images sorted by ID.
	List() []*Image
}

const (
	parentKey      = "parent"
	lastUpdatedKey = "lastUpdated"
)

type imageEntry struct {
	raw         []byte
	parent      digest.Digest
	lastUpdated time.Time
	children    map[digest.Digest]struct{}
}

type fsStore struct {
	mu          sync.RWMutex
	contentDir  string
	metadataDir string
	images      map[digest.Digest]*imageEntry
}

// NewStore opens the image store kept under root (normally
// <data-root>/image), loading any images already there.
func NewStore(root string) (Store, error) {
	s := &fsStore{
		contentDir:  filepath.Join(root, "imagedb", "content", string(digest.SHA256)),
		metadataDir: filepath.Join(root, "imagedb", "metadata", string(digest.SHA256)),
		images:      make(map[digest.Digest]*imageEntry),
	}
	for _, d := range []string{s.contentDir, s.metadataDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// New opens both the image store and the reference store under root.
func New(root string) (Store, References, error) {
	s, err := NewStore(root)
	if err != nil {
		return nil, nil, err
	}
	r, err := NewReferenceStore(filepath.Join(root, "repositories.json"))
	if err != nil {
		return nil, nil, err
	}
	return s, r, nil
}

// load reads every stored config. Files whose content no longer matches
// their name, or that do not parse, are skipped so one damaged entry does
// not prevent the daemon from starting.
func (s *fsStore) load() error {
	entries, err := os.ReadDir(s.contentDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		id := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if id.Validate() != nil {
			continue // temporary files and strays
		}
		raw, err := os.ReadFile(filepath.Join(s.contentDir, e.Name()))
		if err != nil {
			return err
		}
		if digest.SHA256.FromBytes(raw) != id {
			continue
		}
		if _, err := parseConfig(raw); err != nil {
			continue
		}
		ent := &imageEntry{raw: raw, children: map[digest.Digest]struct{}{}}
		if b, err := os.ReadFile(s.metaPath(id, lastUpdatedKey)); err == nil {
			if t, err := time.Parse(time.RFC3339Nano, string(b)); err == nil {
				ent.lastUpdated = t
			}
		}
		if b, err := os.ReadFile(s.metaPath(id, parentKey)); err == nil {
			if p, err := digest.Parse(strings.TrimSpace(string(b))); err == nil {
				ent.parent = p
			}
		}
		s.images[id] = ent
	}
	for id, ent := range s.images {
		if ent.parent == "" {
			continue
		}
		if p := s.images[ent.parent]; p != nil {
			p.children[id] = struct{}{}
		} else {
			ent.parent = ""
		}
	}
	return nil
}

// rawConfigCheck holds the parts of an image config that Create validates.
type rawConfigCheck struct {
	RootFS *struct {
		Type    string          `json:"type"`
		DiffIDs []digest.Digest `json:"diff_ids"`
	} `json:"rootfs"`
	History []struct {
		EmptyLayer bool `json:"empty_layer"`
	} `json:"history"`
}

// validateConfig rejects configs dockerd would reject: no rootfs, a rootfs
// type other than "layers", malformed diff IDs, or more non-empty history
// entries than layers. An empty (or, as Docker writes it, absent) diff_ids
// list is allowed: an image built FROM scratch may have no layers.
func validateConfig(raw []byte) error {
	var c rawConfigCheck
	if err := json.Unmarshal(raw, &c); err != nil {
		return invalidParameterError{"invalid image JSON: " + err.Error()}
	}
	if c.RootFS == nil {
		return invalidParameterError{"invalid image JSON, no RootFS key"}
	}
	if c.RootFS.Type != "layers" {
		return invalidParameterError{fmt.Sprintf("invalid image JSON, unsupported rootfs type %q", c.RootFS.Type)}
	}
	for _, d := range c.RootFS.DiffIDs {
		if err := d.Validate(); err != nil {
			return invalidParameterError{fmt.Sprintf("invalid image JSON, bad diff ID %q: %v", d, err)}
		}
	}
	layers := 0
	for _, h := range c.History {
		if !h.EmptyLayer {
			layers++
		}
	}
	if layers > len(c.RootFS.DiffIDs) {
		return invalidParameterError{"too many non-empty layers in History section"}
	}
	return nil
}

func parseConfig(raw []byte) (*dockerspec.DockerOCIImage, error) {
	if err := validateConfig(raw); err != nil {
		return nil, err
	}
	var cfg dockerspec.DockerOCIImage
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, invalidParameterError{"invalid image JSON: " + err.Error()}
	}
	return &cfg, nil
}

func (s *fsStore) metaDir(id digest.Digest) string {
	return filepath.Join(s.metadataDir, id.Encoded())
}

func (s *fsStore) metaPath(id digest.Digest, key string) string {
	return filepath.Join(s.metaDir(id), key)
}

func (s *fsStore) setMeta(id digest.Digest, key string, data []byte) error {
	if err := os.MkdirAll(s.metaDir(id), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(s.metaPath(id, key), data, 0o600)
}

func (s *fsStore) deleteMeta(id digest.Digest, key string) error {
	err := os.Remove(s.metaPath(id, key))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

func (s *fsStore) Create(rawConfig []byte) (digest.Digest, error) {
	if _, err := parseConfig(rawConfig); err != nil {
		return "", err
	}
	id := digest.SHA256.FromBytes(rawConfig)

	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.images[id]; ok {
		return id, nil
	}
	raw := bytes.Clone(rawConfig)
	if err := atomicfile.WriteFile(filepath.Join(s.contentDir, id.Encoded()), raw, 0o600); err != nil {
		return "", err
	}
	// Metadata left over from an earlier image with this ID (deleted
	// while the process crashed) must not leak into the new one.
	if err := os.RemoveAll(s.metaDir(id)); err != nil {
		return "", err
	}
	s.images[id] = &imageEntry{raw: raw, children: map[digest.Digest]struct{}{}}
	return id, nil
}

func noSuchImage(id digest.Digest) error {
	return notFoundError{"No such image: " + id.String()}
}

func (s *fsStore) Get(id digest.Digest) (*Image, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ent := s.images[id]
	if ent == nil {
		return nil, noSuchImage(id)
	}
	return ent.image(id)
}

// image returns a copy the caller may modify freely.
func (ent *imageEntry) image(id digest.Digest) (*Image, error) {
	var cfg dockerspec.DockerOCIImage
	if err := json.Unmarshal(ent.raw, &cfg); err != nil {
		return nil, err
	}
	return &Image{
		ID:          id,
		RawConfig:   bytes.Clone(ent.raw),
		Config:      &cfg,
		Parent:      ent.parent,
		LastUpdated: ent.lastUpdated,
	}, nil
}

func isLowerHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (s *fsStore) Search(prefix string) (digest.Digest, error) {
	hex := strings.TrimPrefix(prefix, string(digest.SHA256)+":")
	if hex == "" || len(hex) > 64 || !isLowerHex(hex) {
		return "", notFoundError{"No such image: " + prefix}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var found digest.Digest
	for id := range s.images {
		if strings.HasPrefix(id.Encoded(), hex) {
			if found != "" {
				return "", invalidParameterError{"multiple IDs found with provided prefix: " + prefix}
			}
			found = id
		}
	}
	if found == "" {
		return "", notFoundError{"No such image: " + prefix}
	}
	return found, nil
}

func (s *fsStore) Delete(id digest.Digest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ent := s.images[id]
	if ent == nil {
		return noSuchImage(id)
	}
	for child := range ent.children {
		if err := s.deleteMeta(child, parentKey); err != nil {
			return err
		}
		s.images[child].parent = ""
		delete(ent.children, child)
	}
	if err := os.Remove(filepath.Join(s.contentDir, id.Encoded())); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	delete(s.images, id)
	if p := s.images[ent.parent]; p != nil {
		delete(p.children, id)
	}
	return os.RemoveAll(s.metaDir(id))
}

func (s *fsStore) SetParent(id, parent digest.Digest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ent := s.images[id]
	if ent == nil {
		return noSuchImage(id)
	}
	pent := s.images[parent]
	if pent == nil {
		return notFoundError{"unknown parent image ID " + parent.String()}
	}
	if id == parent {
		return invalidParameterError{"an image cannot be its own parent"}
	}
	for p := parent; p != ""; p = s.images[p].parent {
		if p == id {
			return invalidParameterError{"setting parent " + parent.String() + " of image " + id.String() + " would create a cycle"}
		}
	}
	if err := s.setMeta(id, parentKey, []byte(parent)); err != nil {
		return err
	}
	if old := s.images[ent.parent]; old != nil {
		delete(old.children, id)
	}
	ent.parent = parent
	pent.children[id] = struct{}{}
	return nil
}

func (s *fsStore) SetLastUpdated(id digest.Digest, t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ent := s.images[id]
	if ent == nil {
		return noSuchImage(id)
	}
	if err := s.setMeta(id, lastUpdatedKey, []byte(t.Format(time.RFC3339Nano))); err != nil {
		return err
	}
	ent.lastUpdated = t
	return nil
}

func (s *fsStore) Children(id digest.Digest) []digest.Digest {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ent := s.images[id]
	if ent == nil {
		return nil
	}
	var out []digest.Digest
	for c := range ent.children {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

func (s *fsStore) List() []*Image {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Image, 0, len(s.images))
	for id, ent := range s.images {
		img, err := ent.image(id)
		if err != nil {
			continue // cannot happen: the config parsed when it was stored
		}
		out = append(out, img)
	}
	slices.SortFunc(out, func(a, b *Image) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out
}
