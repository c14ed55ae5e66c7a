package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/imageconfig"
	"github.com/berth-dev/berth/internal/oci"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// copyRequest is a COPY or ADD after variable expansion.
type copyRequest struct {
	text     string
	sources  []string
	contents []instructions.SourceContent
	dest     string
	from     string
	chown    string
	chmod    string
	add      bool
	excludes []string
	checksum string
}

func (q copyRequest) verb() string {
	if q.add {
		return "ADD"
	}
	return "COPY"
}

// copySource is one resolved source of a COPY or ADD.
type copySource struct {
	path  string // on the host: in the context, a --from image or a download
	name  string // the name the source has in the destination
	isDir bool
	// archive: ADD of a local tar, unpacked at the destination.
	archive bool
	// data: a heredoc's contents.
	data *string
	// download: ADD of a URL, fetched into path, mode 0600.
	download bool
	mtime    time.Time
}

func (r *run) copyStep(ctx context.Context, s *stage, q copyRequest) error {
	if len(q.excludes) > 0 {
		return userError("%s --exclude is not supported by berth's builder", q.verb())
	}
	if q.checksum != "" && !q.add {
		return userError("COPY does not take --checksum")
	}
	root := r.ctx.root
	if q.from != "" {
		var err error
		if root, err = r.fromRoot(ctx, s, q.from); err != nil {
			return err
		}
	}
	if q.from == "" && q.add {
		// ADD looks into local files to tell archives from the rest.
		if err := r.ctx.materialize(); err != nil {
			return err
		}
	}
	srcs, err := r.resolveSources(ctx, root, q)
	if err != nil {
		return err
	}
	mode, modeSet, err := parseChmod(q.chmod)
	if err != nil {
		return err
	}
	dest := q.dest
	if !path.IsAbs(dest) {
		wd := s.img.Config.WorkingDir
		if wd == "" {
			wd = "/"
		}
		trailing := strings.HasSuffix(dest, "/") || dest == "." || strings.HasSuffix(dest, "/.")
		dest = path.Join(wd, dest)
		if trailing && !strings.HasSuffix(dest, "/") {
			dest += "/"
		}
	}
	multi := len(srcs) > 1 || (len(q.sources) > 0 && hasWildcard(q.sources[0]) && len(srcs) != 1)
	if multi && !strings.HasSuffix(dest, "/") {
		return userError("When using %s with more than one source file, the destination must be a directory and end with a /", q.verb())
	}

	var known digests
	if q.from == "" {
		known = r.ctx
	}
	kind, sum, err := checksumSources(srcs, known)
	if err != nil {
		return err
	}
	createdBy := fmt.Sprintf("/bin/sh -c #(nop) %s %s:%s in %s ", q.verb(), kind, sum, q.dest)
	key := fmt.Sprintf("%s chown=%s chmod=%s from=%s %s:%s in %s", q.verb(), q.chown, q.chmod, q.from, kind, sum, dest)
	if r.cached(s, key) {
		return nil
	}
	if err := r.ensureImage(ctx, s); err != nil {
		return err
	}
	if q.from == "" {
		if err := r.ctx.materialize(); err != nil {
			return err
		}
	}
	return r.layerStep(ctx, s, createdBy, key, func(rootfs string) (bool, error) {
		c := &copier{rootfs: rootfs, mode: mode, modeSet: modeSet}
		if q.chown != "" {
			u, err := oci.ResolveUser(rootfs, q.chown, nil)
			if err != nil {
				return false, userError("%s --chown=%s: %v", q.verb(), q.chown, err)
			}
			c.uid, c.gid, c.chown = int(u.UID), int(u.GID), true
		}
		for _, src := range srcs {
			if err := c.copy(src, dest, multi); err != nil {
				return false, fmt.Errorf("%s failed: %w", q.verb(), err)
			}
		}
		return true, nil
	})
}

// layerStep runs fill on a new read-write layer on top of s and commits
// what it wrote as the step's layer; a fill that changed nothing commits
// the step without a layer.
func (r *run) layerStep(ctx context.Context, s *stage, createdBy, key string, fill func(rootfs string) (bool, error)) error {
	rw, err := r.b.cfg.Layers.CreateRW(ctx, "build-"+randomID(), s.chain)
	if err != nil {
		return err
	}
	defer r.b.cfg.Layers.ReleaseRW(rw.ID())
	rootfs, err := rw.Mount(ctx)
	if err != nil {
		return err
	}
	changed, err := fill(rootfs)
	if uerr := rw.Unmount(ctx); err == nil {
		err = uerr
	}
	if err != nil {
		return err
	}
	if !changed {
		return r.commit(ctx, s, createdBy, nil, "", key)
	}
	return r.commitRW(ctx, s, createdBy, rw, "", key)
}

