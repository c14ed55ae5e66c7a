package distribution

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/layer"
	"github.com/opencontainers/go-digest"
)

// Defaults of the transfer settings, as dockerd's.
const (
	DefaultMaxDownloads = 3
	DefaultMaxUploads   = 5
	// maxAttempts is how often a blob transfer is tried.
	maxAttempts = 5
	// retryStep is the back-off between attempts: 5 s, 10 s, 15 s, ...
	retryStep = 5 * time.Second
)

// Options configure the service.
type Options struct {
	// Root holds the distribution metadata and the transfer state
	// (image/overlay2/distribution in Docker's layout).
	Root       string
	Registries *Registries
	Layers     layer.Store
	// MaxDownloads and MaxUploads bound the parallel layer transfers of
	// one pull or push; 0 means the defaults.
	MaxDownloads, MaxUploads int
}

// Service pulls and pushes images.
type Service struct {
	registries   *Registries
	layers       layer.Store
	metadata     *Metadata
	tmpDir       string
	journalDir   string
	maxDownloads int
	maxUploads   int
	retryStep    time.Duration
	maxAttempts  int
}

// New opens the service's state under opts.Root. Downloads left by a
// daemon that died are removed; layer references a dead pull held are
// released by Recover.
func New(opts Options) (*Service, error) {
	if opts.Registries == nil || opts.Layers == nil {
		return nil, errors.New("distribution: registries and layer store are required")
	}
	if opts.MaxDownloads < 0 || opts.MaxUploads < 0 {
		return nil, fmt.Errorf("invalid max concurrent downloads/uploads: %d/%d", opts.MaxDownloads, opts.MaxUploads)
	}
	md, err := OpenMetadata(opts.Root)
	if err != nil {
		return nil, err
	}
	s := &Service{
		registries: opts.Registries, layers: opts.Layers, metadata: md,
		tmpDir: filepath.Join(opts.Root, "tmp"), journalDir: filepath.Join(opts.Root, "pulls"),
		maxDownloads: opts.MaxDownloads, maxUploads: opts.MaxUploads,
		retryStep: retryStep, maxAttempts: maxAttempts,
	}
	if s.maxDownloads == 0 {
		s.maxDownloads = DefaultMaxDownloads
	}
	if s.maxUploads == 0 {
		s.maxUploads = DefaultMaxUploads
	}
	if err := os.RemoveAll(s.tmpDir); err != nil {
		return nil, err
	}
	for _, d := range []string{s.tmpDir, s.journalDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Registries is the registry configuration the service works with.
func (s *Service) Registries() *Registries { return s.registries }

// Metadata is the distribution metadata.
func (s *Service) Metadata() *Metadata { return s.metadata }

// journal records the layer references a pull holds, so that a daemon
// killed mid-pull releases them at its next start.
type journal struct {
	path string
	// Chains are the layers the pull holds (or is about to hold) one
	// reference on.
	Chains []digest.Digest `json:"chains"`
}

func (s *Service) newJournal() (*journal, error) {
	f, err := os.CreateTemp(s.journalDir, "pull-*.json")
	if err != nil {
		return nil, err
	}
	f.Close()
	return &journal{path: f.Name()}, nil
}

func (j *journal) set(chains ...digest.Digest) error {
	j.Chains = chains
	data, err := json.Marshal(j)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(j.path, data, 0o600)
}

func (j *journal) remove() { _ = os.Remove(j.path) }

// Recover releases the layer references that pulls interrupted by a
// crash held: each recorded layer that exists and that no image has as
// top layer (isTop) loses one reference.
func (s *Service) Recover(isTop func(chain digest.Digest) bool) {
	paths, _ := filepath.Glob(filepath.Join(s.journalDir, "pull-*.json"))
	for _, p := range paths {
		var j journal
		if data, err := os.ReadFile(p); err == nil && json.Unmarshal(data, &j) == nil {
			for _, c := range j.Chains {
				if _, err := s.layers.Get(c); err != nil || isTop(c) {
					continue
				}
				if err := s.layers.Release(c); err != nil {
					slog.Warn("releasing a layer of an interrupted pull", "layer", c, "error", err)
				}
			}
		}
		_ = os.Remove(p)
	}
}
