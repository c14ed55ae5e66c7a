package cli_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/cli"
	"github.com/berth-dev/berth/internal/cli/clitest"
	"github.com/creack/pty"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"
)

// runOnTerminal runs berth with a terminal as standard input and output
// (and the given stdin text when in is not the terminal).
func runOnTerminal(t *testing.T, s *clitest.Server, termIn bool, args ...string) result {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skip("no pty:", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	go func() { _, _ = io.Copy(io.Discard, ptmx) }()
	var in io.ReadCloser = io.NopCloser(strings.NewReader(""))
	if termIn {
		in = tty
	}
	var errb bytes.Buffer
	code := cli.Run(context.Background(), append([]string{"-H", s.Host}, args...), in, tty, &errb)
	return result{"", errb.String(), code}
}

func filtersOf(t *testing.T, q url.Values) string {
	t.Helper()
	return q.Get("filters")
}

func TestPush(t *testing.T) {
	berthDir, _ := configDirs(t)
	writeConfig(t, berthDir, `{"auths":{"localhost:5000":{"auth":"`+b64("alice:pw")+`"}}}`)
	s := clitest.New(t)
	stream := `{"status":"The push refers to repository [localhost:5000/app]"}` + "\n" +
		`{"status":"Pushed","progressDetail":{},"id":"5b0d4b2a7e3c"}` + "\n" +
		`{"status":"latest: digest: sha256:0123 size: 527"}` + "\n"
	s.Handle("POST /images/localhost:5000/app/push", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, stream)
	})
	s.Handle("POST /images/docker.io/library/denied/push", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"status":"The push refers to repository [docker.io/library/denied]"}`+"\n"+
			`{"errorDetail":{"message":"denied: requested access to the resource is denied"},"error":"denied: requested access to the resource is denied"}`+"\n")
	})
	rendered := "The push refers to repository [localhost:5000/app]\n5b0d4b2a7e3c: Pushed\nlatest: digest: sha256:0123 size: 527\n"
	wantAuth := registry.AuthConfig{Username: "alice", Password: "pw", ServerAddress: "localhost:5000"}
	for _, tc := range []struct {
		args     []string
		code     int
		out, err string
		tag      string // the tag query, "-" for none
	}{
		{[]string{"push", "localhost:5000/app"}, 0, "Using default tag: latest\n" + rendered, "", "latest"},
		{[]string{"image", "push", "localhost:5000/app:v1"}, 0, rendered, "", "v1"},
		{[]string{"push", "-q", "localhost:5000/app"}, 0, "localhost:5000/app:latest\n", "", "latest"},
		{[]string{"push", "--all-tags", "localhost:5000/app"}, 0, rendered, "", "-"},
		{[]string{"push", "-a", "localhost:5000/app:v1"}, 1, "", "tag can't be used with --all-tags/-a\n", ""},
		{[]string{"push", "denied"}, 1, "Using default tag: latest\nThe push refers to repository [docker.io/library/denied]\n",
			"denied: requested access to the resource is denied\n", ""},
		{[]string{"push"}, 1, "", "berth: 'berth push' requires 1 argument\n\nUsage:  berth push [OPTIONS] NAME[:TAG]\n\nRun 'berth push --help' for more information\n", ""},
	} {
		n := len(s.Requests())
		r := run(t, s, "", tc.args...)
		if r.code != tc.code || r.out != tc.out || r.err != tc.err {
			t.Errorf("%v: got %+v\nwant code %d out %q err %q", tc.args, r, tc.code, tc.out, tc.err)
			continue
		}
		if tc.tag == "" {
			continue
		}
		req := s.Requests()[n]
		if req.Path != "/images/localhost:5000/app/push" {
			t.Errorf("%v: %s %s", tc.args, req.Method, req.Path)
		}
		if got := req.Query.Get("tag"); (tc.tag == "-" && req.Query.Has("tag")) || (tc.tag != "-" && got != tc.tag) {
			t.Errorf("%v: query %v", tc.args, req.Query)
		}
		if got := sentAuth(t, req); got != wantAuth {
			t.Errorf("%v: sent %+v", tc.args, got)
		}
	}
}

func TestSearch(t *testing.T) {
	configDirs(t)
	s := clitest.New(t)
	s.JSON("GET /images/search", http.StatusOK, []registry.SearchResult{
		{Name: "busybox", Description: "Busybox base image.", StarCount: 3300, IsOfficial: true},
		{Name: "someone/busybox-tools", Description: "A rather long description\nthat goes on for more than forty-five characters", StarCount: 7, IsAutomated: true},
	})
	table := "NAME                    DESCRIPTION                                     STARS     OFFICIAL\n" +
		"busybox                 Busybox base image.                             3300      [OK]\n" +
		"someone/busybox-tools   A rather long description that goes on for m…   7         \n"
	for _, tc := range []struct {
		args  []string
		out   string
		query url.Values
	}{
		{[]string{"search", "busybox"}, table, url.Values{"term": {"busybox"}}},
		{[]string{"search", "--no-trunc", "--limit", "5", "-f", "is-official=true", "-f", "stars=3", "busybox"},
			"NAME                    DESCRIPTION                                                                  STARS     OFFICIAL\n" +
				"busybox                 Busybox base image.                                                          3300      [OK]\n" +
				"someone/busybox-tools   A rather long description that goes on for more than forty-five characters   7         \n",
			url.Values{"term": {"busybox"}, "limit": {"5"}, "filters": {`{"is-official":{"true":true},"stars":{"3":true}}`}}},
		{[]string{"search", "--format", "{{.Name}}|{{.StarCount}}|{{.IsOfficial}}|{{.IsAutomated}}", "busybox"},
			"busybox|3300|[OK]|\nsomeone/busybox-tools|7||[OK]\n", url.Values{"term": {"busybox"}}},
		{[]string{"search", "--format", "json", "busybox"},
			`{"Description":"Busybox base image.","IsOfficial":"true","Name":"busybox","StarCount":"3300"}` + "\n" +
				`{"Description":"A rather long description that goes on for m…","IsOfficial":"false","Name":"someone/busybox-tools","StarCount":"7"}` + "\n",
			url.Values{"term": {"busybox"}}},
		{[]string{"search", "--format", "table {{.Name}}\t{{.IsAutomated}}", "localhost:5000/busybox"},
			"NAME                    AUTOMATED\nbusybox                 \nsomeone/busybox-tools   [OK]\n",
			url.Values{"term": {"localhost:5000/busybox"}}},
	} {
		n := len(s.Requests())
		r := run(t, s, "", tc.args...)
		if r.code != 0 || r.out != tc.out || r.err != "" {
			t.Errorf("%v: got %+v\nwant %q", tc.args, r, tc.out)
			continue
		}
		req := s.Requests()[n]
		for k := range tc.query {
			if req.Query.Get(k) != tc.query.Get(k) {
				t.Errorf("%v: query %v, want %v", tc.args, req.Query, tc.query)
			}
		}
		if req.Query.Has("limit") != tc.query.Has("limit") || req.Query.Has("filters") != tc.query.Has("filters") {
			t.Errorf("%v: query %v, want %v", tc.args, req.Query, tc.query)
		}
		// No credentials stored: docker's empty AuthConfig is sent.
		if got := req.Header.Get(registry.AuthHeader); got != "e30=" {
			t.Errorf("%v: %s %q", tc.args, registry.AuthHeader, got)
		}
	}
}

func TestSearchUsesTermRegistryCredentials(t *testing.T) {
	berthDir, _ := configDirs(t)
	writeConfig(t, berthDir, `{"auths":{"localhost:5000":{"auth":"`+
		b64("a:b")+`"},"`+hubKey+`":{"auth":"`+b64("hub:h")+`"}}}`)
	s := clitest.New(t)
	s.JSON("GET /images/search", http.StatusOK, []registry.SearchResult{})
	for term, user := range map[string]string{"localhost:5000/x": "a", "busybox": "hub", "library/busybox": "hub", "r.io/x": ""} {
		n := len(s.Requests())
		if r := run(t, s, "", "search", term); r.code != 0 || r.out != "NAME      DESCRIPTION   STARS     OFFICIAL\n" {
			t.Fatalf("search %s: %+v", term, r)
		}
		if got := sentAuth(t, s.Requests()[n]); got.Username != user {
			t.Errorf("search %s sent %+v", term, got)
		}
	}
}

func TestRunSendsRegistryAuth(t *testing.T) {
	berthDir, _ := configDirs(t)
	writeConfig(t, berthDir, `{"auths":{"r.io":{"auth":"`+b64("alice:pw")+`"}}}`)
	s := clitest.New(t)
	s.Error("POST /containers/create", http.StatusNotFound, "No such image: r.io/app:latest")
	s.Handle("POST /images/create", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"errorDetail":{"message":"stop here"},"error":"stop here"}`+"\n")
	})
	r := run(t, s, "", "run", "-d", "r.io/app")
	if r.code == 0 || !strings.Contains(r.err, "stop here") {
		t.Fatalf("%+v", r)
	}
	req, ok := s.Find(http.MethodPost, "/images/create")
	if !ok {
		t.Fatal("no pull")
	}
	if got := sentAuth(t, req); got != (registry.AuthConfig{Username: "alice", Password: "pw", ServerAddress: "r.io"}) {
		t.Errorf("implicit pull sent %+v", got)
	}
}

func TestSave(t *testing.T) {
	configDirs(t)
	s := clitest.New(t)
	const archive = "tar archive bytes"
	s.Handle("GET /images/get", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query()["names"][0] == "nope" {
			clitest.WriteJSON(w, http.StatusNotFound, map[string]string{"message": "No such image: nope"})
			return
		}
		_, _ = io.WriteString(w, archive)
	})
	r := run(t, s, "", "save", "busybox", "alpine:3")
	if r.code != 0 || r.out != archive || r.err != "" {
		t.Fatalf("save to stdout: %+v", r)
	}
	req, _ := s.Find(http.MethodGet, "/images/get")
	if got := req.Query["names"]; len(got) != 2 || got[0] != "busybox" || got[1] != "alpine:3" {
		t.Errorf("names %v", got)
	}

	dir := t.TempDir()
	out := filepath.Join(dir, "images.tar")
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := run(t, s, "", "image", "save", "-o", out, "busybox"); r.code != 0 || r.out != "" {
		t.Fatalf("save -o: %+v", r)
	}
	if data, err := os.ReadFile(out); err != nil || string(data) != archive {
		t.Errorf("file holds %q, %v", data, err)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	// A failed save leaves the file it would have replaced.
	if r := run(t, s, "", "save", "-o", out, "nope"); r.code != 1 || r.err != "Error response from daemon: No such image: nope\n" {
		t.Errorf("failed save: %+v", r)
	}
	if data, _ := os.ReadFile(out); string(data) != archive {
		t.Errorf("file after a failed save: %q", data)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("files left: %v", entries)
	}
	n := len(s.Requests())
	missing := filepath.Join(dir, "missing", "x.tar")
	r = run(t, s, "", "save", "-o", missing, "busybox")
	if r.code != 1 || r.err != `failed to save image: invalid output path: directory "`+filepath.Dir(missing)+`" does not exist`+"\n" {
		t.Errorf("missing directory: %+v", r)
	}
	r = runOnTerminal(t, s, false, "save", "busybox")
	if r.code != 1 || r.err != "cowardly refusing to save to a terminal. Use the -o flag or redirect\n" {
		t.Errorf("terminal: %+v", r)
	}
	if len(s.Requests()) != n {
		t.Error("daemon asked after an output error")
	}
}

func TestLoad(t *testing.T) {
	configDirs(t)
	s := clitest.New(t)
	s.Handle("POST /images/load", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"stream":"Loaded image: busybox:latest\n"}`+"\n")
	})
	r := run(t, s, "tar from stdin", "load")
	if r.code != 0 || r.out != "Loaded image: busybox:latest\n" || r.err != "" {
		t.Fatalf("load: %+v", r)
	}
	req, _ := s.Find(http.MethodPost, "/images/load")
	if string(req.Body) != "tar from stdin" || req.Query.Get("quiet") != "1" || req.Header.Get("Content-Type") != "application/x-tar" {
		t.Errorf("request %q %v %v", req.Body, req.Query, req.Header)
	}

	in := filepath.Join(t.TempDir(), "in.tar")
	if err := os.WriteFile(in, []byte("tar from file"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := len(s.Requests())
	if r := run(t, s, "ignored", "image", "load", "-q", "-i", in); r.code != 0 || r.out != "Loaded image: busybox:latest\n" {
		t.Errorf("load -i: %+v", r)
	}
	if got := s.Requests()[n]; string(got.Body) != "tar from file" {
		t.Errorf("body %q", got.Body)
	}
	r = run(t, s, "", "load", "-i", filepath.Join(t.TempDir(), "none.tar"))
	if r.code != 1 || !strings.HasSuffix(r.err, "none.tar: no such file or directory\n") || !strings.HasPrefix(r.err, "open ") {
		t.Errorf("missing input: %+v", r)
	}
	r = runOnTerminal(t, s, true, "load")
	if r.code != 1 || r.err != "requested load from stdin, but stdin is empty\n" {
		t.Errorf("terminal stdin: %+v", r)
	}
}

func TestLoadPlainResponse(t *testing.T) {
	configDirs(t)
	s := clitest.New(t)
	s.Handle("POST /images/load", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "plain text report\n")
	})
	if r := run(t, s, "x", "load"); r.code != 0 || r.out != "plain text report\n" {
		t.Errorf("%+v", r)
	}
}

