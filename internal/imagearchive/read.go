package imagearchive

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/go-archive/compression"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxLinkHops bounds the links followed to resolve one name.
const maxLinkHops = 40

// maxJSONSize bounds the JSON documents (manifests, configs, indexes)
// read into memory.
const maxJSONSize = 64 << 20

// invalid returns an invalid-argument error about the archive.
func invalid(format string, args ...any) error {
	return fmt.Errorf("invalid archive: "+format+": %w", append(args, errdefs.ErrInvalidArgument)...)
}

// Archive is an image archive extracted into a private directory: its
// regular files under generated names, its links as a table of names.
type Archive struct {
	dir   string
	files map[string]string // archive name -> file under dir
	links map[string]string // archive name -> archive name it points to
	n     int               // files written so far
}

// Extract reads the archive tar from r (plain or compressed as dockerd
// accepts: gzip, bzip2, xz, zstd) into a new directory below parent.
// Entries named outside the archive ("../x", "/x"), links pointing outside
// it and special files are refused. Close removes the directory.
func Extract(ctx context.Context, r io.Reader, parent string) (_ *Archive, retErr error) {
	dir, err := os.MkdirTemp(parent, "load-")
	if err != nil {
		return nil, err
	}
	a := &Archive{dir: dir, files: map[string]string{}, links: map[string]string{}}
	defer func() {
		if retErr != nil {
			a.Close()
		}
	}()
	src, err := compression.DecompressStream(r)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	tr := tar.NewReader(src)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, invalid("%v", err)
		}
		name, err := entryName(h.Name)
		if err != nil {
			return nil, err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg:
			if err := a.store(name, tr); err != nil {
				return nil, err
			}
		case tar.TypeSymlink:
			if path.IsAbs(h.Linkname) {
				return nil, invalid("symbolic link %q points outside the archive (%q)", h.Name, h.Linkname)
			}
			target, err := inArchive(path.Join(path.Dir(name), h.Linkname))
			if err != nil {
				return nil, invalid("symbolic link %q points outside the archive (%q)", h.Name, h.Linkname)
			}
			a.setLink(name, target)
		case tar.TypeLink:
			target, err := entryName(h.Linkname)
			if err != nil {
				return nil, invalid("hard link %q points outside the archive (%q)", h.Name, h.Linkname)
			}
			a.setLink(name, target)
		case tar.TypeXGlobalHeader:
			continue
		default:
			return nil, invalid("unsupported entry %q (type %q)", h.Name, string(h.Typeflag))
		}
	}
	// Some writers pad the stream: drain it so a compressed stream is
	// checked to its end.
	if _, err := io.Copy(io.Discard, src); err != nil {
		return nil, invalid("%v", err)
	}
	return a, nil
}

// entryName cleans the name of an archive entry; names reaching outside
// the archive are refused.
func entryName(name string) (string, error) {
	if path.IsAbs(name) {
		return "", invalid("entry %q is outside the archive", name)
	}
	clean, err := inArchive(name)
	if err != nil || clean == "." {
		return "", invalid("entry %q is outside the archive", name)
	}
	return clean, nil
}

// inArchive cleans a relative name, refusing one that leaves the archive.
func inArchive(name string) (string, error) {
	clean := path.Clean(name)
	if clean == ".." || strings.HasPrefix(clean, "../") || path.IsAbs(clean) {
		return "", errors.New("outside the archive")
	}
	return clean, nil
}

func (a *Archive) store(name string, r io.Reader) error {
	delete(a.links, name)
	a.n++
	p := filepath.Join(a.dir, strconv.Itoa(a.n))
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("reading %s from the archive: %w", name, err)
	}
	if old, ok := a.files[name]; ok {
		os.Remove(old)
	}
	a.files[name] = p
	return nil
}

func (a *Archive) setLink(name, target string) {
	if old, ok := a.files[name]; ok {
		os.Remove(old)
		delete(a.files, name)
	}
	a.links[name] = target
}

// Close removes the extracted files.
func (a *Archive) Close() error { return os.RemoveAll(a.dir) }

// resolve follows the links of name, component by component.
func (a *Archive) resolve(name string) (string, error) {
	for hops := 0; ; hops++ {
		if hops > maxLinkHops {
			return "", invalid("too many levels of links resolving %q", name)
		}
		parts := strings.Split(name, "/")
		followed := false
		for i := 1; i <= len(parts); i++ {
			target, ok := a.links[strings.Join(parts[:i], "/")]
			if !ok {
				continue
			}
			rest := strings.Join(parts[i:], "/")
			next, err := inArchive(path.Join(target, rest))
			if err != nil {
				return "", invalid("%q resolves outside the archive", name)
			}
			name, followed = next, true
			break
		}
		if !followed {
			return name, nil
		}
	}
}

