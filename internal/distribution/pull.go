package distribution

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/berth-dev/berth/internal/layer"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/moby/go-archive/compression"
	"github.com/moby/moby/api/types/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxConfigSize bounds an image configuration, as Docker's 8 MiB.
const maxConfigSize = 8 << 20

// Images is where pulled images are registered: the image service.
type Images interface {
	// HasTop reports whether an image has chain as its top layer.
	HasTop(chain digest.Digest) bool
	// HasImage reports whether the image with that ID is stored.
	HasImage(id digest.Digest) bool
	// CommitPulled stores rawConfig as an image, points ref and canonical
	// (nil for none) at it, and reports whether that changed anything.
	// When heldTop is true the caller hands over one reference on the
	// image's top layer (kept or released by the image side, also on
	// failure).
	CommitPulled(rawConfig []byte, ref reference.Named, canonical reference.Canonical, heldTop bool) (updated bool, err error)
}

// PullOptions are the options of one pull.
type PullOptions struct {
	// Platform selects the image of a multi-platform index; nil means
	// the host's.
	Platform *ocispec.Platform
	// Host is the host's platform (the default of Platform).
	Host ocispec.Platform
	Auth *registry.AuthConfig
	// Progress receives Docker's progress messages.
	Progress *Progress
}

// Pull pulls ref into the layer store and images. A reference with
// neither tag nor digest pulls every tag of the repository.
func (s *Service) Pull(ctx context.Context, ref reference.Named, opts PullOptions, images Images) error {
	if opts.Progress == nil {
		opts.Progress = NewProgress(nil)
	}
	eps, err := s.registries.pullEndpoints(ref)
	if err != nil {
		return err
	}
	var lastErr error
	for i, ep := range eps {
		p := &puller{s: s, ep: ep, ref: ref, opts: opts, images: images}
		err := p.pull(ctx)
		if err == nil {
			return nil
		}
		lastErr = err
		// A mirror that fails is skipped unless it already started
		// writing images; the registry itself has the last word.
		if i == len(eps)-1 || !ep.mirror || p.committed || ctx.Err() != nil {
			break
		}
	}
	return lastErr
}

// puller pulls one reference from one endpoint.
type puller struct {
	s      *Service
	ep     endpoint
	ref    reference.Named
	opts   PullOptions
	images Images

	repo      name.Repository
	client    *http.Client
	committed bool
}

func (p *puller) pull(ctx context.Context) error {
	repo, err := p.ep.repository(path(p.ref))
	if err != nil {
		return fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	}
	p.repo = repo
	if p.client, err = p.ep.client(ctx, repo, authenticator(p.opts.Auth), repo.Scope(transport.PullScope)); err != nil {
		return p.accessError(err)
	}
	if tagged, ok := p.ref.(reference.Tagged); ok {
		_, err := p.pullOne(ctx, tagged.Tag(), p.ref, true)
		return err
	}
	if digested, ok := p.ref.(reference.Digested); ok {
		_, err := p.pullOne(ctx, digested.Digest().String(), p.ref, true)
		return err
	}
	return p.pullAllTags(ctx)
}

// pullAllTags pulls every tag of the repository (docker pull -a).
func (p *puller) pullAllTags(ctx context.Context) error {
	tags, err := remote.List(p.repo, remote.WithTransport(p.client.Transport), remote.WithContext(ctx))
	if err != nil {
		return p.accessError(asRegistryError(err))
	}
	if len(tags) == 0 {
		return fmt.Errorf("no tags available for %s: %w", reference.FamiliarName(p.ref), errdefs.ErrNotFound)
	}
	updated := false
	for _, tag := range tags {
		ref, err := reference.WithTag(p.ref, tag)
		if err != nil {
			continue
		}
		u, err := p.pullOne(ctx, tag, ref, false)
		if err != nil {
			return err
		}
		updated = updated || u
	}
	p.writeStatus(reference.FamiliarName(p.ref), updated)
	return nil
}

func (p *puller) writeStatus(name string, updated bool) {
	if updated {
		p.opts.Progress.Status("", "Status: Downloaded newer image for "+name)
	} else {
		p.opts.Progress.Status("", "Status: Image is up to date for "+name)
	}
}

// accessError words a refused access as dockerd does, and classes it as
// dockerd: not found (the repository may not exist), so that clients do
// not prompt for a login.
func (p *puller) accessError(err error) error {
	if isUnauthorized(err) {
		return &classed{
			msg:   fmt.Sprintf("pull access denied for %s, repository does not exist or may require 'docker login': %s", reference.FamiliarName(p.ref), err),
			class: errdefs.ErrNotFound,
		}
	}
	return err
}

