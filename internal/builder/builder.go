// Package builder turns a Dockerfile and a build context into an image the
// way Docker's classic builder does: BuildKit's parser reads the
// Dockerfile, and berth executes every instruction itself — a container
// per RUN, a layer written directly for COPY, ADD and WORKDIR, a config
// change for the rest — committing one image per step so that the build
// cache, `history` and `images -a` look as they do with dockerd.
package builder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/daemon/images"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/layer"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	buildtypes "github.com/moby/moby/api/types/build"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Options are the parameters of one build (the query of POST /build).
type Options struct {
	// Dockerfile is the Dockerfile's path inside the context.
	Dockerfile string
	Tags       []reference.Named
	// BuildArgs are --build-arg values; a nil value takes the variable
	// from the daemon's environment, as docker does.
	BuildArgs map[string]*string
	Labels    map[string]string
	NoCache   bool
	Pull      bool
	// Quiet prints only the image ID at the end.
	Quiet bool
	// Remove removes intermediate containers after successful steps,
	// ForceRemove after failed ones too.
	Remove, ForceRemove bool
	NetworkMode         string
	ExtraHosts          []string
	Target              string
	Platform            *ocispec.Platform
	// CacheFrom names images whose layers may satisfy cached steps.
	CacheFrom []string
	// Squash merges the layers the build adds into one.
	Squash bool
	// Memory, CPU limits etc. for RUN containers.
	Resources containertypes.Resources
	// Remote is an http(s) URL of the context (a tar, possibly
	// compressed) or of a lone Dockerfile; the request body is then unused.
	Remote string
	// AuthConfigs are the client's registry credentials by registry
	// (X-Registry-Config), for pulling base images.
	AuthConfigs map[string]registry.AuthConfig
}

// Images is what the builder needs from the image store.
type Images interface {
	// Get resolves a name, ID or ID prefix.
	Get(nameOrID string) (*image.Image, error)
	// CreateImage stores a config as an image built from parent; the
	// caller hands over one reference on the image's top layer.
	CreateImage(rawConfig []byte, parent digest.Digest) (digest.Digest, error)
	// CommitLayer stores the image of a step: its parent plus an optional
	// layer (an uncompressed tar) and one history entry.
	CommitLayer(ctx context.Context, c images.Commit, diff io.Reader) (digest.Digest, error)
	// TagImage points ref at id.
	TagImage(ctx context.Context, id digest.Digest, ref reference.Named) error
}

// Puller fetches an image from its registry, writing progress to out.
type Puller interface {
	PullImage(ctx context.Context, ref reference.Named, platform *ocispec.Platform, auth *registry.AuthConfig, out io.Writer) error
}

// Runner runs the containers of RUN steps.
type Runner interface {
	// Create makes a container; its read-write layer has the same ID.
	Create(ctx context.Context, cfg *containertypes.Config, hc *containertypes.HostConfig) (id string, err error)
	// Run starts a created container and waits for its end, with its
	// output written to out, and returns its exit code.
	Run(ctx context.Context, id string, out io.Writer) (code int, err error)
	// Remove deletes a container and its layer.
	Remove(ctx context.Context, id string) error
}

// Config wires a Builder.
type Config struct {
	// Root holds the build cache index and unpacked contexts.
	Root   string
	Images Images
	Layers layer.Store
	Runner Runner
	// Puller is nil when the daemon cannot pull.
	Puller Puller
}

// Builder runs builds; several may run at once.
type Builder struct {
	cfg   Config
	cache *cache
	store *ctxStore
}

// New returns a builder over cfg; the cache index is read from Root.
func New(cfg Config) (*Builder, error) {
	if err := os.MkdirAll(filepath.Join(cfg.Root, "tmp"), 0o700); err != nil {
		return nil, err
	}
	// Contexts of builds cut short by a crash.
	entries, _ := os.ReadDir(filepath.Join(cfg.Root, "tmp"))
	for _, e := range entries {
		os.RemoveAll(filepath.Join(cfg.Root, "tmp", e.Name()))
	}
	c, err := openCache(filepath.Join(cfg.Root, "cache.json"))
	if err != nil {
		return nil, err
	}
	store, err := newCtxStore(filepath.Join(cfg.Root, "context-files"), maxContextStore)
	if err != nil {
		return nil, err
	}
	return &Builder{cfg: cfg, cache: c, store: store}, nil
}

