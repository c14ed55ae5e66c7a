package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// References maps tags and digests of repositories to image IDs.
//
// References are normalized the way Docker does it: "busybox",
// "library/busybox" and "docker.io/library/busybox:latest" are the same
// reference. On disk (repositories.json) they are keyed as dockerd keys
// them, by reference.FamiliarName and reference.FamiliarString:
//
//	{"Repositories": {"busybox": {"busybox:latest": "sha256:...",
//	                              "busybox@sha256:...": "sha256:..."}}}
type References interface {
	// AddTag points ref (a tag is added when missing: "busybox" means
	// "busybox:latest") at id. Moving an existing tag to another image
	// needs force. Digest references are refused; use AddDigest.
	AddTag(ref reference.Named, id digest.Digest, force bool) error
	// AddDigest points a digest reference at id. A digest reference can
	// never be moved to another image.
	AddDigest(ref reference.Canonical, id digest.Digest) error
	// Delete removes ref. It reports whether a reference was removed; a
	// missing reference gives false and an error matching
	// errdefs.IsNotFound.
	Delete(ref reference.Named) (bool, error)
	// Get returns the image ID ref points at (errdefs.IsNotFound if none).
	Get(ref reference.Named) (digest.Digest, error)
	// References returns every reference pointing at id, sorted by their
	// full normalized string.
	References(id digest.Digest) []reference.Named
	// ReferencesByName returns every reference of the repository ref
	// names (tag and digest ignored), sorted by their normalized string.
	ReferencesByName(ref reference.Named) []Association
}

// Association ties one reference to the image ID it points at.
type Association struct {
	Ref reference.Named
	ID  digest.Digest
}

type refFile struct {
	Repositories map[string]map[string]digest.Digest
}

type refStore struct {
	mu    sync.RWMutex
	path  string
	repos map[string]map[string]digest.Digest
}

// NewReferenceStore opens the reference store kept in the JSON file at
// path, creating the file when it does not exist.
func NewReferenceStore(path string) (References, error) {
	r := &refStore{path: path, repos: map[string]map[string]digest.Digest{}}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		if err := r.save(); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	default:
		var f refFile
		if err := json.Unmarshal(data, &f); err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		for name, repo := range f.Repositories {
			if len(repo) > 0 {
				r.repos[name] = repo
			}
		}
	}
	return r, nil
}

func (r *refStore) save() error {
	data, err := json.Marshal(refFile{Repositories: r.repos})
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(r.path, data, 0o600)
}

// storageKey normalizes ref to the form stored: a reference carrying both
// a tag and a digest is stored by digest only, a bare name gets the
// "latest" tag.
func storageKey(ref reference.Named) (reference.Named, error) {
	if c, ok := ref.(reference.Canonical); ok {
		if _, ok := ref.(reference.Tagged); ok {
			return reference.WithDigest(reference.TrimNamed(c), c.Digest())
		}
		return ref, nil
	}
	return reference.TagNameOnly(ref), nil
}

func (r *refStore) AddTag(ref reference.Named, id digest.Digest, force bool) error {
	if _, ok := ref.(reference.Canonical); ok {
		return invalidParameterError{"refusing to create a tag with a digest reference"}
	}
	return r.add(reference.TagNameOnly(ref), id, force)
}

func (r *refStore) AddDigest(ref reference.Canonical, id digest.Digest) error {
	return r.add(ref, id, false)
}

func (r *refStore) add(ref reference.Named, id digest.Digest, force bool) error {
	ref, err := storageKey(ref)
	if err != nil {
		return invalidParameterError{err.Error()}
	}
	if err := id.Validate(); err != nil {
		return invalidParameterError{fmt.Sprintf("invalid image ID %q: %v", id, err)}
	}
	name := reference.FamiliarName(ref)
	key := reference.FamiliarString(ref)
	if name == string(digest.Canonical) {
		return invalidParameterError{"refusing to create an ambiguous tag using digest algorithm as name"}
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	repo := r.repos[name]
	old, exists := repo[key]
	if exists {
		if old == id {
			return nil
		}
		if d, ok := ref.(reference.Canonical); ok {
			return conflictError{"cannot overwrite digest " + d.Digest().String()}
		}
		if !force {
			return conflictError{fmt.Sprintf("tag %s is already set to image %s, use the force option to replace it", key, old)}
		}
	}
	if repo == nil {
		repo = map[string]digest.Digest{}
		r.repos[name] = repo
	}
	repo[key] = id
	if err := r.save(); err != nil {
		if exists {
			repo[key] = old
		} else {
			delete(repo, key)
			if len(repo) == 0 {
				delete(r.repos, name)
			}
		}
		return err
	}
	return nil
}

func refNotFound(ref reference.Named) error {
	return notFoundError{"reference does not exist: " + reference.FamiliarString(ref)}
}

func (r *refStore) Delete(ref reference.Named) (bool, error) {
	ref, err := storageKey(ref)
	if err != nil {
		return false, invalidParameterError{err.Error()}
	}
	name := reference.FamiliarName(ref)
	key := reference.FamiliarString(ref)

	r.mu.Lock()
	defer r.mu.Unlock()
	repo := r.repos[name]
	old, ok := repo[key]
	if !ok {
		return false, refNotFound(ref)
	}
	delete(repo, key)
	if len(repo) == 0 {
		delete(r.repos, name)
	}
	if err := r.save(); err != nil {
		repo[key] = old
		r.repos[name] = repo
		return false, err
	}
	return true, nil
}

func (r *refStore) Get(ref reference.Named) (digest.Digest, error) {
	ref, err := storageKey(ref)
	if err != nil {
		return "", invalidParameterError{err.Error()}
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	id, ok := r.repos[reference.FamiliarName(ref)][reference.FamiliarString(ref)]
	if !ok {
		return "", refNotFound(ref)
	}
	return id, nil
}

func (r *refStore) References(id digest.Digest) []reference.Named {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []reference.Named
	for _, repo := range r.repos {
		for key, target := range repo {
			if target != id {
				continue
			}
			if ref, err := reference.ParseNormalizedNamed(key); err == nil {
				out = append(out, ref)
			}
		}
	}
	slices.SortFunc(out, func(a, b reference.Named) int { return strings.Compare(a.String(), b.String()) })
	return out
}

func (r *refStore) ReferencesByName(ref reference.Named) []Association {
	r.mu.RLock()
	defer r.mu.RUnlock()
	repo := r.repos[reference.FamiliarName(ref)]
	var out []Association
	for _, key := range slices.Sorted(maps.Keys(repo)) {
		if named, err := reference.ParseNormalizedNamed(key); err == nil {
			out = append(out, Association{Ref: named, ID: repo[key]})
		}
	}
	slices.SortFunc(out, func(a, b Association) int { return strings.Compare(a.Ref.String(), b.Ref.String()) })
	return out
}