// fromRoot mounts, for the rest of the build, the filesystem of a COPY
// --from source: an earlier stage or an image.
func (r *run) fromRoot(ctx context.Context, s *stage, from string) (string, error) {
	var id digest.Digest
	if j, ok := r.df.stageRef(from, s.index); ok {
		id = r.results[j]
	} else if _, ok := instructions.HasStage(r.df.stages, from); ok {
		return "", userError("COPY --from=%s: the stage must come before the one that copies from it", from)
	} else {
		var err error
		if id, err = r.image(ctx, from); err != nil {
			return "", err
		}
	}
	img, err := r.b.cfg.Images.Get(id.String())
	if err != nil {
		return "", err
	}
	rw, err := r.b.cfg.Layers.CreateRW(ctx, "build-"+randomID(), topChain(img.Config.RootFS.DiffIDs))
	if err != nil {
		return "", err
	}
	root, err := rw.Mount(ctx)
	if err != nil {
		r.b.cfg.Layers.ReleaseRW(rw.ID())
		return "", err
	}
	r.cleanups = append(r.cleanups, func() {
		rw.Unmount(context.Background())
		r.b.cfg.Layers.ReleaseRW(rw.ID())
	})
	return root, nil
}

func hasWildcard(p string) bool { return strings.ContainsAny(p, "*?[") }

// resolveSources expands and checks the sources of q against root.
func (r *run) resolveSources(ctx context.Context, root string, q copyRequest) ([]copySource, error) {
	var out []copySource
	for _, c := range q.contents {
		data := c.Data
		out = append(out, copySource{name: path.Base(c.Path), data: &data})
	}
	for _, src := range q.sources {
		if q.add && isURL(src) {
			if q.from != "" {
				return nil, userError("ADD with a URL cannot use --from")
			}
			cs, err := r.download(ctx, src, q)
			if err != nil {
				return nil, err
			}
			out = append(out, cs)
			continue
		}
		if q.checksum != "" {
			return nil, userError("ADD --checksum is only valid for URL sources")
		}
		clean := path.Clean("/" + filepath.ToSlash(src))
		if rel := path.Clean(filepath.ToSlash(src)); rel == ".." || strings.HasPrefix(rel, "../") {
			return nil, userError("%s failed: forbidden path outside the build context: %s ()", q.verb(), src)
		}
		var matches []string
		if hasWildcard(clean) {
			err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(root, p)
				if ok, _ := path.Match(clean, "/"+filepath.ToSlash(rel)); ok && rel != "." {
					matches = append(matches, "/"+filepath.ToSlash(rel))
					if d.IsDir() {
						return filepath.SkipDir
					}
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
			if len(matches) == 0 {
				return nil, userError("%s failed: no source files were specified", q.verb())
			}
		} else {
			matches = []string{clean}
		}
		for _, m := range matches {
			p, err := scopedPath(root, m)
			if err != nil {
				return nil, err
			}
			st, err := os.Stat(p)
			if err != nil {
				if q.from != "" {
					return nil, userError("%s failed: stat %s: file does not exist", q.verb(), m)
				}
				return nil, userError("%s failed: file not found in build context or excluded by .dockerignore: stat %s: file does not exist", q.verb(), strings.TrimPrefix(m, "/"))
			}
			cs := copySource{path: p, name: path.Base(m), isDir: st.IsDir(), mtime: st.ModTime()}
			if q.add && !cs.isDir && isArchive(p) {
				cs.archive = true
			}
			out = append(out, cs)
		}
	}
	if len(out) == 0 {
		return nil, userError("%s failed: no source files were specified", q.verb())
	}
	return out, nil
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// isArchive tells whether ADD unpacks a local file: a tar, compressed or
// not.
func isArchive(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	rdr, err := archiveReader(f)
	if err != nil {
		return false
	}
	defer rdr.Close()
	buf := make([]byte, 512)
	n, _ := io.ReadFull(rdr, buf)
	return n == 512 && isTarHeader(buf)
}

// isTarHeader checks the checksum of a tar header block.
func isTarHeader(b []byte) bool {
	sum, err := strconv.ParseInt(strings.Trim(string(b[148:156]), " \x00"), 8, 64)
	if err != nil {
		return false
	}
	var s int64
	for i, c := range b {
		if i >= 148 && i < 156 {
			c = ' '
		}
		s += int64(c)
	}
	return s == sum
}

// download fetches an ADD URL into the context's scratch directory.
func (r *run) download(ctx context.Context, src string, q copyRequest) (copySource, error) {
	u, err := url.Parse(src)
	if err != nil {
		return copySource{}, userError("ADD %s: %v", src, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return copySource{}, userError("ADD %s: %v", src, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return copySource{}, fmt.Errorf("ADD failed: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return copySource{}, fmt.Errorf("ADD failed: %s: %s", src, resp.Status)
	}
	dir, err := os.MkdirTemp(r.ctx.dir, "download-")
	if err != nil {
		return copySource{}, err
	}
	name := path.Base(u.Path)
	if name == "/" || name == "." || name == "" {
		name = "__unnamed__"
	}
	p := filepath.Join(dir, "file")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return copySource{}, err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return copySource{}, fmt.Errorf("ADD failed: %s: %w", src, err)
	}
	if q.checksum != "" {
		want, err := digest.Parse(q.checksum)
		if err != nil {
			return copySource{}, userError("ADD --checksum=%s: %v", q.checksum, err)
		}
		if got := digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil))); got != want {
			return copySource{}, userError("ADD failed: %s: digest mismatch %s: %s", src, want, got)
		}
	}
	mtime := time.Now()
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		mtime = lm
	}
	return copySource{path: p, name: name, download: true, mtime: mtime}, nil
}

