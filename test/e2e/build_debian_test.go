package e2e

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// debianTarball returns a Debian bookworm root filesystem as a tar, made
// with `debootstrap --variant=minbase` from the host's apt mirror, or the
// file BERTH_DEBIAN_TAR names. The test skips without debootstrap.
func debianTarball(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("BERTH_DEBIAN_TAR"); p != "" {
		return p
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		t.Skip("debootstrap is not installed (apt-get install debootstrap): no Debian base image")
	}
	mirror := aptMirror()
	dir := t.TempDir()
	root := filepath.Join(dir, "rootfs")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", "bookworm", root, mirror).CombinedOutput()
	if err != nil {
		t.Fatalf("debootstrap: %v\n%s", err, tail(string(out), 20))
	}
	tarPath := filepath.Join(dir, "debian.tar")
	if out, err := exec.Command("tar", "-C", root, "-cf", tarPath, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
	os.RemoveAll(root)
	return tarPath
}

// aptMirror is the host's Debian mirror (deb.debian.org by default).
func aptMirror() string {
	for _, f := range []string{"/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			switch {
			case len(fields) >= 2 && fields[0] == "URIs:" && !strings.Contains(fields[1], "security"):
				return fields[1]
			case len(fields) >= 3 && fields[0] == "deb" && !strings.Contains(fields[1], "security"):
				return fields[1]
			}
		}
	}
	return "http://deb.debian.org/debian"
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// The tutorial's Python example: apt installs Flask during the build
// through the bridge network and NAT, and the app answers on a published
// port with the container's hostname.
func TestBuildFlaskOnDebian(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads packages from the apt mirror")
	}
	c := newDockerCLI(t)
	tarPath := debianTarball(t)
	f, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	_, errOut, code := c.runIn(f, "import", "-c", `CMD ["bash"]`, "-c", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "-", "debian:bookworm")
	f.Close()
	if code != 0 {
		t.Fatalf("import: %s", errOut)
	}
	b := newBuildCtx(t, map[string]string{
		"Dockerfile": `FROM debian:bookworm
WORKDIR /app
ADD . /app
RUN apt-get update && apt-get install -y --no-install-recommends python3-flask && rm -rf /var/lib/apt/lists/*
EXPOSE 80
ENV NAME World
CMD ["python3", "app.py"]
`,
		"requirements.txt": "Flask\n",
		"app.py": `from flask import Flask
import os
import socket

app = Flask(__name__)

@app.route("/")
def hello():
    html = "<h3>Hello {name}!</h3><b>Hostname:</b> {hostname}<br/>"
    return html.format(name=os.getenv("NAME", "world"), hostname=socket.gethostname())

if __name__ == "__main__":
    app.run(host='0.0.0.0', port=80)
`,
	})
	c.buildOK(b.dir, "-t", "friendlyhello", ".")
	port := "4000" // as in the tutorial
	id := c.ok("run", "-d", "-p", port+":80", "friendlyhello")
	short := id[:12]
	var body string
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://127.0.0.1:" + port + "/")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(body, "Hello World!") || !strings.Contains(body, short) {
		logs, _, _ := c.run("logs", id)
		t.Fatalf("app answered %q (want Hello World! and hostname %s); logs:\n%s", body, short, logs)
	}
}
