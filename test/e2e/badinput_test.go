package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// apiCall sends a raw request to the daemon and returns the status, the
// Content-Type and the body.
func apiCall(t *testing.T, d *testutil.Berthd, method, path, body string) (int, string, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://berthd"+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

// wantAPIError checks that a request fails with status and a JSON
// {"message": ...} containing msg.
func wantAPIError(t *testing.T, d *testutil.Berthd, method, path, body string, status int, msg string) {
	t.Helper()
	code, ct, b := apiCall(t, d, method, path, body)
	var e struct{ Message string }
	if code != status || !strings.HasPrefix(ct, "application/json") || json.Unmarshal(b, &e) != nil || !strings.Contains(e.Message, msg) {
		t.Errorf("%s %s: %d %s %q; want %d with a JSON message containing %q", method, path, code, ct, b, status, msg)
	}
}

// apiJSON sends a request that must succeed and decodes its answer.
func apiJSON(t *testing.T, d *testutil.Berthd, method, path, body string, v any) {
	t.Helper()
	code, _, b := apiCall(t, d, method, path, body)
	if code/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, path, code, b)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s %s: %v in %q", method, path, err, b)
		}
	}
}

type inspectState struct {
	ID    string `json:"Id"`
	Name  string
	State struct {
		Status  string
		Running bool
		Pid     int
	}
}

