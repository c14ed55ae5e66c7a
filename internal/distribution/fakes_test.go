package distribution

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/internal/layer"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fakeLayers is an in-memory layer store: layers are their tars.
type fakeLayers struct {
	mu     sync.Mutex
	layers map[digest.Digest]*fakeLayer
	// registered counts Register calls.
	registered int
}

type fakeLayer struct {
	chain, diffID, parent digest.Digest
	tar                   []byte
	refs, children        int
	// unsynced: registered by RegisterNoSync, Sync not called yet.
	unsynced bool
}

func (l *fakeLayer) ChainID() digest.Digest { return l.chain }
func (l *fakeLayer) DiffID() digest.Digest  { return l.diffID }
func (l *fakeLayer) Parent() digest.Digest  { return l.parent }
func (l *fakeLayer) Size() int64            { return int64(len(l.tar)) }

func newFakeLayers() *fakeLayers { return &fakeLayers{layers: map[digest.Digest]*fakeLayer{}} }

func (s *fakeLayers) Register(ctx context.Context, diff io.Reader, parent digest.Digest) (layer.Layer, error) {
	l, err := s.RegisterNoSync(ctx, diff, parent)
	if err != nil {
		return nil, err
	}
	return l, s.Sync(l.ChainID())
}

func (s *fakeLayers) RegisterNoSync(_ context.Context, diff io.Reader, parent digest.Digest) (layer.Layer, error) {
	data, err := io.ReadAll(diff)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.registered++
	if parent != "" && s.layers[parent] == nil {
		return nil, fmt.Errorf("parent %s: %w", parent, errdefs.ErrNotFound)
	}
	diffID := digest.FromBytes(data)
	chain := layer.NextChainID(parent, diffID)
	if l, ok := s.layers[chain]; ok {
		l.refs++
		return l, nil
	}
	l := &fakeLayer{chain: chain, diffID: diffID, parent: parent, tar: data, refs: 1, unsynced: true}
	s.layers[chain] = l
	if parent != "" {
		s.layers[parent].children++
	}
	return l, nil
}

func (s *fakeLayers) TarStream(_ context.Context, chain digest.Digest) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.layers[chain]
	if !ok {
		return nil, errdefs.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(l.tar)), nil
}

func (s *fakeLayers) Sync(chain digest.Digest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for l := s.layers[chain]; l != nil; l = s.layers[l.parent] {
		l.unsynced = false
	}
	return nil
}

// synced reports whether the layer chain and its parents are synced.
func (s *fakeLayers) synced(chain digest.Digest) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for l := s.layers[chain]; l != nil; l = s.layers[l.parent] {
		if l.unsynced {
			return false
		}
	}
	return true
}

func (s *fakeLayers) Get(chain digest.Digest) (layer.Layer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.layers[chain]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("layer %s: %w", chain, errdefs.ErrNotFound)
}

func (s *fakeLayers) Release(chain digest.Digest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.layers[chain]
	if !ok {
		return errdefs.ErrNotFound
	}
	if l.refs == 0 {
		return errdefs.ErrFailedPrecondition
	}
	l.refs--
	for l != nil && l.refs == 0 && l.children == 0 {
		delete(s.layers, l.chain)
		p := s.layers[l.parent]
		if p != nil {
			p.children--
		}
		l = p
	}
	return nil
}

func (s *fakeLayers) CreateRW(context.Context, string, digest.Digest) (layer.RWLayer, error) {
	return nil, errdefs.ErrNotImplemented
}
func (s *fakeLayers) GetRW(string) (layer.RWLayer, error) { return nil, errdefs.ErrNotImplemented }
func (s *fakeLayers) ReleaseRW(string) error              { return errdefs.ErrNotImplemented }
func (s *fakeLayers) Layers() []layer.Layer {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []layer.Layer
	for _, l := range s.layers {
		out = append(out, l)
	}
	return out
}

func (s *fakeLayers) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.layers)
}

// fakeImages keeps pulled images in memory, holding their top layer.
type fakeImages struct {
	mu      sync.Mutex
	layers  *fakeLayers
	configs map[digest.Digest][]byte
	refs    map[string]digest.Digest
}

func newFakeImages(l *fakeLayers) *fakeImages {
	return &fakeImages{layers: l, configs: map[digest.Digest][]byte{}, refs: map[string]digest.Digest{}}
}

