package testutil

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// BusyboxCandidates are the places where the host's static busybox is
// looked for, in order (Debian's busybox-static installs /usr/bin/busybox,
// reachable as /bin/busybox on merged-/usr systems).
var BusyboxCandidates = []string{"/usr/bin/busybox", "/bin/busybox"}

// Users and groups of the busybox root filesystem.
const (
	BerthUID    = 1000 // user "berth"
	BerthGID    = 1000 // group "berth", berth's primary group
	AudioGID    = 29   // group "audio", which lists berth as a member
	NobodyUID   = 65534
	NogroupGID  = 65534
	rootfsMtime = 946684800 // 2000-01-01T00:00:00Z, for reproducible tarballs
)

const passwdFile = `root:x:0:0:root:/root:/bin/sh
berth:x:1000:1000:berth:/home/berth:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
`

const groupFile = `root:x:0:
audio:x:29:berth
berth:x:1000:
nogroup:x:65534:
`

const hostsFile = `127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
`

// rootfsEntry is one file, directory or symlink of the busybox root
// filesystem. Parents come before their children.
type rootfsEntry struct {
	name     string      // slash-separated, relative to the root
	mode     fs.FileMode // type bits and permissions (including sticky)
	data     []byte      // regular files
	target   string      // symlinks
	uid, gid int
}

// rootfsTemplate is the busybox root filesystem, built once per test binary
// from the host's busybox and kept in memory; every BusyboxRootfs and
// BusyboxTarball call writes a fresh copy of it.
type rootfsTemplate struct {
	entries []rootfsEntry
	skip    string // why the tests that need it are skipped
	err     error
}

var (
	templateOnce sync.Once
	template     rootfsTemplate
)

func loadTemplate() *rootfsTemplate {
	templateOnce.Do(func() { template = buildTemplate() })
	return &template
}

func requireTemplate(t testing.TB) *rootfsTemplate {
	t.Helper()
	tpl := loadTemplate()
	if tpl.skip != "" {
		t.Skip(tpl.skip)
	}
	if tpl.err != nil {
		t.Fatalf("testutil: busybox root filesystem: %v", tpl.err)
	}
	return tpl
}

// staticBusybox finds the host's busybox and checks that it is statically
// linked, so that it runs in an otherwise empty root filesystem.
func staticBusybox(candidates []string) (path string, skip string) {
	for _, p := range candidates {
		if _, err := os.Stat(p); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		return "", fmt.Sprintf("no busybox at %s: install a static busybox (Debian: apt-get install busybox-static)",
			strings.Join(candidates, " or "))
	}
	static, err := isStaticELF(path)
	if err != nil {
		return "", fmt.Sprintf("%s: %v", path, err)
	}
	if !static {
		return "", fmt.Sprintf("%s is dynamically linked: install a static busybox (Debian: apt-get install busybox-static)", path)
	}
	return path, ""
}

// isStaticELF reports whether the ELF file at path needs no program
// interpreter and no shared libraries.
func isStaticELF(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return false, err
	}
	return len(libs) == 0, nil
}

func buildTemplate() rootfsTemplate {
	bbPath, skip := staticBusybox(BusyboxCandidates)
	if skip != "" {
		return rootfsTemplate{skip: skip}
	}
	bb, err := os.ReadFile(bbPath)
	if err != nil {
		return rootfsTemplate{err: err}
	}
	out, err := exec.Command(bbPath, "--list").Output()
	if err != nil {
		return rootfsTemplate{err: fmt.Errorf("%s --list: %w", bbPath, err)}
	}
	applets := strings.Fields(string(out))
	if len(applets) == 0 {
		return rootfsTemplate{err: fmt.Errorf("%s --list printed no applets", bbPath)}
	}

	dir := func(name string, mode fs.FileMode) rootfsEntry {
		return rootfsEntry{name: name, mode: fs.ModeDir | mode}
	}
	file := func(name string, mode fs.FileMode, data string) rootfsEntry {
		return rootfsEntry{name: name, mode: mode, data: []byte(data)}
	}
	entries := []rootfsEntry{
		dir("bin", 0o755),
		{name: "bin/busybox", mode: 0o755, data: bb},
		dir("dev", 0o755),
		dir("etc", 0o755),
		file("etc/group", 0o644, groupFile),
		file("etc/hostname", 0o644, "berth\n"),
		file("etc/hosts", 0o644, hostsFile),
		file("etc/passwd", 0o644, passwdFile),
		file("etc/resolv.conf", 0o644, ""),
		dir("home", 0o755),
		{name: "home/berth", mode: fs.ModeDir | 0o755, uid: BerthUID, gid: BerthGID},
		dir("proc", 0o755),
		dir("root", 0o700),
		dir("run", 0o755),
		dir("sbin", 0o755),
		dir("sys", 0o755),
		dir("tmp", fs.ModeSticky|0o777),
		dir("usr", 0o755),
		dir("usr/bin", 0o755),
		dir("usr/sbin", 0o755),
		dir("var", 0o755),
	}
	seen := map[string]bool{}
	for _, a := range applets {
		if a == "busybox" || strings.Contains(a, "/") || seen[a] {
			continue
		}
		seen[a] = true
		entries = append(entries, rootfsEntry{name: "bin/" + a, mode: fs.ModeSymlink | 0o777, target: "busybox"})
	}
	return rootfsTemplate{entries: entries}
}