func TestBadInput(t *testing.T) {
	d := testutil.StartBerthd(t)
	d.ImportBusybox(t, "busybox")
	var created struct {
		ID string `json:"Id"`
	}
	apiJSON(t, d, "POST", "/containers/create?name=victim", `{"Image":"busybox","Cmd":["sleep","300"]}`, &created)
	apiJSON(t, d, "POST", "/containers/victim/start", "", nil)
	var before inspectState
	apiJSON(t, d, "GET", "/containers/victim/json", "", &before)
	if !before.State.Running {
		t.Fatalf("victim not running: %+v", before.State)
	}
	snapshot := treeOutsideDataRoot(t, d)

	t.Run("malformed JSON", func(t *testing.T) {
		wantAPIError(t, d, "POST", "/containers/create", `{"Image": "busybox", `, 400, "")
		wantAPIError(t, d, "POST", "/containers/create", `{"Image": 5}`, 400, "")
		wantAPIError(t, d, "POST", "/containers/create", `not json at all`, 400, "")
		wantAPIError(t, d, "POST", "/containers/victim/exec", `{"Cmd": "not-a-list"`, 400, "")
		wantAPIError(t, d, "GET", "/containers/json?filters=%7Bbroken", "", 400, "")
		wantAPIError(t, d, "GET", "/images/json?filters=%7Bbroken", "", 400, "")
	})
	t.Run("unknown image", func(t *testing.T) {
		wantAPIError(t, d, "POST", "/containers/create", `{"Image":"nosuchimage","Cmd":["true"]}`, 404, "No such image: nosuchimage:latest")
		wantAPIError(t, d, "GET", "/images/nosuchimage/json", "", 404, "No such image: nosuchimage:latest")
		wantAPIError(t, d, "DELETE", "/images/nosuchimage:v2", "", 404, "No such image: nosuchimage:v2")
	})
	t.Run("unknown container", func(t *testing.T) {
		for _, r := range [][2]string{
			{"GET", "/containers/x/json"}, {"POST", "/containers/x/start"}, {"POST", "/containers/x/stop"},
			{"POST", "/containers/x/kill"}, {"DELETE", "/containers/x"}, {"GET", "/containers/x/logs?stdout=1"},
			{"POST", "/containers/x/wait"}, {"GET", "/containers/x/top"}, {"POST", "/containers/x/rename?name=y"},
		} {
			wantAPIError(t, d, r[0], r[1], "", 404, "No such container: x")
		}
		wantAPIError(t, d, "GET", "/exec/nosuchexec/json", "", 404, "No such exec instance: nosuchexec")
	})
	t.Run("duplicate name", func(t *testing.T) {
		wantAPIError(t, d, "POST", "/containers/create?name=victim", `{"Image":"busybox","Cmd":["true"]}`, 409,
			`Conflict. The container name "/victim" is already in use by container "`+created.ID+`"`)
	})
	t.Run("remove running", func(t *testing.T) {
		wantAPIError(t, d, "DELETE", "/containers/victim", "", 409, "cannot remove container")
		var after inspectState
		apiJSON(t, d, "GET", "/containers/victim/json", "", &after)
		if !after.State.Running || after.State.Pid != before.State.Pid {
			t.Errorf("victim after a refused remove: %+v, before %+v", after.State, before.State)
		}
	})
	t.Run("invalid names", func(t *testing.T) {
		for _, name := range []string{"../x", "a/b", "..", "../../../../tmp/berth-escape", ".hidden", "-dash", "a b"} {
			q := "/containers/create?name=" + url.QueryEscape(name)
			wantAPIError(t, d, "POST", q, `{"Image":"busybox","Cmd":["true"]}`, 400, "Invalid container name")
			wantAPIError(t, d, "POST", "/containers/victim/rename?name="+url.QueryEscape(name), "", 400, "Invalid container name")
		}
		// Traversal in path references finds nothing (the cleaned path
		// is no route at all).
		wantAPIError(t, d, "GET", "/containers/..%2F..%2Fetc/json", "", 404, "")
		wantAPIError(t, d, "GET", "/containers/%2E%2E/json", "", 404, "")
		wantAPIError(t, d, "DELETE", "/containers/..%2Fcontainers?force=1", "", 404, "")
		wantAPIError(t, d, "GET", "/images/..%2F..%2Fetc%2Fpasswd/json", "", 404, "")
		if _, err := os.Stat("/tmp/berth-escape"); err == nil {
			os.RemoveAll("/tmp/berth-escape")
			t.Error("a container name escaped to /tmp/berth-escape")
		}
	})
	t.Run("bad parameters", func(t *testing.T) {
		wantAPIError(t, d, "POST", "/containers/victim/kill?signal=NOPE", "", 400, "Invalid signal: NOPE")
		wantAPIError(t, d, "POST", "/containers/victim/wait?condition=bogus", "", 400, "")
		wantAPIError(t, d, "GET", "/containers/victim/logs", "", 400, "you must choose at least one stream")
		wantAPIError(t, d, "POST", "/containers/create", `{"Image":"busybox","HostConfig":{"RestartPolicy":{"Name":"sometimes"}}}`, 400, "invalid restart policy")
		wantAPIError(t, d, "POST", "/containers/create", `{"Cmd":["true"]}`, 400, "")
		wantAPIError(t, d, "POST", "/containers/create?name=nonet", `{"Image":"busybox","HostConfig":{"NetworkMode":"nosuchnet"}}`, 400, "network nosuchnet not found")
	})
	t.Run("unknown endpoint", func(t *testing.T) {
		wantAPIError(t, d, "GET", "/nosuch/endpoint", "", 404, "page not found")
		wantAPIError(t, d, "GET", "/v1.45/containers/victim/nosuch", "", 404, "page not found")
	})
	t.Run("API version", func(t *testing.T) {
		wantAPIError(t, d, "GET", "/v1.12/version", "", 400,
			"client version 1.12 is too old. Minimum supported API version is 1.40, please upgrade your client to a newer version")
		wantAPIError(t, d, "GET", "/v1.12/containers/json", "", 400, "client version 1.12 is too old")
		wantAPIError(t, d, "GET", "/v9.99/version", "", 400, "client version 9.99 is too new. Maximum supported API version is")
		code, _, _ := apiCall(t, d, "GET", "/v1.40/version", "")
		if code != 200 {
			t.Errorf("/v1.40/version: %d", code)
		}
	})
	t.Run("huge environment", func(t *testing.T) {
		huge := `{"Image":"busybox","Cmd":["true"],"Env":["BIG=` + strings.Repeat("x", 10<<20) + `"]}`
		code, _, b := apiCall(t, d, "POST", "/containers/create?name=huge", huge)
		if code/100 == 2 {
			// Created: the start must fail with a clear error.
			code, _, b = apiCall(t, d, "POST", "/containers/huge/start", "")
			var st inspectState
			apiJSON(t, d, "GET", "/containers/huge/json", "", &st)
			if st.State.Running || st.State.Status != "created" {
				t.Errorf("huge after its start: %+v", st.State)
			}
			apiJSON(t, d, "DELETE", "/containers/huge?force=1", "", nil)
		}
		var e struct{ Message string }
		if code != 400 || json.Unmarshal(b, &e) != nil || !strings.Contains(e.Message, `"BIG"`) ||
			!strings.Contains(e.Message, "argument list too long") || len(e.Message) > 1024 {
			t.Errorf("a 10 MB variable: %d %.500q; want a 400 naming the variable", code, b)
		}
	})

	// The daemon is up, the victim untouched, nothing left behind.
	var after inspectState
	apiJSON(t, d, "GET", "/containers/victim/json", "", &after)
	if !after.State.Running || after.State.Pid != before.State.Pid || after.Name != "/victim" {
		t.Errorf("victim after the bad input: %+v", after)
	}
	var list []struct {
		ID    string `json:"Id"`
		Names []string
	}
	apiJSON(t, d, "GET", "/containers/json?all=1", "", &list)
	if len(list) != 1 || list[0].ID != created.ID || !slices.Equal(list[0].Names, []string{"/victim"}) {
		t.Errorf("containers after the bad input: %+v", list)
	}
	var imgs []struct{ RepoTags []string }
	apiJSON(t, d, "GET", "/images/json", "", &imgs)
	if len(imgs) != 1 || !slices.Equal(imgs[0].RepoTags, []string{"busybox:latest"}) {
		t.Errorf("images after the bad input: %+v", imgs)
	}
	if got := treeOutsideDataRoot(t, d); !slices.Equal(got, snapshot) {
		t.Errorf("files outside the data root changed:\nbefore %v\nafter  %v", snapshot, got)
	}
}

