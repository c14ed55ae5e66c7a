package image

import (
	"errors"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
)

// Resolve finds an image the way the Docker API resolves an image "name"
// parameter, in this order:
//
//   - a full ID, "sha256:<64 hex>" or "<64 hex>": only the image store is
//     consulted;
//   - a reference ("busybox", "busybox:1.36", "host:5000/a/b/c:tag",
//     "name@sha256:..."), normalized as Docker does;
//   - a prefix of an image ID, with or without "sha256:", that must
//     match exactly one image ("multiple IDs found with provided prefix"
//     otherwise, classified as an invalid argument).
//
// When nothing matches the error satisfies errdefs.IsNotFound and reads as
// dockerd's does: "No such image: <ref>", where a reference is shown in its
// familiar form with the implied tag ("No such image: x:latest" for "x").
// A string that is neither a reference nor an ID is an invalid argument.
func Resolve(s Store, refs References, nameOrID string) (*Image, error) {
	ref, err := reference.ParseAnyReference(nameOrID)
	if err != nil {
		return nil, invalidParameterError{err.Error()}
	}
	named, ok := ref.(reference.Named)
	if !ok {
		if d, ok := ref.(reference.Digested); ok {
			if img, err := s.Get(d.Digest()); err == nil {
				return img, nil
			}
		}
		return nil, noSuchRef(ref)
	}
	if id, err := refs.Get(named); err == nil {
		img, err := s.Get(id)
		if err == nil {
			return img, nil
		}
		if !errdefs.IsNotFound(err) {
			return nil, err
		}
		// A reference to a deleted image is treated as absent.
	}
	id, err := s.Search(nameOrID)
	if err != nil {
		var nf notFoundError
		if errors.As(err, &nf) {
			return nil, noSuchRef(ref)
		}
		return nil, err
	}
	img, err := s.Get(id)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, noSuchRef(ref)
		}
		return nil, err
	}
	return img, nil
}

func noSuchRef(ref reference.Reference) error {
	if named, ok := ref.(reference.Named); ok {
		ref = reference.TagNameOnly(named)
	}
	return notFoundError{"No such image: " + reference.FamiliarString(ref)}
}
