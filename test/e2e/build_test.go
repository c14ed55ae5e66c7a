package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// buildCtx is a build context directory.
type buildCtx struct {
	t   *testing.T
	dir string
}

// with returns c reporting to the subtest t.
func (c *dockerCLI) with(t *testing.T) *dockerCLI {
	cc := *c
	cc.t = t
	return &cc
}

func newBuildCtx(t *testing.T, files map[string]string) *buildCtx {
	t.Helper()
	b := &buildCtx{t: t, dir: t.TempDir()}
	for name, data := range files {
		b.write(name, data)
	}
	return b
}

func (b *buildCtx) write(name, data string) {
	b.t.Helper()
	p := filepath.Join(b.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// build runs `docker build` in the context directory with extra
// environment entries (DOCKER_BUILDKIT=0 and friends).
func (c *dockerCLI) build(dir string, env []string, args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, append([]string{"build"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(c.d.Env(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok || ctx.Err() != nil {
			c.t.Fatalf("docker build %s: %v (stdout %q, stderr %q)", strings.Join(args, " "), err, o.String(), e.String())
		}
		code = ee.ExitCode()
	}
	return o.String(), e.String(), code
}

// buildOK builds and fails the test unless the build succeeds.
func (c *dockerCLI) buildOK(dir string, args ...string) string {
	c.t.Helper()
	out, errOut, code := c.build(dir, []string{"DOCKER_BUILDKIT=0"}, args...)
	if code != 0 {
		c.t.Fatalf("docker build %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func mustContain(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s lacks %q:\n%s", what, sub, s)
		}
	}
}

func targz(t *testing.T, path string, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, data := range files {
		mode := int64(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(data))
	}
	tw.Close()
	gz.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The tutorial's Dockerfiles, with busybox for their CentOS and Python
// bases, through the docker CLI against berthd.
func TestBuildTutorialDockerfiles(t *testing.T) {
	c := newDockerCLI(t)

	t.Run("sinatra", func(t *testing.T) {
		c := c.with(t)
		b := newBuildCtx(t, map[string]string{"Dockerfile": "FROM busybox\nMAINTAINER soso soso@docker-server\nRUN touch a.txt\nRUN mkdir /test\n"})
		out := c.buildOK(b.dir, "-t", "sinatra", ".")
		mustContain(t, "build output", out, "Step 1/4 : FROM busybox", "Step 2/4 : MAINTAINER soso soso@docker-server",
			"Step 3/4 : RUN touch a.txt", " ---> Running in ", "Successfully built ", "Successfully tagged sinatra:latest")
		if got := c.ok("run", "--rm", "sinatra", "sh", "-c", "ls -d /a.txt /test"); got != "/a.txt\n/test" {
			t.Errorf("files of the image: %q", got)
		}
		if got := c.inspect("sinatra", "{{.Author}}"); got != "soso soso@docker-server" {
			t.Errorf("Author = %q", got)
		}
		hist := c.ok("history", "--no-trunc", "--format", "{{.CreatedBy}}", "sinatra")
		mustContain(t, "history", hist, "/bin/sh -c touch a.txt", "/bin/sh -c mkdir /test", "#(nop) MAINTAINER soso soso@docker-server")
		if n := len(c.ok("ps", "-aq")); n != 0 {
			t.Errorf("intermediate containers left: %s", c.ok("ps", "-a"))
		}
	})

	t.Run("tomcat", func(t *testing.T) {
		c := c.with(t)
		b := newBuildCtx(t, map[string]string{
			"jenkins.war": "not really a war\n",
			"Dockerfile": `FROM busybox
MAINTAINER docker-server
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ENV TOMCAT_HOME /usr/local/apache-tomcat-8.5.47
ENV PATH=$TOMCAT_HOME/bin:$PATH
ADD apache-tomcat-8.5.47.tar.gz /usr/local/
RUN rm -rf /usr/local/apache-tomcat-8.5.47/webapps/*
ADD jenkins.war /usr/local/apache-tomcat-8.5.47/webapps
RUN rm -rf apache-tomcat-8.5.47.tar.gz
EXPOSE 8080
ENTRYPOINT ["/usr/local/apache-tomcat-8.5.47/bin/catalina.sh","run"]
`})
		targz(t, filepath.Join(b.dir, "apache-tomcat-8.5.47.tar.gz"), map[string]string{
			"apache-tomcat-8.5.47/bin/catalina.sh":     "#!/bin/sh\necho \"catalina $*\"; ls /usr/local/apache-tomcat-8.5.47/webapps\n",
			"apache-tomcat-8.5.47/webapps/ROOT/x.html": "old\n",
		})
		c.buildOK(b.dir, "-t", "tomcat", ".")
		if got := c.ok("run", "--rm", "tomcat"); got != "catalina run\njenkins.war" {
			t.Errorf("entrypoint output %q", got)
		}
		if got := c.ok("run", "--rm", "--entrypoint", "sh", "tomcat", "-c", "echo $PATH; cat $TOMCAT_HOME/webapps/jenkins.war"); got != "/usr/local/apache-tomcat-8.5.47/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nnot really a war" {
			t.Errorf("PATH and war: %q", got)
		}
		if got := c.inspect("tomcat", "{{json .Config.ExposedPorts}} {{json .Config.Entrypoint}}"); got != `{"8080/tcp":{}} ["/usr/local/apache-tomcat-8.5.47/bin/catalina.sh","run"]` {
			t.Errorf("config: %s", got)
		}
	})

	t.Run("cmd-vs-entrypoint", func(t *testing.T) {
		c := c.with(t)
		cases := []struct {
			name, dockerfile string
			args             []string
			want             string
		}{
			{"exec entrypoint with cmd as default args", "ENTRYPOINT [\"echo\", \"ep\"]\nCMD [\"default\"]", nil, "ep default"},
			{"run arguments replace cmd, appended to entrypoint", "ENTRYPOINT [\"echo\", \"ep\"]\nCMD [\"default\"]", []string{"x", "y"}, "ep x y"},
			{"shell entrypoint ignores cmd", "ENTRYPOINT echo shell-ep\nCMD [\"ignored\"]", nil, "shell-ep"},
			{"shell entrypoint ignores run arguments", "ENTRYPOINT echo shell-ep", []string{"ignored"}, "shell-ep"},
			{"cmd alone", "CMD [\"echo\", \"cmd\"]", nil, "cmd"},
			{"run arguments replace cmd", "CMD [\"echo\", \"cmd\"]", []string{"echo", "other"}, "other"},
			{"shell cmd expands at run time", "ENV WHO=world\nCMD echo hello $WHO", nil, "hello world"},
		}
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				c := c.with(t)
				b := newBuildCtx(t, map[string]string{"Dockerfile": "FROM busybox\n" + tc.dockerfile + "\n"})
				tag := "ep" + string(rune('a'+i))
				c.buildOK(b.dir, "-t", tag, ".")
				if got := c.ok(append([]string{"run", "--rm", tag}, tc.args...)...); got != tc.want {
					t.Errorf("run output %q, want %q", got, tc.want)
				}
			})
		}
	})

	t.Run("multi-stage", func(t *testing.T) {
		c := c.with(t)
		b := newBuildCtx(t, map[string]string{"Dockerfile": `FROM busybox AS builder
RUN echo built > /out.txt
FROM busybox AS broken
RUN exit 1
FROM busybox
COPY --from=builder /out.txt /final.txt
COPY --from=0 /out.txt /again.txt
CMD ["cat", "/final.txt", "/again.txt"]
`})
		out := c.buildOK(b.dir, "-t", "multi", ".")
		if strings.Contains(out, "exit 1") {
			t.Errorf("a stage the target does not need was built:\n%s", out)
		}
		if got := c.ok("run", "--rm", "multi"); got != "built\nbuilt" {
			t.Errorf("run: %q", got)
		}
		c.buildOK(b.dir, "--target", "builder", "-t", "multi-builder", ".")
		if got := c.ok("run", "--rm", "multi-builder", "sh", "-c", "cat /out.txt; ls /final.txt 2>&1 || true"); !strings.HasPrefix(got, "built\n") || !strings.Contains(got, "No such file") {
			t.Errorf("target stage: %q", got)
		}
		_, errOut, code := c.build(b.dir, []string{"DOCKER_BUILDKIT=0"}, "--target", "nope", ".")
		if code == 0 || !strings.Contains(errOut, "failed to reach build target nope in Dockerfile") {
			t.Errorf("unknown target: exit %d, %s", code, errOut)
		}
	})

	t.Run("dockerignore", func(t *testing.T) {
		c := c.with(t)
		b := newBuildCtx(t, map[string]string{
			"Dockerfile":    "FROM busybox\nCOPY . /ctx\nCMD [\"find\", \"/ctx\", \"-type\", \"f\"]\n",
			".dockerignore": "secret.txt\nlogs\n!logs/keep.log\n*.tmp\nDockerfile\n.dockerignore\n",
			"app.txt":       "app\n", "secret.txt": "s\n", "logs/x.log": "x\n", "logs/keep.log": "k\n", "a.tmp": "t\n", "sub/b.txt": "b\n",
		})
		c.buildOK(b.dir, "-t", "ignored", ".")
		got := strings.Fields(c.ok("run", "--rm", "ignored"))
		want := map[string]bool{"/ctx/app.txt": true, "/ctx/logs/keep.log": true, "/ctx/sub/b.txt": true}
		for _, f := range got {
			if !want[f] {
				t.Errorf("%s was copied", f)
			}
			delete(want, f)
		}
		for f := range want {
			t.Errorf("%s missing", f)
		}
	})

	t.Run("build-args", func(t *testing.T) {
		c := c.with(t)
		b := newBuildCtx(t, map[string]string{"Dockerfile": `ARG BASE=busybox
FROM ${BASE}
ARG VERSION=1.0
ARG FLAVOR
RUN echo "$VERSION-$FLAVOR" > /v
ENV KEEP=$VERSION
`})
		out := c.buildOK(b.dir, "--build-arg", "VERSION=2.0", "--build-arg", "FLAVOR=x", "--build-arg", "UNUSED=1", "-t", "args", ".")
		mustContain(t, "build output", out, "[Warning] One or more build-args [UNUSED] were not consumed")
		if got := c.ok("run", "--rm", "args", "sh", "-c", "cat /v; echo $KEEP; echo ${FLAVOR:-unset}"); got != "2.0-x\n2.0\nunset" {
			t.Errorf("args in the image: %q", got)
		}
		hist := c.ok("history", "--no-trunc", "--format", "{{.CreatedBy}}", "args")
		mustContain(t, "history", hist, `|2 FLAVOR=x VERSION=2.0 /bin/sh -c echo "$VERSION-$FLAVOR" > /v`)
		c.buildOK(b.dir, "-t", "args-default", ".")
		if got := c.ok("run", "--rm", "args-default", "cat", "/v"); got != "1.0-" {
			t.Errorf("defaults: %q", got)
		}
	})

	t.Run("heredoc", func(t *testing.T) {
		c := c.with(t)
		b := newBuildCtx(t, map[string]string{"Dockerfile": "# syntax=docker/dockerfile:1\nFROM busybox\nRUN <<EOF\necho one > /h1\necho two >> /h1\nEOF\nRUN cat > /h2 <<EOT\nhello heredoc\nEOT\n"})
		c.buildOK(b.dir, "-t", "heredoc", ".")
		if got := c.ok("run", "--rm", "heredoc", "cat", "/h1", "/h2"); got != "one\ntwo\nhello heredoc" {
			t.Errorf("heredoc results: %q", got)
		}
	})

	t.Run("user-and-ownership", func(t *testing.T) {
		c := c.with(t)
		b := newBuildCtx(t, map[string]string{"f.txt": "f\n", "Dockerfile": `FROM busybox
COPY --chown=berth:berth f.txt /home/berth/f.txt
COPY --chmod=0750 f.txt /opt/f.txt
COPY f.txt /root-owned.txt
WORKDIR /srv/new
USER berth
WORKDIR /tmp
RUN touch mine && id -u > uid
USER 0:0
RUN touch /by-root
USER berth
`})
		c.buildOK(b.dir, "-t", "owned", ".")
		got := c.ok("run", "--rm", "-u", "0", "owned", "sh", "-c",
			"stat -c '%U:%G %a %n' /home/berth/f.txt /opt/f.txt /root-owned.txt /srv/new /tmp/mine /by-root; cat /tmp/uid")
		// WORKDIR creates missing directories as root, as Docker's
		// classic builder does.
		want := "berth:berth 644 /home/berth/f.txt\nroot:root 750 /opt/f.txt\nroot:root 644 /root-owned.txt\nroot:root 755 /srv/new\nberth:berth 644 /tmp/mine\nroot:root 644 /by-root\n1000"
		if got != want {
			t.Errorf("ownership:\n%s\nwant:\n%s", got, want)
		}
		if got := c.ok("run", "--rm", "owned", "sh", "-c", "id -un; pwd"); got != "berth\n/tmp" {
			t.Errorf("USER and WORKDIR at run: %q", got)
		}
	})

	t.Run("onbuild", func(t *testing.T) {
		c := c.with(t)
		base := newBuildCtx(t, map[string]string{"Dockerfile": "FROM busybox\nONBUILD COPY trigger.txt /trigger.txt\nONBUILD RUN echo onbuild-ran > /ob\n"})
		c.buildOK(base.dir, "-t", "onbuild-base", ".")
		child := newBuildCtx(t, map[string]string{"trigger.txt": "from the child's context\n", "Dockerfile": "FROM onbuild-base\nCMD [\"cat\", \"/trigger.txt\", \"/ob\"]\n"})
		out := c.buildOK(child.dir, "-t", "onbuild-child", ".")
		mustContain(t, "build output", out, "# Executing 2 build triggers")
		if got := c.ok("run", "--rm", "onbuild-child"); got != "from the child's context\nonbuild-ran" {
			t.Errorf("triggers' results: %q", got)
		}
		if got := c.inspect("onbuild-child", "{{json .Config.OnBuild}}"); got != "null" && got != "[]" {
			t.Errorf("child keeps the triggers: %s", got)
		}
	})

	t.Run("config-instructions", func(t *testing.T) {
		c := c.with(t)
		b := newBuildCtx(t, map[string]string{"Dockerfile": `FROM busybox
LABEL app=web "with space"="a b"
VOLUME ["/data", "/logs"]
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=5s --timeout=3s CMD true
SHELL ["/bin/sh", "-ec"]
RUN echo shell-form-under-SHELL > /s
`})
		c.buildOK(b.dir, "--label", "extra=1", "-t", "cfg", ".")
		got := c.inspect("cfg", `{{json .Config.Labels}} {{json .Config.Volumes}} {{.Config.StopSignal}} {{json .Config.Healthcheck}} {{json .Config.Shell}}`)
		want := `{"app":"web","extra":"1","with space":"a b"} {"/data":{},"/logs":{}} SIGQUIT {"Test":["CMD-SHELL","true"],"Interval":5000000000,"Timeout":3000000000} ["/bin/sh","-ec"]`
		if got != want {
			t.Errorf("config:\n%s\nwant\n%s", got, want)
		}
	})

	t.Run("stdin-and-file", func(t *testing.T) {
		c := c.with(t)
		out, _, code := c.runIn(strings.NewReader("FROM busybox\nRUN echo from-stdin > /s\n"), "build", "-t", "stdin", "-")
		if code != 0 {
			t.Fatalf("build -: %s", out)
		}
		b := newBuildCtx(t, map[string]string{"other.Dockerfile": "FROM busybox\nCOPY x /x\n", "x": "x\n"})
		c.buildOK(b.dir, "-f", "other.Dockerfile", "-q", "--iidfile", filepath.Join(b.dir, "iid"), "-t", "fromfile", ".")
		iid, err := os.ReadFile(filepath.Join(b.dir, "iid"))
		if err != nil || c.inspect("fromfile", "{{.Id}}") != strings.TrimSpace(string(iid)) {
			t.Errorf("iidfile %q (%v) vs image %s", iid, err, c.inspect("fromfile", "{{.Id}}"))
		}
	})

	t.Run("squash", func(t *testing.T) {
		c := c.with(t)
		b := newBuildCtx(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo 1 > /one && echo tmp > /tmp-file\nRUN echo 2 > /two && rm /tmp-file /bin/vi\nENV SQUASHED=yes\n"})
		// The docker CLI offers --squash to experimental daemons only, as
		// with dockerd; berth's CLI always does.
		if _, errOut, code := c.build(b.dir, []string{"DOCKER_BUILDKIT=0"}, "--squash", "."); code == 0 || !strings.Contains(errOut, "experimental") {
			t.Errorf("docker build --squash against a non-experimental daemon: exit %d: %s", code, errOut)
		}
		if out, errOut, code := c.d.Run(t, berthCLIBinary(t), "build", "--squash", "-t", "squashed", b.dir); code != 0 {
			t.Fatalf("berth build --squash: %s %s", out, errOut)
		}
		base := c.inspect("busybox", "{{len .RootFS.Layers}}")
		if got := c.inspect("squashed", "{{len .RootFS.Layers}}"); got != fmt.Sprint(mustAtoi(t, base)+1) {
			t.Errorf("squashed image has %s layers, busybox %s", got, base)
		}
		if got := c.ok("run", "--rm", "squashed", "sh", "-c", "cat /one /two; ls /tmp-file /bin/vi 2>&1 | wc -l; echo $SQUASHED"); got != "1\n2\n2\nyes" {
			t.Errorf("squashed contents: %q", got)
		}
	})

	t.Run("remote-context-and-ADD-url", func(t *testing.T) {
		c := c.with(t)
		var ctxTar bytes.Buffer
		tw := tar.NewWriter(&ctxTar)
		df := "FROM busybox\nCOPY hello.txt /hello.txt\nADD " + "URL/file.txt /added.txt\n"
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/ctx.tar":
				w.Write(ctxTar.Bytes())
			case "/Dockerfile":
				io.WriteString(w, "FROM busybox\nRUN echo from-remote-dockerfile > /r\n")
			case "/file.txt":
				w.Header().Set("Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT")
				io.WriteString(w, "fetched by the daemon\n")
			default:
				http.NotFound(w, r)
			}
		}))
		defer srv.Close()
		df = strings.Replace(df, "URL", srv.URL, 1)
		for _, f := range []struct{ name, data string }{{"Dockerfile", df}, {"hello.txt", "hello from a tar\n"}} {
			tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg})
			io.WriteString(tw, f.data)
		}
		tw.Close()
		if out, errOut, code := c.run("build", "-t", "remote-tar", srv.URL+"/ctx.tar"); code != 0 {
			t.Fatalf("build from a remote tar: %s %s", out, errOut)
		}
		if got := c.ok("run", "--rm", "remote-tar", "sh", "-c", "cat /hello.txt /added.txt; stat -c %a /added.txt"); got != "hello from a tar\nfetched by the daemon\n600" {
			t.Errorf("remote tar build: %q", got)
		}
		if out, errOut, code := c.run("build", "-t", "remote-df", srv.URL+"/Dockerfile"); code != 0 {
			t.Fatalf("build from a remote Dockerfile: %s %s", out, errOut)
		}
		if got := c.ok("run", "--rm", "remote-df", "cat", "/r"); got != "from-remote-dockerfile" {
			t.Errorf("remote Dockerfile build: %q", got)
		}
		if _, errOut, code := c.run("build", srv.URL+"/missing"); code == 0 || !strings.Contains(errOut, "404 Not Found") {
			t.Errorf("missing remote context: exit %d %s", code, errOut)
		}
	})

	t.Run("buildkit-default-cli", func(t *testing.T) {
		c := c.with(t)
		// The CLI's default mode: berthd's /_ping asks for the classic
		// builder.
		b := newBuildCtx(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo default > /d\n"})
		out, errOut, code := c.build(b.dir, nil, "-t", "default-mode", ".")
		if code != 0 {
			t.Fatalf("default docker build: %s %s", out, errOut)
		}
		if got := c.ok("run", "--rm", "default-mode", "cat", "/d"); got != "default" {
			t.Errorf("got %q", got)
		}
	})
}

