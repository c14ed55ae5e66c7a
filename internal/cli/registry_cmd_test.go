package cli_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/cli"
	"github.com/berth-dev/berth/internal/cli/clitest"
	"github.com/creack/pty"
	"github.com/moby/moby/api/types/registry"
)

const hubKey = "https://index.docker.io/v1/"

// unencrypted is the reminder after credentials are written; %s is the
// config file.
const unencrypted = "\nWARNING! Your credentials are stored unencrypted in '%s'.\n\n"

// TestMain keeps the tests off the credentials of the user running them:
// berth's and docker's config directories are an empty one unless a test
// sets its own.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "berth-cli-config-")
	if err != nil {
		panic(err)
	}
	os.Setenv("BERTH_CONFIG", dir)
	os.Setenv("DOCKER_CONFIG", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// configDirs points berth and docker at empty config directories of the
// test's own.
func configDirs(t *testing.T) (berthDir, dockerDir string) {
	t.Helper()
	berthDir, dockerDir = t.TempDir(), t.TempDir()
	t.Setenv("BERTH_CONFIG", berthDir)
	t.Setenv("DOCKER_CONFIG", dockerDir)
	return berthDir, dockerDir
}

// writeConfig writes a config.json into dir.
func writeConfig(t *testing.T, dir, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// storedAuths reads the "auths" of the config.json in dir.
func storedAuths(t *testing.T, dir string) map[string]map[string]string {
	t.Helper()
	var doc struct{ Auths map[string]map[string]string }
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	return doc.Auths
}

// sentAuth decodes the X-Registry-Auth header of a request.
func sentAuth(t *testing.T, r clitest.Request) registry.AuthConfig {
	t.Helper()
	h := r.Header.Get(registry.AuthHeader)
	if h == "" {
		t.Fatalf("%s %s: no %s header", r.Method, r.Path, registry.AuthHeader)
	}
	b, err := base64.URLEncoding.DecodeString(h)
	if err != nil {
		t.Fatalf("header %q: %v", h, err)
	}
	var a registry.AuthConfig
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("header %s: %v", b, err)
	}
	return a
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// fakeAuth answers POST /auth with resp, recording the credentials sent.
func fakeAuth(s *clitest.Server, resp registry.AuthResponse) {
	s.JSON("POST /auth", http.StatusOK, resp)
}

func lastLogin(t *testing.T, s *clitest.Server) registry.AuthConfig {
	t.Helper()
	var a registry.AuthConfig
	found := false
	for _, r := range s.Requests() {
		if r.Method == http.MethodPost && r.Path == "/auth" {
			if err := json.Unmarshal(r.Body, &a); err != nil {
				t.Fatal(err)
			}
			found = true
		}
	}
	if !found {
		t.Fatal("no POST /auth")
	}
	return a
}

func TestLoginPullLogout(t *testing.T) {
	berthDir, _ := configDirs(t)
	s := clitest.New(t)
	fakeAuth(s, registry.AuthResponse{Status: "Login Succeeded"})
	s.Handle("POST /images/create", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"status":"Pulling from app","id":"latest"}`+"\n")
	})

	r := run(t, s, "", "login", "-u", "alice", "-p", "s3cret", "localhost:5000")
	if r.code != 0 || r.out != "Login Succeeded\n" || r.err != "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n"+
		fmt.Sprintf(unencrypted, filepath.Join(berthDir, "config.json")) {
		t.Fatalf("login: %+v", r)
	}
	// Logging in again with the same credentials does not rewrite them.
	if r := run(t, s, "s3cret", "login", "-u", "alice", "--password-stdin", "localhost:5000"); r.code != 0 || r.err != "" {
		t.Fatalf("second login: %+v", r)
	}
	want := registry.AuthConfig{Username: "alice", Password: "s3cret", ServerAddress: "localhost:5000"}
	if got := lastLogin(t, s); got != want {
		t.Errorf("POST /auth body %+v, want %+v", got, want)
	}
	if e := storedAuths(t, berthDir)["localhost:5000"]; e["auth"] != b64("alice:s3cret") {
		t.Errorf("stored %v", e)
	}
	if fi, err := os.Stat(filepath.Join(berthDir, "config.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("config mode %v %v", fi.Mode(), err)
	}

	r = run(t, s, "", "pull", "-q", "localhost:5000/app")
	if r.code != 0 {
		t.Fatalf("pull: %+v", r)
	}
	req, _ := s.Find(http.MethodPost, "/images/create")
	if got := sentAuth(t, req); got != want {
		t.Errorf("pull sent %+v, want %+v", got, want)
	}
	if req.Query.Get("fromImage") != "localhost:5000/app" || req.Query.Get("tag") != "latest" {
		t.Errorf("pull query %v", req.Query)
	}

	r = run(t, s, "", "logout", "localhost:5000")
	if r.code != 0 || r.out != "Removing login credentials for localhost:5000\n" || r.err != "" {
		t.Fatalf("logout: %+v", r)
	}
	if _, ok := storedAuths(t, berthDir)["localhost:5000"]; ok {
		t.Error("credentials left after logout")
	}
	r = run(t, s, "", "logout", "localhost:5000")
	if r.code != 0 || r.out != "Not logged in to localhost:5000\n" {
		t.Errorf("second logout: %+v", r)
	}
}

func TestLoginOptions(t *testing.T) {
	for _, tc := range []struct {
		name, stdin string
		args        []string
		resp        registry.AuthResponse
		code        int
		out, err    string
		sent        *registry.AuthConfig
		stored      map[string]string // the entry under key, nil for none
		key         string
	}{
		{
			name: "password from stdin to Docker Hub", stdin: "pw with spaces \r\n",
			args: []string{"login", "-u", "bob", "--password-stdin"},
			resp: registry.AuthResponse{Status: "Login Succeeded"}, out: "Login Succeeded\n",
			// docker trims the password, whatever its source.
			sent:   &registry.AuthConfig{Username: "bob", Password: "pw with spaces", ServerAddress: hubKey},
			stored: map[string]string{"auth": b64("bob:pw with spaces")}, key: hubKey,
		},
		{
			name: "docker.io is Docker Hub", stdin: "pw",
			args: []string{"login", "-u", "bob", "--password-stdin", "docker.io"},
			resp: registry.AuthResponse{Status: "Login Succeeded"}, out: "Login Succeeded\n",
			sent:   &registry.AuthConfig{Username: "bob", Password: "pw", ServerAddress: hubKey},
			stored: map[string]string{"auth": b64("bob:pw")}, key: hubKey,
		},
		{
			name: "identity token replaces the password", stdin: "pw",
			args: []string{"login", "-u", "bob", "--password-stdin", "https://r.example.io/v2/"},
			resp: registry.AuthResponse{Status: "Login Succeeded", IdentityToken: "tok"}, out: "Login Succeeded\n",
			sent:   &registry.AuthConfig{Username: "bob", Password: "pw", ServerAddress: "r.example.io"},
			stored: map[string]string{"auth": b64("bob:"), "identitytoken": "tok"}, key: "r.example.io",
		},
		{
			name: "both password flags", args: []string{"login", "-u", "u", "-p", "x", "--password-stdin"}, code: 1,
			err: "conflicting options: cannot specify both --password and --password-stdin\n",
		},
		{
			name: "stdin without user", args: []string{"login", "--password-stdin"}, code: 1,
			err: "the --password-stdin option requires --username to be set\n",
		},
		{
			name: "no terminal to prompt on", args: []string{"login", "-u", "u", "r.io"}, code: 1,
			err: "Error: Cannot perform an interactive login from a non TTY device\n",
		},
		{
			name: "too many arguments", args: []string{"login", "a", "b"}, code: 1,
			err: "berth: 'berth login' requires at most 1 argument\n\nUsage:  berth login [OPTIONS] [SERVER]\n\nRun 'berth login --help' for more information\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			berthDir, _ := configDirs(t)
			s := clitest.New(t)
			fakeAuth(s, tc.resp)
			r := run(t, s, tc.stdin, tc.args...)
			if tc.stored != nil {
				tc.err = fmt.Sprintf(unencrypted, filepath.Join(berthDir, "config.json"))
			}
			if r.code != tc.code || r.out != tc.out || r.err != tc.err {
				t.Fatalf("got %+v\nwant code %d out %q err %q", r, tc.code, tc.out, tc.err)
			}
			if tc.sent != nil {
				if got := lastLogin(t, s); got != *tc.sent {
					t.Errorf("sent %+v, want %+v", got, *tc.sent)
				}
			} else if _, ok := s.Find(http.MethodPost, "/auth"); ok {
				t.Error("POST /auth after a usage error")
			}
			if tc.stored == nil {
				if _, err := os.Stat(filepath.Join(berthDir, "config.json")); err == nil {
					t.Error("config written")
				}
				return
			}
			got := storedAuths(t, berthDir)[tc.key]
			if len(got) != len(tc.stored) {
				t.Fatalf("stored %v, want %v", got, tc.stored)
			}
			for k, v := range tc.stored {
				if got[k] != v {
					t.Errorf("stored %v, want %v", got, tc.stored)
				}
			}
		})
	}
}

func TestConfigFlag(t *testing.T) {
	envDir, _ := configDirs(t)
	flagDir := filepath.Join(t.TempDir(), "new")
	s := clitest.New(t)
	fakeAuth(s, registry.AuthResponse{Status: "Login Succeeded"})
	s.Handle("POST /images/create", func(w http.ResponseWriter, _ *http.Request) {})
	if r := run(t, s, "pw", "--config", flagDir, "login", "-u", "u", "--password-stdin", "r.io"); r.code != 0 {
		t.Fatalf("login: %+v", r)
	}
	if storedAuths(t, flagDir)["r.io"]["auth"] != b64("u:pw") {
		t.Error("credentials not in the --config directory")
	}
	if fi, err := os.Stat(flagDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("config directory mode %v, %v", fi.Mode(), err)
	}
	if _, err := os.Stat(filepath.Join(envDir, "config.json")); err == nil {
		t.Error("BERTH_CONFIG used despite --config")
	}
	if r := run(t, s, "", "--config", flagDir, "pull", "-q", "r.io/app"); r.code != 0 {
		t.Fatalf("pull: %+v", r)
	}
	req, _ := s.Find(http.MethodPost, "/images/create")
	if got := sentAuth(t, req); got.Username != "u" || got.Password != "pw" {
		t.Errorf("pull sent %+v", got)
	}
}

func TestLoginDaemonError(t *testing.T) {
	berthDir, _ := configDirs(t)
	s := clitest.New(t)
	s.Error("POST /auth", http.StatusUnauthorized, "Get \"https://r.io/v2/\": unauthorized: incorrect username or password")
	r := run(t, s, "pw", "login", "-u", "u", "--password-stdin", "r.io")
	if r.code != 1 || r.out != "" ||
		r.err != "Error response from daemon: Get \"https://r.io/v2/\": unauthorized: incorrect username or password\n" {
		t.Fatalf("%+v", r)
	}
	if _, err := os.Stat(filepath.Join(berthDir, "config.json")); err == nil {
		t.Error("credentials stored after a failed login")
	}
}

func TestLoginWithStoredCredentials(t *testing.T) {
	berthDir, _ := configDirs(t)
	writeConfig(t, berthDir, `{"auths":{"r.io":{"auth":"`+b64("alice:pw")+`"}}}`)
	s := clitest.New(t)
	fakeAuth(s, registry.AuthResponse{Status: "Login Succeeded"})
	r := run(t, s, "", "login", "r.io")
	want := "Authenticating with existing credentials... [Username: alice]\n" +
		"\n Info -> To login with a different account, run 'berth logout' followed by 'berth login'\n\n\n"
	if r.code != 0 || r.out != "Login Succeeded\n" || r.err != want {
		t.Fatalf("%+v", r)
	}
	if got := lastLogin(t, s); got != (registry.AuthConfig{Username: "alice", Password: "pw", ServerAddress: "r.io"}) {
		t.Errorf("sent %+v", got)
	}
}

// TestLoginPrompts logs in on a terminal: the user name is asked and
// echoed, the password is asked without echo.
func TestLoginPrompts(t *testing.T) {
	berthDir, _ := configDirs(t)
	s := clitest.New(t)
	fakeAuth(s, registry.AuthResponse{Status: "Login Succeeded"})
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skip("no pty:", err)
	}
	defer ptmx.Close()
	defer tty.Close()

	screen := make(chan string, 1)
	go func() {
		var seen strings.Builder
		br := bufio.NewReader(ptmx)
		answers := []struct{ prompt, answer string }{{"Username: ", "alice\n"}, {"Password: ", "hunter2\n"}}
		for {
			b, err := br.ReadByte()
			if err != nil {
				screen <- seen.String()
				return
			}
			seen.WriteByte(b)
			if len(answers) > 0 && strings.HasSuffix(seen.String(), answers[0].prompt) {
				_, _ = io.WriteString(ptmx, answers[0].answer)
				answers = answers[1:]
			}
			if strings.HasSuffix(seen.String(), "Login Succeeded\r\n") {
				screen <- seen.String()
				return
			}
		}
	}()
	var errb strings.Builder
	code := cli.Run(context.Background(), []string{"-H", s.Host, "login", "r.io"}, tty, tty, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var out string
	select {
	case out = <-screen:
	case <-time.After(10 * time.Second):
		t.Fatal("no output on the terminal")
	}
	if strings.Contains(out, "hunter2") {
		t.Errorf("password echoed: %q", out)
	}
	if want := "Username: alice\r\nPassword: \r\nLogin Succeeded\r\n"; out != want {
		t.Errorf("terminal shows %q, want %q", out, want)
	}
	if got := lastLogin(t, s); got.Username != "alice" || got.Password != "hunter2" {
		t.Errorf("sent %+v", got)
	}
	if storedAuths(t, berthDir)["r.io"]["auth"] != b64("alice:hunter2") {
		t.Error("credentials not stored")
	}
}

// TestDockerConfigFallback: with nothing in berth's config, the
// credentials of docker's config.json are sent, and a credential helper
// named there is reported as unsupported.
func TestDockerConfigFallback(t *testing.T) {
	berthDir, dockerDir := configDirs(t)
	writeConfig(t, dockerDir, `{"auths":{"`+hubKey+`":{"auth":"`+
		b64("dockeruser:dpw")+`"},"r.io":{"auth":"`+b64("d:d")+`"}},"credsStore":"desktop"}`)
	writeConfig(t, berthDir, `{"auths":{"r.io":{"auth":"`+
		b64("berthuser:bpw")+`"}}}`)
	s := clitest.New(t)
	s.Handle("POST /images/create", func(w http.ResponseWriter, _ *http.Request) {})
	for _, tc := range []struct {
		image string
		want  registry.AuthConfig
	}{
		{"busybox", registry.AuthConfig{Username: "dockeruser", Password: "dpw", ServerAddress: hubKey}},
		{"docker.io/library/busybox:1", registry.AuthConfig{Username: "dockeruser", Password: "dpw", ServerAddress: hubKey}},
		{"r.io/app", registry.AuthConfig{Username: "berthuser", Password: "bpw", ServerAddress: "r.io"}},
		{"other.io/app", registry.AuthConfig{}},
	} {
		n := len(s.Requests())
		r := run(t, s, "", "pull", "-q", tc.image)
		if r.code != 0 {
			t.Fatalf("pull %s: %+v", tc.image, r)
		}
		if got := sentAuth(t, s.Requests()[n]); got != tc.want {
			t.Errorf("pull %s sent %+v, want %+v", tc.image, got, tc.want)
		}
		helperWarned := strings.Contains(r.err, `WARNING: credential helper "desktop" named in `+filepath.Join(dockerDir, "config.json")+" is not supported")
		if fromDocker := tc.want.Username != "berthuser"; helperWarned != fromDocker {
			t.Errorf("pull %s: stderr %q", tc.image, r.err)
		}
	}
	r := run(t, s, "", "logout")
	if r.out != "Not logged in to "+hubKey+"\n" || !strings.Contains(r.err, "still used") {
		t.Errorf("logout of docker's credentials: %+v", r)
	}
}
