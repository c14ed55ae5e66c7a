package testutil

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/runtime/specgen"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestBusyboxRootfsLayout(t *testing.T) {
	dir := BusyboxRootfs(t)
	tests := []struct {
		path string
		mode fs.FileMode // type and permission bits
	}{
		{"bin", fs.ModeDir | 0o755},
		{"bin/busybox", 0o755},
		{"sbin", fs.ModeDir | 0o755},
		{"usr/bin", fs.ModeDir | 0o755},
		{"usr/sbin", fs.ModeDir | 0o755},
		{"dev", fs.ModeDir | 0o755},
		{"proc", fs.ModeDir | 0o755},
		{"sys", fs.ModeDir | 0o755},
		{"run", fs.ModeDir | 0o755},
		{"var", fs.ModeDir | 0o755},
		{"tmp", fs.ModeDir | fs.ModeSticky | 0o777},
		{"root", fs.ModeDir | 0o700},
		{"home/berth", fs.ModeDir | 0o755},
		{"etc", fs.ModeDir | 0o755},
		{"etc/passwd", 0o644},
		{"etc/group", 0o644},
		{"etc/hostname", 0o644},
		{"etc/hosts", 0o644},
		{"etc/resolv.conf", 0o644},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			fi, err := os.Lstat(filepath.Join(dir, tt.path))
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode() & (fs.ModeType | fs.ModePerm | fs.ModeSticky); got != tt.mode {
				t.Errorf("mode %v, want %v", got, tt.mode)
			}
		})
	}
	for _, empty := range []string{"proc", "sys", "dev", "tmp", "root", "sbin", "usr/bin"} {
		ents, err := os.ReadDir(filepath.Join(dir, empty))
		if err != nil || len(ents) != 0 {
			t.Errorf("%s: want an empty directory, got %d entries (%v)", empty, len(ents), err)
		}
	}
}

func TestBusyboxRootfsApplets(t *testing.T) {
	dir := BusyboxRootfs(t)
	applets := loadTemplate().applets()
	for _, want := range []string{"sh", "true", "false", "cat", "ls", "id", "sleep", "mount"} {
		if !slices.Contains(applets, want) {
			t.Errorf("applet %s missing from %d applets", want, len(applets))
		}
	}
	for _, a := range applets {
		target, err := os.Readlink(filepath.Join(dir, "bin", a))
		if err != nil || target != "busybox" {
			t.Errorf("bin/%s: link to %q (%v), want busybox", a, target, err)
		}
	}
	static, err := isStaticELF(filepath.Join(dir, "bin", "busybox"))
	if err != nil || !static {
		t.Errorf("bin/busybox static = %v (%v)", static, err)
	}
}

func TestBusyboxRootfsAccounts(t *testing.T) {
	dir := BusyboxRootfs(t)
	tests := []struct {
		file, name string
		fields     []string // the fields after the name
	}{
		{"passwd", "root", []string{"x", "0", "0", "root", "/root", "/bin/sh"}},
		{"passwd", "berth", []string{"x", "1000", "1000", "berth", "/home/berth", "/bin/sh"}},
		{"passwd", "nobody", []string{"x", "65534", "65534", "nobody", "/nonexistent", "/bin/false"}},
		{"group", "root", []string{"x", "0", ""}},
		{"group", "berth", []string{"x", "1000", ""}},
		{"group", "audio", []string{"x", "29", "berth"}},
		{"group", "nogroup", []string{"x", "65534", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, "etc", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(string(data), "\n") {
				fields := strings.Split(line, ":")
				if fields[0] == tt.name {
					if !reflect.DeepEqual(fields[1:], tt.fields) {
						t.Errorf("%s: %v, want %v", tt.name, fields[1:], tt.fields)
					}
					return
				}
			}
			t.Errorf("no %s in /etc/%s", tt.name, tt.file)
		})
	}
	host, err := os.ReadFile(filepath.Join(dir, "etc", "hostname"))
	if err != nil || string(host) != "berth\n" {
		t.Errorf("etc/hostname = %q (%v)", host, err)
	}
}

func TestBusyboxRootfsCopiesAreIndependent(t *testing.T) {
	a, b := BusyboxRootfs(t), BusyboxRootfs(t)
	if a == b {
		t.Fatalf("two calls returned the same directory %s", a)
	}
	if err := os.WriteFile(filepath.Join(a, "etc", "hostname"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(a, "bin", "busybox"), 0o700); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(b, "etc", "hostname"))
	if string(data) != "berth\n" {
		t.Errorf("changing one copy changed another: %q", data)
	}
	if fi, err := os.Stat(filepath.Join(b, "bin", "busybox")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("changing one copy's busybox changed another's: %v %v", fi.Mode(), err)
	}
}

func TestBusyboxRootfsRuns(t *testing.T) {
	dir := BusyboxRootfs(t)
	// The applet symlinks work from outside the root filesystem too.
	out, err := exec.Command(filepath.Join(dir, "bin", "echo"), "hello").Output()
	if err != nil || string(out) != "hello\n" {
		t.Errorf("bin/echo hello = %q, %v", out, err)
	}
}

