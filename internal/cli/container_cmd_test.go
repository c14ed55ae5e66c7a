package cli_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/cli/clitest"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
)

const ctrID = "4f2a9c0d1e3b5a7c9e1f3a5b7c9d1e3f5a7b9c1d3e5f7a9b1c3d5e7f9a1b3c5d"

// fakeRun serves create, attach, start and wait for one container that
// prints to both streams and exits with status; startErr makes start fail.
func fakeRun(t *testing.T, s *clitest.Server, status int, startErr string) {
	started := make(chan struct{})
	var once sync.Once
	s.JSON("POST /containers/create", http.StatusCreated, container.CreateResponse{ID: ctrID, Warnings: []string{"low memory"}})
	s.Handle("POST /containers/{id}/attach", func(w http.ResponseWriter, _ *http.Request) {
		conn, _ := clitest.Hijack(w, false)
		go func() {
			defer conn.Close()
			select {
			case <-started:
			case <-time.After(5 * time.Second):
				return
			}
			_, _ = conn.Write(clitest.Frame(1, "out\n"))
			_, _ = conn.Write(clitest.Frame(2, "err\n"))
		}()
	})
	s.Handle("POST /containers/{id}/start", func(w http.ResponseWriter, _ *http.Request) {
		if startErr != "" {
			clitest.WriteJSON(w, http.StatusBadRequest, map[string]string{"message": startErr})
			return
		}
		once.Do(func() { close(started) })
		w.WriteHeader(http.StatusNoContent)
	})
	s.Handle("POST /containers/{id}/wait", func(w http.ResponseWriter, r *http.Request) {
		// Like the daemon: headers first, the status once the container exits.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		select {
		case <-started:
		case <-r.Context().Done():
			return
		}
		time.Sleep(20 * time.Millisecond)
		_ = json.NewEncoder(w).Encode(container.WaitResponse{StatusCode: int64(status)})
	})
}

func TestRunAttachedExitStatus(t *testing.T) {
	s := clitest.New(t)
	fakeRun(t, s, 3, "")
	r := run(t, s, "", "run", "--name", "web", "-e", "A=1", "busybox", "sh", "-c", "exit 3")
	if r.code != 3 {
		t.Fatalf("exit %d, stderr %q", r.code, r.err)
	}
	if r.out != "out\n" || r.err != "WARNING: low memory\nerr\n" {
		t.Errorf("stdout %q stderr %q", r.out, r.err)
	}
	req, ok := s.Find("POST", "/containers/create")
	if !ok || req.Query.Get("name") != "web" {
		t.Fatalf("create request %+v", req)
	}
	var body container.CreateRequest
	if err := json.Unmarshal(req.Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Image != "busybox" || strings.Join(body.Cmd, " ") != "sh -c exit 3" || body.Env[0] != "A=1" || !body.AttachStdout || body.HostConfig == nil {
		t.Errorf("create body %+v", body)
	}
	var order []string
	for _, q := range s.Requests() {
		order = append(order, q.Method+" "+q.Path)
	}
	want := []string{"POST /containers/create", "POST /containers/" + ctrID + "/attach", "POST /containers/" + ctrID + "/wait", "POST /containers/" + ctrID + "/start"}
	if strings.Join(order, ",") != strings.Join(want, ",") {
		t.Errorf("requests %q, want %q", order, want)
	}
	if q, _ := s.Find("POST", "/containers/"+ctrID+"/wait"); q.Query.Get("condition") != "next-exit" {
		t.Errorf("wait condition %q", q.Query.Get("condition"))
	}
}

func TestRunDetachedPrintsID(t *testing.T) {
	s := clitest.New(t)
	fakeRun(t, s, 0, "")
	r := run(t, s, "", "run", "-d", "--rm", "busybox")
	if r.code != 0 || r.out != ctrID+"\n" {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.out, r.err)
	}
	if q, _ := s.Find("POST", "/containers/"+ctrID+"/wait"); q.Query.Get("condition") != "removed" {
		t.Errorf("--rm wait condition %q", q.Query.Get("condition"))
	}
	if _, attached := s.Find("POST", "/containers/"+ctrID+"/attach"); attached {
		t.Error("-d attached")
	}
}

