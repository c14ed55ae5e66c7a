package distribution

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/klauspost/compress/gzip"
	"github.com/moby/moby/api/types/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types of the Docker schema2 manifests berth pushes.
const (
	mediaTypeManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeConfig   = "application/vnd.docker.container.image.v1+json"
	mediaTypeLayer    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// PushLayer is one layer of an image to push.
type PushLayer struct {
	DiffID digest.Digest
	// Size is the layer's size, for progress.
	Size int64
	// Open returns the layer's tar exactly as registered (its sha256 is
	// DiffID).
	Open func(ctx context.Context) (io.ReadCloser, error)
}

// PushImage is one tag to push.
type PushImage struct {
	Tag       string
	RawConfig []byte
	// Layers, bottom first.
	Layers []PushLayer
}

// PushOptions are the options of one push.
type PushOptions struct {
	Auth     *registry.AuthConfig
	Progress *Progress
	// Pushed is told the manifest digest of every tag pushed.
	Pushed func(tag string, manifest digest.Digest)
}

// pushResult is the auxiliary message closing each tag's push, as
// dockerd's.
type pushResult struct {
	Tag    string
	Digest string
	Size   int
}

// schema2 is a Docker image manifest, schema 2.
type schema2 struct {
	SchemaVersion int                  `json:"schemaVersion"`
	MediaType     string               `json:"mediaType"`
	Config        ocispec.Descriptor   `json:"config"`
	Layers        []ocispec.Descriptor `json:"layers"`
}

// Push pushes the images (tags of the repository named by repoRef) to its
// registry.
func (s *Service) Push(ctx context.Context, repoRef reference.Named, images []PushImage, opts PushOptions) error {
	if opts.Progress == nil {
		opts.Progress = NewProgress(nil)
	}
	opts.Progress.Status("", "The push refers to repository ["+repoRef.Name()+"]")
	ep, err := s.registries.endpointFor(reference.Domain(repoRef))
	if err != nil {
		return err
	}
	repo, err := ep.repository(path(repoRef))
	if err != nil {
		return fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	}
	// The token also covers pulling from the repositories of the same
	// registry that layers could be mounted from.
	scopes := []string{repo.Scope(transport.PushScope)}
	for _, img := range images {
		for _, l := range img.Layers {
			for _, src := range s.metadata.Sources(l.DiffID) {
				if other, ok := s.mountSource(repoRef, src); ok {
					r, err := ep.repository(other)
					if err == nil {
						scopes = append(scopes, r.Scope(transport.PullScope))
					}
				}
			}
		}
	}
	client, err := ep.client(ctx, repo, authenticator(opts.Auth), scopes...)
	if err != nil {
		return err
	}
	ps := &pusher{s: s, repo: repo, ref: repoRef, client: client, progress: opts.Progress}
	for _, img := range images {
		d, size, err := ps.pushImage(ctx, img)
		if err != nil {
			return err
		}
		opts.Progress.Status("", fmt.Sprintf("%s: digest: %s size: %d", img.Tag, d, size))
		opts.Progress.Aux(pushResult{Tag: img.Tag, Digest: d.String(), Size: size})
		if opts.Pushed != nil {
			opts.Pushed(img.Tag, d)
		}
	}
	return nil
}

// mountSource returns the repository path of src when it is another
// repository of ref's registry.
func (s *Service) mountSource(ref reference.Named, src BlobSource) (string, bool) {
	other, err := reference.ParseNormalizedNamed(src.SourceRepository)
	if err != nil || reference.Domain(other) != reference.Domain(ref) || other.Name() == ref.Name() {
		return "", false
	}
	return path(other), true
}

type pusher struct {
	s        *Service
	repo     name.Repository
	ref      reference.Named
	client   *http.Client
	progress *Progress
}

// pushImage pushes the layers, the configuration and the manifest of img
// and returns the manifest's digest and size.
func (ps *pusher) pushImage(ctx context.Context, img PushImage) (digest.Digest, int, error) {
	descs := make([]ocispec.Descriptor, len(img.Layers))
	errs := make([]error, len(img.Layers))
	// Each distinct layer once; the top one first, as dockerd lists them.
	first := map[digest.Digest]int{}
	var order []int
	for i := len(img.Layers) - 1; i >= 0; i-- {
		if _, ok := first[img.Layers[i].DiffID]; !ok {
			first[img.Layers[i].DiffID] = i
			order = append(order, i)
			ps.progress.Status(shortID(img.Layers[i].DiffID), "Preparing")
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, ps.s.maxUploads)
	var wg sync.WaitGroup
	for _, i := range order {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := shortID(img.Layers[i].DiffID)
			select {
			case sem <- struct{}{}:
			default:
				ps.progress.Status(id, "Waiting")
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					errs[i] = ctx.Err()
					return
				}
			}
			defer func() { <-sem }()
			descs[i], errs[i] = ps.pushLayer(ctx, img.Layers[i], id)
			if errs[i] != nil {
				cancel()
			}
		}(i)
	}
	wg.Wait()
	for _, i := range order {
		if errs[i] != nil && errs[i] != context.Canceled {
			return "", 0, errs[i]
		}
	}
	for _, i := range order {
		if errs[i] != nil {
			return "", 0, errs[i]
		}
	}
	for i, l := range img.Layers {
		descs[i] = descs[first[l.DiffID]]
	}

	configDigest := digest.SHA256.FromBytes(img.RawConfig)
	if ok, _, err := ps.exists(ctx, configDigest); err != nil {
		return "", 0, err
	} else if !ok {
		if err := ps.uploadBytes(ctx, configDigest, img.RawConfig); err != nil {
			return "", 0, err
		}
	}
	m := schema2{
		SchemaVersion: 2, MediaType: mediaTypeManifest,
		Config: ocispec.Descriptor{MediaType: mediaTypeConfig, Size: int64(len(img.RawConfig)), Digest: configDigest},
		Layers: descs,
	}
	raw, err := json.MarshalIndent(m, "", "   ")
	if err != nil {
		return "", 0, err
	}
	manifestURL := fmt.Sprintf("%s://%s/v2/%s/manifests/%s", ps.repo.Registry.Scheme(), ps.repo.RegistryStr(), ps.repo.RepositoryStr(), img.Tag)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, manifestURL, bytes.NewReader(raw))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Content-Type", mediaTypeManifest)
	if err := ps.do(req, http.StatusCreated, http.StatusOK, http.StatusAccepted); err != nil {
		return "", 0, err
	}
	return digest.SHA256.FromBytes(raw), len(raw), nil
}

