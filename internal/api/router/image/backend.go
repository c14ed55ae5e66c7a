package image

import (
	"context"
	"io"

	"github.com/berth-dev/berth/internal/api/httputil"
	"github.com/distribution/reference"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Backend is what the image routes need from the daemon.
type Backend interface {
	ArchiveBackend
	// ImportImage registers the (possibly compressed) tar read from src as
	// a one-layer image, tags it ref when ref is not nil, and returns its
	// ID. changes are Dockerfile instructions applied to its config.
	ImportImage(ctx context.Context, src io.Reader, ref reference.Named, platform *ocispec.Platform, comment string, changes []string) (digest.Digest, error)
	// PullImage pulls ref with the credentials auth (nil: anonymous),
	// writing progress messages to out; a reference without tag or
	// digest pulls every tag.
	PullImage(ctx context.Context, ref reference.Named, platform *ocispec.Platform, auth *registry.AuthConfig, out io.Writer) error
	// PushImage pushes ref (every tag of the repository when untagged),
	// writing progress messages to out.
	PushImage(ctx context.Context, ref reference.Named, auth *registry.AuthConfig, out io.Writer) error
	// SearchImages searches a registry's index.
	SearchImages(ctx context.Context, term string, limit int, filters SearchFilters, auth *registry.AuthConfig) ([]registry.SearchResult, error)
	// Images lists images; RepoTags and RepoDigests are nil when empty.
	Images(ctx context.Context, opts ListOptions) ([]imagetypes.Summary, error)
	// ImageInspect describes the image name refers to.
	ImageInspect(ctx context.Context, name string) (*InspectData, error)
	// ImageHistory lists the history of an image, newest first.
	ImageHistory(ctx context.Context, name string) ([]imagetypes.HistoryResponseItem, error)
	// ImageDelete untags and deletes images as dockerd's DELETE /images.
	ImageDelete(ctx context.Context, name string, force, prune bool) ([]imagetypes.DeleteResponse, error)
	// ResolveImageID returns the ID of the image name refers to.
	ResolveImageID(ctx context.Context, name string) (digest.Digest, error)
	// TagImage points ref at image id.
	TagImage(ctx context.Context, id digest.Digest, ref reference.Named) error
}

// ListOptions select the images of GET /images/json.
type ListOptions struct {
	// All includes intermediate images (untagged images with children).
	All bool
	// Filters: dangling, label, before, since, until and reference.
	Filters httputil.Filters
	// SharedSize computes the size shared with other images.
	SharedSize bool
}

// InspectData is an image's inspect response plus the deprecated fields
// that older API versions always carry and newer ones only when set.
type InspectData struct {
	imagetypes.InspectResponse
	// Parent is the ID of the image this one was built from, if any.
	Parent string
	// DockerVersion is the version of the engine that built the image.
	DockerVersion string
}
