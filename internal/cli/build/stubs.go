package build

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/moby/patternmatcher"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// berthd keeps the files of recent build contexts by digest. Before
// sending a context, berth asks which of its files berthd has (POST
// /build/context/have) and sends those as stub entries: size 0 with the
// PAX records BERTH.digest and BERTH.size. A daemon that does not know
// the call (dockerd) gets the whole context.
const (
	paxDigest = "BERTH.digest"
	paxSize   = "BERTH.size"
)

// fileDigest is what berth knows of a context file.
type fileDigest struct {
	Size   int64         `json:"size"`
	Mtime  int64         `json:"mtime"`
	Ino    uint64        `json:"ino"`
	Digest digest.Digest `json:"digest"`
}

// digestCache remembers the digests of context files by path, size, time
// and inode, so that unchanged files are not read again to be hashed.
type digestCache struct {
	path  string
	files map[string]fileDigest
	dirty bool
}

func loadDigestCache(dir string) *digestCache {
	c := &digestCache{path: filepath.Join(dir, "build-digests.json"), files: map[string]fileDigest{}}
	if b, err := os.ReadFile(c.path); err == nil {
		_ = json.Unmarshal(b, &c.files)
	}
	return c
}

func (c *digestCache) save() {
	if !c.dirty {
		return
	}
	if b, err := json.Marshal(c.files); err == nil {
		_ = os.MkdirAll(filepath.Dir(c.path), 0o700)
		_ = atomicfile.WriteFile(c.path, b, 0o600)
	}
}

// digestOf returns the digest of the regular file p, from the cache when
// the file did not change.
func (c *digestCache) digestOf(p string, info fs.FileInfo) (fileDigest, error) {
	st, _ := info.Sys().(*unix.Stat_t)
	cur := fileDigest{Size: info.Size(), Mtime: info.ModTime().UnixNano()}
	if st != nil {
		cur.Ino = st.Ino
	}
	if old, ok := c.files[p]; ok && old.Size == cur.Size && old.Mtime == cur.Mtime && old.Ino == cur.Ino {
		return old, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return cur, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return cur, err
	}
	cur.Digest = digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil)))
	c.files[p] = cur
	c.dirty = true
	return cur, nil
}

// contextHave is the body and answer of POST /build/context/have.
type contextHave struct {
	Digests []digest.Digest `json:"Digests"`
}

// withStubs returns the context tar with the files berthd already has
// replaced by stubs; the context as it is when berthd cannot say.
func withStubs(ctx context.Context, cli *command.Cli, dir string, excludes []string, tarStream io.Reader) io.Reader {
	pm, err := patternmatcher.New(excludes)
	if err != nil {
		return tarStream
	}
	cache := loadDigestCache(cli.Options.ConfigDir)
	files := map[string]fileDigest{}
	var ask []digest.Digest
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if skip, _ := pm.MatchesOrParentMatches(rel); skip {
			return nil
		}
		info, err := d.Info()
		if err != nil || info.Size() < minStubSize {
			return nil
		}
		fd, err := cache.digestOf(p, info)
		if err != nil {
			return nil
		}
		files[filepath.ToSlash(rel)] = fd
		ask = append(ask, fd.Digest)
		return nil
	})
	cache.save()
	if len(ask) == 0 {
		return tarStream
	}
	var have contextHave
	if err := cli.PostJSON(ctx, "/build/context/have", contextHave{Digests: ask}, &have); err != nil {
		return tarStream
	}
	known := map[digest.Digest]bool{}
	for _, d := range have.Digests {
		known[d] = true
	}
	if len(known) == 0 {
		return tarStream
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(rewriteStubs(tarStream, pw, dir, files, known)) }()
	return pr
}

// minStubSize: smaller files go as they are.
const minStubSize = 4096

// rewriteStubs copies a tar stream, writing stubs for the regular files
// whose digest berthd has and that did not change since they were hashed.
func rewriteStubs(in io.Reader, out io.Writer, dir string, files map[string]fileDigest, known map[digest.Digest]bool) error {
	tr := tar.NewReader(in)
	tw := tar.NewWriter(out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return tw.Close()
		}
		if err != nil {
			return err
		}
		if fd, ok := files[h.Name]; ok && h.Typeflag == tar.TypeReg && known[fd.Digest] && h.Size == fd.Size && unchanged(filepath.Join(dir, h.Name), fd) {
			stub := *h
			stub.Size = 0
			stub.PAXRecords = map[string]string{paxDigest: fd.Digest.String(), paxSize: strconv.FormatInt(fd.Size, 10)}
			stub.Format = tar.FormatPAX
			if err := tw.WriteHeader(&stub); err != nil {
				return err
			}
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// unchanged tells whether p still has the size and time it was hashed at.
func unchanged(p string, fd fileDigest) bool {
	info, err := os.Stat(p)
	return err == nil && info.Size() == fd.Size && info.ModTime().UnixNano() == fd.Mtime
}