// pushLayer makes the layer exist in the repository: already there,
// mounted from another repository of the registry, or uploaded.
func (ps *pusher) pushLayer(ctx context.Context, l PushLayer, id string) (ocispec.Descriptor, error) {
	target := ps.ref.Name()
	sources := ps.s.metadata.Sources(l.DiffID)
	for _, src := range sources {
		if src.SourceRepository != target {
			continue
		}
		ok, size, err := ps.exists(ctx, src.Digest)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		if ok {
			ps.progress.Status(id, "Layer already exists")
			return layerDescriptor(src, size), nil
		}
		_ = ps.s.metadata.Remove(l.DiffID, src)
	}
	for _, src := range sources {
		other, ok := ps.s.mountSource(ps.ref, src)
		if !ok {
			continue
		}
		mounted, err := ps.mount(ctx, src.Digest, other)
		if err != nil || !mounted {
			continue
		}
		ok, size, err := ps.exists(ctx, src.Digest)
		if err != nil || !ok {
			continue
		}
		ps.progress.Status(id, "Mounted from "+other)
		src.SourceRepository = target
		_ = ps.s.metadata.Add(l.DiffID, src)
		return layerDescriptor(src, size), nil
	}

	var (
		d    digest.Digest
		size int64
		err  error
	)
	for attempt := 1; ; attempt++ {
		d, size, err = ps.upload(ctx, l, id)
		if err == nil || !retryable(err) || attempt >= ps.s.maxAttempts {
			break
		}
		select {
		case <-ctx.Done():
			return ocispec.Descriptor{}, ctx.Err()
		case <-time.After(ps.s.retryStep * time.Duration(attempt)):
		}
	}
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	ps.progress.Status(id, "Pushed")
	_ = ps.s.metadata.Add(l.DiffID, BlobSource{Digest: d, SourceRepository: target, MediaType: mediaTypeLayer})
	return ocispec.Descriptor{MediaType: mediaTypeLayer, Size: size, Digest: d}, nil
}

func layerDescriptor(src BlobSource, size int64) ocispec.Descriptor {
	mt := src.MediaType
	if mt == "" {
		mt = mediaTypeLayer
	}
	return ocispec.Descriptor{MediaType: mt, Size: size, Digest: src.Digest}
}