var stepRE = regexp.MustCompile(`(?m)^Step (\d+)/(\d+) : (.*)\n( ---> Using cache\n)?`)

// cachedSteps lists, per step after FROM, whether it came from the cache.
func cachedSteps(out string) []bool {
	var res []bool
	for _, m := range stepRE.FindAllStringSubmatch(out, -1) {
		if strings.HasPrefix(m[3], "FROM ") {
			continue
		}
		res = append(res, m[4] != "")
	}
	return res
}

func TestBuildCache(t *testing.T) {
	c := newDockerCLI(t)
	b := newBuildCtx(t, map[string]string{
		"a.txt": "a\n", "b.txt": "b\n",
		"Dockerfile": "FROM busybox\nENV X=1\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy\nCOPY b.txt /b.txt\nRUN cat /b.txt > /copy-b\nCMD [\"cat\", \"/copy\", \"/copy-b\"]\n",
	})
	first := c.buildOK(b.dir, "-t", "cached", ".")
	id := c.inspect("cached", "{{.Id}}")
	if got := cachedSteps(first); len(got) != 6 || strings.Contains(first, "Using cache") {
		t.Fatalf("first build: %v\n%s", got, first)
	}
	second := c.buildOK(b.dir, "-t", "cached", ".")
	for i, hit := range cachedSteps(second) {
		if !hit {
			t.Errorf("unchanged rebuild: step %d not from the cache:\n%s", i+2, second)
		}
	}
	if c.inspect("cached", "{{.Id}}") != id {
		t.Errorf("unchanged rebuild changed the image ID")
	}

	// One copied file changes: the steps before it stay cached, the rest
	// run again.
	b.write("b.txt", "b changed\n")
	third := c.buildOK(b.dir, "-t", "cached", ".")
	want := []bool{true, true, true, false, false, false}
	if got := cachedSteps(third); fmtBools(got) != fmtBools(want) {
		t.Errorf("after changing b.txt: cache use %v, want %v\n%s", got, want, third)
	}
	if got := c.ok("run", "--rm", "cached"); got != "a\nb changed" {
		t.Errorf("rebuilt image: %q", got)
	}
	fourth := c.buildOK(b.dir, "--no-cache", "-t", "cached", ".")
	if strings.Contains(fourth, "Using cache") {
		t.Errorf("--no-cache used the cache:\n%s", fourth)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func fmtBools(b []bool) string {
	var s []string
	for _, v := range b {
		if v {
			s = append(s, "cached")
		} else {
			s = append(s, "built")
		}
	}
	return "[" + strings.Join(s, " ") + "]"
}

// Bad Dockerfiles and hostile contexts: clear errors, nothing read or
// written outside the context or the image, nothing left behind.
func TestBuildBadInput(t *testing.T) {
	c := newDockerCLI(t)
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("host secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(t.TempDir(), "victim")

	evil := func(path string, hdrs ...tar.Header) {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range hdrs {
			h.ModTime = time.Unix(1700000000, 0)
			if h.Typeflag == tar.TypeReg {
				h.Size = 5
			}
			tw.WriteHeader(&h)
			if h.Typeflag == tar.TypeReg {
				tw.Write([]byte("evil\n"))
			}
		}
		tw.Close()
		os.WriteFile(path, buf.Bytes(), 0o644)
	}

	cases := []struct {
		name       string
		dockerfile string
		setup      func(dir string)
		wantErr    string
		wantCode   int
	}{
		{name: "unknown instruction", dockerfile: "FROM busybox\nFOO bar\n", wantErr: "unknown instruction: FOO"},
		{name: "syntax error", dockerfile: "FROM busybox\nENV\n", wantErr: "ENV requires at least one argument"},
		{name: "no FROM", dockerfile: "RUN true\n", wantErr: "no build stage in current context"},
		{name: "missing COPY source", dockerfile: "FROM busybox\nCOPY nothere /x\n", wantErr: "file not found in build context or excluded by .dockerignore: stat nothere: file does not exist"},
		{name: "failing RUN", dockerfile: "FROM busybox\nRUN echo about to fail; exit 3\n", wantErr: "The command '/bin/sh -c echo about to fail; exit 3' returned a non-zero code: 3"},
		{name: "source above the context", dockerfile: "FROM busybox\nCOPY ../secret /x\n", wantErr: "forbidden path outside the build context: ../secret"},
		{name: "symlink out of the context", dockerfile: "FROM busybox\nCOPY link /x\n",
			setup:   func(dir string) { os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "link")) },
			wantErr: "file not found in build context"},
		{name: "relative symlink out of the context", dockerfile: "FROM busybox\nCOPY link/secret /x\n",
			setup:   func(dir string) { os.Symlink("../../../../../../../.."+outside, filepath.Join(dir, "link")) },
			wantErr: "file not found in build context"},
		{name: "ADD tar with ../ entries", dockerfile: "FROM busybox\nADD evil.tar /d/\n",
			setup: func(dir string) {
				evil(filepath.Join(dir, "evil.tar"), tar.Header{Name: "../../../../../../.." + victim, Typeflag: tar.TypeReg, Mode: 0o644})
			},
			wantErr: "ADD failed"},
		{name: "ADD tar writing through an absolute symlink", dockerfile: "FROM busybox\nADD evil.tar /d/\nRUN test -f /d/lnk/pwned\n",
			setup: func(dir string) {
				evil(filepath.Join(dir, "evil.tar"),
					tar.Header{Name: "lnk", Typeflag: tar.TypeSymlink, Linkname: filepath.Dir(victim), Mode: 0o777},
					tar.Header{Name: "lnk/pwned", Typeflag: tar.TypeReg, Mode: 0o644})
			}},
		{name: "unsupported platform", dockerfile: "FROM busybox\n", wantErr: "platform linux/arm64 is not supported"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := c.with(t)
			b := newBuildCtx(t, map[string]string{"Dockerfile": tc.dockerfile})
			if tc.setup != nil {
				tc.setup(b.dir)
			}
			args := []string{"."}
			if tc.name == "unsupported platform" {
				args = []string{"--platform", "linux/arm64", "."}
			}
			out, errOut, code := c.build(b.dir, []string{"DOCKER_BUILDKIT=0"}, args...)
			if tc.wantErr == "" {
				// Contained: the build may succeed, inside the image.
				if code != 0 {
					t.Logf("build failed (also acceptable): %s", errOut)
				}
			} else {
				if code == 0 {
					t.Fatalf("build succeeded:\n%s", out)
				}
				if !strings.Contains(errOut, tc.wantErr) {
					t.Errorf("stderr lacks %q:\n%s", tc.wantErr, errOut)
				}
			}
			if _, err := os.Stat(victim); err == nil {
				t.Fatalf("the build wrote %s on the host", victim)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(victim), "pwned")); err == nil {
				t.Fatalf("the build wrote through a symlink onto the host")
			}
			if ps := c.ok("ps", "-aq"); ps != "" {
				t.Errorf("containers left behind: %s", c.ok("ps", "-a"))
			}
		})
	}
	if code := dockerBuildExit(c, "FROM busybox\nRUN exit 7\n"); code == 0 {
		t.Errorf("a failing RUN exits 0")
	}
	// No mount of the daemon's is left after the failures.
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mounts), "\n") {
		if strings.Contains(line, c.d.DataRoot) {
			t.Errorf("mount left behind: %s", line)
		}
	}
}