func TestBusyboxTarballMatchesRootfs(t *testing.T) {
	dir := BusyboxRootfs(t)
	tarball := BusyboxTarball(t)
	f, err := os.Open(tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	inTar := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if strings.HasPrefix(name, "/") || strings.Contains(name, "..") {
			t.Errorf("unsafe entry name %q", h.Name)
		}
		if h.Uid != wantOwner(name) || h.Gid != wantOwner(name) || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s owned by %d:%d (%q:%q)", name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		inTar[name] = h
	}
	onDisk := 0
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		onDisk++
		rel, _ := filepath.Rel(dir, p)
		h, ok := inTar[filepath.ToSlash(rel)]
		if !ok {
			t.Errorf("%s is in the root filesystem but not in the tarball", rel)
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if got := h.FileInfo().Mode() & (fs.ModeType | fs.ModePerm | fs.ModeSticky); got != fi.Mode()&(fs.ModeType|fs.ModePerm|fs.ModeSticky) {
			t.Errorf("%s: tarball mode %v, on disk %v", rel, got, fi.Mode())
		}
		if fi.Mode().IsRegular() && h.Size != fi.Size() {
			t.Errorf("%s: tarball size %d, on disk %d", rel, h.Size, fi.Size())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if onDisk != len(inTar) {
		t.Errorf("%d entries on disk, %d in the tarball", onDisk, len(inTar))
	}
}

func wantOwner(name string) int {
	if name == "home/berth" {
		return BerthUID
	}
	return 0
}

func TestNewBundle(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"default args", nil, []string{"sh"}},
		{"given args", []string{"true"}, []string{"true"}},
		{"several args", []string{"sh", "-c", "echo hi"}, []string{"sh", "-c", "echo hi"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, spec := NewBundle(t, tt.args...)
			if !reflect.DeepEqual(spec.Process.Args, tt.want) {
				t.Errorf("args %q, want %q", spec.Process.Args, tt.want)
			}
			want := specgen.Default()
			want.Process.Args = tt.want
			if !reflect.DeepEqual(spec, want) {
				t.Errorf("bundle configuration differs from the default")
			}
			var onDisk specs.Spec
			data, err := os.ReadFile(filepath.Join(dir, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &onDisk); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(&onDisk, spec) {
				t.Errorf("config.json differs from the returned configuration")
			}
			if _, err := os.Stat(filepath.Join(dir, spec.Root.Path, "bin", "busybox")); err != nil {
				t.Error(err)
			}
			for d := dir; d != filepath.Clean(os.TempDir()); d = filepath.Dir(d) {
				if fi, err := os.Stat(d); err != nil || fi.Mode().Perm()&0o001 == 0 {
					t.Errorf("%s is not searchable by others (%v)", d, err)
				}
			}
		})
	}
}

func TestWriteSpec(t *testing.T) {
	dir, spec := NewBundle(t, "true")
	spec.Hostname = "changed"
	spec.Process.Env = append(spec.Process.Env, "X=1")
	WriteSpec(t, dir, spec)
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got specs.Spec
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if got.Hostname != "changed" || !slices.Contains(got.Process.Env, "X=1") {
		t.Errorf("config.json not rewritten: %s", data)
	}
}

func TestIsStaticELF(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		wantErr bool
	}{
		{"test binary", self, false},
		{"shell", "/bin/sh", false},
		{"not ELF", "/etc/passwd", true},
		{"missing", filepath.Join(t.TempDir(), "missing"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := isStaticELF(tt.path); (err != nil) != tt.wantErr {
				t.Errorf("isStaticELF(%s) error %v, want error %v", tt.path, err, tt.wantErr)
			}
		})
	}
	if path, skip := staticBusybox(BusyboxCandidates); skip == "" {
		if static, err := isStaticELF(path); err != nil || !static {
			t.Errorf("%s: static %v, %v", path, static, err)
		}
	}
}

func TestStaticBusyboxSkipReasons(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "busybox")
	dynamic := "/bin/sh"
	if static, err := isStaticELF(dynamic); err != nil || static {
		dynamic = ""
	}
	tests := []struct {
		name       string
		candidates []string
		wantSkip   string // substring; "" means usable
	}{
		{"none", []string{missing}, "no busybox at " + missing},
		{"not ELF", []string{"/etc/passwd"}, "/etc/passwd"},
		{"dynamic", []string{dynamic}, "dynamically linked"},
		{"host", BusyboxCandidates, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "dynamic" && dynamic == "" {
				t.Skip("no dynamically linked /bin/sh here")
			}
			path, skip := staticBusybox(tt.candidates)
			if tt.name == "host" && skip != "" {
				t.Skip(skip)
			}
			if tt.wantSkip == "" {
				if skip != "" || path == "" {
					t.Errorf("path %q, skip %q", path, skip)
				}
				return
			}
			if !strings.Contains(skip, tt.wantSkip) {
				t.Errorf("skip reason %q, want it to mention %q", skip, tt.wantSkip)
			}
			if tt.name != "not ELF" && !strings.Contains(skip, "busybox-static") {
				t.Errorf("skip reason %q does not say how to install busybox", skip)
			}
		})
	}
}