// do sends req and checks its status.
func (ps *pusher) do(req *http.Request, codes ...int) error {
	resp, err := ps.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, codes...); err != nil {
		return asRegistryError(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

// exists asks the registry whether the repository has a blob.
func (ps *pusher) exists(ctx context.Context, d digest.Digest) (bool, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, blobURL(ps.repo, d), nil)
	if err != nil {
		return false, 0, err
	}
	resp, err := ps.client.Do(req)
	if err != nil {
		return false, 0, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, resp.ContentLength, nil
	case http.StatusNotFound:
		return false, 0, nil
	}
	return false, 0, asRegistryError(transport.CheckError(resp, http.StatusOK))
}

// uploadsURL is where blob uploads of the repository start.
func (ps *pusher) uploadsURL(query url.Values) string {
	u := fmt.Sprintf("%s://%s/v2/%s/blobs/uploads/", ps.repo.Registry.Scheme(), ps.repo.RegistryStr(), ps.repo.RepositoryStr())
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	return u
}

// startUpload opens an upload session and returns its location; with
// mount set, a 201 answer means the blob was mounted ("" location).
func (ps *pusher) startUpload(ctx context.Context, query url.Values) (string, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ps.uploadsURL(query), nil)
	if err != nil {
		return "", false, err
	}
	resp, err := ps.client.Do(req)
	if err != nil {
		return "", false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusCreated:
		return "", true, nil
	case http.StatusAccepted:
		loc, err := location(resp)
		return loc, false, err
	}
	return "", false, asRegistryError(transport.CheckError(resp, http.StatusAccepted))
}

// location resolves an upload's Location header.
func location(resp *http.Response) (string, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", fmt.Errorf("registry answered %s without an upload location", resp.Status)
	}
	u, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// mount asks the registry to mount blob d from repository from.
func (ps *pusher) mount(ctx context.Context, d digest.Digest, from string) (bool, error) {
	loc, mounted, err := ps.startUpload(ctx, url.Values{"mount": {d.String()}, "from": {from}})
	if err != nil || mounted {
		return mounted, err
	}
	// The registry started a plain upload instead: cancel it.
	if req, err := http.NewRequestWithContext(ctx, http.MethodDelete, loc, nil); err == nil {
		if resp, err := ps.client.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	return false, nil
}

// finish commits an upload session as blob d, sending body last.
func (ps *pusher) finish(ctx context.Context, loc string, d digest.Digest, body []byte) error {
	u, err := url.Parse(loc)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("digest", d.String())
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	return ps.do(req, http.StatusCreated)
}

// uploadBytes uploads a small blob in one request.
func (ps *pusher) uploadBytes(ctx context.Context, d digest.Digest, data []byte) error {
	loc, _, err := ps.startUpload(ctx, nil)
	if err != nil {
		return err
	}
	return ps.finish(ctx, loc, d, data)
}

// upload streams the layer's tar gzip-compressed to the registry and
// returns the blob's digest and size.
func (ps *pusher) upload(ctx context.Context, l PushLayer, id string) (digest.Digest, int64, error) {
	loc, _, err := ps.startUpload(ctx, nil)
	if err != nil {
		return "", 0, err
	}
	tar, err := l.Open(ctx)
	if err != nil {
		return "", 0, err
	}
	defer tar.Close()

	pr, pw := io.Pipe()
	digester := digest.SHA256.Digester()
	counter := &countWriter{}
	compressed := make(chan error, 1)
	go func() {
		zw := gzip.NewWriter(io.MultiWriter(digester.Hash(), counter, pw))
		_, err := io.Copy(zw, newProgressReader(tar, ps.progress, id, "Pushing", 0, l.Size))
		if err == nil {
			err = zw.Close()
		}
		pw.CloseWithError(err)
		compressed <- err
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, loc, pr)
	if err != nil {
		pr.CloseWithError(err)
		return "", 0, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := ps.client.Do(req)
	pr.CloseWithError(io.ErrClosedPipe)
	cerr := <-compressed
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusAccepted, http.StatusNoContent, http.StatusCreated); err != nil {
		return "", 0, asRegistryError(err)
	}
	if cerr != nil {
		return "", 0, cerr
	}
	if loc, err = location(resp); err != nil {
		return "", 0, err
	}
	d := digester.Digest()
	if err := ps.finish(ctx, loc, d, nil); err != nil {
		return "", 0, err
	}
	return d, counter.n, nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}
