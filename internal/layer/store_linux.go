package layer

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/atomicfile"
)

const (
	linkDir   = "l"
	layersDir = "layers/sha256"
	mountsDir = "mounts"
	tmpDir    = "tmp"

	// unsyncedFile, in a layer's metadata directory, marks a layer whose
	// files may not be durable: New removes such a layer.
	unsyncedFile = "unsynced"

	// shortIDLength is the length of the names in <root>/l. Each lower
	// layer costs len("l/")+shortIDLength+1 bytes of mount options.
	shortIDLength = 26
)

// roLayer is the in-memory state of an image layer. Fields are guarded by
// store.mu.
type roLayer struct {
	info
	cacheID string
	short   string
	lower   string // lowerdir of a layer stacked on this one, minus its own link

	refs     int // image references, persisted
	children int // layers whose parent this is
	rw       int // read-write layers on this one
	pending  int // registrations in progress on this one

	// unsynced marks a layer registered by RegisterNoSync whose files
	// may not be on disk yet; its metadata directory holds unsyncedFile
	// until Sync.
	unsynced bool
}

// chain is the lowerdir list, relative to the store root, of a layer
// stacked directly on l.
func (l *roLayer) chain() string {
	if l.lower == "" {
		return linkDir + "/" + l.short
	}
	return linkDir + "/" + l.short + ":" + l.lower
}

type store struct {
	root string

	// syncMu serializes Sync, so that concurrent pulls share a sync
	// rather than queue several.
	syncMu sync.Mutex

	mu     sync.Mutex
	layers map[digest.Digest]*roLayer
	rws    map[string]*rwLayer
}

var _ Store = (*store)(nil)

