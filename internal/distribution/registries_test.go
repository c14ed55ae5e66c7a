package distribution

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/distribution/reference"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/moby/moby/api/types/registry"
)

func TestNewRegistries(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		err  string
	}{
		{"empty", Config{}, ""},
		{"mirror", Config{Mirrors: []string{"https://mirror.example:5000", "http://127.0.0.1:5000/"}}, ""},
		{"mirror scheme", Config{Mirrors: []string{"ftp://m"}}, `invalid mirror: unsupported scheme "ftp" in "ftp://m"`},
		{"mirror path", Config{Mirrors: []string{"https://m/v2/"}}, `invalid mirror: path, query, or fragment at end of the URI "https://m/v2/"`},
		{"insecure CIDR and host", Config{Insecure: []string{"10.0.0.0/8", "myreg:5000"}}, ""},
		{"insecure URL", Config{Insecure: []string{"http://myreg:5000"}}, "insecure registry http://myreg:5000 should not contain '://'"},
		{"insecure hub", Config{Insecure: []string{"docker.io"}}, "cannot mark the official registry docker.io insecure"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewRegistries(tc.cfg)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("error %v, want %q", err, tc.err)
			}
		})
	}
}

func TestServiceConfigAndSecure(t *testing.T) {
	r, err := NewRegistries(Config{Mirrors: []string{"https://mirror.example"}, Insecure: []string{"10.0.0.0/8", "myreg:5000"}})
	if err != nil {
		t.Fatal(err)
	}
	sc := r.ServiceConfig()
	b, _ := json.Marshal(sc)
	for _, want := range []string{`"InsecureRegistryCIDRs":["::1/128","127.0.0.0/8","10.0.0.0/8"]`, `"Mirrors":["https://mirror.example/"]`,
		`"docker.io":{"Name":"docker.io","Mirrors":["https://mirror.example/"],"Secure":true,"Official":true}`,
		`"myreg:5000":{"Name":"myreg:5000","Mirrors":[],"Secure":false,"Official":false}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("service config %s lacks %s", b, want)
		}
	}
	for host, secure := range map[string]bool{
		"127.0.0.1:5000": false, "[::1]:5000": false, "10.1.2.3:5000": false, "myreg:5000": false,
		"192.168.1.1:5000": true, "8.8.8.8": true, "myreg:5001": true,
	} {
		if got := r.secure(host); got != secure {
			t.Errorf("secure(%s) = %v, want %v", host, got, secure)
		}
	}
}

func TestPullEndpoints(t *testing.T) {
	r, err := NewRegistries(Config{Mirrors: []string{"https://m1.example", "http://m2.example:5000"}})
	if err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]string{
		"busybox":                "m1.example m2.example:5000 index.docker.io",
		"docker.io/foo/bar:1":    "m1.example m2.example:5000 index.docker.io",
		"127.0.0.1:5000/busybox": "127.0.0.1:5000",
		"quay.io/org/image@sha256:" + strings.Repeat("a", 64): "quay.io",
	} {
		named, err := reference.ParseNormalizedNamed(ref)
		if err != nil {
			t.Fatal(err)
		}
		eps, err := r.pullEndpoints(named)
		if err != nil {
			t.Fatal(err)
		}
		var hosts []string
		for _, e := range eps {
			hosts = append(hosts, e.host)
		}
		if got := strings.Join(hosts, " "); got != want {
			t.Errorf("endpoints of %s: %s, want %s", ref, got, want)
		}
	}
}

// TestPullMirrors: Docker Hub images come from the first mirror that has
// them; a dead mirror is skipped.
func TestPullMirrors(t *testing.T) {
	mirror := newTestRegistry(t)
	img := imageOf(t, empty.Image, "amd64", tarLayer(t, "bin/sh", []byte("shell")))
	mirror.write(t, "library/busybox:latest", img)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	s, _, images := newTestService(t, Config{Mirrors: []string{deadURL, mirror.URL}})
	msgs, err := pull(t, s, images, "busybox:latest", PullOptions{})
	if err != nil {
		t.Fatalf("pull through mirror: %v", err)
	}
	out := statuses(msgs)
	if !strings.Contains(out, "latest: Pulling from library/busybox") || !strings.Contains(out, "Status: Downloaded newer image for busybox:latest") {
		t.Errorf("progress:\n%s", out)
	}
	id := imageID(t, img)
	if images.refs["docker.io/library/busybox:latest"] != id {
		t.Errorf("references %v", images.refs)
	}
	found := false
	for ref := range images.refs {
		found = found || strings.HasPrefix(ref, "docker.io/library/busybox@sha256:")
	}
	if !found {
		t.Errorf("no repository digest recorded: %v", images.refs)
	}
}

// TestSecureRegistries: a registry not marked insecure is reached over
// verified TLS only, with the CAs of its certs.d directory.
func TestSecureRegistries(t *testing.T) {
	img := imageOf(t, empty.Image, "amd64", tarLayer(t, "a", []byte("a")))
	quiet := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))

	plain := newTestRegistry(t)
	plain.write(t, "img:latest", img)
	tlsSrv := httptest.NewTLSServer(quiet)
	t.Cleanup(tlsSrv.Close)
	tlsHost := strings.TrimPrefix(tlsSrv.URL, "https://")

	certsDir := t.TempDir()
	secure := func(t *testing.T) (*Service, *fakeImages) {
		s, _, images := newTestService(t, Config{CertsDir: certsDir})
		s.registries.insecureCIDRs = []netip.Prefix{} // the loopback made secure for the test
		return s, images
	}

	t.Run("HTTP registry", func(t *testing.T) {
		s, images := secure(t)
		_, err := pull(t, s, images, plain.host+"/img:latest", PullOptions{})
		if err == nil || !strings.Contains(err.Error(), "http: server gave HTTP response to HTTPS client") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("unknown CA", func(t *testing.T) {
		s, images := secure(t)
		_, err := pull(t, s, images, tlsHost+"/img:latest", PullOptions{})
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("CA in certs.d", func(t *testing.T) {
		dir := filepath.Join(certsDir, tlsHost)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw})
		if err := os.WriteFile(filepath.Join(dir, "ca.crt"), ca, 0o644); err != nil {
			t.Fatal(err)
		}
		// Written over TLS with the test server's client.
		s, images := secure(t)
		if err := writeTLS(tlsSrv, tlsHost+"/img:latest", img); err != nil {
			t.Fatal(err)
		}
		if _, err := pull(t, s, images, tlsHost+"/img:latest", PullOptions{}); err != nil {
			t.Fatalf("pull with the CA: %v", err)
		}
	})
	t.Run("insecure registry over HTTP", func(t *testing.T) {
		s, _, images := newTestService(t, Config{Insecure: []string{plain.host}})
		s.registries.insecureCIDRs = []netip.Prefix{}
		if _, err := pull(t, s, images, plain.host+"/img:latest", PullOptions{}); err != nil {
			t.Fatalf("pull: %v", err)
		}
	})
}

func TestSearch(t *testing.T) {
	var query string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/search" {
			http.NotFound(w, r)
			return
		}
		query = r.URL.RawQuery
		json.NewEncoder(w).Encode(registry.SearchResults{Query: r.URL.Query().Get("q"), Results: []registry.SearchResult{
			{Name: "busybox", StarCount: 3000, IsOfficial: true},
			{Name: "someone/busybox", StarCount: 5},
			{Name: "other/busybox", StarCount: 0, IsAutomated: true},
		}})
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	r, err := NewRegistries(Config{})
	if err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	for _, tc := range []struct {
		f     SearchFilters
		limit int
		want  string
	}{
		{SearchFilters{}, 0, "busybox someone/busybox other/busybox"},
		{SearchFilters{MinStars: 5}, 0, "busybox someone/busybox"},
		{SearchFilters{Official: &yes}, 0, "busybox"},
		{SearchFilters{Official: &no, Automated: &no}, 0, "someone/busybox"},
		{SearchFilters{}, 2, "busybox someone/busybox"},
	} {
		res, err := r.Search(context.Background(), host+"/busy", tc.limit, tc.f, nil)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, x := range res {
			names = append(names, x.Name)
		}
		if got := strings.Join(names, " "); got != tc.want {
			t.Errorf("search %+v: %s, want %s", tc.f, got, tc.want)
		}
	}
	if !strings.Contains(query, "q=busy") {
		t.Errorf("query %q", query)
	}
	if _, err := r.Search(context.Background(), "busybox", 101, SearchFilters{}, nil); err == nil || err.Error() != "limit 101 is outside the range of [1, 100]: invalid argument" {
		t.Errorf("limit error %v", err)
	}
	// A registry that is not there: the dial error.
	srv.Close()
	if _, err := r.Search(context.Background(), host+"/busy", 0, SearchFilters{}, nil); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("offline search: %v", err)
	}
}
