package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/api/server"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fakeBackend records calls and answers with canned data.
type fakeBackend struct {
	calls    []string
	list     []imagetypes.Summary
	listOpts ListOptions
	inspect  InspectData
	pullErr  error
	imported string
}

func (f *fakeBackend) ImportImage(_ context.Context, src io.Reader, ref reference.Named, p *ocispec.Platform, comment string, changes []string) (digest.Digest, error) {
	data, _ := io.ReadAll(src)
	f.imported = string(data)
	f.calls = append(f.calls, fmt.Sprintf("import %v %v %q %q", ref, p, comment, changes))
	return digest.FromString("img"), nil
}

func (f *fakeBackend) PullImage(_ context.Context, ref reference.Named, p *ocispec.Platform, _ *registry.AuthConfig, out io.Writer) error {
	f.calls = append(f.calls, fmt.Sprintf("pull %s %v", ref, p))
	if f.pullErr != nil && strings.Contains(ref.String(), "midway") {
		fmt.Fprint(out, `{"status":"Pulling"}`+"\r\n")
	}
	return f.pullErr
}

func (f *fakeBackend) Images(_ context.Context, opts ListOptions) ([]imagetypes.Summary, error) {
	f.listOpts = opts
	out := make([]imagetypes.Summary, len(f.list))
	copy(out, f.list)
	return out, nil
}

func (f *fakeBackend) ImageInspect(context.Context, string) (*InspectData, error) {
	d := f.inspect
	return &d, nil
}

func (f *fakeBackend) ImageHistory(context.Context, string) ([]imagetypes.HistoryResponseItem, error) {
	return []imagetypes.HistoryResponseItem{}, nil
}

func (f *fakeBackend) ImageDelete(_ context.Context, name string, force, prune bool) ([]imagetypes.DeleteResponse, error) {
	f.calls = append(f.calls, fmt.Sprintf("delete %s %v %v", name, force, prune))
	return []imagetypes.DeleteResponse{{Untagged: name}}, nil
}

func (f *fakeBackend) ResolveImageID(_ context.Context, name string) (digest.Digest, error) {
	if name == "missing" {
		return "", fmt.Errorf("No such image: missing:latest: %w", errdefs.ErrNotFound)
	}
	return digest.FromString(name), nil
}

func (f *fakeBackend) TagImage(_ context.Context, id digest.Digest, ref reference.Named) error {
	f.calls = append(f.calls, fmt.Sprintf("tag %s %s", id, ref))
	return nil
}

func do(t *testing.T, b *fakeBackend, method, path, body string) (int, string) {
	t.Helper()
	s := server.New(server.Options{MinAPIVersion: "1.40", MaxAPIVersion: "1.56", ServerVersion: "test"}, &Router{Backend: b})
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
	return rec.Code, rec.Body.String()
}

func decode(t *testing.T, body string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	return v
}

func TestListVersions(t *testing.T) {
	b := &fakeBackend{list: []imagetypes.Summary{
		{ID: "sha256:a", Size: 10, Containers: 2, SharedSize: -1},
		{ID: "sha256:b", RepoTags: []string{"b:latest"}, Size: 20, Containers: 0, SharedSize: -1},
	}}
	tests := []struct {
		version string
		want    string // the first image, key-sorted JSON
	}{
		{"1.42", `{"Containers":-1,"Created":0,"Id":"sha256:a","Labels":null,"ParentId":"","RepoDigests":["\u003cnone\u003e@\u003cnone\u003e"],"RepoTags":["\u003cnone\u003e:\u003cnone\u003e"],"SharedSize":-1,"Size":10,"VirtualSize":10}`},
		{"1.43", `{"Containers":-1,"Created":0,"Id":"sha256:a","Labels":null,"ParentId":"","RepoDigests":[],"RepoTags":[],"SharedSize":-1,"Size":10,"VirtualSize":10}`},
		{"1.50", `{"Containers":-1,"Created":0,"Id":"sha256:a","Labels":null,"ParentId":"","RepoDigests":[],"RepoTags":[],"SharedSize":-1,"Size":10}`},
		{"1.56", `{"Containers":2,"Created":0,"Id":"sha256:a","Labels":null,"ParentId":"","RepoDigests":[],"RepoTags":[],"SharedSize":-1,"Size":10}`},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			code, body := do(t, b, http.MethodGet, "/v"+tt.version+"/images/json?shared-size=1&all=1", "")
			if code != http.StatusOK {
				t.Fatalf("%d %s", code, body)
			}
			list := decode(t, body).([]any)
			got, _ := json.Marshal(list[0])
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if !b.listOpts.All || b.listOpts.SharedSize != (tt.version != "1.40" && tt.version != "1.41") {
				t.Errorf("options = %+v", b.listOpts)
			}
		})
	}
	code, body := do(t, b, http.MethodGet, "/images/json?filters=%7B%22x%22", "")
	if code != http.StatusBadRequest || !strings.Contains(body, `"invalid filter"`) {
		t.Errorf("bad filters JSON: %d %s", code, body)
	}
	code, body = do(t, &fakeBackend{}, http.MethodGet, "/images/json", "")
	if code != http.StatusOK || strings.TrimSpace(body) != "[]" {
		t.Errorf("empty list: %d %s", code, body)
	}
}