func TestImagePrune(t *testing.T) {
	configDirs(t)
	s := clitest.New(t)
	s.JSON("POST /images/prune", http.StatusOK, image.PruneReport{
		ImagesDeleted: []image.DeleteResponse{
			{Untagged: "busybox:old"},
			{Deleted: "sha256:3f57d9401f8d42f986df300f0c69192fc41da28ccc8d797829467780db3dd741"},
		},
		SpaceReclaimed: 12_300_000,
	})
	const dangling = "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] "
	const all = "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue? [y/N] "
	const report = "Deleted Images:\nuntagged: busybox:old\ndeleted: sha256:3f57d9401f8d42f986df300f0c69192fc41da28ccc8d797829467780db3dd741\n\nTotal reclaimed space: 12.3MB\n"
	for _, tc := range []struct {
		stdin   string
		args    []string
		out     string
		filters string // "" when no request is expected
	}{
		{"n\n", []string{"image", "prune"}, dangling, ""},
		{"", []string{"image", "prune"}, dangling, ""},
		{"yes\n", []string{"image", "prune"}, dangling, ""},
		{"y\n", []string{"image", "prune"}, dangling + report, `{"dangling":{"true":true}}`},
		{"Y\n", []string{"image", "prune", "-a"}, all + report, `{"dangling":{"false":true}}`},
		{"", []string{"image", "prune", "-f", "--filter", "until=24h", "--filter", "label=a=b"}, report,
			`{"dangling":{"true":true},"label":{"a=b":true},"until":{"24h":true}}`},
	} {
		n := len(s.Requests())
		r := run(t, s, tc.stdin, tc.args...)
		if r.code != 0 || r.out != tc.out || r.err != "" {
			t.Errorf("%v with %q: got %+v\nwant %q", tc.args, tc.stdin, r, tc.out)
		}
		reqs := s.Requests()[n:]
		if tc.filters == "" {
			if len(reqs) != 0 {
				t.Errorf("%v with %q: pruned after declining", tc.args, tc.stdin)
			}
			continue
		}
		if len(reqs) != 1 || reqs[0].Path != "/images/prune" || filtersOf(t, reqs[0].Query) != tc.filters {
			t.Errorf("%v: requests %+v, want filters %s", tc.args, reqs, tc.filters)
		}
	}
	s2 := clitest.New(t)
	s2.JSON("POST /images/prune", http.StatusOK, image.PruneReport{})
	if r := run(t, s2, "", "image", "prune", "-f"); r.out != "Total reclaimed space: 0B\n" {
		t.Errorf("nothing pruned: %+v", r)
	}
}