// checksumSources hashes what the sources would put in the image: names,
// types, modes, link targets and contents (not times, as Docker's cache
// does not either). kind is Docker's word for the history: file, dir or
// multi.
//
// known, when not nil, gives the content digests of files taken earlier.
func checksumSources(srcs []copySource, known digests) (kind, sum string, err error) {
	h := sha256.New()
	for _, s := range srcs {
		fmt.Fprintf(h, "source %q archive=%v download=%v\n", s.name, s.archive, s.download)
		switch {
		case s.data != nil:
			io.WriteString(h, *s.data)
		case s.isDir:
			err = filepath.WalkDir(s.path, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(s.path, p)
				return hashEntry(h, p, rel, known)
			})
		default:
			err = hashEntry(h, s.path, ".", known)
		}
		if err != nil {
			return "", "", err
		}
	}
	switch {
	case len(srcs) > 1:
		kind = "multi"
	case srcs[0].isDir:
		kind = "dir"
	default:
		kind = "file"
	}
	return kind, hex.EncodeToString(h.Sum(nil)), nil
}

// digests are file digests taken before, for files whose bytes may not
// be written yet.
type digests interface {
	// known returns the digest of the file at p if it was taken.
	known(p string, size int64) ([]byte, bool)
	// materialize makes every file's bytes readable.
	materialize() error
}

func hashEntry(h hash.Hash, p, rel string, known digests) error {
	st, err := os.Lstat(p)
	if err != nil {
		return err
	}
	fmt.Fprintf(h, "%q %o %d", rel, st.Mode(), st.Size())
	switch {
	case st.Mode()&fs.ModeSymlink != 0:
		t, err := os.Readlink(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, " -> %q", t)
	case st.Mode().IsRegular():
		if known != nil {
			if sum, ok := known.known(p, st.Size()); ok {
				h.Write(sum)
				break
			}
			if err := known.materialize(); err != nil {
				return err
			}
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		d := sha256.New()
		_, err = io.Copy(d, f)
		f.Close()
		if err != nil {
			return err
		}
		h.Write(d.Sum(nil))
	}
	io.WriteString(h, "\n")
	return nil
}

func parseChmod(s string) (fs.FileMode, bool, error) {
	if s == "" {
		return 0, false, nil
	}
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o7777 {
		return 0, false, userError("invalid chmod parameter %q: only octal modes are supported", s)
	}
	return unixMode(uint32(m)), true, nil
}

// unixMode turns permission bits with setuid/setgid/sticky into an
// fs.FileMode.
func unixMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

// workdir sets the working directory, creating it (owned by root, as
// Docker does) when the image lacks it.
func (r *run) workdir(ctx context.Context, s *stage, c *instructions.WorkdirCommand) error {
	next := cloneConfig(s.img.Config)
	cmdSet := s.cmdSet
	if err := imageconfig.Apply(&next, c, s.lex, s.env(), &cmdSet); err != nil {
		return userError("%s", err)
	}
	text := "WORKDIR " + next.WorkingDir
	if r.cached(s, text) {
		return nil
	}
	if err := r.ensureImage(ctx, s); err != nil {
		return err
	}
	s.img.Config = next
	return r.layerStep(ctx, s, "/bin/sh -c #(nop) "+text, text, func(rootfs string) (bool, error) {
		cp := &copier{rootfs: rootfs}
		if cp.isDir(next.WorkingDir) {
			return false, nil
		}
		_, err := cp.mkdirAll(next.WorkingDir)
		return true, err
	})
}