func TestInspectVersions(t *testing.T) {
	cfg := dockerspec.DockerOCIImageConfig{}
	cfg.Cmd = []string{"sh"}
	b := &fakeBackend{inspect: InspectData{InspectResponse: imagetypes.InspectResponse{
		ID: "sha256:a", Config: &cfg, Size: 5, Os: "linux", Architecture: "amd64",
	}}}
	get := func(version string) map[string]any {
		t.Helper()
		code, body := do(t, b, http.MethodGet, "/v"+version+"/images/127.0.0.1:5000/a/b:1/json", "")
		if code != http.StatusOK {
			t.Fatalf("%d %s", code, body)
		}
		return decode(t, body).(map[string]any)
	}
	has := func(m map[string]any, keys ...string) string {
		var missing []string
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				missing = append(missing, k)
			}
		}
		return strings.Join(missing, ",")
	}

	old := get("1.43")
	if m := has(old, "VirtualSize", "Container", "ContainerConfig", "Parent", "Comment", "DockerVersion", "Author"); m != "" || old["Created"] != "0001-01-01T00:00:00Z" {
		t.Errorf("1.43 misses %s: %v", m, old)
	}
	if m := has(old["Config"].(map[string]any), "Hostname", "AttachStdin", "Env", "Cmd"); m != "" || old["Config"].(map[string]any)["Cmd"].([]any)[0] != "sh" {
		t.Errorf("1.43 Config misses %s: %v", m, old["Config"])
	}
	if rt, ok := old["RepoTags"].([]any); !ok || len(rt) != 0 {
		t.Errorf("RepoTags = %v", old["RepoTags"])
	}
	v151 := get("1.51")
	c := v151["Config"].(map[string]any)
	if m := has(c, "Env", "Labels", "WorkingDir"); m != "" || has(c, "Hostname") == "" || has(v151, "VirtualSize") == "" || has(v151, "Comment") != "" {
		t.Errorf("1.51 = %v", v151)
	}
	cur := get("1.56")
	if has(cur, "Parent") == "" || has(cur, "Comment") == "" || has(cur, "DockerVersion") == "" || has(cur["Config"].(map[string]any), "Env") == "" {
		t.Errorf("1.56 = %v", cur)
	}
	b.inspect.Parent = "sha256:p"
	if cur = get("1.56"); cur["Parent"] != "sha256:p" {
		t.Errorf("1.56 with parent = %v", cur)
	}
}

func TestCreate(t *testing.T) {
	tests := []struct {
		path     string
		body     string
		wantCode int
		wantBody string
		wantCall string
	}{
		{"/images/create?fromImage=busybox&tag=1.36", "", 200, "", "pull docker.io/library/busybox:1.36 <nil>"},
		{"/images/create?fromImage=busybox:", "", 200, "", "pull docker.io/library/busybox <nil>"},
		{"/images/create?fromImage=busybox&tag=" + digest.FromString("m").String(), "", 200, "", "pull docker.io/library/busybox@" + digest.FromString("m").String() + " <nil>"},
		{"/images/create?fromImage=busybox&platform=linux/arm64/v8", "", 200, "", "pull docker.io/library/busybox &{arm64 linux  [] v8}"},
		{"/images/create?fromImage=scratch", "", 403, `"'scratch' is a reserved name"`, ""},
		{"/images/create?fromImage=Busybox", "", 400, "must be lowercase", ""},
		{"/images/create?fromImage=x&platform=linux/a/b/c", "", 400, "too many components", ""},
		{"/images/create?fromImage=unknown-image", "", 501, `{"message":"not implemented"}`, "pull docker.io/library/unknown-image <nil>"},
		{"/images/create?fromImage=midway", "", 200, `{"errorDetail":{"message":"not implemented"},"error":"not implemented"}`, "pull docker.io/library/midway <nil>"},
		{"/images/create?fromSrc=-&repo=a/b&tag=2&message=hi&changes=CMD+sh&changes=ENV+A%3Db", "layer", 200, `{"status":"` + digest.FromString("img").String() + `"}`,
			`import docker.io/a/b:2 <nil> "hi" ["CMD sh" "ENV A=b"]`},
		{"/images/create?fromSrc=-&platform=linux/arm64", "layer", 200, "", `import <nil> &{arm64 linux  [] } "Imported from -" []`},
		{"/images/create?fromSrc=-&repo=a@" + digest.FromString("m").String(), "", 400, "cannot import digest reference", ""},
		{"/images/create", "", 400, "fromImage or fromSrc must be given", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			b := &fakeBackend{}
			if strings.Contains(tt.path, "unknown-image") || strings.Contains(tt.path, "midway") {
				b.pullErr = errdefs.ErrNotImplemented
			}
			code, body := do(t, b, http.MethodPost, tt.path, tt.body)
			if code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
				t.Errorf("%d %s, want %d %s", code, body, tt.wantCode, tt.wantBody)
			}
			if tt.wantCall != "" && (len(b.calls) != 1 || b.calls[0] != tt.wantCall) {
				t.Errorf("calls = %q, want %q", b.calls, tt.wantCall)
			}
			if strings.Contains(tt.path, "fromSrc=-") && tt.wantCode == 200 && b.imported != tt.body {
				t.Errorf("imported %q", b.imported)
			}
		})
	}
}