// notFound words an unknown manifest as dockerd does.
func (p *puller) notFound(ref reference.Named, err error) error {
	var re *registryError
	if errors.As(err, &re) && re.status == http.StatusNotFound {
		return &classed{msg: fmt.Sprintf("manifest for %s not found: %s", reference.FamiliarString(ref), re.msg), class: errdefs.ErrNotFound}
	}
	return p.accessError(err)
}

// pullOne pulls the manifest tagOrDigest and the image it selects, and
// registers it as ref.
func (p *puller) pullOne(ctx context.Context, tagOrDigest string, ref reference.Named, status bool) (bool, error) {
	var nref name.Reference
	if d, err := digest.Parse(tagOrDigest); err == nil {
		nref = p.repo.Digest(d.String())
	} else {
		nref = p.repo.Tag(tagOrDigest)
	}
	desc, err := remote.Get(nref, remote.WithTransport(p.client.Transport), remote.WithContext(ctx))
	if err != nil {
		return false, p.notFound(ref, asRegistryError(err))
	}
	manifestDigest := desc.Digest
	raw := desc.Manifest
	mediaType := desc.MediaType
	if mediaType.IsIndex() {
		chosen, err := p.selectPlatform(raw)
		if err != nil {
			return false, err
		}
		d, err := remote.Get(p.repo.Digest(chosen.String()), remote.WithTransport(p.client.Transport), remote.WithContext(ctx))
		if err != nil {
			return false, p.notFound(ref, asRegistryError(err))
		}
		raw, mediaType = d.Manifest, d.MediaType
	}
	if mediaType == types.DockerManifestSchema1 || mediaType == types.DockerManifestSchema1Signed {
		return false, fmt.Errorf("%s: Docker Image Format v1 and Docker Image manifest version 2, schema 1 are no longer supported: %w",
			reference.FamiliarString(ref), errdefs.ErrNotImplemented)
	}
	if !mediaType.IsImage() {
		return false, fmt.Errorf("unsupported manifest media type %q: %w", mediaType, errdefs.ErrInvalidArgument)
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return false, fmt.Errorf("invalid manifest: %w", err)
	}
	rawConfig, diffIDs, err := p.fetchConfig(ctx, m)
	if err != nil {
		return false, err
	}

	p.opts.Progress.Status(tagOrDigest, "Pulling from "+path(p.ref))
	// An image already stored needs none of its layers.
	heldTop := false
	if !p.images.HasImage(digest.SHA256.FromBytes(rawConfig)) {
		if heldTop, err = p.pullLayers(ctx, m.Layers, diffIDs); err != nil {
			return false, err
		}
	}
	var canonical reference.Canonical
	if c, err := reference.WithDigest(reference.TrimNamed(ref), digest.Digest(manifestDigest.String())); err == nil {
		canonical = c
	}
	p.committed = true
	updated, err := p.images.CommitPulled(rawConfig, ref, canonical, heldTop)
	if err != nil {
		return false, err
	}
	p.opts.Progress.Status("", "Digest: "+manifestDigest.String())
	if status {
		p.writeStatus(reference.FamiliarString(ref), updated)
	}
	return updated, nil
}

// selectPlatform picks the manifest of the wanted platform in an index.
func (p *puller) selectPlatform(raw []byte) (v1.Hash, error) {
	idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return v1.Hash{}, fmt.Errorf("invalid index: %w", err)
	}
	want := p.wantPlatform()
	for _, m := range idx.Manifests {
		if m.Platform != nil && platformMatches(want, *m.Platform) && m.MediaType.IsImage() {
			return m.Digest, nil
		}
	}
	return v1.Hash{}, fmt.Errorf("no matching manifest for %s in the manifest list entries: %w", formatPlatform(want), errdefs.ErrNotFound)
}

func (p *puller) wantPlatform() ocispec.Platform {
	if p.opts.Platform != nil {
		return *p.opts.Platform
	}
	return p.opts.Host
}

