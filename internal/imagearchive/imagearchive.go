// Package imagearchive writes and reads image archives, the tar files of
// `docker save` and `docker load`.
//
// Write produces what Docker 25 and later write: Docker's manifest.json
// (with the legacy repositories file) and, in the same tar, an OCI image
// layout (oci-layout, index.json, blobs/sha256/<hex>). Each layer is
// stored once, as the exact uncompressed tar whose sha256 is its DiffID,
// and manifest.json refers to the blobs, so the archive loads in older
// engines (Docker 20.10), podman and skopeo alike.
//
// Extract and Archive read the archives Docker 20.10 (<id>/layer.tar,
// <id>.json), Docker 25+, podman and OCI tools write: manifest.json when
// present, else the OCI layout's index.json. An archive is never unpacked
// as a file system: regular files land under generated names in a private
// directory and links are resolved lexically inside the archive, so no
// entry name or link target can reach outside it.
package imagearchive

import (
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// File names at the root of an archive.
const (
	manifestFile     = "manifest.json"
	repositoriesFile = "repositories"
	indexFile        = ocispec.ImageIndexFile
	layoutFile       = ocispec.ImageLayoutFile
)

// Annotations naming an image in an OCI index, as Docker and containerd
// write them.
const (
	// AnnotationImageName holds the full reference
	// ("docker.io/library/busybox:latest").
	AnnotationImageName = "io.containerd.image.name"
	// AnnotationRefName holds the tag ("latest").
	AnnotationRefName = ocispec.AnnotationRefName
)

// manifestItem is one image of Docker's manifest.json.
type manifestItem struct {
	Config   string
	RepoTags []string
	Layers   []string
	// Parent is the image this one was built from, when the archive
	// holds it too.
	Parent digest.Digest `json:",omitempty"`
}

// blobPath is where the OCI layout keeps the blob d.
func blobPath(d digest.Digest) string {
	return "blobs/" + d.Algorithm().String() + "/" + d.Encoded()
}
