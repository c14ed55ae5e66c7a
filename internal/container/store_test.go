package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func add(t *testing.T, s *Store, id, name string) *Container {
	t.Helper()
	c := NewContainer(name)
	if id != "" {
		c.ID = id
	}
	if err := s.Add(c); err != nil {
		t.Fatalf("Add(%s, %q): %v", id, name, err)
	}
	return c
}

func TestAddDuplicateName(t *testing.T) {
	s := newStore(t)
	first := add(t, s, "", "xy")
	for _, name := range []string{"xy", "/xy"} {
		err := s.Add(NewContainer(name))
		want := `Conflict. The container name "/xy" is already in use by container "` + first.ID + `". You have to remove (or rename) that container to be able to reuse that name.`
		if err == nil || err.Error() != want {
			t.Fatalf("Add duplicate %q: err = %v, want %q", name, err, want)
		}
		if !errdefs.IsConflict(err) {
			t.Fatalf("Add duplicate: %v is not a conflict", err)
		}
	}
	if s.Len() != 1 {
		t.Fatalf("Len = %d, want 1", s.Len())
	}
	// A rejected container leaves nothing on disk.
	entries, _ := os.ReadDir(s.Root())
	if len(entries) != 1 {
		t.Fatalf("store root has %d entries, want 1", len(entries))
	}

	// Invalid input.
	if err := s.Add(NewContainer("../etc")); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("Add ../etc: %v", err)
	}
	bad := NewContainer("fine")
	bad.ID = "../../etc"
	if err := s.Add(bad); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("Add bad ID: %v", err)
	}
	dup := NewContainer("other")
	dup.ID = first.ID
	if err := s.Add(dup); !errdefs.IsConflict(err) {
		t.Fatalf("Add duplicate ID: %v", err)
	}
}

func TestAddGeneratesName(t *testing.T) {
	s := newStore(t)
	c := add(t, s, "", "")
	if ValidName(c.Name) != nil || !strings.Contains(c.Name, "_") {
		t.Fatalf("generated name %q", c.Name)
	}
	if got, err := s.Get(c.Name); err != nil || got != c {
		t.Fatalf("Get(generated name) = %v, %v", got, err)
	}
}

func TestGet(t *testing.T) {
	s := newStore(t)
	a := add(t, s, "abc1"+strings.Repeat("0", 60), "alpha")
	b := add(t, s, "abc2"+strings.Repeat("0", 60), "beta")
	// A container whose name looks like another container's ID prefix:
	// the name wins, as in Docker.
	n := add(t, s, "def0"+strings.Repeat("0", 60), "abc1")

	for _, tc := range []struct {
		ref     string
		want    *Container
		wantErr string
		kind    error
	}{
		{ref: a.ID, want: a},
		{ref: "alpha", want: a},
		{ref: "/alpha", want: a},
		{ref: "beta", want: b},
		{ref: "abc2", want: b},
		{ref: "abc20000", want: b},
		{ref: "abc1", want: n},
		{ref: "def", want: n},
		{ref: "abc", wantErr: "multiple IDs found with provided prefix: abc", kind: errdefs.ErrInvalidArgument},
		{ref: "gamma", wantErr: "No such container: gamma", kind: errdefs.ErrNotFound},
		{ref: "/gamma", wantErr: "No such container: /gamma", kind: errdefs.ErrNotFound},
		{ref: "fff", wantErr: "No such container: fff", kind: errdefs.ErrNotFound},
		{ref: "", wantErr: "No such container: ", kind: errdefs.ErrNotFound},
	} {
		got, err := s.Get(tc.ref)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr || !errors.Is(err, tc.kind) {
				t.Errorf("Get(%q) = %v, %v; want error %q (%v)", tc.ref, got, err, tc.wantErr, tc.kind)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Get(%q) = %v, %v; want %s", tc.ref, got, err, tc.want.ID)
		}
	}
}