func TestExport(t *testing.T) {
	configDirs(t)
	s := clitest.New(t)
	s.Handle("GET /containers/{id}/export", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != "web" {
			clitest.WriteJSON(w, http.StatusNotFound, map[string]string{"message": "No such container: " + r.PathValue("id")})
			return
		}
		_, _ = io.WriteString(w, "rootfs tar")
	})
	if r := run(t, s, "", "export", "web"); r.code != 0 || r.out != "rootfs tar" {
		t.Errorf("export: %+v", r)
	}
	out := filepath.Join(t.TempDir(), "web.tar")
	if r := run(t, s, "", "container", "export", "--output", out, "web"); r.code != 0 || r.out != "" {
		t.Errorf("export -o: %+v", r)
	}
	if data, _ := os.ReadFile(out); string(data) != "rootfs tar" {
		t.Errorf("file holds %q", data)
	}
	if r := run(t, s, "", "export", "-o", out+".2", "nope"); r.code != 1 || r.err != "Error response from daemon: No such container: nope\n" {
		t.Errorf("unknown container: %+v", r)
	}
	if _, err := os.Stat(out + ".2"); err == nil {
		t.Error("file created for a failed export")
	}
	r := runOnTerminal(t, s, false, "export", "web")
	if r.code != 1 || r.err != "cowardly refusing to save to a terminal. Use the -o flag or redirect\n" {
		t.Errorf("terminal: %+v", r)
	}
}