// open opens the file name (relative to the archive's root).
func (a *Archive) open(name string) (*os.File, error) {
	clean, err := entryName(name)
	if err != nil {
		return nil, err
	}
	if clean, err = a.resolve(clean); err != nil {
		return nil, err
	}
	p, ok := a.files[clean]
	if !ok {
		return nil, invalid("%s is missing", name)
	}
	return os.Open(p)
}

func (a *Archive) has(name string) bool {
	f, err := a.open(name)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// readJSON decodes the JSON file name into v and returns its bytes.
func (a *Archive) readJSON(name string, v any) ([]byte, error) {
	f, err := a.open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxJSONSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxJSONSize {
		return nil, invalid("%s is larger than %d bytes", name, maxJSONSize)
	}
	if v != nil {
		if err := json.Unmarshal(data, v); err != nil {
			return nil, invalid("%s: %v", name, err)
		}
	}
	return data, nil
}

// Entry is one image of an archive.
type Entry struct {
	// ID is the sha256 of Config.
	ID     digest.Digest
	Config []byte
	// DiffIDs are the config's rootfs.diff_ids.
	DiffIDs []digest.Digest
	// RepoTags are the names the archive gives the image, as written
	// ("busybox:latest", "docker.io/library/busybox:latest").
	RepoTags []string
	// Parent is the image it was built from, when the archive says so.
	Parent digest.Digest
	layers []string
}

// configRootFS is the part of an image config Images reads.
type configRootFS struct {
	RootFS *struct {
		Type    string          `json:"type"`
		DiffIDs []digest.Digest `json:"diff_ids"`
	} `json:"rootfs"`
}

// Images lists the images of the archive, from Docker's manifest.json or,
// without it, from the OCI layout's index.json. Every file an image needs
// is checked to be present.
func (a *Archive) Images() ([]*Entry, error) {
	var (
		entries []*Entry
		err     error
	)
	switch {
	case a.has(manifestFile):
		entries, err = a.dockerImages()
	case a.has(indexFile):
		entries, err = a.ociImages()
	default:
		return nil, invalid("neither %s nor %s found", manifestFile, indexFile)
	}
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		for _, l := range e.layers {
			f, err := a.open(l)
			if err != nil {
				return nil, fmt.Errorf("image %s: layer: %w", e.ID, err)
			}
			f.Close()
		}
	}
	return entries, nil
}

func (a *Archive) dockerImages() ([]*Entry, error) {
	var items []manifestItem
	if _, err := a.readJSON(manifestFile, &items); err != nil {
		return nil, err
	}
	var out []*Entry
	for _, item := range items {
		e, err := a.entry(item.Config, "", item.Layers)
		if err != nil {
			return nil, err
		}
		e.RepoTags, e.Parent = item.RepoTags, item.Parent
		out = append(out, e)
	}
	return out, nil
}

// entry reads the config at configPath (checked against want unless "")
// and pairs it with the layer files.
func (a *Archive) entry(configPath string, want digest.Digest, layers []string) (*Entry, error) {
	var c configRootFS
	raw, err := a.readJSON(configPath, &c)
	if err != nil {
		return nil, err
	}
	id := digest.SHA256.FromBytes(raw)
	if want != "" && want != id && want.Algorithm().Available() && want.Algorithm().FromBytes(raw) != want {
		return nil, invalid("config %s does not match its digest %s", configPath, want)
	}
	if c.RootFS == nil {
		return nil, invalid("image config %s has no rootfs", configPath)
	}
	for _, d := range c.RootFS.DiffIDs {
		if err := d.Validate(); err != nil {
			return nil, invalid("image config %s: bad diff ID %q: %v", configPath, d, err)
		}
	}
	if len(layers) != len(c.RootFS.DiffIDs) {
		return nil, invalid("layers length mismatch: the image config has %d, the manifest %d", len(c.RootFS.DiffIDs), len(layers))
	}
	return &Entry{ID: id, Config: raw, DiffIDs: c.RootFS.DiffIDs, layers: layers}, nil
}

// Media types of Docker's distribution manifests, which OCI layouts may
// hold.
const (
	dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	dockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
)

func (a *Archive) ociImages() ([]*Entry, error) {
	var idx ocispec.Index
	if _, err := a.readJSON(indexFile, &idx); err != nil {
		return nil, err
	}
	var out []*Entry
	byManifest := map[digest.Digest]*Entry{}
	for _, desc := range idx.Manifests {
		m, err := a.selectManifest(desc, 0)
		if err != nil {
			return nil, err
		}
		e := byManifest[m]
		if e == nil {
			if e, err = a.ociEntry(m); err != nil {
				return nil, err
			}
			byManifest[m] = e
			out = append(out, e)
		}
		if name := ociName(desc.Annotations); name != "" {
			e.RepoTags = append(e.RepoTags, name)
		}
	}
	return out, nil
}