func TestRunStartErrorStatus(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		code int
	}{
		{`failed to create task: exec: "nope": executable file not found in $PATH`, 127},
		{"exec /data: no such file or directory", 127},
		{"exec /etc/passwd: permission denied", 126},
		{"cgroup setup failed", 125},
	} {
		t.Run(tc.msg, func(t *testing.T) {
			s := clitest.New(t)
			fakeRun(t, s, 0, tc.msg)
			r := run(t, s, "", "run", "-d", "busybox", "nope")
			want := "berth: Error response from daemon: " + tc.msg + "\n\nRun 'berth run --help' for more information\n"
			if r.code != tc.code || !strings.HasSuffix(r.err, want) {
				t.Errorf("exit %d (want %d), stderr %q", r.code, tc.code, r.err)
			}
		})
	}
}

func TestRunFlagErrors(t *testing.T) {
	s := clitest.New(t)
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"run", "--foo", "busybox"}, 125, "unknown flag: --foo\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nRun 'berth run --help' for more information\n"},
		{[]string{"run"}, 1, "berth: 'berth run' requires at least 1 argument\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nSee 'berth run --help' for more information\n"},
		{[]string{"run", "--rm", "--restart=always", "busybox"}, 125, "berth: conflicting options: cannot specify both --restart and --rm\n\nRun 'berth run --help' for more information\n"},
		{[]string{"run", "--pull=foo", "busybox"}, 125, "berth: invalid pull option: 'foo': must be one of \"always\", \"missing\" or \"never\"\n\nRun 'berth run --help' for more information\n"},
		{[]string{"create", "-m", "abc", "busybox"}, 125, "invalid argument \"abc\" for \"-m, --memory\" flag: invalid size: 'abc'\n\nUsage:  berth create [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nRun 'berth create --help' for more information\n"},
		{[]string{"run", "-t", "-i", "busybox"}, 1, "the input device is not a TTY\n"},
		{[]string{"run", "-d", "-a", "stdout", "busybox"}, 1, "conflicting options: cannot specify both --attach and --detach\n"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := run(t, s, "", tc.args...)
			if r.code != tc.code || r.err != tc.err {
				t.Errorf("exit %d (want %d), stderr %q, want %q", r.code, tc.code, r.err, tc.err)
			}
		})
	}
	if _, created := s.Find("POST", "/containers/create"); created {
		t.Error("a failing command created a container")
	}
}

func TestRunPullsMissingImage(t *testing.T) {
	s := clitest.New(t)
	var mu sync.Mutex
	pulled := false
	s.Handle("POST /containers/create", func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if !pulled {
			clitest.WriteJSON(w, http.StatusNotFound, map[string]string{"message": "No such image: busybox:latest"})
			return
		}
		clitest.WriteJSON(w, http.StatusCreated, container.CreateResponse{ID: ctrID})
	})
	s.Handle("POST /images/create", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		pulled = r.URL.Query().Get("fromImage") == "docker.io/library/busybox" && r.URL.Query().Get("tag") == "latest"
		mu.Unlock()
		_, _ = w.Write([]byte(`{"status":"Pulling from library/busybox","id":"latest"}` + "\n" + `{"status":"Status: Downloaded newer image for busybox:latest"}` + "\n"))
	})
	s.Handle("POST /containers/{id}/start", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	s.JSON("POST /containers/{id}/wait", http.StatusOK, container.WaitResponse{})
	r := run(t, s, "", "run", "-d", "busybox")
	if r.code != 0 || r.out != ctrID+"\n" {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.out, r.err)
	}
	want := "Unable to find image 'busybox:latest' locally\nlatest: Pulling from library/busybox\nStatus: Downloaded newer image for busybox:latest\n"
	if r.err != want {
		t.Errorf("stderr %q, want %q", r.err, want)
	}
	r = run(t, s, "", "create", "--pull=never", "-q", "alpine")
	if r.code != 0 || r.out != ctrID+"\n" {
		t.Errorf("second create: exit %d stdout %q stderr %q", r.code, r.out, r.err)
	}
}