// New opens the layer store at root, creating it if needed, and reloads the
// layers and read-write layers found there. Leftovers of interrupted
// operations are removed.
func New(root string) (Store, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{root, filepath.Join(root, linkDir), filepath.Join(root, layersDir), filepath.Join(root, mountsDir), filepath.Join(root, tmpDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	s := &store{
		root:   root,
		layers: make(map[digest.Digest]*roLayer),
		rws:    make(map[string]*rwLayer),
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *store) layerMetaDir(chainID digest.Digest) string {
	return filepath.Join(s.root, layersDir, chainID.Encoded())
}

func (s *store) Get(chainID digest.Digest) (Layer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.layers[chainID]
	if !ok {
		return nil, fmt.Errorf("layer %s: %w", chainID, errdefs.ErrNotFound)
	}
	return l.info, nil
}

func (s *store) Layers() []Layer {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Layer, 0, len(s.layers))
	for _, l := range s.layers {
		out = append(out, l.info)
	}
	return out
}

// Register implements Store.
func (s *store) Register(ctx context.Context, diff io.Reader, parent digest.Digest) (Layer, error) {
	l, err := s.register(ctx, diff, parent, true)
	if err != nil {
		return nil, err
	}
	// Stacked on (or found as) a layer still unsynced: it, its parents
	// and so this one become durable together.
	if err := s.Sync(l.ChainID()); err != nil {
		_ = s.Release(l.ChainID())
		return nil, err
	}
	return l, nil
}

// RegisterNoSync implements Store.
func (s *store) RegisterNoSync(ctx context.Context, diff io.Reader, parent digest.Digest) (Layer, error) {
	return s.register(ctx, diff, parent, false)
}

// register unpacks and stores a layer. With durable, the layer's files are
// synced before its metadata is written, as Register promises, unless a
// parent is still unsynced (then the caller syncs the chain); without, the
// layer is stored unsynced.
func (s *store) register(ctx context.Context, diff io.Reader, parent digest.Digest, durable bool) (_ Layer, retErr error) {
	var p *roLayer
	if parent != "" {
		if err := parent.Validate(); err != nil {
			return nil, fmt.Errorf("parent %q: %w: %v", parent, errdefs.ErrInvalidArgument, err)
		}
		s.mu.Lock()
		p = s.layers[parent]
		if p == nil {
			s.mu.Unlock()
			return nil, fmt.Errorf("parent layer %s: %w", parent, errdefs.ErrNotFound)
		}
		// Keep the parent on disk while unpacking.
		p.pending++
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			p.pending--
			s.collect(p)
			s.mu.Unlock()
		}()
	}

	cacheID := randomHex(32)
	work := filepath.Join(s.root, tmpDir, cacheID)
	if err := os.Mkdir(work, 0o700); err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	diffDir := filepath.Join(work, "diff")
	if err := os.Mkdir(diffDir, 0o755); err != nil {
		return nil, err
	}

	diffID, split, err := unpack(ctx, diff, diffDir)
	if err != nil {
		return nil, err
	}
	size, err := dirSize(diffDir)
	if err != nil {
		return nil, err
	}
	chainID := NextChainID(parent, diffID)

	short := newShortID()
	if err := os.WriteFile(filepath.Join(work, "link"), []byte(short), 0o644); err != nil {
		return nil, err
	}
	lower := ""
	if p != nil {
		lower = p.chain()
		if err := os.WriteFile(filepath.Join(work, "lower"), []byte(lower), 0o644); err != nil {
			return nil, err
		}
	}
	// The layer's files must be on disk before metadata without
	// unsyncedFile names it.
	if durable {
		if err := syncFS(s.root); err != nil {
			return nil, err
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.layers[chainID]; ok {
		l.refs++
		if err := s.writeRefs(l); err != nil {
			l.refs--
			return nil, err
		}
		return l.info, nil
	}

	dir := filepath.Join(s.root, cacheID)
	if err := os.Rename(work, dir); err != nil {
		return nil, err
	}
	link := filepath.Join(s.root, linkDir, short)
	defer func() {
		if retErr != nil {
			os.Remove(link)
			os.RemoveAll(dir)
		}
	}()
	if err := os.Symlink(filepath.Join("..", cacheID, "diff"), link); err != nil {
		return nil, err
	}
	l := &roLayer{
		info:    info{chainID: chainID, diffID: diffID, parent: parent, size: size},
		cacheID: cacheID,
		short:   short,
		lower:   lower,
		refs:    1,
		// Durable metadata may name a layer only once its parents are.
		unsynced: !durable || (p != nil && s.unsyncedChain(p)),
	}
	if err := s.writeLayerMeta(l, split); err != nil {
		return nil, err
	}
	s.layers[chainID] = l
	if p != nil {
		p.children++
	}
	return l.info, nil
}

// writeLayerMeta writes the metadata directory of l, with the tar-split
// record of its tar, in one step: files
// written and synced in a temporary directory that is then renamed.
func (s *store) writeLayerMeta(l *roLayer, split []byte) error {
	files := map[string]string{
		"diff":       l.diffID.String(),
		"size":       strconv.FormatInt(l.size, 10),
		"cache-id":   l.cacheID,
		"refs":       strconv.Itoa(l.refs),
		tarSplitFile: string(split),
	}
	if l.parent != "" {
		files["parent"] = l.parent.String()
	}
	if l.unsynced {
		files[unsyncedFile] = ""
	}
	return writeDirAtomic(s.layerMetaDir(l.chainID), files)
}

func (s *store) writeRefs(l *roLayer) error {
	return atomicfile.WriteFile(filepath.Join(s.layerMetaDir(l.chainID), "refs"), []byte(strconv.Itoa(l.refs)), 0o644)
}

// unsyncedChain reports whether l or one of its parents is unsynced.
// Called with s.mu held.
func (s *store) unsyncedChain(l *roLayer) bool {
	for ; l != nil; l = s.layers[l.parent] {
		if l.unsynced {
			return true
		}
	}
	return false
}

// Sync implements Store.
//
// Crash safety: an unsynced layer's metadata directory holds unsyncedFile,
// and New removes such a layer, so after a crash the store never names a
// layer whose files may be lost. Sync first syncs the whole file system,
// which makes durable every file of the layers found unsynced (all written
// before they were registered, so before this sync), and only then removes
// their markers, parents first, each removal synced before the next: a
// layer loses its marker only after its files and its parents' are
// durable, and never before its parent loses its own.
func (s *store) Sync(chainID digest.Digest) error {
	s.mu.Lock()
	none := !s.unsyncedChain(s.layers[chainID])
	s.mu.Unlock()
	if none {
		// Without waiting for another caller's sync.
		return nil
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	var pending []*roLayer
	for l := s.layers[chainID]; l != nil; l = s.layers[l.parent] {
		if l.unsynced {
			pending = append(pending, l)
		}
	}
	s.mu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	if err := syncFS(s.root); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(pending) - 1; i >= 0; i-- {
		l := pending[i]
		if !l.unsynced || s.layers[l.chainID] != l {
			// Synced or removed meanwhile.
			continue
		}
		meta := s.layerMetaDir(l.chainID)
		if err := os.Remove(filepath.Join(meta, unsyncedFile)); err != nil {
			return err
		}
		if err := syncDir(meta); err != nil {
			return err
		}
		l.unsynced = false
	}
	return nil
}

// Release implements Store.
func (s *store) Release(chainID digest.Digest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.layers[chainID]
	if !ok {
		return fmt.Errorf("layer %s: %w", chainID, errdefs.ErrNotFound)
	}
	if l.refs == 0 {
		return fmt.Errorf("layer %s has no references left: %w", chainID, errdefs.ErrFailedPrecondition)
	}
	l.refs--
	if err := s.writeRefs(l); err != nil {
		l.refs++
		return err
	}
	s.collect(l)
	return nil
}

// collect removes l, and then the parents it leaves unused, if nothing
// uses it any more. Called with s.mu held. Once the metadata is gone, the
// layer is gone; files left behind by a failure are removed by the next
// New.
func (s *store) collect(l *roLayer) {
	for l != nil {
		if l.refs > 0 || l.children > 0 || l.rw > 0 || l.pending > 0 {
			return
		}
		if s.layers[l.chainID] != l {
			return
		}
		if err := removeDirAtomic(s.layerMetaDir(l.chainID)); err != nil {
			return
		}
		delete(s.layers, l.chainID)
		os.Remove(filepath.Join(s.root, linkDir, l.short))
		os.RemoveAll(filepath.Join(s.root, l.cacheID))
		if l.parent == "" {
			return
		}
		p := s.layers[l.parent]
		if p == nil {
			return
		}
		p.children--
		l = p
	}
}

// load rebuilds the in-memory state from disk and removes leftovers.
func (s *store) load() error {
	for _, d := range []string{tmpDir, layersDir, mountsDir} {
		entries, err := os.ReadDir(filepath.Join(s.root, d))
		if err != nil {
			return err
		}
		for _, e := range entries {
			if d == tmpDir || strings.HasPrefix(e.Name(), ".") {
				if err := os.RemoveAll(filepath.Join(s.root, d, e.Name())); err != nil {
					return err
				}
			}
		}
	}

	entries, err := os.ReadDir(filepath.Join(s.root, layersDir))
	if err != nil {
		return err
	}
	for _, e := range entries {
		chainID := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if chainID.Validate() != nil {
			continue
		}
		if _, err := os.Lstat(filepath.Join(s.layerMetaDir(chainID), unsyncedFile)); err == nil {
			// Registered without sync and never synced: its files may
			// be incomplete. Its directory goes with the orphans.
			if err := removeDirAtomic(s.layerMetaDir(chainID)); err != nil {
				return err
			}
			continue
		}
		l, err := s.loadLayer(chainID)
		if err != nil {
			// A damaged layer must not keep the store from opening; it
			// is left on disk untouched.
			continue
		}
		s.layers[chainID] = l
	}
	for _, l := range s.layers {
		if l.parent != "" {
			if p := s.layers[l.parent]; p != nil {
				p.children++
			}
		}
	}

	entries, err = os.ReadDir(filepath.Join(s.root, mountsDir))
	if err != nil {
		return err
	}
	for _, e := range entries {
		r, err := s.loadRW(e.Name())
		if err != nil {
			continue
		}
		if r.parent != "" {
			p := s.layers[r.parent]
			if p == nil {
				continue
			}
			p.rw++
		}
		s.rws[r.id] = r
	}

	s.mu.Lock()
	for _, l := range s.layers {
		s.collect(l)
	}
	s.mu.Unlock()
	return s.removeOrphans()
}

func (s *store) loadLayer(chainID digest.Digest) (*roLayer, error) {
	meta := s.layerMetaDir(chainID)
	read := func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(meta, name))
		return strings.TrimSpace(string(b)), err
	}
	l := &roLayer{info: info{chainID: chainID}}
	v, err := read("diff")
	if err != nil {
		return nil, err
	}
	l.diffID = digest.Digest(v)
	if v, err = read("parent"); err == nil {
		l.parent = digest.Digest(v)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if v, err = read("size"); err != nil {
		return nil, err
	}
	if l.size, err = strconv.ParseInt(v, 10, 64); err != nil {
		return nil, err
	}
	if l.cacheID, err = read("cache-id"); err != nil {
		return nil, err
	}
	if v, err = read("refs"); err != nil {
		return nil, err
	}
	if l.refs, err = strconv.Atoi(v); err != nil {
		return nil, err
	}
	if l.cacheID == "" || strings.ContainsAny(l.cacheID, "/.") {
		return nil, fmt.Errorf("bad cache-id %q", l.cacheID)
	}
	dir := filepath.Join(s.root, l.cacheID)
	b, err := os.ReadFile(filepath.Join(dir, "link"))
	if err != nil {
		return nil, err
	}
	l.short = strings.TrimSpace(string(b))
	b, err = os.ReadFile(filepath.Join(dir, "lower"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	l.lower = strings.TrimSpace(string(b))
	if err := ensureLink(s.root, l.short, l.cacheID); err != nil {
		return nil, err
	}
	return l, nil
}

// removeOrphans removes layer directories no metadata refers to and links
// that point nowhere: what an interrupted Register, Release, CreateRW or
// ReleaseRW leaves behind.
func (s *store) removeOrphans() error {
	s.mu.Lock()
	known := map[string]bool{linkDir: true, "layers": true, mountsDir: true, tmpDir: true}
	for _, l := range s.layers {
		known[l.cacheID] = true
	}
	for id := range s.rws {
		known[id] = true
	}
	s.mu.Unlock()

	entries, err := os.ReadDir(s.root)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if known[e.Name()] || !e.IsDir() {
			continue
		}
		dir := filepath.Join(s.root, e.Name())
		// Never recurse into a mounted view.
		if m, err := mountinfo.Mounted(filepath.Join(dir, "merged")); m || (err != nil && !errors.Is(err, os.ErrNotExist)) {
			continue
		}
		os.RemoveAll(dir)
	}
	links, err := os.ReadDir(filepath.Join(s.root, linkDir))
	if err != nil {
		return err
	}
	for _, e := range links {
		p := filepath.Join(s.root, linkDir, e.Name())
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			os.Remove(p)
		}
	}
	return nil
}

// ensureLink recreates the short link of a layer if it is missing.
func ensureLink(root, short, dirName string) error {
	if short == "" || strings.ContainsAny(short, "/.") {
		return fmt.Errorf("bad link %q", short)
	}
	p := filepath.Join(root, linkDir, short)
	if _, err := os.Lstat(p); err == nil {
		return nil
	}
	return os.Symlink(filepath.Join("..", dirName, "diff"), p)
}

// writeDirAtomic creates dir holding files, or nothing at all after a
// crash: the files are written and synced in a hidden sibling directory
// that is renamed into place.
func writeDirAtomic(dir string, files map[string]string) (retErr error) {
	parent := filepath.Dir(dir)
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".")
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			os.RemoveAll(tmp)
		}
	}()
	for name, data := range files {
		if err := writeFileSync(filepath.Join(tmp, name), []byte(data)); err != nil {
			return err
		}
	}
	if err := os.Chmod(tmp, 0o700); err != nil {
		return err
	}
	if err := syncDir(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	return syncDir(parent)
}

// removeDirAtomic makes dir disappear in one step, then deletes it.
func removeDirAtomic(dir string) error {
	tmp := filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".del-"+randomHex(4))
	if err := os.Rename(dir, tmp); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	syncDir(filepath.Dir(dir))
	return os.RemoveAll(tmp)
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func syncFS(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func newShortID() string {
	b := make([]byte, 20)
	rand.Read(b)
	return base32.StdEncoding.EncodeToString(b)[:shortIDLength]
}

// dirSize is the size of the regular files below dir, each hard-linked
// file counted once.
func dirSize(dir string) (int64, error) {
	type inode struct{ dev, ino uint64 }
	seen := make(map[inode]bool)
	var size int64
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if st.Nlink > 1 {
			k := inode{uint64(st.Dev), st.Ino}
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		size += st.Size
		return nil
	})
	return size, err
}
