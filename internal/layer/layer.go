// Package layer stores image layers unpacked as overlay2 directories, keyed
// by their ChainID, and the read-write layers of containers stacked on top
// of them.
//
// On-disk layout below the store root:
//
//	<root>/<cacheID>/diff          the files of a layer (overlay whiteouts inside)
//	<root>/<cacheID>/link          the layer's short ID
//	<root>/<cacheID>/lower         "l/<short>:l/<short>..." of its parents, nearest first
//	<root>/l/<short>               symlink to ../<cacheID>/diff
//	<root>/layers/sha256/<hex>/    metadata of the layer whose ChainID is sha256:<hex>:
//	    diff, parent, size, cache-id, refs, tar-split.json.gz, and
//	    unsynced while a layer registered by RegisterNoSync is not synced
//	<root>/<id>/{diff,work,merged,link,lower}   read-write layer of container <id>
//	<root>/mounts/<id>/parent      metadata of that read-write layer
//	<root>/tmp/                    layers being unpacked; emptied by New
//
// The short links keep the overlay mount options of deep images within one
// page: the mount is done with the store root as working directory and
// lowerdir lists the relative "l/<short>" names.
//
// Reference counting: Register and Release count image references (persisted
// in the "refs" file). A layer is removed from disk once it has no
// references and no child layer or read-write layer is built on it. Release
// of a layer that still has children or read-write layers drops the
// reference at once and defers the removal: the layer goes away, together
// with any parents left unused, when its last user is released.
package layer

import (
	"context"
	"io"

	"github.com/opencontainers/go-digest"
)

// ChainID identifies a layer together with all of its parents, as defined
// by the OCI image specification.
type ChainID = digest.Digest

// ChainIDs returns the ChainIDs of a stack of layers given their DiffIDs,
// bottom layer first: ChainID(L0) = DiffID(L0) and
// ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	var parent digest.Digest
	for i, d := range diffIDs {
		parent = NextChainID(parent, d)
		out[i] = parent
	}
	return out
}

// NextChainID returns the ChainID of a layer with the given DiffID stacked
// on the layer whose ChainID is parent ("" for a base layer).
func NextChainID(parent, diffID digest.Digest) digest.Digest {
	if parent == "" {
		return diffID
	}
	return digest.FromString(parent.String() + " " + diffID.String())
}

// Layer is a read-only image layer.
type Layer interface {
	ChainID() digest.Digest
	DiffID() digest.Digest
	// Parent is the ChainID of the layer below, "" for a base layer.
	Parent() digest.Digest
	// Size is the size of the layer's contents in bytes.
	Size() int64
}

// RWLayer is the read-write layer of a container.
type RWLayer interface {
	ID() string
	// Parent is the ChainID of the image layer below, "" for scratch.
	Parent() digest.Digest
	// Mount mounts the layer and returns the path of the merged view.
	// Mounts are counted: each Mount needs one Unmount.
	Mount(ctx context.Context) (string, error)
	Unmount(ctx context.Context) error
	// Diff returns a tar of the changes in the upper directory, overlay
	// whiteouts turned back into ".wh." entries.
	Diff(ctx context.Context) (io.ReadCloser, error)
}

// Store holds image layers and container read-write layers.
type Store interface {
	// Register unpacks an uncompressed layer tar on top of parent ("" for
	// a base layer) and stores it under its ChainID, with one reference.
	// Registering a layer that exists only adds a reference.
	// The layer's files are durable before its metadata is.
	Register(ctx context.Context, diff io.Reader, parent digest.Digest) (Layer, error)
	// RegisterNoSync is Register without waiting for the layer's files to
	// reach the disk, for a caller registering several layers in a row:
	// the layer is usable at once, also as a parent, but stays unsynced
	// until Sync, and a crash before then removes it at the next New.
	// Whatever durably names an unsynced layer syncs it first (Register
	// on it or of it, CreateRW on it); a caller that records it elsewhere,
	// as an image does, calls Sync before.
	RegisterNoSync(ctx context.Context, diff io.Reader, parent digest.Digest) (Layer, error)
	// Sync makes the layer chainID and its parents durable, with one sync
	// of the file system for all of those still unsynced; a no-op when
	// none is.
	Sync(chainID digest.Digest) error
	// TarStream returns the uncompressed tar of a layer byte for byte as
	// it was registered (its digest is the DiffID), rebuilt from the
	// layer's files and the tar-split record Register keeps. Reading the
	// stream to its end fails if the result does not match the DiffID.
	TarStream(ctx context.Context, chainID digest.Digest) (io.ReadCloser, error)
	// Get returns a layer; errdefs.ErrNotFound if there is none.
	Get(chainID digest.Digest) (Layer, error)
	// Release drops one reference to a layer. See the package
	// documentation for when the layer leaves the disk.
	Release(chainID digest.Digest) error
	// CreateRW creates the read-write layer of container id on top of
	// parent ("" for an empty base).
	CreateRW(ctx context.Context, id string, parent digest.Digest) (RWLayer, error)
	GetRW(id string) (RWLayer, error)
	// ReleaseRW unmounts and removes a read-write layer.
	ReleaseRW(id string) error
	// Layers lists the image layers on disk.
	Layers() []Layer
}

// info is an immutable snapshot of a layer's identity.
type info struct {
	chainID digest.Digest
	diffID  digest.Digest
	parent  digest.Digest
	size    int64
}

func (i info) ChainID() digest.Digest { return i.chainID }
func (i info) DiffID() digest.Digest  { return i.diffID }
func (i info) Parent() digest.Digest  { return i.parent }
func (i info) Size() int64            { return i.size }