func TestPsTable(t *testing.T) {
	s := clitest.New(t)
	now := time.Now().Unix()
	s.JSON("GET /containers/json", http.StatusOK, []container.Summary{
		{ID: ctrID, Names: []string{"/web"}, Image: "nginx:latest", ImageID: "sha256:aaaa", Command: "nginx -g 'daemon off;'",
			Created: now - 120, State: container.StateRunning, Status: "Up 2 minutes",
			Ports: []container.PortSummary{{PrivatePort: 80, Type: "tcp"}}, Labels: map[string]string{"b": "2", "a": "1"}},
		{ID: "0123456789abcdef0123", Names: []string{"/db"}, Image: "sha256:0123456789abcdef", ImageID: "sha256:0123456789abcdef",
			Command: "sh", Created: now - 5, State: container.StateExited, Status: "Exited (0) 2 seconds ago"},
	})
	r := run(t, s, "", "ps", "-a")
	want := "CONTAINER ID   IMAGE          COMMAND                  CREATED         STATUS                     PORTS     NAMES\n" +
		"4f2a9c0d1e3b   nginx:latest   \"nginx -g 'daemon of…\"   2 minutes ago   Up 2 minutes               80/tcp    web\n" +
		"0123456789ab   0123456789ab   \"sh\"                     5 seconds ago   Exited (0) 2 seconds ago             db\n"
	if r.code != 0 || r.out != want {
		t.Errorf("exit %d, got:\n%s\nwant:\n%s", r.code, r.out, want)
	}
	if q, _ := s.Find("GET", "/containers/json"); q.Query.Get("all") != "1" {
		t.Errorf("query %v", q.Query)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ps", "-q"}, "4f2a9c0d1e3b\n0123456789ab\n"},
		{[]string{"ps", "--format", "{{.Names}}: {{.Label \"a\"}} {{.Labels}} {{.State}}"}, "web: 1 a=1,b=2 running\ndb:   exited\n"},
		{[]string{"ps", "--format", "table {{.Names}}\t{{.Status}}"}, "NAMES     STATUS\nweb       Up 2 minutes\ndb        Exited (0) 2 seconds ago\n"},
		{[]string{"container", "ls", "--no-trunc", "--format", "{{.ID}} {{.Command}}"}, ctrID + " \"nginx -g 'daemon off;'\"\n0123456789abcdef0123 \"sh\"\n"},
	} {
		if r := run(t, s, "", tc.args...); r.out != tc.want {
			t.Errorf("%q: got %q, want %q", tc.args, r.out, tc.want)
		}
	}
	r = run(t, s, "", "ps", "--format", "json")
	var row map[string]string
	if err := json.Unmarshal([]byte(strings.SplitN(r.out, "\n", 2)[0]), &row); err != nil {
		t.Fatalf("json row %q: %v", r.out, err)
	}
	if row["ID"] != "4f2a9c0d1e3b" || row["Names"] != "web" || row["Ports"] != "80/tcp" || row["RunningFor"] != "2 minutes ago" {
		t.Errorf("json row %v", row)
	}
}

func TestPsOptions(t *testing.T) {
	s := clitest.New(t)
	s.JSON("GET /containers/json", http.StatusOK, []container.Summary{{ID: ctrID, SizeRw: 1234, SizeRootFs: 5_000_000}})
	r := run(t, s, "", "ps", "-l", "-f", "status=exited", "-f", "label=a=b", "--format", "{{.Size}}")
	if r.out != "1.23kB (virtual 5MB)\n" {
		t.Errorf("size output %q", r.out)
	}
	q, _ := s.Find("GET", "/containers/json")
	if q.Query.Get("limit") != "1" || q.Query.Get("size") != "1" || q.Query.Get("filters") != `{"label":{"a=b":true},"status":{"exited":true}}` {
		t.Errorf("query %v", q.Query)
	}
}