func TestRename(t *testing.T) {
	s := newStore(t)
	a := add(t, s, "", "old")
	b := add(t, s, "", "taken")

	a.Lock()
	err := s.Rename(a, "/new")
	a.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "new" {
		t.Fatalf("Name = %q", a.Name)
	}
	if _, err := s.Get("old"); !errdefs.IsNotFound(err) {
		t.Fatalf("Get(old) after rename: %v", err)
	}
	if got, err := s.Get("/new"); err != nil || got != a {
		t.Fatalf("Get(new) = %v, %v", got, err)
	}
	// The old name is free again.
	add(t, s, "", "old")

	a.Lock()
	defer a.Unlock()
	err = s.Rename(a, "taken")
	want := `Conflict. The container name "/taken" is already in use by container "` + b.ID + `". You have to remove (or rename) that container to be able to reuse that name.`
	if err == nil || err.Error() != want || !errdefs.IsConflict(err) {
		t.Fatalf("Rename to taken: %v", err)
	}
	if err := s.Rename(a, "new"); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("Rename to same name: %v", err)
	}
	if err := s.Rename(a, "a/b"); err == nil || err.Error() != "Invalid container name (a/b), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed" {
		t.Fatalf("Rename to a/b: %v", err)
	}

	// The rename is persisted.
	s2, err := NewStore(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s2.Get("new"); err != nil || got.ID != a.ID {
		t.Fatalf("reloaded Get(new) = %v, %v", got, err)
	}
}

