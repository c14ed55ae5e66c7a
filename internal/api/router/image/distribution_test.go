package image

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/api/server"
	"github.com/moby/moby/api/pkg/authconfig"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/registry"
)

func (f *fakeBackend) PushImage(_ context.Context, ref reference.Named, auth *registry.AuthConfig, out io.Writer) error {
	user := ""
	if auth != nil {
		user = auth.Username
	}
	f.calls = append(f.calls, fmt.Sprintf("push %s %s", ref, user))
	fmt.Fprint(out, `{"status":"The push refers to repository [`+ref.Name()+`]"}`+"\r\n")
	return f.pullErr
}

func (f *fakeBackend) SearchImages(_ context.Context, term string, limit int, sf SearchFilters, _ *registry.AuthConfig) ([]registry.SearchResult, error) {
	official := "-"
	if sf.Official != nil {
		official = fmt.Sprint(*sf.Official)
	}
	f.calls = append(f.calls, fmt.Sprintf("search %s %d %d %s", term, limit, sf.MinStars, official))
	return []registry.SearchResult{{Name: term, StarCount: 3}}, nil
}

func TestPushAndSearchRoutes(t *testing.T) {
	auth, err := authconfig.Encode(registry.AuthConfig{Username: "alice", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	b := &fakeBackend{}
	s := server.New(server.Options{MinAPIVersion: "1.40", MaxAPIVersion: "1.56", ServerVersion: "test"}, &Router{Backend: b})
	for _, tc := range []struct {
		method, path string
		auth         bool
		code         int
		call, body   string
	}{
		{http.MethodPost, "/v1.51/images/127.0.0.1:5000/busybox/push?tag=v1", true, 200,
			"push 127.0.0.1:5000/busybox:v1 alice", "The push refers to repository [127.0.0.1:5000/busybox]"},
		{http.MethodPost, "/images/127.0.0.1:5000/a/b/push?tag=", false, 200, "push 127.0.0.1:5000/a/b ", ""},
		{http.MethodPost, "/images/Bad Name/push", false, 400, "", "invalid reference format"},
		{http.MethodGet, `/images/search?term=busybox&limit=5&filters={"stars":["3"],"is-official":["true"]}`, false, 200,
			"search busybox 5 3 true", `"name":"busybox"`},
		{http.MethodGet, `/images/search?term=busybox&filters={"color":["red"]}`, false, 400, "", "invalid filter 'color'"},
		{http.MethodGet, `/images/search?term=busybox&filters={"stars":["many"]}`, false, 400, "", "invalid filter 'stars=many'"},
	} {
		b.calls = nil
		req := httptest.NewRequest(tc.method, strings.ReplaceAll(tc.path, " ", "%20"), nil)
		if tc.auth {
			req.Header.Set(registry.AuthHeader, auth)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		call := strings.Join(b.calls, ";")
		if rec.Code != tc.code || call != tc.call || !strings.Contains(rec.Body.String(), tc.body) {
			t.Errorf("%s %s: %d %q calls %q, want %d %q calls %q", tc.method, tc.path, rec.Code, rec.Body, call, tc.code, tc.body, tc.call)
		}
	}
}