func topOf(raw []byte) digest.Digest {
	var c ocispec.Image
	_ = json.Unmarshal(raw, &c)
	chains := layer.ChainIDs(c.RootFS.DiffIDs)
	if len(chains) == 0 {
		return ""
	}
	return chains[len(chains)-1]
}

func (f *fakeImages) HasTop(chain digest.Digest) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, raw := range f.configs {
		if topOf(raw) == chain {
			return true
		}
	}
	return false
}

func (f *fakeImages) HasImage(id digest.Digest) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.configs[id]
	return ok
}

func (f *fakeImages) CommitPulled(raw []byte, ref reference.Named, canonical reference.Canonical, heldTop bool) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.layers.synced(topOf(raw)) {
		return false, fmt.Errorf("image names layer %s before it is synced", topOf(raw))
	}
	id := digest.FromBytes(raw)
	_, existed := f.configs[id]
	if heldTop {
		for _, c := range f.configs {
			if topOf(c) == topOf(raw) {
				_ = f.layers.Release(topOf(raw))
				break
			}
		}
	}
	f.configs[id] = raw
	updated := !existed
	if f.refs[ref.String()] != id {
		updated = true
	}
	f.refs[ref.String()] = id
	if canonical != nil {
		f.refs[canonical.String()] = id
	}
	return updated, nil
}

// testRegistry is an in-process registry; wrap, when set, sees every
// request first.
type testRegistry struct {
	*httptest.Server
	host string
	wrap func(w http.ResponseWriter, r *http.Request, next http.Handler) bool
}

func newTestRegistry(t *testing.T) *testRegistry {
	t.Helper()
	reg := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	tr := &testRegistry{}
	tr.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tr.wrap != nil && tr.wrap(w, r, reg) {
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(tr.Close)
	tr.host = strings.TrimPrefix(tr.URL, "http://")
	return tr
}

// write stores img as repo:tag ("busybox:latest").
func (r *testRegistry) write(t *testing.T, repoTag string, img v1.Image) {
	t.Helper()
	ref, err := name.ParseReference(r.host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
}

// newTestService returns a service over fake stores with fast retries.
func newTestService(t *testing.T, cfg Config) (*Service, *fakeLayers, *fakeImages) {
	t.Helper()
	regs, err := NewRegistries(cfg)
	if err != nil {
		t.Fatal(err)
	}
	layers := newFakeLayers()
	s, err := New(Options{Root: t.TempDir(), Registries: regs, Layers: layers})
	if err != nil {
		t.Fatal(err)
	}
	s.retryStep = 10 * 1e6 // 10 ms
	return s, layers, newFakeImages(layers)
}

// pull pulls ref and returns the progress messages.
func pull(t *testing.T, s *Service, images Images, ref string, opts PullOptions) ([]jsonstream.Message, error) {
	t.Helper()
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	opts.Progress = NewProgress(&buf)
	if opts.Host.OS == "" {
		opts.Host = ocispec.Platform{OS: "linux", Architecture: "amd64"}
	}
	err = s.Pull(context.Background(), named, opts, images)
	return decodeMessages(t, &buf), err
}

func decodeMessages(t *testing.T, r io.Reader) []jsonstream.Message {
	t.Helper()
	var out []jsonstream.Message
	dec := json.NewDecoder(r)
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatalf("progress stream: %v", err)
		}
		out = append(out, m)
	}
}

// statuses renders messages as "id: status" lines (progress bars left out).
func statuses(msgs []jsonstream.Message) string {
	var b strings.Builder
	for _, m := range msgs {
		if m.Progress != nil {
			continue
		}
		if m.ID != "" {
			b.WriteString(m.ID + ": ")
		}
		b.WriteString(m.Status + "\n")
	}
	return b.String()
}

// leftovers lists the files a pull left in the service's temporary and
// journal directories.
func leftovers(t *testing.T, s *Service) []string {
	t.Helper()
	var out []string
	for _, d := range []string{s.tmpDir, s.journalDir} {
		entries, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			out = append(out, e.Name())
		}
	}
	return out
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func remoteWriteIndex(ref string, idx v1.ImageIndex) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	return remote.WriteIndex(r, idx)
}

// writeTLS stores img at ref on a TLS test server.
func writeTLS(srv *httptest.Server, ref string, img v1.Image) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	return remote.Write(r, img, remote.WithTransport(srv.Client().Transport))
}