func TestCommit(t *testing.T) {
	configDirs(t)
	s := clitest.New(t)
	const id = "sha256:9b1c3d5e7f9a1b3c5d4f2a9c0d1e3b5a7c9e1f3a5b7c9d1e3f5a7b9c1d3e5f7a"
	s.Handle("POST /commit", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("container") == "nope" {
			clitest.WriteJSON(w, http.StatusNotFound, map[string]string{"message": "No such container: nope"})
			return
		}
		clitest.WriteJSON(w, http.StatusCreated, container.CommitResponse{ID: id})
	})
	for _, tc := range []struct {
		args  []string
		query url.Values
	}{
		{[]string{"commit", "web"}, url.Values{"container": {"web"}}},
		{[]string{"container", "commit", "-a", "Jane <jane@example.com>", "-m", "add tools", "-c", "ENV X=1", "--change", "CMD [\"sh\"]",
			"-p=false", "web", "tools/app:v2"}, url.Values{
			"container": {"web"}, "repo": {"docker.io/tools/app"}, "tag": {"v2"}, "author": {"Jane <jane@example.com>"},
			"comment": {"add tools"}, "changes": {"ENV X=1", `CMD ["sh"]`}, "pause": {"0"},
		}},
		{[]string{"commit", "web", "localhost:5000/app"}, url.Values{"container": {"web"}, "repo": {"localhost:5000/app"}, "tag": {"latest"}}},
	} {
		n := len(s.Requests())
		r := run(t, s, "", tc.args...)
		if r.code != 0 || r.out != id+"\n" || r.err != "" {
			t.Errorf("%v: %+v", tc.args, r)
			continue
		}
		got := s.Requests()[n].Query
		if len(got) != len(tc.query) {
			t.Errorf("%v: query %v, want %v", tc.args, got, tc.query)
		}
		for k, v := range tc.query {
			if strings.Join(got[k], "|") != strings.Join(v, "|") {
				t.Errorf("%v: %s=%q, want %q", tc.args, k, got[k], v)
			}
		}
	}
	if r := run(t, s, "", "commit", "nope"); r.code != 1 || r.err != "Error response from daemon: No such container: nope\n" {
		t.Errorf("unknown container: %+v", r)
	}
	if r := run(t, s, "", "commit"); r.code != 1 || !strings.HasPrefix(r.err, "berth: 'berth commit' requires at least 1 and at most 2 arguments\n") {
		t.Errorf("no arguments: %+v", r)
	}
}