// BusyboxRootfs returns a new directory holding a busybox root filesystem,
// built from the host's static busybox (BusyboxCandidates). The test is
// skipped when there is none. The directory lives in t.TempDir(), so each
// call gets its own copy that the test may modify.
//
// Contents (directories 0755 unless noted):
//
//	bin/busybox              the host's busybox (0755)
//	bin/<applet>             a symlink to "busybox" for each applet of `busybox --list`
//	sbin/ usr/bin/ usr/sbin/ empty
//	dev/ proc/ sys/ run/ var/ empty
//	tmp/                     empty, 1777
//	root/                    empty, 0700
//	home/berth/              empty; owned by 1000:1000 when the test runs as root
//	etc/passwd               root (0:0, /root, /bin/sh), berth (1000:1000, /home/berth, /bin/sh),
//	                         nobody (65534:65534, /nonexistent, /bin/false)
//	etc/group                root (0), audio (29, member: berth), berth (1000), nogroup (65534)
//	etc/hostname             "berth"
//	etc/hosts                localhost for 127.0.0.1 and ::1
//	etc/resolv.conf          empty
//
// Files are 0644 and owned by the user running the test. The test's
// temporary directories that lead to the returned one are made searchable
// by everyone (o+x), so that containers in user namespaces can reach it.
func BusyboxRootfs(t testing.TB) string {
	t.Helper()
	tpl := requireTemplate(t)
	base := t.TempDir()
	dir := filepath.Join(base, "rootfs")
	if err := tpl.materialize(dir); err != nil {
		t.Fatalf("testutil: writing busybox root filesystem: %v", err)
	}
	makeTraversable(t, base)
	return dir
}

// BusyboxTarball writes the root filesystem of BusyboxRootfs as an
// uncompressed tar archive into t.TempDir() and returns its path. Entries
// are relative ("bin/busybox"), owned by 0:0 (home/berth by 1000:1000) with
// numeric ids only, and have a fixed modification time, so the archive is
// the same for the same host busybox.
func BusyboxTarball(t testing.TB) string {
	t.Helper()
	tpl := requireTemplate(t)
	var buf bytes.Buffer
	if err := tpl.writeTar(&buf); err != nil {
		t.Fatalf("testutil: busybox tarball: %v", err)
	}
	p := filepath.Join(t.TempDir(), "busybox-rootfs.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatalf("testutil: busybox tarball: %v", err)
	}
	makeTraversable(t, filepath.Dir(p))
	return p
}

// materialize writes the template below dir, which must not exist yet.
func (tpl *rootfsTemplate) materialize(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	root := os.Geteuid() == 0
	for _, e := range tpl.entries {
		p := filepath.Join(dir, filepath.FromSlash(e.name))
		switch {
		case e.mode.IsDir():
			if err := os.Mkdir(p, 0o700); err != nil {
				return err
			}
			// Set the permissions explicitly: Mkdir is subject to the
			// umask and ignores the sticky bit.
			if err := os.Chmod(p, e.mode&(fs.ModePerm|fs.ModeSticky)); err != nil {
				return err
			}
		case e.mode&fs.ModeSymlink != 0:
			if err := os.Symlink(e.target, p); err != nil {
				return err
			}
		default:
			if err := os.WriteFile(p, e.data, 0o600); err != nil {
				return err
			}
			if err := os.Chmod(p, e.mode.Perm()); err != nil {
				return err
			}
		}
		if root && (e.uid != 0 || e.gid != 0) {
			if err := os.Lchown(p, e.uid, e.gid); err != nil {
				return err
			}
		}
	}
	return nil
}

func (tpl *rootfsTemplate) writeTar(w *bytes.Buffer) error {
	tw := tar.NewWriter(w)
	mtime := time.Unix(rootfsMtime, 0).UTC()
	for _, e := range tpl.entries {
		h := &tar.Header{
			Name:    e.name,
			Mode:    int64(e.mode.Perm()),
			Uid:     e.uid,
			Gid:     e.gid,
			ModTime: mtime,
			Format:  tar.FormatPAX,
		}
		if e.mode&fs.ModeSticky != 0 {
			h.Mode |= 0o1000
		}
		switch {
		case e.mode.IsDir():
			h.Typeflag = tar.TypeDir
			h.Name += "/"
		case e.mode&fs.ModeSymlink != 0:
			h.Typeflag = tar.TypeSymlink
			h.Linkname = e.target
		default:
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// makeTraversable adds search permission for everyone to dir and to each of
// its parents inside the test's temporary directory.
func makeTraversable(t testing.TB, dir string) {
	t.Helper()
	tmp := filepath.Clean(os.TempDir())
	for d := filepath.Clean(dir); d != tmp && d != "/" && d != "."; d = filepath.Dir(d) {
		if !strings.HasPrefix(d, tmp+string(filepath.Separator)) {
			break
		}
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatalf("testutil: %v", err)
		}
		if fi.Mode().Perm()&0o011 == 0o011 {
			continue
		}
		if err := os.Chmod(d, fi.Mode().Perm()|0o011); err != nil {
			t.Fatalf("testutil: %v", err)
		}
	}
}

// applets lists the applet names of the template, for tests.
func (tpl *rootfsTemplate) applets() []string {
	var names []string
	for _, e := range tpl.entries {
		if e.mode&fs.ModeSymlink != 0 && path.Dir(e.name) == "bin" {
			names = append(names, path.Base(e.name))
		}
	}
	return names
}