func TestDeleteAndList(t *testing.T) {
	s := newStore(t)
	base := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	var cs []*Container
	for i := 0; i < 3; i++ {
		c := NewContainer(fmt.Sprintf("c%d", i))
		c.Created = base.Add(time.Duration(i) * time.Minute)
		if err := s.Add(c); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	list := s.List()
	if len(list) != 3 || list[0] != cs[2] || list[1] != cs[1] || list[2] != cs[0] {
		t.Fatalf("List not newest first: %v", list)
	}
	if err := s.Delete(cs[1].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Dir(cs[1].ID)); !os.IsNotExist(err) {
		t.Fatalf("directory still there: %v", err)
	}
	if _, err := s.Get("c1"); !errdefs.IsNotFound(err) {
		t.Fatalf("Get deleted: %v", err)
	}
	if err := s.Delete(cs[1].ID); !errdefs.IsNotFound(err) {
		t.Fatalf("Delete twice: %v", err)
	}
	cs[1].Lock()
	err := s.Save(cs[1])
	cs[1].Unlock()
	if !errdefs.IsNotFound(err) {
		t.Fatalf("Save deleted: %v", err)
	}
	if _, err := os.Stat(s.Dir(cs[1].ID)); !os.IsNotExist(err) {
		t.Fatalf("Save recreated a deleted container's directory")
	}
	// The name of a deleted container can be reused.
	add(t, s, "", "c1")
	if len(s.List()) != 3 {
		t.Fatalf("List len = %d", len(s.List()))
	}
}

func TestSaveReload(t *testing.T) {
	s := newStore(t)
	c := NewContainer("roundtrip")
	c.Created = time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.UTC)
	c.Path = "/bin/sh"
	c.Args = []string{"-c", "echo hi"}
	c.Image = "sha256:" + strings.Repeat("ab", 32)
	c.ImageRef = "alpine:3.20"
	c.Config = &container.Config{
		Hostname:   "abc",
		Env:        []string{"A=1", "B=2"},
		Cmd:        []string{"/bin/sh", "-c", "echo hi"},
		Image:      "alpine:3.20",
		WorkingDir: "/srv",
		Labels:     map[string]string{"k": "v"},
		Tty:        true,
		OpenStdin:  true,
	}
	c.HostConfig = &container.HostConfig{
		Binds:         []string{"/src:/dst:ro"},
		NetworkMode:   network.NetworkBridge,
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 3},
		AutoRemove:    true,
		Privileged:    true,
		ShmSize:       64 << 20,
	}
	c.RestartCount = 2
	c.LogPath = filepath.Join(s.Dir(c.ID), c.ID+"-json.log")
	c.NetworkSettings = json.RawMessage(`{"IPAddress":"172.17.0.2"}`)
	if err := s.Add(c); err != nil {
		t.Fatal(err)
	}

	c.Lock()
	if err := c.SetRunning(4242); err != nil {
		t.Fatal(err)
	}
	if err := c.SetPaused(); err != nil {
		t.Fatal(err)
	}
	c.State.StartedAt = time.Date(2024, 1, 2, 3, 5, 0, 987654321, time.UTC)
	c.State.FinishedAt = time.Date(2023, 12, 31, 0, 0, 0, 1, time.UTC)
	c.State.Error = "previous failure"
	c.State.OOMKilled = true
	c.State.ExitCode = 7
	if err := s.Save(c); err != nil {
		t.Fatal(err)
	}
	c.Unlock()

	// The files have Docker's names and the times are RFC 3339 with nanoseconds.
	raw, err := os.ReadFile(filepath.Join(s.Dir(c.ID), ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"StartedAt":"2024-01-02T03:05:00.987654321Z"`) {
		t.Fatalf("%s lacks RFC 3339 StartedAt: %s", ConfigFile, raw)
	}
	if strings.Contains(string(raw), `"HostConfig"`) {
		t.Fatalf("%s should not contain HostConfig", ConfigFile)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(c.ID), HostConfigFile)); err != nil {
		t.Fatal(err)
	}

	s2, err := NewStore(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	if p := s2.Problems(); len(p) != 0 {
		t.Fatalf("Problems = %v", p)
	}
	got, err := s2.Get("roundtrip")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"ID", got.ID, c.ID},
		{"Name", got.Name, c.Name},
		{"Path", got.Path, c.Path},
		{"Args", got.Args, c.Args},
		{"Image", got.Image, c.Image},
		{"ImageRef", got.ImageRef, c.ImageRef},
		{"Config", got.Config, c.Config},
		{"HostConfig", got.HostConfig, c.HostConfig},
		{"RestartCount", got.RestartCount, c.RestartCount},
		{"Driver", got.Driver, c.Driver},
		{"LogPath", got.LogPath, c.LogPath},
		{"NetworkSettings", string(got.NetworkSettings), string(c.NetworkSettings)},
		{"State", got.State, c.State},
	} {
		if !reflect.DeepEqual(f.got, f.want) {
			t.Errorf("%s after reload = %#v, want %#v", f.name, f.got, f.want)
		}
	}
	if !got.Created.Equal(c.Created) {
		t.Errorf("Created = %v, want %v", got.Created, c.Created)
	}
	if got.State.Status != container.StatePaused {
		t.Errorf("Status = %s", got.State.Status)
	}
}

func TestReloadReportsProblems(t *testing.T) {
	s := newStore(t)
	good1 := add(t, s, "", "good1")
	bad := add(t, s, "", "bad")
	good2 := add(t, s, "", "good2")
	noHost := add(t, s, "", "nohost")
	if err := os.WriteFile(filepath.Join(s.Dir(bad.ID), ConfigFile), []byte(`{"ID": "`+bad.ID+`", "Name": `), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(s.Dir(noHost.ID), HostConfigFile)); err != nil {
		t.Fatal(err)
	}
	// A leftover temporary file from an interrupted write is ignored.
	if err := os.WriteFile(filepath.Join(s.Root(), ".tmp123"), nil, 0o600); err != nil {
		t.Fatal(err)
	}

	s2, err := NewStore(s.Root())
	if err != nil {
		t.Fatalf("NewStore with a corrupt container: %v", err)
	}
	problems := s2.Problems()
	if len(problems) != 2 {
		t.Fatalf("Problems = %v, want 2", problems)
	}
	joined := fmt.Sprint(problems)
	if !strings.Contains(joined, bad.ID) || !strings.Contains(joined, noHost.ID) {
		t.Fatalf("Problems do not name the broken containers: %v", problems)
	}
	for _, c := range []*Container{good1, good2} {
		if got, err := s2.Get(c.Name); err != nil || got.ID != c.ID {
			t.Errorf("Get(%s) after reload = %v, %v", c.Name, got, err)
		}
	}
	if _, err := s2.Get("bad"); !errdefs.IsNotFound(err) {
		t.Errorf("corrupt container loaded: %v", err)
	}
	if s2.Len() != 2 {
		t.Errorf("Len = %d, want 2", s2.Len())
	}
}

func TestConcurrentAdd(t *testing.T) {
	s := newStore(t)
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Half the containers ask for a generated name, half for a
			// fixed one; every fixed name is also requested a second time.
			c := NewContainer("")
			if i%2 == 0 {
				c.Name = fmt.Sprintf("svc%d", i)
				dup := NewContainer(c.Name)
				if err := s.Add(dup); err != nil && !errdefs.IsConflict(err) {
					errs <- err
				}
			}
			if err := s.Add(c); err != nil && !errdefs.IsConflict(err) {
				errs <- err
			}
			// Readers run alongside the writers.
			_ = s.List()
			_, _ = s.Get(ShortID(c.ID))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	list := s.List()
	if len(list) != n {
		t.Fatalf("List has %d containers, want %d", len(list), n)
	}
	names := map[string]bool{}
	for _, c := range list {
		if names[c.Name] {
			t.Fatalf("duplicate name %q", c.Name)
		}
		names[c.Name] = true
	}
	s2, err := NewStore(s.Root())
	if err != nil || len(s2.Problems()) != 0 || s2.Len() != n {
		t.Fatalf("reload: err=%v problems=%v len=%d", err, s2.Problems(), s2.Len())
	}
}