// Build reads a build context (a tar, possibly compressed) from src and
// builds the Dockerfile in it, writing Docker's JSON message stream to
// out. It returns the ID of the image built.
func (b *Builder) Build(ctx context.Context, src io.Reader, o Options, out io.Writer) (digest.Digest, error) {
	st := newStream(out, o.Quiet)
	id, err := b.build(ctx, src, o, st)
	if err != nil {
		return "", err
	}
	st.aux(id)
	if o.Quiet {
		st.forceLine(id.String() + "\n")
	}
	return id, nil
}

func (b *Builder) build(ctx context.Context, src io.Reader, o Options, st *stream) (digest.Digest, error) {
	if o.Platform != nil && (o.Platform.OS != "linux" || (o.Platform.Architecture != "" && o.Platform.Architecture != hostArch())) {
		return "", fmt.Errorf("platform %s is not supported: berth builds for linux/%s only: %w", platformString(*o.Platform), hostArch(), errdefs.ErrInvalidArgument)
	}
	if o.Remote != "" {
		body, dockerfileOnly, err := fetchRemote(ctx, o.Remote, st)
		if err != nil {
			return "", err
		}
		defer body.Close()
		src = body
		if dockerfileOnly {
			o.Dockerfile = ""
		}
	}
	bc, err := openContext(ctx, filepath.Join(b.cfg.Root, "tmp"), b.store, src, o.Dockerfile)
	if err != nil {
		return "", err
	}
	// Removing a large context takes a while: the client need not wait
	// for it (a daemon that stops first clears the directory at start).
	defer func() {
		go func() {
			bc.keep()
			bc.Close()
		}()
	}()

	df, err := parseDockerfile(bc.dockerfile)
	if err != nil {
		return "", err
	}
	plan, err := df.plan(o.Target, o.BuildArgs)
	if err != nil {
		return "", err
	}
	defer func() {
		if err := b.cache.flush(); err != nil {
			slog.Warn("build cache index", "err", err)
		}
	}()
	r := &run{b: b, o: o, st: st, ctx: bc, df: df, plan: plan, results: map[int]digest.Digest{}, bases: map[int]digest.Digest{}}
	defer r.cleanup()
	id, err := r.execute(ctx)
	if err != nil {
		return "", err
	}
	if len(o.CacheFrom) > 0 {
		// Only the local step cache is used for now.
		st.line("[Warning] --cache-from is not supported by berth's builder yet: the images it names were not used as cache sources\n")
	}
	if unused := df.unusedArgs(o.BuildArgs, r.usedArgs); len(unused) > 0 {
		st.line(fmt.Sprintf("[Warning] One or more build-args %v were not consumed\n", unused))
	}
	if o.Squash {
		if id, err = r.squash(ctx, id); err != nil {
			return "", err
		}
	}
	st.line(fmt.Sprintf("Successfully built %s\n", shortID(id)))
	for _, ref := range o.Tags {
		if err := b.cfg.Images.TagImage(ctx, id, ref); err != nil {
			return "", err
		}
		st.line(fmt.Sprintf("Successfully tagged %s\n", reference.FamiliarString(ref)))
	}
	return id, nil
}

func shortID(id digest.Digest) string { return short(id.Encoded()) }

func platformString(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// aux payload of the final message, as dockerd sends it.
type buildResult struct {
	ID string `json:"ID"`
}

func marshalAux(id digest.Digest) json.RawMessage {
	b, _ := json.Marshal(buildResult{ID: id.String()})
	return b
}

// stepError is a failed step, with the exit code of its command when a
// RUN failed (the docker CLI exits with it).
type stepError struct {
	msg  string
	code int
}

func (e *stepError) Error() string { return e.msg }

// ExitCode returns the exit code to report, 1 when none applies.
func ExitCode(err error) int {
	var se *stepError
	if errors.As(err, &se) && se.code != 0 {
		return se.code
	}
	return 1
}

// userError marks a problem with the Dockerfile or the context.
func userError(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
}

func trimNL(s string) string { return strings.TrimRight(s, "\n") }

// maxContextStore bounds the files kept from earlier contexts.
const maxContextStore = 1 << 30

// HaveContextFiles tells which of ds berthd keeps from earlier contexts:
// a client may send those as digests (POST /build/context/have).
func (b *Builder) HaveContextFiles(_ context.Context, ds []digest.Digest) []digest.Digest {
	return b.store.Have(ds)
}

// PruneCache forgets every cached step. The images of earlier builds stay
// until `image prune` removes them: the build cache of the classic
// builder is those images.
func (b *Builder) PruneCache(context.Context) (*buildtypes.CachePruneReport, error) {
	if err := b.cache.clear(); err != nil {
		return nil, err
	}
	if err := b.store.clear(); err != nil {
		return nil, err
	}
	return &buildtypes.CachePruneReport{CachesDeleted: []string{}}, nil
}
