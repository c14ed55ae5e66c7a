package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/api/httputil"
	"github.com/berth-dev/berth/internal/api/server"
	"github.com/containerd/errdefs"
	imagetypes "github.com/moby/moby/api/types/image"
)

// The other image-route tests' backend has no archive side.
func (f *fakeBackend) SaveImages(context.Context, []string, io.Writer) error {
	return errdefs.ErrNotImplemented
}

func (f *fakeBackend) LoadImage(context.Context, io.Reader, io.Writer, bool) error {
	return errdefs.ErrNotImplemented
}

func (f *fakeBackend) ImagesPrune(context.Context, httputil.Filters) (*imagetypes.PruneReport, error) {
	return nil, errdefs.ErrNotImplemented
}

// archiveFake answers the archive routes.
type archiveFake struct {
	*fakeBackend
	names   []string
	saveErr error
	partial bool // write some bytes before saveErr
	quiet   bool
	body    string
	loadErr error
	filters httputil.Filters
}

func (a *archiveFake) SaveImages(_ context.Context, names []string, out io.Writer) error {
	a.names = names
	if a.partial {
		out.Write([]byte("partial tar"))
	}
	if a.saveErr != nil {
		return a.saveErr
	}
	_, err := out.Write([]byte("TAR:" + strings.Join(names, ",")))
	return err
}

func (a *archiveFake) LoadImage(_ context.Context, src io.Reader, out io.Writer, quiet bool) error {
	b, _ := io.ReadAll(src)
	a.body, a.quiet = string(b), quiet
	fmt.Fprintf(out, "{\"stream\":\"Loaded image: x:latest\\n\"}\r\n")
	return a.loadErr
}

func (a *archiveFake) ImagesPrune(_ context.Context, f httputil.Filters) (*imagetypes.PruneReport, error) {
	a.filters = f
	return &imagetypes.PruneReport{ImagesDeleted: []imagetypes.DeleteResponse{{Untagged: "a:latest"}, {Deleted: "sha256:1"}}, SpaceReclaimed: 42}, nil
}

func serveArchive(a *archiveFake) *httptest.Server {
	return httptest.NewServer(server.New(server.Options{MinAPIVersion: "1.40", MaxAPIVersion: "1.56", ServerVersion: "test"}, &Router{Backend: a}))
}

func TestSaveRoutes(t *testing.T) {
	tests := []struct {
		name      string
		path      string
		fake      archiveFake
		wantCode  int
		wantBody  string
		wantNames []string
		cut       bool // the connection drops mid-body
	}{
		{name: "names", path: "/images/get?names=a&names=b:1", wantCode: 200, wantBody: "TAR:a,b:1", wantNames: []string{"a", "b:1"}},
		{name: "one name with a registry port", path: "/v1.50/images/localhost:5000/x/y:2/get", wantCode: 200, wantBody: "TAR:localhost:5000/x/y:2", wantNames: []string{"localhost:5000/x/y:2"}},
		{name: "unknown image before any byte", path: "/images/get?names=nope",
			fake:     archiveFake{saveErr: fmt.Errorf("No such image: nope:latest: %w", errdefs.ErrNotFound)},
			wantCode: 404, wantBody: `{"message":"No such image: nope:latest"}` + "\n", wantNames: []string{"nope"}},
		{name: "failure mid-stream", path: "/images/get?names=a", fake: archiveFake{saveErr: errors.New("disk gone"), partial: true}, cut: true, wantNames: []string{"a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.fake
			a.fakeBackend = &fakeBackend{}
			srv := serveArchive(&a)
			defer srv.Close()
			resp, err := http.Get(srv.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if tc.cut {
				if err == nil {
					t.Fatalf("body %q read to a clean end, want the connection cut", body)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantCode || string(body) != tc.wantBody {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, body, tc.wantCode, tc.wantBody)
			}
			if tc.wantCode == 200 && resp.Header.Get("Content-Type") != "application/x-tar" {
				t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
			}
			if strings.Join(a.names, "|") != strings.Join(tc.wantNames, "|") {
				t.Errorf("names %q, want %q", a.names, tc.wantNames)
			}
		})
	}
}

func TestLoadRoute(t *testing.T) {
	tests := []struct {
		query     string
		loadErr   error
		wantQuiet bool
		wantBody  string
	}{
		{"", nil, true, "{\"stream\":\"Loaded image: x:latest\\n\"}\r\n"},
		{"?quiet=0", nil, false, "{\"stream\":\"Loaded image: x:latest\\n\"}\r\n"},
		{"?quiet=1", errors.New("invalid diffID for layer 0"), true,
			"{\"stream\":\"Loaded image: x:latest\\n\"}\r\n{\"errorDetail\":{\"message\":\"invalid diffID for layer 0\"},\"error\":\"invalid diffID for layer 0\"}\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			a := &archiveFake{fakeBackend: &fakeBackend{}, loadErr: tc.loadErr}
			srv := serveArchive(a)
			defer srv.Close()
			resp, err := http.Post(srv.URL+"/images/load"+tc.query, "application/x-tar", strings.NewReader("ARCHIVE"))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(body) != tc.wantBody {
				t.Errorf("got %d %q, want 200 %q", resp.StatusCode, body, tc.wantBody)
			}
			if a.quiet != tc.wantQuiet || a.body != "ARCHIVE" {
				t.Errorf("quiet %v body %q, want %v ARCHIVE", a.quiet, a.body, tc.wantQuiet)
			}
		})
	}
}

func TestPruneRoute(t *testing.T) {
	a := &archiveFake{fakeBackend: &fakeBackend{}}
	srv := serveArchive(a)
	defer srv.Close()
	resp, err := http.Post(srv.URL+`/images/prune?filters={"dangling":{"false":true},"label":{"a=b":true}}`, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	want := `{"ImagesDeleted":[{"Untagged":"a:latest"},{"Deleted":"sha256:1"}],"SpaceReclaimed":42}` + "\n"
	if resp.StatusCode != 200 || string(body) != want {
		t.Errorf("got %d %s, want 200 %s", resp.StatusCode, body, want)
	}
	if got := a.filters.Get("dangling"); len(got) != 1 || got[0] != "false" || !a.filters.Contains("label") {
		t.Errorf("filters %v", a.filters.Keys())
	}
}
