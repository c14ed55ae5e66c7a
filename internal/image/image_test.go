package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

func testConfig(t *testing.T, cmd string) []byte {
	t.Helper()
	return []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","config":{"Cmd":[%q],"Healthcheck":{"Test":["CMD","true"]}},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"x"}]}`,
		cmd, strings.Repeat("a", 64)))
}

func newTestStores(t *testing.T, root string) (Store, References) {
	t.Helper()
	s, r, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	return s, r
}

func mustNamed(t *testing.T, s string) reference.Named {
	t.Helper()
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCreateIdempotent(t *testing.T) {
	root := t.TempDir()
	s, _ := newTestStores(t, root)
	raw := testConfig(t, "sh")
	id, err := s.Create(raw)
	if err != nil {
		t.Fatal(err)
	}
	if want := digest.SHA256.FromBytes(raw); id != want {
		t.Fatalf("id = %s, want %s", id, want)
	}
	id2, err := s.Create(raw)
	if err != nil || id2 != id {
		t.Fatalf("second Create = %s, %v", id2, err)
	}
	if n := len(s.List()); n != 1 {
		t.Fatalf("List has %d images, want 1", n)
	}
	onDisk, err := os.ReadFile(filepath.Join(root, "imagedb", "content", "sha256", id.Encoded()))
	if err != nil || string(onDisk) != string(raw) {
		t.Fatalf("content on disk = %q, %v", onDisk, err)
	}
	img, err := s.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if string(img.RawConfig) != string(raw) || img.Config.Config.Cmd[0] != "sh" || img.Config.Config.Healthcheck == nil {
		t.Fatalf("unexpected image %+v", img.Config)
	}
	if _, err := s.Get(digest.SHA256.FromString("nope")); !errdefs.IsNotFound(err) {
		t.Fatalf("Get unknown: %v", err)
	}
}

func TestCreateRejectsInvalid(t *testing.T) {
	s, _ := newTestStores(t, t.TempDir())
	hex := strings.Repeat("b", 64)
	for name, raw := range map[string]string{
		"not json":        `{`,
		"no rootfs":       `{"os":"linux"}`,
		"wrong type":      `{"rootfs":{"type":"tar","diff_ids":[]}}`,
		"bad diff id":     `{"rootfs":{"type":"layers","diff_ids":["sha256:xyz"]}}`,
		"history > layer": `{"rootfs":{"type":"layers","diff_ids":["sha256:` + hex + `"]},"history":[{},{}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := s.Create([]byte(raw)); !errdefs.IsInvalidArgument(err) {
				t.Fatalf("Create(%s) = %v, want invalid argument", raw, err)
			}
		})
	}
	// No layers at all (FROM scratch with metadata only) is valid.
	if _, err := s.Create([]byte(`{"rootfs":{"type":"layers"},"history":[{"empty_layer":true}]}`)); err != nil {
		t.Fatal(err)
	}
}

func TestReferences(t *testing.T) {
	root := t.TempDir()
	s, r := newTestStores(t, root)
	id1, _ := s.Create(testConfig(t, "one"))
	id2, _ := s.Create(testConfig(t, "two"))

	if err := r.AddTag(mustNamed(t, "busybox"), id1, false); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"busybox", "busybox:latest", "library/busybox", "docker.io/library/busybox:latest", "docker.io/busybox"} {
		got, err := r.Get(mustNamed(t, name))
		if err != nil || got != id1 {
			t.Errorf("Get(%s) = %s, %v; want %s", name, got, err, id1)
		}
	}
	if _, err := r.Get(mustNamed(t, "busybox:1.36")); !errdefs.IsNotFound(err) {
		t.Errorf("Get missing tag: %v", err)
	}

	dgst := digest.SHA256.FromString("manifest")
	cases := []struct {
		add  string
		want string // familiar string in References
	}{
		{"host:5000/a/b/c:tag", "host:5000/a/b/c:tag"},
		{"daocloud.io/library/nginx:1.12", "daocloud.io/library/nginx:1.12"},
		{"127.0.0.1:5000/daocloud.io/library/busybox", "127.0.0.1:5000/daocloud.io/library/busybox:latest"},
		{"busybox@" + dgst.String(), "busybox@" + dgst.String()},
	}
	for _, c := range cases {
		ref := mustNamed(t, c.add)
		var err error
		if cn, ok := ref.(reference.Canonical); ok {
			err = r.AddDigest(cn, id1)
			if err2 := r.AddTag(ref, id1, false); !errdefs.IsInvalidArgument(err2) {
				t.Errorf("AddTag with digest ref = %v", err2)
			}
		} else {
			err = r.AddTag(ref, id1, false)
		}
		if err != nil {
			t.Fatalf("add %s: %v", c.add, err)
		}
		if got, err := r.Get(mustNamed(t, c.want)); err != nil || got != id1 {
			t.Errorf("Get(%s) = %s, %v", c.want, got, err)
		}
	}
	var got []string
	for _, ref := range r.References(id1) {
		got = append(got, reference.FamiliarString(ref))
	}
	want := []string{
		"127.0.0.1:5000/daocloud.io/library/busybox:latest",
		"daocloud.io/library/nginx:1.12",
		"busybox:latest",
		"busybox@" + dgst.String(),
		"host:5000/a/b/c:tag",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("References = %v\nwant %v", got, want)
	}

	// Tag and digest together: stored and found by digest.
	if got, err := r.Get(mustNamed(t, "busybox:whatever@"+dgst.String())); err != nil || got != id1 {
		t.Errorf("Get tag+digest = %s, %v", got, err)
	}

	// Moving a tag needs force; re-adding the same is fine.
	if err := r.AddTag(mustNamed(t, "busybox:latest"), id1, false); err != nil {
		t.Errorf("re-adding same tag: %v", err)
	}
	if err := r.AddTag(mustNamed(t, "docker.io/library/busybox"), id2, false); !errdefs.IsConflict(err) {
		t.Errorf("moving tag without force = %v, want conflict", err)
	}
	if err := r.AddTag(mustNamed(t, "busybox"), id2, true); err != nil {
		t.Fatalf("moving tag with force: %v", err)
	}
	if got, _ := r.Get(mustNamed(t, "busybox")); got != id2 {
		t.Errorf("tag not moved: %s", got)
	}
	if err := r.AddDigest(mustNamed(t, "busybox@"+dgst.String()).(reference.Canonical), id2); !errdefs.IsConflict(err) {
		t.Errorf("moving digest = %v, want conflict", err)
	}
	if err := r.AddTag(mustNamed(t, "sha256"), id1, false); !errdefs.IsInvalidArgument(err) {
		t.Errorf("tag named sha256 = %v", err)
	}

	// The file uses Docker's familiar keys.
	var f struct {
		Repositories map[string]map[string]digest.Digest
	}
	data, err := os.ReadFile(filepath.Join(root, "repositories.json"))
	if err != nil || json.Unmarshal(data, &f) != nil {
		t.Fatalf("repositories.json: %s %v", data, err)
	}
	if f.Repositories["busybox"]["busybox:latest"] != id2 || f.Repositories["busybox"]["busybox@"+dgst.String()] != id1 {
		t.Errorf("repositories.json = %s", data)
	}
	if f.Repositories["host:5000/a/b/c"]["host:5000/a/b/c:tag"] != id1 {
		t.Errorf("repositories.json = %s", data)
	}

	if assoc := r.ReferencesByName(mustNamed(t, "busybox:anything")); len(assoc) != 2 {
		t.Errorf("ReferencesByName = %v", assoc)
	}

	// Delete.
	ok, err := r.Delete(mustNamed(t, "library/busybox"))
	if !ok || err != nil {
		t.Fatalf("Delete = %v, %v", ok, err)
	}
	if ok, err := r.Delete(mustNamed(t, "busybox")); ok || !errdefs.IsNotFound(err) {
		t.Errorf("second Delete = %v, %v", ok, err)
	}
	if _, err := r.Get(mustNamed(t, "busybox")); !errdefs.IsNotFound(err) {
		t.Errorf("Get after Delete: %v", err)
	}
	if refs := r.References(id2); len(refs) != 0 {
		t.Errorf("References(id2) = %v", refs)
	}
}

// idsSharingPrefix creates images until two IDs share their first hex
// character and returns those two with the prefix.
func idsSharingPrefix(t *testing.T, s Store) (digest.Digest, digest.Digest, string) {
	t.Helper()
	seen := map[byte]digest.Digest{}
	for i := 0; ; i++ {
		id, err := s.Create(testConfig(t, fmt.Sprint("cmd", i)))
		if err != nil {
			t.Fatal(err)
		}
		c := id.Encoded()[0]
		if other, ok := seen[c]; ok {
			return other, id, string(c)
		}
		seen[c] = id
	}
}

func TestResolve(t *testing.T) {
	s, r := newTestStores(t, t.TempDir())
	a, b, prefix := idsSharingPrefix(t, s)
	if err := r.AddTag(mustNamed(t, "busybox:1.36"), a, false); err != nil {
		t.Fatal(err)
	}
	if err := r.AddTag(mustNamed(t, "host:5000/a/b/c:tag"), b, false); err != nil {
		t.Fatal(err)
	}
	dgst := digest.SHA256.FromString("m")
	if err := r.AddDigest(mustNamed(t, "busybox@"+dgst.String()).(reference.Canonical), b); err != nil {
		t.Fatal(err)
	}
	// A unique prefix of a: extend the shared one until only a matches.
	uniq := a.Encoded()[:1]
	for i := 1; strings.HasPrefix(b.Encoded(), uniq); i++ {
		uniq = a.Encoded()[:i]
	}

	cases := []struct {
		in      string
		want    digest.Digest
		errKind func(error) bool
		errMsg  string
	}{
		{in: a.String(), want: a},
		{in: a.Encoded(), want: a},
		{in: uniq, want: a},
		{in: "sha256:" + uniq, want: a},
		{in: a.Encoded()[:12], want: a},
		{in: "busybox:1.36", want: a},
		{in: "docker.io/library/busybox:1.36", want: a},
		{in: "host:5000/a/b/c:tag", want: b},
		{in: "busybox@" + dgst.String(), want: b},
		{in: prefix, errKind: errdefs.IsInvalidArgument, errMsg: "multiple IDs found with provided prefix: " + prefix},
		{in: "x", errKind: errdefs.IsNotFound, errMsg: "No such image: x:latest"},
		{in: "busybox", errKind: errdefs.IsNotFound, errMsg: "No such image: busybox:latest"},
		{in: "docker.io/library/nope:1", errKind: errdefs.IsNotFound, errMsg: "No such image: nope:1"},
		{in: strings.Repeat("0", 64), errKind: errdefs.IsNotFound, errMsg: "No such image: sha256:" + strings.Repeat("0", 64)},
		{in: "sha256:" + strings.Repeat("0", 64), errKind: errdefs.IsNotFound, errMsg: "No such image: sha256:" + strings.Repeat("0", 64)},
		{in: "NotValid", errKind: errdefs.IsInvalidArgument},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			img, err := Resolve(s, r, c.in)
			if c.errKind != nil {
				if err == nil || !c.errKind(err) {
					t.Fatalf("Resolve(%q) = %v, %v", c.in, img, err)
				}
				if c.errMsg != "" && err.Error() != c.errMsg {
					t.Fatalf("error %q, want %q", err, c.errMsg)
				}
				return
			}
			if err != nil || img.ID != c.want {
				t.Fatalf("Resolve(%q) = %v, %v; want %s", c.in, img, err, c.want)
			}
		})
	}

	// A tag whose image is gone reads as missing.
	if err := s.Delete(b); err != nil {
		t.Fatal(err)
	}
	if _, err := Resolve(s, r, "host:5000/a/b/c:tag"); !errdefs.IsNotFound(err) || !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("dangling tag: %v", err)
	}
}

func TestParentsAndReload(t *testing.T) {
	root := t.TempDir()
	s, r := newTestStores(t, root)
	base, _ := s.Create(testConfig(t, "base"))
	c1, _ := s.Create(testConfig(t, "c1"))
	c2, _ := s.Create(testConfig(t, "c2"))
	other, _ := s.Create(testConfig(t, "other"))
	for _, c := range []digest.Digest{c1, c2} {
		if err := s.SetParent(c, base); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetParent(base, c1); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("cycle accepted: %v", err)
	}
	if err := s.SetParent(c1, digest.SHA256.FromString("missing")); !errdefs.IsNotFound(err) {
		t.Fatalf("missing parent: %v", err)
	}
	ts := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	if err := s.SetLastUpdated(c1, ts); err != nil {
		t.Fatal(err)
	}
	if err := r.AddTag(mustNamed(t, "app:v1"), c1, false); err != nil {
		t.Fatal(err)
	}
	sortedChildren := func(s Store) string { return fmt.Sprint(s.Children(base)) }
	want := fmt.Sprint(s.Children(base))
	if len(s.Children(base)) != 2 || len(s.Children(other)) != 0 {
		t.Fatalf("Children = %s", want)
	}
	// Re-parenting moves the child.
	if err := s.SetParent(c2, other); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(s.Children(base)) != fmt.Sprint([]digest.Digest{c1}) || fmt.Sprint(s.Children(other)) != fmt.Sprint([]digest.Digest{c2}) {
		t.Fatalf("after re-parent: base %v other %v", s.Children(base), s.Children(other))
	}

	// Reload from disk.
	s2, r2 := newTestStores(t, root)
	if got := sortedChildren(s2); got != fmt.Sprint([]digest.Digest{c1}) {
		t.Errorf("reloaded Children(base) = %s", got)
	}
	img, err := s2.Get(c1)
	if err != nil || img.Parent != base || !img.LastUpdated.Equal(ts) {
		t.Fatalf("reloaded c1 = %+v, %v", img, err)
	}
	if len(s2.List()) != 4 {
		t.Errorf("reloaded List = %d images", len(s2.List()))
	}
	if id, err := r2.Get(mustNamed(t, "docker.io/library/app:v1")); err != nil || id != c1 {
		t.Errorf("reloaded ref = %s, %v", id, err)
	}

	// Deleting a parent unlinks its children, on disk too.
	if err := s2.Delete(base); err != nil {
		t.Fatal(err)
	}
	if img, _ := s2.Get(c1); img.Parent != "" {
		t.Errorf("c1 still has parent %s", img.Parent)
	}
	if err := s2.Delete(base); !errdefs.IsNotFound(err) {
		t.Errorf("second Delete: %v", err)
	}
	s3, _ := newTestStores(t, root)
	if _, err := s3.Get(base); !errdefs.IsNotFound(err) {
		t.Errorf("deleted image came back: %v", err)
	}
	if img, _ := s3.Get(c1); img == nil || img.Parent != "" {
		t.Errorf("reloaded c1 = %+v", img)
	}
	if _, err := os.Stat(filepath.Join(root, "imagedb", "metadata", "sha256", base.Encoded())); !os.IsNotExist(err) {
		t.Errorf("metadata of deleted image left: %v", err)
	}

	// A corrupted config file is skipped on load.
	if err := os.WriteFile(filepath.Join(root, "imagedb", "content", "sha256", other.Encoded()), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	s4, _ := newTestStores(t, root)
	if _, err := s4.Get(other); !errdefs.IsNotFound(err) {
		t.Errorf("corrupted image loaded: %v", err)
	}
}

func TestConcurrent(t *testing.T) {
	s, r := newTestStores(t, t.TempDir())
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 10 {
				id, err := s.Create(testConfig(t, fmt.Sprint(i, "-", j)))
				if err != nil {
					t.Error(err)
					return
				}
				if err := r.AddTag(mustNamed(t, fmt.Sprintf("img%d:%d", i, j)), id, false); err != nil {
					t.Error(err)
				}
				_, _ = Resolve(s, r, id.Encoded()[:8])
				s.List()
			}
		}()
	}
	wg.Wait()
	if n := len(s.List()); n != 80 {
		t.Fatalf("List = %d images", n)
	}
}