func dockerBuildExit(c *dockerCLI, dockerfile string) int {
	_, _, code := c.runIn(strings.NewReader(dockerfile), "build", "-")
	return code
}

// berth's own CLI sends, for the files berthd kept from an earlier
// context, their digests instead of their bytes.
func TestBerthBuildSendsOnlyNewFiles(t *testing.T) {
	c := newDockerCLI(t)
	berth := berthCLIBinary(t)
	cfg := t.TempDir()
	b := newBuildCtx(t, map[string]string{
		"Dockerfile": "FROM busybox\nCOPY data /data\nCMD [\"sh\", \"-c\", \"cat /data/* | md5sum\"]\n",
		"data/a":     strings.Repeat("a", 1<<20), "data/b": strings.Repeat("b", 1<<20), "data/small": "s\n",
	})
	build := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(berth, append([]string{"build"}, append(args, b.dir)...)...)
		cmd.Env = append(c.d.Env(), "BERTH_CONFIG="+cfg)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("berth build: %v\n%s", err, out)
		}
		return string(out)
	}
	sent := regexp.MustCompile(`Sending build context to Docker daemon\s+(\S+)`)
	size := func(out string) string {
		m := sent.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no context size in:\n%s", out)
		}
		return m[1]
	}
	first := size(build("-t", "stubbed"))
	want := c.ok("run", "--rm", "stubbed")
	// berthd stores the context's files after answering: wait for them.
	c.waitFor("the context store", func() bool {
		return strings.HasSuffix(size(build("-t", "stubbed")), "kB")
	})
	second := build("-t", "stubbed")
	if !strings.HasSuffix(size(second), "kB") || !strings.Contains(second, "Using cache") {
		t.Fatalf("rebuild sent %s (first %s):\n%s", size(second), first, second)
	}
	// One file changes: it travels whole, the other as a digest, and the
	// image has both right.
	b.write("data/b", strings.Repeat("B", 1<<20))
	third := build("-t", "stubbed")
	if got := size(third); !strings.HasSuffix(got, "MB") || strings.HasPrefix(got, "2.") {
		t.Errorf("after changing one file the context was %s", got)
	}
	got := c.ok("run", "--rm", "stubbed")
	if got == want {
		t.Errorf("the image did not change with its context")
	}
	check := exec.Command("sh", "-c", "cat "+b.dir+"/data/* | md5sum")
	hostSum, _ := check.Output()
	if got != strings.TrimSpace(string(hostSum)) {
		t.Errorf("image contents %q, context %q", got, hostSum)
	}
	// The docker CLI, which knows nothing of it, still sends everything.
	if out := c.buildOK(b.dir, "-t", "full", "."); !strings.Contains(out, "MB") {
		t.Errorf("docker build: %s", out)
	}
	// After `builder prune` berthd has nothing kept: the whole context again.
	c.ok("builder", "prune", "-f")
	if got := size(build("-t", "stubbed")); !strings.HasSuffix(got, "MB") {
		t.Errorf("after prune the context was %s", got)
	}
}
