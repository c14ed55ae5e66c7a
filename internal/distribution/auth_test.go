package distribution

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/moby/moby/api/types/registry"
)

// tokenServer issues bearer tokens to user:password, as Docker Hub's
// auth service: the registry answers 401 with a Bearer challenge naming
// it.
type tokenServer struct {
	*httptest.Server
	mu     sync.Mutex
	scopes []string
}

const goodToken = "token-for-alice"

func newTokenServer(t *testing.T) *tokenServer {
	ts := &tokenServer{}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.mu.Lock()
		ts.scopes = append(ts.scopes, r.URL.Query()["scope"]...)
		ts.mu.Unlock()
		if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "secret" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"incorrect username or password"}]}`)
			return
		}
		fmt.Fprintf(w, `{"token":%q,"expires_in":300}`, goodToken)
	}))
	t.Cleanup(ts.Close)
	return ts
}

// requireAuth makes reg answer 401 to requests without valid credentials:
// a Bearer challenge for ts, or a Basic one when ts is nil.
func requireAuth(reg *testRegistry, ts *tokenServer) {
	reg.wrap = func(w http.ResponseWriter, r *http.Request, _ http.Handler) bool {
		if ts != nil && r.Header.Get("Authorization") == "Bearer "+goodToken {
			return false
		}
		if u, p, ok := r.BasicAuth(); ts == nil && ok && u == "alice" && p == "secret" {
			return false
		}
		if ts != nil {
			// go-containerregistry refuses realms at private IP
			// literals (other than the registry's own host:port):
			// the token server is named by host name.
			realm := strings.Replace(ts.URL, "127.0.0.1", "localhost", 1) + "/token"
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="test-registry"`, realm))
		} else {
			w.Header().Set("WWW-Authenticate", `Basic realm="test-registry"`)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
		return true
	}
}

func TestAuth(t *testing.T) {
	good := &registry.AuthConfig{Username: "alice", Password: "secret"}
	bad := &registry.AuthConfig{Username: "alice", Password: "wrong"}
	for _, scheme := range []string{"bearer", "basic"} {
		t.Run(scheme, func(t *testing.T) {
			reg := newTestRegistry(t)
			reg.write(t, "private:latest", imageOf(t, empty.Image, "amd64", tarLayer(t, "a", []byte("a"))))
			var ts *tokenServer
			if scheme == "bearer" {
				ts = newTokenServer(t)
			}
			requireAuth(reg, ts)
			ref := reg.host + "/private:latest"

			s, _, images := newTestService(t, Config{})
			for _, auth := range []*registry.AuthConfig{nil, bad} {
				_, err := pull(t, s, images, ref, PullOptions{Auth: auth})
				want := "pull access denied for " + reg.host + "/private, repository does not exist or may require 'docker login'"
				if err == nil || !strings.HasPrefix(err.Error(), want) || !errdefs.IsNotFound(err) {
					t.Errorf("pull with %v: %v, want %q", auth, err, want)
				}
			}
			if _, err := pull(t, s, images, ref, PullOptions{Auth: good}); err != nil {
				t.Fatalf("pull with credentials: %v", err)
			}
			if len(images.configs) != 1 {
				t.Errorf("%d images pulled", len(images.configs))
			}
			if ts != nil {
				ts.mu.Lock()
				scopes := strings.Join(ts.scopes, " ")
				ts.mu.Unlock()
				if !strings.Contains(scopes, "repository:private:pull") {
					t.Errorf("token requests asked for scopes %q", scopes)
				}
			}

			regs := s.Registries()
			status, err := regs.Login(context.Background(), registry.AuthConfig{Username: "alice", Password: "secret", ServerAddress: reg.host})
			if err != nil || status != "Login Succeeded" {
				t.Errorf("login: %q, %v", status, err)
			}
			_, err = regs.Login(context.Background(), registry.AuthConfig{Username: "alice", Password: "wrong", ServerAddress: "http://" + reg.host + "/"})
			if err == nil || !errdefs.IsUnauthorized(err) {
				t.Fatalf("login with a wrong password: %v", err)
			}
			want := "login attempt to http://" + reg.host + "/v2/ failed with status: 401 Unauthorized"
			if ts != nil {
				want = `Get "http://` + reg.host + `/v2/": unauthorized: incorrect username or password`
			}
			if err.Error() != want {
				t.Errorf("login error %q, want %q", err, want)
			}
		})
	}
}
