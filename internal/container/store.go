package container

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/moby/moby/api/types/container"
)

// File names inside a container's directory, the same as Docker's.
const (
	ConfigFile     = "config.v2.json"
	HostConfigFile = "hostconfig.json"
)

// Store keeps every container's record: one directory per container,
// <root>/<id>/, holding config.v2.json (the Container without its
// HostConfig) and hostconfig.json. Each file is replaced atomically; the
// pair is not written as one unit, so Save writes hostconfig.json first and
// config.v2.json last.
//
// All methods are safe for concurrent use. The Store hands out the
// *Container it indexes, not copies; see the package documentation for the
// locking rules.
type Store struct {
	root string

	// io serializes the methods that touch the disk, so that a Save cannot
	// recreate the directory of a container that Delete is removing.
	io sync.Mutex

	// mu guards the index. Container.ID and Container.Created never change
	// once added; Container.Name changes only with mu held for writing (and
	// the container's own lock held by the caller).
	mu     sync.RWMutex
	byID   map[string]*Container
	byName map[string]string // name without "/" → ID

	problems []error
}

// NewStore opens the store at root, creating the directory if needed, and
// loads every container found there. A container directory that cannot be
// loaded (unreadable or invalid JSON, an ID that does not match its
// directory, a name already used by another container) is skipped and
// reported by Problems; it does not make NewStore fail.
func NewStore(root string) (*Store, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	s := &Store{
		root:   root,
		byID:   make(map[string]*Container),
		byName: make(map[string]string),
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if !e.IsDir() || !validID(e.Name()) {
			s.problems = append(s.problems, fmt.Errorf("container store: unexpected entry %s", filepath.Join(root, e.Name())))
			continue
		}
		c, err := s.load(e.Name())
		if err != nil {
			s.problems = append(s.problems, fmt.Errorf("container store: skipping container %s: %w", e.Name(), err))
			continue
		}
		if other, ok := s.byName[c.Name]; ok {
			s.problems = append(s.problems, fmt.Errorf("container store: skipping container %s: name %q already used by container %s", c.ID, c.InspectName(), other))
			continue
		}
		s.byID[c.ID] = c
		s.byName[c.Name] = c.ID
	}
	return s, nil
}

func (s *Store) load(id string) (*Container, error) {
	dir := s.Dir(id)
	data, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, err
	}
	c := &Container{}
	if err := json.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("%s: %w", ConfigFile, err)
	}
	if c.ID != id {
		return nil, fmt.Errorf("%s: ID %q does not match its directory", ConfigFile, c.ID)
	}
	if err := ValidName(c.Name); err != nil || strings.HasPrefix(c.Name, "/") {
		return nil, fmt.Errorf("%s: invalid name %q", ConfigFile, c.Name)
	}
	data, err = os.ReadFile(filepath.Join(dir, HostConfigFile))
	if err != nil {
		return nil, err
	}
	hc := &container.HostConfig{}
	if err := json.Unmarshal(data, hc); err != nil {
		return nil, fmt.Errorf("%s: %w", HostConfigFile, err)
	}
	c.HostConfig = hc
	c.State.Status = c.State.status()
	return c, nil
}

// Problems returns what NewStore could not load.
func (s *Store) Problems() []error { return slices.Clone(s.problems) }

// Root returns the store's directory.
func (s *Store) Root() string { return s.root }

// Dir returns the directory that holds the container's files (and is the
// natural place for its log file).
func (s *Store) Dir(id string) string { return filepath.Join(s.root, id) }

// Add indexes a new container and writes it to disk. If c.Name is empty a
// free name is generated. A name already in use is a conflict with
// Docker's message. c must not yet be shared with other goroutines.
func (s *Store) Add(c *Container) error {
	if !validID(c.ID) {
		return invalidf("invalid container ID %q", c.ID)
	}
	if c.Name != "" {
		if err := ValidName(c.Name); err != nil {
			return err
		}
		c.Name = normalizeName(c.Name)
	}
	s.io.Lock()
	defer s.io.Unlock()

	s.mu.Lock()
	if _, ok := s.byID[c.ID]; ok {
		s.mu.Unlock()
		return conflictf("container %s already exists", c.ID)
	}
	if c.Name == "" {
		c.Name = GenerateName(func(n string) bool { _, ok := s.byName[n]; return ok })
	} else if other, ok := s.byName[c.Name]; ok {
		s.mu.Unlock()
		return nameConflict(c.Name, other)
	}
	s.byID[c.ID] = c
	s.byName[c.Name] = c.ID
	s.mu.Unlock()

	err := os.Mkdir(s.Dir(c.ID), 0o700)
	if err == nil {
		err = s.write(c)
	}
	if err != nil {
		os.RemoveAll(s.Dir(c.ID))
		s.mu.Lock()
		delete(s.byID, c.ID)
		delete(s.byName, c.Name)
		s.mu.Unlock()
		return fmt.Errorf("saving container %s: %w", c.ID, err)
	}
	return nil
}