// treeOutsideDataRoot lists the daemon's directory without its data and
// exec roots, and the data root's direct parent entries: where a name
// that escaped the containers directory would land.
func treeOutsideDataRoot(t *testing.T, d *testutil.Berthd) []string {
	t.Helper()
	var out []string
	for _, dir := range []string{d.Dir, d.DataRoot, filepath.Join(d.DataRoot, "containers")} {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			if p == d.DataRoot || p == d.ExecRoot || p == d.LogPath {
				continue
			}
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// TestBadCLIFlags checks that the docker CLI's usage errors exit 125 and
// leave nothing behind.
func TestBadCLIFlags(t *testing.T) {
	docker := testutil.DockerCLI(t)
	d := testutil.StartBerthd(t)
	d.ImportBusybox(t, "busybox")
	for _, args := range [][]string{
		{"run", "--no-such-flag", "busybox", "true"},
		{"run", "-m", "lots", "busybox", "true"},
		{"run", "--restart", "sometimes", "busybox", "true"},
		{"run", "--name", "../x", "busybox", "true"},
		{"run", "nosuchimage-local:v9", "true"},
		{"create", "-p", "notaport", "busybox"},
		{"ps", "--no-such-flag"},
		{"run", "--network", "nosuchnet", "busybox", "true"},
	} {
		out, errOut, code := d.Run(t, docker, args...)
		if code != 125 {
			t.Errorf("docker %v: exit %d, want 125 (stdout %q, stderr %q)", args, code, out, errOut)
		}
		if strings.TrimSpace(errOut) == "" {
			t.Errorf("docker %v: no error message", args)
		}
	}
	out, _, code := d.Run(t, docker, "ps", "-aq")
	if code != 0 || strings.TrimSpace(out) != "" {
		t.Errorf("containers left by the failed commands: %q (exit %d)", out, code)
	}
}