func TestImagesAndHistory(t *testing.T) {
	s := clitest.New(t)
	now := time.Now().Unix()
	s.JSON("GET /images/json", http.StatusOK, []image.Summary{
		{ID: "sha256:3b4cb202e34e83bac35818716ef7f3ec610877d36e8801c18bcd4dc26eef20a2", RepoTags: []string{"busybox:latest", "busybox:1.36"},
			RepoDigests: []string{"busybox@sha256:0000000000000000000000000000000000000000000000000000000000000000"}, Created: now - 3600*24*3, Size: 4_261_550, Containers: -1},
		{ID: "sha256:aaaaaaaaaaaabbbb", Created: now - 30, Size: 100},
	})
	r := run(t, s, "", "images")
	want := "REPOSITORY   TAG       IMAGE ID       CREATED          SIZE\n" +
		"busybox      latest    3b4cb202e34e   3 days ago       4.26MB\n" +
		"busybox      1.36      3b4cb202e34e   3 days ago       4.26MB\n" +
		"<none>       <none>    aaaaaaaaaaaa   30 seconds ago   100B\n"
	if r.code != 0 || r.out != want {
		t.Errorf("got:\n%s\nwant:\n%s", r.out, want)
	}
	if r := run(t, s, "", "image", "ls", "--digests", "--format", "{{.Tag}} {{.Digest}}"); !strings.HasPrefix(r.out, "latest sha256:0000") {
		t.Errorf("--digests: %q", r.out)
	}
	if r := run(t, s, "", "images", "-q", "busybox"); r.out != "3b4cb202e34e\n3b4cb202e34e\naaaaaaaaaaaa\n" {
		t.Errorf("-q: %q", r.out)
	}
	if q, _ := s.Find("GET", "/images/json"); q.Query.Get("filters") != "" {
		t.Errorf("first list sent filters %q", q.Query.Get("filters"))
	}
	reqs := s.Requests()
	if f := reqs[len(reqs)-1].Query.Get("filters"); f != `{"reference":{"busybox":true}}` {
		t.Errorf("reference filter %q", f)
	}

	s.JSON("GET /images/{name}/history", http.StatusOK, []image.HistoryResponseItem{
		{ID: "sha256:3b4cb202e34e83bac35818716ef7f3ec610877d36e8801c18bcd4dc26eef20a2", Created: now - 7200, CreatedBy: "/bin/sh -c #(nop)  CMD [\"sh\"]", Size: 0, Comment: ""},
		{ID: "<missing>", Created: 1700000000, CreatedBy: "/bin/sh -c #(nop) ADD file:0123456789abcdef0123456789abcdef in / ", Size: 4261550, Comment: "imported"},
	})
	r = run(t, s, "", "history", "busybox")
	want = "IMAGE          CREATED       CREATED BY                                      SIZE      COMMENT\n" +
		"3b4cb202e34e   2 hours ago   /bin/sh -c #(nop)  CMD [\"sh\"]                   0B        \n" +
		"<missing>      "
	if !strings.HasPrefix(r.out, want) || !strings.Contains(r.out, "   /bin/sh -c #(nop) ADD file:0123456789abcdef0…   4.26MB    imported\n") {
		t.Errorf("history:\n%s", r.out)
	}
	r = run(t, s, "", "history", "-H=false", "--format", "{{.CreatedAt}}|{{.Size}}", "busybox")
	if lines := strings.Split(r.out, "\n"); len(lines) != 3 || !strings.HasSuffix(lines[1], "|4261550") || !strings.HasPrefix(lines[1], "2023-11-14T") {
		t.Errorf("history -H=false: %q", r.out)
	}
}

func TestDaemonErrorShapes(t *testing.T) {
	s := clitest.New(t)
	s.Error("GET /containers/{id}/json", http.StatusNotFound, "No such container: nope")
	s.Error("POST /containers/{id}/stop", http.StatusNotFound, "No such container: nope")
	s.Handle("POST /containers/{id}/kill", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	s.Error("DELETE /containers/{id}", http.StatusNotFound, "No such container: nope")
	s.Error("POST /containers/{id}/rename", http.StatusConflict, "name in use")
	s.Error("POST /containers/{id}/start", http.StatusNotFound, "No such container: nope")
	for _, tc := range []struct {
		args []string
		code int
		out  string
		err  string
	}{
		{[]string{"stop", "nope"}, 1, "", "Error response from daemon: No such container: nope\n"},
		{[]string{"kill", "a", "b"}, 0, "a\nb\n", ""},
		{[]string{"rm", "nope", "nope"}, 1, "", "Error response from daemon: No such container: nope\nError response from daemon: No such container: nope\n"},
		{[]string{"rm", "-f", "nope"}, 0, "", ""},
		{[]string{"container", "inspect", "nope"}, 1, "[]\n", "Error response from daemon: No such container: nope\n"},
		{[]string{"inspect", "nope"}, 1, "[]\n", "Error: No such object: nope\n"},
		{[]string{"logs", "nope"}, 1, "", "Error response from daemon: No such container: nope\n"},
		{[]string{"rename", "a", "b"}, 1, "", "Error response from daemon: name in use\nError: failed to rename container named a\n"},
		{[]string{"start", "nope", "nope2"}, 1, "", "Error response from daemon: No such container: nope\nError response from daemon: No such container: nope\nError: failed to start containers: nope, nope2\n"},
		{[]string{"rm"}, 1, "", "berth: 'berth rm' requires at least 1 argument\n\nUsage:  berth rm [OPTIONS] CONTAINER [CONTAINER...]\n\nSee 'berth rm --help' for more information\n"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := run(t, s, "", tc.args...)
			if r.code != tc.code || r.out != tc.out || r.err != tc.err {
				t.Errorf("exit %d stdout %q stderr %q; want %d %q %q", r.code, r.out, r.err, tc.code, tc.out, tc.err)
			}
		})
	}
}