func formatPlatform(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// platformMatches reports whether an image for have runs on want: same
// OS and architecture, and the variant when want names one (arm64's
// "v8" is its default).
func platformMatches(want ocispec.Platform, have v1.Platform) bool {
	if want.OS != have.OS || want.Architecture != have.Architecture {
		return false
	}
	wv, hv := want.Variant, have.Variant
	if want.Architecture == "arm64" {
		if wv == "v8" {
			wv = ""
		}
		if hv == "v8" {
			hv = ""
		}
	}
	return wv == "" || wv == hv
}

// fetchConfig downloads and checks the image configuration.
func (p *puller) fetchConfig(ctx context.Context, m *v1.Manifest) ([]byte, []digest.Digest, error) {
	if m.Config.Size > maxConfigSize {
		return nil, nil, fmt.Errorf("image configuration of %d bytes is too large", m.Config.Size)
	}
	cd, err := digest.Parse(m.Config.Digest.String())
	if err != nil {
		return nil, nil, fmt.Errorf("invalid config digest: %w", err)
	}
	file, err := p.s.fetch(ctx, p.s.tmpDir, download{
		client: p.client, repo: p.repo, digest: cd, size: m.Config.Size, progress: NewProgress(nil),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("error pulling image configuration: %w", p.accessError(asRegistryError(err)))
	}
	raw, err := os.ReadFile(file)
	os.Remove(file)
	if err != nil {
		return nil, nil, err
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, nil, fmt.Errorf("invalid image configuration: %w", err)
	}
	if cfg.OS != "" && cfg.OS != "linux" {
		return nil, nil, fmt.Errorf("image operating system %q cannot be used on this platform: %w", cfg.OS, errdefs.ErrInvalidArgument)
	}
	if p.opts.Platform != nil && cfg.Architecture != "" {
		have := v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
		if !platformMatches(*p.opts.Platform, have) {
			return nil, nil, fmt.Errorf("image with reference %s was found but its platform (%s) does not match the specified platform (%s): %w",
				reference.FamiliarString(p.ref), formatPlatform(ocispec.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}),
				formatPlatform(*p.opts.Platform), errdefs.ErrNotFound)
		}
	}
	if cfg.RootFS.Type != "layers" {
		return nil, nil, fmt.Errorf("invalid image configuration: rootfs type %q", cfg.RootFS.Type)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, nil, fmt.Errorf("layers from manifest don't match image configuration: %d layers, %d DiffIDs", len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	for _, d := range cfg.RootFS.DiffIDs {
		if err := d.Validate(); err != nil {
			return nil, nil, fmt.Errorf("invalid image configuration: %w", err)
		}
	}
	return raw, cfg.RootFS.DiffIDs, nil
}

// fetched is the outcome of one layer download.
type fetched struct {
	file string
	err  error
}

// pullLayers brings every layer into the store: the ones present are
// skipped, the others downloaded in parallel and unpacked in order. It
// returns whether the pull holds a reference on the top layer for the
// image.
func (p *puller) pullLayers(ctx context.Context, descs []v1.Descriptor, diffIDs []digest.Digest) (heldTop bool, retErr error) {
	chains := layer.ChainIDs(diffIDs)
	n := len(chains)
	have := 0
	for have < n {
		if _, err := p.s.layers.Get(chains[have]); err != nil {
			break
		}
		have++
	}
	// The image needs its own reference on its top layer: one that is
	// here only as some other image's lower layer is registered again.
	if n > 0 && have == n && !p.images.HasTop(chains[n-1]) {
		have = n - 1
	}
	source := reference.TrimNamed(p.ref).String()
	blobs := make([]digest.Digest, n)
	for i, d := range descs {
		dg, err := digest.Parse(d.Digest.String())
		if err != nil {
			return false, fmt.Errorf("invalid layer digest: %w", err)
		}
		blobs[i] = dg
	}
	for i := range have {
		p.opts.Progress.Status(shortID(blobs[i]), "Already exists")
		_ = p.s.metadata.Add(diffIDs[i], BlobSource{Digest: blobs[i], SourceRepository: source, MediaType: string(descs[i].MediaType)})
	}
	if have == n {
		// Layers present may be another pull's, not yet synced.
		return false, p.s.layers.Sync(chains[n-1])
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := p.startDownloads(ctx, descs[have:], blobs[have:])
	defer func() {
		cancel()
		for _, r := range results {
			if f := <-r; f.file != "" {
				os.Remove(f.file)
			}
		}
	}()

	j, err := p.s.newJournal()
	if err != nil {
		return false, err
	}
	defer j.remove()
	var held digest.Digest
	defer func() {
		if retErr != nil && held != "" {
			_ = p.s.layers.Release(held)
		}
	}()
	parent := digest.Digest("")
	if have > 0 {
		parent = chains[have-1]
	}
	for i := have; i < n; i++ {
		r := <-results[i-have]
		results[i-have] <- fetched{}
		if r.err != nil {
			return false, r.err
		}
		if err := j.set(held, chains[i]); err != nil {
			os.Remove(r.file)
			return false, err
		}
		err := p.register(ctx, r.file, blobs[i], diffIDs[i], parent)
		os.Remove(r.file)
		if err != nil {
			return false, err
		}
		if held != "" {
			if err := p.s.layers.Release(held); err != nil {
				held = chains[i]
				return false, err
			}
		}
		held = chains[i]
		_ = j.set(held)
		_ = p.s.metadata.Add(diffIDs[i], BlobSource{Digest: blobs[i], SourceRepository: source, MediaType: string(descs[i].MediaType)})
		p.opts.Progress.Status(shortID(blobs[i]), "Pull complete")
		parent = chains[i]
	}
	// The layers were registered without waiting for the disk: one sync
	// makes them all durable before the image names them. It comes after
	// every downloaded blob is removed, so the blobs' data, never synced,
	// need not be written at all.
	if err := p.s.layers.Sync(held); err != nil {
		return false, err
	}
	held = ""
	return true, nil
}

// startDownloads downloads the blobs, at most maxDownloads at a time, one
// download per distinct digest; each result channel (buffered) gets the
// file of its layer. Layers sharing a blob share its file, so the file of
// a layer is removed by whoever unpacks its blob last.
func (p *puller) startDownloads(ctx context.Context, descs []v1.Descriptor, blobs []digest.Digest) []chan fetched {
	results := make([]chan fetched, len(blobs))
	first := map[digest.Digest]int{}
	for i, b := range blobs {
		results[i] = make(chan fetched, 1)
		if _, ok := first[b]; !ok {
			first[b] = i
			p.opts.Progress.Status(shortID(b), "Pulling fs layer")
		}
	}
	sem := make(chan struct{}, p.s.maxDownloads)
	done := map[digest.Digest]chan fetched{}
	for b := range first {
		done[b] = make(chan fetched, 1)
	}
	for b, i := range first {
		go func(i int, b digest.Digest, out chan<- fetched) {
			select {
			case sem <- struct{}{}:
			default:
				p.opts.Progress.Status(shortID(b), "Waiting")
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					out <- fetched{err: ctx.Err()}
					return
				}
			}
			defer func() { <-sem }()
			file, err := p.s.fetch(ctx, p.s.tmpDir, download{
				client: p.client, repo: p.repo, digest: b, size: descs[i].Size, id: shortID(b), progress: p.opts.Progress,
			})
			if err != nil {
				err = p.accessError(asRegistryError(err))
			}
			out <- fetched{file: file, err: err}
		}(i, b, done[b])
	}
	// Fan the blob results out to the layers, copying the file for every
	// extra layer with the same blob.
	go func() {
		got := map[digest.Digest]fetched{}
		for i, b := range blobs {
			f, ok := got[b]
			if !ok {
				f = <-done[b]
				got[b] = f
				results[i] <- f
				continue
			}
			results[i] <- copyFetched(f, p.s.tmpDir)
		}
	}()
	return results
}

// copyFetched copies a downloaded blob for a second layer using it.
func copyFetched(f fetched, dir string) fetched {
	if f.err != nil {
		return fetched{err: f.err}
	}
	src, err := os.Open(f.file)
	if err != nil {
		return fetched{err: err}
	}
	defer src.Close()
	dst, err := os.CreateTemp(dir, "blob-")
	if err != nil {
		return fetched{err: err}
	}
	defer dst.Close()
	if _, err := io.Copy(dst, src); err != nil {
		os.Remove(dst.Name())
		return fetched{err: err}
	}
	return fetched{file: dst.Name()}
}

// register unpacks a downloaded blob (gzip, zstd or plain tar) on parent
// and checks that it is the layer the configuration names. On success
// the caller holds one reference on the new layer.
func (p *puller) register(ctx context.Context, file string, blob, diffID, parent digest.Digest) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	id := shortID(blob)
	pr := newProgressReader(f, p.opts.Progress, id, "Extracting", 0, st.Size())
	tar, err := decompress(pr)
	if err != nil {
		return fmt.Errorf("failed to register layer: %w", err)
	}
	defer tar.Close()
	l, err := p.s.layers.RegisterNoSync(ctx, tar, parent)
	if err != nil {
		return fmt.Errorf("failed to register layer: %w", err)
	}
	if l.DiffID() != diffID {
		_ = p.s.layers.Release(l.ChainID())
		return fmt.Errorf("failed to register layer: layer %s has DiffID %s, the image configuration says %s", blob, l.DiffID(), diffID)
	}
	return nil
}

// gzipMagic starts every gzip stream (with the deflate method).
var gzipMagic = []byte{0x1f, 0x8b, 0x08}

// decompress returns the tar of a layer blob. Gzip, the usual format, is
// read with klauspost/compress, in process and faster than compress/gzip;
// the other formats (zstd, and plain tar) as go-archive detects them.
func decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if magic, err := br.Peek(len(gzipMagic)); err == nil && bytes.Equal(magic, gzipMagic) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, err
		}
		return zr, nil
	}
	return compression.DecompressStream(br)
}
