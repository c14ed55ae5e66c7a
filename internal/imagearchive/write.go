package imagearchive

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Image is one image to write.
type Image struct {
	// Config is the image config JSON as stored; its sha256 is the
	// image's ID.
	Config []byte
	// Tags are the references the image is saved under; none when it is
	// saved by ID.
	Tags []reference.NamedTagged
	// Parent is the image this one was built from; written only when
	// the archive holds the parent too.
	Parent digest.Digest
}

// LayerSource opens the uncompressed tar of the layer chainID, the exact
// bytes whose sha256 is the layer's DiffID.
type LayerSource func(ctx context.Context, chainID digest.Digest) (io.ReadCloser, error)

// configHead is what Write reads from an image config.
type configHead struct {
	ocispec.Platform
	RootFS ocispec.RootFS `json:"rootfs"`
}

// epoch is the time of every entry: saving the same images twice gives
// the same bytes.
var epoch = time.Unix(0, 0).UTC()

// Write writes images as one archive to w, streaming: each layer is read
// twice from layers (once to learn its size for the tar header, once to
// copy it) and never held in memory or on disk. A layer whose content does
// not hash to its DiffID fails the write.
func Write(ctx context.Context, w io.Writer, images []Image, layers LayerSource) error {
	tw := tar.NewWriter(w)
	aw := &archiveWriter{ctx: ctx, tw: tw, layers: layers, written: map[digest.Digest]int64{}}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}

	inArchive := map[digest.Digest]bool{}
	for _, img := range images {
		inArchive[digest.SHA256.FromBytes(img.Config)] = true
	}
	var (
		items   []manifestItem
		index   []ocispec.Descriptor
		repos   = map[string]map[string]string{}
		written = map[digest.Digest]bool{}
	)
	for _, img := range images {
		id := digest.SHA256.FromBytes(img.Config)
		if written[id] {
			continue
		}
		written[id] = true
		var head configHead
		if err := json.Unmarshal(img.Config, &head); err != nil {
			return fmt.Errorf("image %s: invalid config: %w", id, err)
		}
		manifest, err := aw.writeImage(id, img.Config, head)
		if err != nil {
			return err
		}
		item := manifestItem{Config: blobPath(id), RepoTags: []string{}}
		for _, d := range head.RootFS.DiffIDs {
			item.Layers = append(item.Layers, blobPath(d))
		}
		if img.Parent != "" && inArchive[img.Parent] {
			item.Parent = img.Parent
		}
		platform := head.Platform
		desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: manifest.Digest, Size: manifest.Size, Platform: &platform}
		for _, ref := range img.Tags {
			item.RepoTags = append(item.RepoTags, reference.FamiliarString(ref))
			name := reference.FamiliarName(ref)
			if repos[name] == nil {
				repos[name] = map[string]string{}
			}
			if n := len(head.RootFS.DiffIDs); n > 0 {
				repos[name][ref.Tag()] = head.RootFS.DiffIDs[n-1].Encoded()
			}
			tagged := desc
			tagged.Annotations = map[string]string{AnnotationImageName: ref.String(), AnnotationRefName: ref.Tag()}
			index = append(index, tagged)
		}
		if len(img.Tags) == 0 {
			// Saved by ID: the layout still lists it, without a name.
			index = append(index, desc)
		}
		items = append(items, item)
	}

	if index == nil {
		index = []ocispec.Descriptor{}
	}
	if err := aw.writeJSON(indexFile, ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: index,
	}); err != nil {
		return err
	}
	if items == nil {
		items = []manifestItem{}
	}
	if err := aw.writeJSON(manifestFile, items); err != nil {
		return err
	}
	if err := aw.writeJSON(layoutFile, ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion}); err != nil {
		return err
	}
	if len(repos) > 0 {
		if err := aw.writeJSON(repositoriesFile, repos); err != nil {
			return err
		}
	}
	return tw.Close()
}

type archiveWriter struct {
	ctx    context.Context
	tw     *tar.Writer
	layers LayerSource
	// written holds the blobs already in the archive, with their size.
	written map[digest.Digest]int64
}

// writeImage writes the layers, the config and the OCI manifest of one
// image and returns the manifest's descriptor.
func (aw *archiveWriter) writeImage(id digest.Digest, config []byte, head configHead) (ocispec.Descriptor, error) {
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: id, Size: int64(len(config))},
		Layers:    []ocispec.Descriptor{},
	}
	var chain digest.Digest
	for _, diffID := range head.RootFS.DiffIDs {
		if err := diffID.Validate(); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("image %s: invalid DiffID %q: %w", id, diffID, err)
		}
		if chain == "" {
			chain = diffID
		} else {
			chain = digest.FromString(chain.String() + " " + diffID.String())
		}
		size, err := aw.writeLayer(chain, diffID)
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("image %s: %w", id, err)
		}
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: diffID, Size: size})
	}
	if err := aw.writeBlob(id, config); err != nil {
		return ocispec.Descriptor{}, err
	}
	data, err := json.Marshal(m)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	md := digest.SHA256.FromBytes(data)
	if err := aw.writeBlob(md, data); err != nil {
		return ocispec.Descriptor{}, err
	}
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(data))}, nil
}

func (aw *archiveWriter) writeBlob(d digest.Digest, data []byte) error {
	if _, ok := aw.written[d]; ok {
		return nil
	}
	if err := aw.writeFile(blobPath(d), data); err != nil {
		return err
	}
	aw.written[d] = int64(len(data))
	return nil
}

func (aw *archiveWriter) writeJSON(name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return aw.writeFile(name, append(data, '\n'))
}

func (aw *archiveWriter) writeFile(name string, data []byte) error {
	if err := aw.tw.WriteHeader(fileHeader(name, int64(len(data)))); err != nil {
		return err
	}
	_, err := aw.tw.Write(data)
	return err
}

func fileHeader(name string, size int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: epoch, Format: tar.FormatPAX}
}

// writeLayer writes the layer chainID as the blob diffID, once per
// archive, and returns its size.
func (aw *archiveWriter) writeLayer(chainID, diffID digest.Digest) (int64, error) {
	if size, ok := aw.written[diffID]; ok {
		return size, nil
	}
	size, err := aw.measure(chainID, diffID)
	if err != nil {
		return 0, err
	}
	rc, err := aw.layers(aw.ctx, chainID)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	if err := aw.tw.WriteHeader(fileHeader(blobPath(diffID), size)); err != nil {
		return 0, err
	}
	v := diffID.Verifier()
	n, err := io.Copy(io.MultiWriter(aw.tw, v), io.LimitReader(rc, size))
	if err != nil {
		return 0, fmt.Errorf("layer %s: %w", diffID, err)
	}
	if n != size || !v.Verified() {
		return 0, fmt.Errorf("layer %s changed while it was written", diffID)
	}
	aw.written[diffID] = size
	return size, nil
}

// measure reads the layer once: its size, and a check that its content is
// the DiffID's.
func (aw *archiveWriter) measure(chainID, diffID digest.Digest) (int64, error) {
	rc, err := aw.layers(aw.ctx, chainID)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	v := diffID.Verifier()
	n, err := io.Copy(v, rc)
	if err != nil {
		return 0, fmt.Errorf("layer %s: %w", diffID, err)
	}
	if !v.Verified() {
		return 0, fmt.Errorf("layer %s: the stored content does not match its DiffID", diffID)
	}
	return n, nil
}