func TestTagAndDelete(t *testing.T) {
	tests := []struct {
		method, path string
		wantCode     int
		wantBody     string
		wantCall     string
	}{
		{http.MethodPost, "/images/busybox/tag?repo=127.0.0.1:5000/daocloud.io/library/busybox&tag=1", 201, "",
			"tag " + digest.FromString("busybox").String() + " 127.0.0.1:5000/daocloud.io/library/busybox:1"},
		{http.MethodPost, "/v1.45/images/sha256:abc/tag?repo=x", 201, "", "tag " + digest.FromString("sha256:abc").String() + " docker.io/library/x:latest"},
		{http.MethodPost, "/images/busybox/tag?repo=Busybox", 400, "must be lowercase", ""},
		{http.MethodPost, "/images/busybox/tag?repo=sha256", 400, "refusing to create an ambiguous tag using digest algorithm as name", ""},
		{http.MethodPost, "/images/busybox/tag", 400, "repository name must have at least one component", ""},
		{http.MethodPost, "/images/missing/tag?repo=x", 404, "No such image: missing:latest", ""},
		{http.MethodDelete, "/images/a/b:1?force=1&noprune=1", 200, `[{"Untagged":"a/b:1"}]`, "delete a/b:1 true false"},
		{http.MethodDelete, "/v1.41/images/sha256:abc", 200, "", "delete sha256:abc false true"},
		{http.MethodDelete, "/images/%20", 400, "image name cannot be blank", ""},
		{http.MethodDelete, "/images/a?platforms=" + `{"os":"linux"}`, 501, "not supported", ""},
		{http.MethodGet, "/images/a/b/history", 200, "[]", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			b := &fakeBackend{}
			code, body := do(t, b, tt.method, tt.path, "")
			if code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
				t.Errorf("%d %s, want %d %s", code, body, tt.wantCode, tt.wantBody)
			}
			if tt.wantCall != "" && (len(b.calls) != 1 || b.calls[0] != tt.wantCall) {
				t.Errorf("calls = %q, want %q", b.calls, tt.wantCall)
			}
		})
	}
}

func TestParsePlatform(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{in: "linux", want: "linux/" + ocispec.Platform{}.Architecture},
		{in: "linux/amd64", want: "linux/amd64"},
		{in: "Linux/X86_64", want: "linux/amd64"},
		{in: "linux/aarch64", want: "linux/arm64"},
		{in: "linux/arm/v7", want: "linux/arm/v7"},
		{in: "linux/armhf", want: "linux/arm/v7"},
		{in: "arm64", want: "linux/arm64"},
		{in: "windows/amd64", want: "windows/amd64"},
		{in: "linux//amd64", wantErr: true},
		{in: "linux/amd64/v1/x", wantErr: true},
		{in: "linux/am d64", wantErr: true},
	}
	for _, tt := range tests {
		p, err := parsePlatform(tt.in)
		if tt.wantErr {
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("parsePlatform(%q) = %+v, %v", tt.in, p, err)
			}
			continue
		}
		got := p.OS + "/" + p.Architecture
		if p.Variant != "" {
			got += "/" + p.Variant
		}
		if tt.in == "linux" {
			if p.OS != "linux" || p.Architecture == "" {
				t.Errorf("parsePlatform(linux) = %+v", p)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parsePlatform(%q) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

func TestWithExtraFields(t *testing.T) {
	type inner struct{ A int }
	v := struct {
		X      int64
		Config *inner
		Empty  *inner
	}{X: 1 << 60, Config: &inner{A: 1}}
	got, err := withExtraFields(v, map[string]any{"X": 2, "Y": "y", "Config": map[string]any{"A": 5, "B": nil}, "Empty": map[string]any{"C": true}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(got)
	if want := `{"Config":{"A":1,"B":null},"Empty":{"C":true},"X":1152921504606846976,"Y":"y"}`; string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	if _, err := withExtraFields(func() {}, nil); err == nil {
		t.Error("unmarshalable value accepted")
	}
	if !errors.Is(invalid(errors.New("x")), errdefs.ErrInvalidArgument) {
		t.Error("invalid() does not classify")
	}
}
