// Package images is berthd's image service: the image half of the Docker
// Engine API (import, list, inspect, history, tag, delete) on top of the
// image config store, the reference store and the overlay2 layer store.
//
// Layer ownership: every distinct top layer (the ChainID of an image's last
// layer) used by at least one image holds exactly one reference in the
// layer store, owned by the service; lower layers are kept by their
// children. CreateImage takes over the reference a caller got from
// layer.Store.Register, and deleting the last image on a top layer
// releases it, which removes the layers no other image or container uses.
package images

import (
	"errors"
	"fmt"
	"sync"

	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/events"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/layer"
	"github.com/containerd/errdefs"
	eventtypes "github.com/moby/moby/api/types/events"
	"github.com/opencontainers/go-digest"
)

// ContainerUsage is implemented by the daemon's container side.
type ContainerUsage interface {
	// ImageUsers returns the IDs of containers created from image id,
	// split by running/not running.
	ImageUsers(id digest.Digest) (running, stopped []string)
}

// Config holds the stores the service works on. Usage may be nil and set
// later with SetUsage.
type Config struct {
	Images image.Store
	Refs   image.References
	Layers layer.Store
	Usage  ContainerUsage
	// TmpDir holds archives being loaded (normally <data-root>/tmp);
	// "" means the system's temporary directory.
	TmpDir string
	// Distribution pulls and pushes; nil means no registry access.
	Distribution *distribution.Service
}

// Service implements the image backend of the API.
type Service struct {
	images image.Store
	refs   image.References
	layers layer.Store
	tmpDir string
	dist   *distribution.Service

	// mu serializes every change to images, references and the layer
	// references the service owns.
	mu sync.Mutex

	usageMu sync.RWMutex
	usage   ContainerUsage

	events *events.Bus
}

// SetEvents makes the service publish image events (import, tag, untag,
// delete) on bus.
func (s *Service) SetEvents(bus *events.Bus) { s.events = bus }

// emit publishes an image event about id, with the reference as "name".
func (s *Service) emit(action eventtypes.Action, id digest.Digest, name string) {
	if s.events == nil {
		return
	}
	attrs := map[string]string{}
	if name != "" {
		attrs["name"] = name
	}
	s.events.Publish(eventtypes.ImageEventType, action, id.String(), attrs)
}

// New returns the image service over cfg's stores.
func New(cfg Config) (*Service, error) {
	if cfg.Images == nil || cfg.Refs == nil || cfg.Layers == nil {
		return nil, errors.New("images: the image, reference and layer stores are required")
	}
	return &Service{images: cfg.Images, refs: cfg.Refs, layers: cfg.Layers, usage: cfg.Usage, tmpDir: cfg.TmpDir, dist: cfg.Distribution}, nil
}

// SetUsage sets where the service learns which containers use an image.
func (s *Service) SetUsage(u ContainerUsage) {
	s.usageMu.Lock()
	s.usage = u
	s.usageMu.Unlock()
}

// imageUsers returns the containers created from id; none without usage.
func (s *Service) imageUsers(id digest.Digest) (running, stopped []string) {
	s.usageMu.RLock()
	u := s.usage
	s.usageMu.RUnlock()
	if u == nil {
		return nil, nil
	}
	return u.ImageUsers(id)
}

// Get finds an image by ID, ID prefix or reference; an unknown one gives
// Docker's "No such image: x" (errdefs.IsNotFound).
func (s *Service) Get(nameOrID string) (*image.Image, error) {
	return image.Resolve(s.images, s.refs, nameOrID)
}

// ChainID returns the ChainID of img's top layer, "" when it has no layers.
func (s *Service) ChainID(img *image.Image) digest.Digest {
	return topChainID(img.Config.RootFS.DiffIDs)
}

func topChainID(diffIDs []digest.Digest) digest.Digest {
	if len(diffIDs) == 0 {
		return ""
	}
	chain := layer.ChainIDs(diffIDs)
	return chain[len(chain)-1]
}

// Count is the number of images.
func (s *Service) Count() int { return len(s.images.List()) }

// CreateImage stores rawConfig as an image, built from parent when parent
// is not "", and returns its ID. The caller hands over one reference on the
// image's top layer, as layer.Store.Register returns it: the service keeps
// it, or releases it when another image already holds that layer or when
// creating the image fails.
func (s *Service) CreateImage(rawConfig []byte, parent digest.Digest) (digest.Digest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.createLocked(rawConfig, parent)
}

func (s *Service) createLocked(rawConfig []byte, parent digest.Digest) (_ digest.Digest, retErr error) {
	var chain digest.Digest
	if img, err := parseImage(rawConfig); err == nil {
		chain = topChainID(img.RootFS.DiffIDs)
	}
	held := chain != "" && s.topHolders(chain) > 0
	defer func() {
		if chain != "" && (held || retErr != nil) {
			if err := s.layers.Release(chain); err != nil && retErr == nil {
				retErr = err
			}
		}
	}()

	return s.storeLocked(rawConfig, parent)
}

// storeLocked stores rawConfig as an image with its parent; an image it
// created is removed again when the parent cannot be set.
func (s *Service) storeLocked(rawConfig []byte, parent digest.Digest) (digest.Digest, error) {
	id := digest.SHA256.FromBytes(rawConfig)
	_, err := s.images.Get(id)
	existed := err == nil
	if _, err := s.images.Create(rawConfig); err != nil {
		return "", err
	}
	if parent != "" {
		if err := s.images.SetParent(id, parent); err != nil {
			if !existed {
				_ = s.images.Delete(id)
			}
			return "", err
		}
	}
	return id, nil
}

// topHolders counts the images whose top layer is chain.
func (s *Service) topHolders(chain digest.Digest) int {
	n := 0
	for _, img := range s.images.List() {
		if s.ChainID(img) == chain {
			n++
		}
	}
	return n
}

// releaseTop drops the service's reference on the top layer of an image
// with the given DiffIDs once no image has it as top layer, and returns the
// ChainIDs of the layers that left the disk, top first.
func (s *Service) releaseTop(diffIDs []digest.Digest) ([]digest.Digest, error) {
	chain := layer.ChainIDs(diffIDs)
	if len(chain) == 0 {
		return nil, nil
	}
	top := chain[len(chain)-1]
	if s.topHolders(top) > 0 {
		return nil, nil
	}
	if err := s.layers.Release(top); err != nil {
		if errdefs.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("release layer %s: %w", top, err)
	}
	var removed []digest.Digest
	for i := len(chain) - 1; i >= 0; i-- {
		if _, err := s.layers.Get(chain[i]); !errdefs.IsNotFound(err) {
			break
		}
		removed = append(removed, chain[i])
	}
	return removed, nil
}