func nameConflict(name, id string) error {
	return conflictf("Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", name, id)
}

// Save writes c to disk after a change. The caller must hold c's lock.
func (s *Store) Save(c *Container) error {
	s.io.Lock()
	defer s.io.Unlock()
	s.mu.RLock()
	cur, ok := s.byID[c.ID]
	s.mu.RUnlock()
	if !ok || cur != c {
		return notFoundf("No such container: %s", c.ID)
	}
	return s.write(c)
}

// write stores c's two files; s.io must be held.
func (s *Store) write(c *Container) error {
	hc := c.HostConfig
	if hc == nil {
		hc = &container.HostConfig{}
	}
	hdata, err := json.Marshal(hc)
	if err != nil {
		return err
	}
	cdata, err := json.Marshal(c)
	if err != nil {
		return err
	}
	dir := s.Dir(c.ID)
	if err := atomicfile.WriteFile(filepath.Join(dir, HostConfigFile), hdata, 0o600); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, ConfigFile), cdata, 0o600)
}

// Get finds a container by full ID, by name (with or without the leading
// "/"), or by a unique ID prefix, in that order. A missing container is
// errdefs.ErrNotFound ("No such container: <ref>"); a prefix matching
// several IDs is errdefs.ErrInvalidArgument.
func (s *Store) Get(ref string) (*Container, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c, ok := s.byID[ref]; ok {
		return c, nil
	}
	if id, ok := s.byName[normalizeName(ref)]; ok {
		return s.byID[id], nil
	}
	if ref != "" {
		var found *Container
		for id, c := range s.byID {
			if strings.HasPrefix(id, ref) {
				if found != nil {
					return nil, invalidf("multiple IDs found with provided prefix: %s", ref)
				}
				found = c
			}
		}
		if found != nil {
			return found, nil
		}
	}
	return nil, notFoundf("No such container: %s", ref)
}

// Rename gives c a new name and saves it; the old name becomes free. The
// caller must hold c's lock.
func (s *Store) Rename(c *Container, newName string) error {
	if err := ValidName(newName); err != nil {
		return err
	}
	newName = normalizeName(newName)
	s.io.Lock()
	defer s.io.Unlock()

	s.mu.Lock()
	if cur, ok := s.byID[c.ID]; !ok || cur != c {
		s.mu.Unlock()
		return notFoundf("No such container: %s", c.ID)
	}
	oldName := c.Name
	if newName == oldName {
		s.mu.Unlock()
		return invalidf("Renaming a container with the same name as its current name")
	}
	if other, ok := s.byName[newName]; ok {
		s.mu.Unlock()
		return nameConflict(newName, other)
	}
	delete(s.byName, oldName)
	s.byName[newName] = c.ID
	c.Name = newName
	s.mu.Unlock()

	if err := s.write(c); err != nil {
		s.mu.Lock()
		delete(s.byName, newName)
		s.byName[oldName] = c.ID
		c.Name = oldName
		s.mu.Unlock()
		return fmt.Errorf("saving container %s: %w", c.ID, err)
	}
	return nil
}

// Delete removes the container with the given full ID from the index and
// removes its directory. If the directory cannot be removed the container
// stays in the store and the error is returned.
func (s *Store) Delete(id string) error {
	s.io.Lock()
	defer s.io.Unlock()
	s.mu.RLock()
	c, ok := s.byID[id]
	s.mu.RUnlock()
	if !ok {
		return notFoundf("No such container: %s", id)
	}
	if err := os.RemoveAll(s.Dir(id)); err != nil {
		return fmt.Errorf("removing container %s: %w", id, err)
	}
	s.mu.Lock()
	delete(s.byID, id)
	if s.byName[c.Name] == id {
		delete(s.byName, c.Name)
	}
	s.mu.Unlock()
	return nil
}

// List returns all containers, newest first (ties broken by ID).
func (s *Store) List() []*Container {
	s.mu.RLock()
	out := make([]*Container, 0, len(s.byID))
	for _, c := range s.byID {
		out = append(out, c)
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b *Container) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Len returns the number of containers in the store.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byID)
}