// ociName is the reference an index descriptor names: containerd's full
// name, else a ref.name that is a whole reference (not just a tag).
func ociName(ann map[string]string) string {
	if n := ann[AnnotationImageName]; n != "" {
		return n
	}
	if n := ann[AnnotationRefName]; strings.ContainsAny(n, ":/") {
		return n
	}
	return ""
}

// selectManifest returns the manifest desc points at; an index gives its
// manifest for this host's platform.
func (a *Archive) selectManifest(desc ocispec.Descriptor, depth int) (digest.Digest, error) {
	if err := desc.Digest.Validate(); err != nil {
		return "", invalid("index: bad digest %q: %v", desc.Digest, err)
	}
	switch desc.MediaType {
	case ocispec.MediaTypeImageManifest, dockerManifest:
		return desc.Digest, nil
	case ocispec.MediaTypeImageIndex, dockerManifestList:
	default:
		return "", invalid("index: unsupported media type %q", desc.MediaType)
	}
	if depth > 4 {
		return "", invalid("index: too deeply nested")
	}
	var idx ocispec.Index
	if err := a.readBlob(desc.Digest, &idx); err != nil {
		return "", err
	}
	for _, m := range idx.Manifests {
		if p := m.Platform; p != nil && p.OS == "linux" && p.Architecture == goruntime.GOARCH {
			return a.selectManifest(m, depth+1)
		}
	}
	return "", invalid("index %s: no image for linux/%s", desc.Digest, goruntime.GOARCH)
}

// readBlob reads a JSON blob of the layout, checked against its digest.
func (a *Archive) readBlob(d digest.Digest, v any) error {
	data, err := a.readJSON(blobPath(d), v)
	if err != nil {
		return err
	}
	if !d.Algorithm().Available() || d.Algorithm().FromBytes(data) != d {
		return invalid("blob %s does not match its digest", d)
	}
	return nil
}

func (a *Archive) ociEntry(md digest.Digest) (*Entry, error) {
	var m ocispec.Manifest
	if err := a.readBlob(md, &m); err != nil {
		return nil, err
	}
	if err := m.Config.Digest.Validate(); err != nil {
		return nil, invalid("manifest %s: bad config digest: %v", md, err)
	}
	layers := make([]string, len(m.Layers))
	for i, l := range m.Layers {
		if err := l.Digest.Validate(); err != nil {
			return nil, invalid("manifest %s: bad layer digest: %v", md, err)
		}
		layers[i] = blobPath(l.Digest)
	}
	return a.entry(blobPath(m.Config.Digest), m.Config.Digest, layers)
}

// OpenLayer opens layer i of e, decompressed. Its content is checked
// against the DiffID: reading to the end fails when it does not match.
func (a *Archive) OpenLayer(e *Entry, i int) (io.ReadCloser, error) {
	if i < 0 || i >= len(e.layers) {
		return nil, fmt.Errorf("image %s has no layer %d", e.ID, i)
	}
	f, err := a.open(e.layers[i])
	if err != nil {
		return nil, err
	}
	dec, err := compression.DecompressStream(f)
	if err != nil {
		f.Close()
		return nil, invalid("layer %d of image %s: %v", i, e.ID, err)
	}
	want := e.DiffIDs[i]
	return &verifyingReader{r: dec, closers: []io.Closer{dec, f}, want: want, dg: want.Algorithm().Digester(), layer: i}, nil
}

// verifyingReader fails at the end of a layer whose content is not its
// DiffID.
type verifyingReader struct {
	r       io.Reader
	closers []io.Closer
	want    digest.Digest
	dg      digest.Digester
	layer   int
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.dg.Hash().Write(p[:n])
	if errors.Is(err, io.EOF) {
		if got := v.dg.Digest(); got != v.want {
			return n, fmt.Errorf("invalid diffID for layer %d: expected %q, got %q: %w", v.layer, v.want, got, errdefs.ErrInvalidArgument)
		}
	}
	return n, err
}

func (v *verifyingReader) Close() error {
	var errs []error
	for _, c := range v.closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// LayerSize is the size of layer i of e as stored in the archive (maybe
// compressed), for progress; 0 when unknown.
func (a *Archive) LayerSize(e *Entry, i int) int64 {
	f, err := a.open(e.layers[i])
	if err != nil {
		return 0
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0
	}
	return fi.Size()
}
