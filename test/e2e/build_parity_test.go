package e2e

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// exportEntry is what a parity check compares of a file in an image.
type exportEntry struct {
	Type     byte
	Mode     int64
	UID, GID int
	Link     string
	Sum      string
}

// exportTree reads `docker export` of a container created from image and
// returns its entries by path. Files the engine itself puts into every
// container (/.dockerenv, the mount points of hosts/hostname/resolv.conf)
// are left out.
func exportTree(t *testing.T, dockerBin, host, image string) map[string]exportEntry {
	t.Helper()
	env := append(os.Environ(), "DOCKER_HOST="+host)
	create := exec.Command(dockerBin, "create", image, "true")
	create.Env = env
	out, err := create.Output()
	if err != nil {
		t.Fatalf("create %s: %v", image, err)
	}
	id := strings.TrimSpace(string(out))
	defer func() {
		cmd := exec.Command(dockerBin, "rm", "-f", id)
		cmd.Env = env
		cmd.Run()
	}()
	cmd := exec.Command(dockerBin, "export", id)
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	entries := map[string]exportEntry{}
	tr := tar.NewReader(stdout)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("export %s: %v", image, err)
		}
		name := "/" + strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		switch name {
		case "/", "/.dockerenv", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/dev", "/proc", "/sys", "/etc/mtab":
			continue
		}
		if strings.HasPrefix(name, "/dev/") || strings.HasPrefix(name, "/proc/") || strings.HasPrefix(name, "/sys/") {
			continue
		}
		e := exportEntry{Type: h.Typeflag, Mode: h.Mode & 0o7777, UID: h.Uid, GID: h.Gid, Link: h.Linkname}
		if h.Typeflag == tar.TypeReg {
			sum := sha256.New()
			io.Copy(sum, tr)
			e.Sum = hex.EncodeToString(sum.Sum(nil))[:16]
		}
		if h.Typeflag == tar.TypeLink {
			// Which of two hard-linked names comes first is the tar
			// writer's choice.
			e.Type, e.Link = tar.TypeReg, ""
		}
		entries[name] = e
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("export %s: %v", image, err)
	}
	return entries
}

// parityConfig are the config fields a build sets.
type parityConfig struct {
	Cmd, Entrypoint, Env, Shell  []string
	WorkingDir, User, StopSignal string
	ExposedPorts, Volumes        map[string]struct{}
	Labels                       map[string]string
	Healthcheck                  json.RawMessage
	OnBuild                      []string
}

// The same Dockerfiles built by berthd and by dockerd 20.10 give the same
// file systems and the same configs.
func TestBuildParityDockerd(t *testing.T) {
	c := newDockerCLI(t)
	peer := startPeerDockerd(t, c.bin)
	bb, err := os.Open(testutil.BusyboxTarball(t))
	if err != nil {
		t.Fatal(err)
	}
	peerImport := exec.Command(c.bin, "import", "-c", `CMD ["sh"]`, "-", "busybox")
	peerImport.Env = append(os.Environ(), "DOCKER_HOST="+peer.host)
	peerImport.Stdin = bb
	if out, err := peerImport.CombinedOutput(); err != nil {
		t.Fatalf("import into dockerd: %v %s", err, out)
	}
	bb.Close()

	tomcat := filepath.Join(t.TempDir(), "tomcat.tar.gz")
	targz(t, tomcat, map[string]string{
		"apache-tomcat-8.5.47/bin/catalina.sh":     "#!/bin/sh\necho catalina \"$@\"\n",
		"apache-tomcat-8.5.47/webapps/ROOT/x.html": "old\n",
		"apache-tomcat-8.5.47/conf/server.xml":     "<Server/>\n",
	})
	tomcatData, _ := os.ReadFile(tomcat)
	cases := []struct {
		name  string
		files map[string]string
		setup func(dir string)
		args  []string
	}{
		{name: "sinatra", files: map[string]string{"Dockerfile": "FROM busybox\nMAINTAINER soso soso@docker-server\nRUN touch a.txt\nRUN mkdir /test\n"}},
		{name: "tomcat", files: map[string]string{
			"jenkins.war": "war\n",
			"Dockerfile": "FROM busybox\nENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nENV TOMCAT_HOME /usr/local/apache-tomcat-8.5.47\nENV PATH=$TOMCAT_HOME/bin:$PATH\n" +
				"ADD apache-tomcat-8.5.47.tar.gz /usr/local/\nRUN rm -rf /usr/local/apache-tomcat-8.5.47/webapps/*\nADD jenkins.war /usr/local/apache-tomcat-8.5.47/webapps\n" +
				"EXPOSE 8080\nENTRYPOINT [\"/usr/local/apache-tomcat-8.5.47/bin/catalina.sh\",\"run\"]\n"},
			setup: func(dir string) { os.WriteFile(filepath.Join(dir, "apache-tomcat-8.5.47.tar.gz"), tomcatData, 0o644) }},
		{name: "copy semantics", files: map[string]string{
			"Dockerfile": "FROM busybox\nWORKDIR /w\nCOPY dir /d1/\nCOPY dir /d2\nCOPY f1 f2 /multi/\nCOPY f* /glob/\nCOPY f1 .\nCOPY f1 /renamed\nCOPY dir/sub/ /flat/\nCOPY link /link-copied\nADD dir /added/\n",
			"f1":         "one\n", "f2": "two\n", "dir/a": "a\n", "dir/sub/b": "b\n", "dir/sub/deep/c": "c\n"},
			setup: func(dir string) {
				os.Symlink("f1", filepath.Join(dir, "link"))
				os.Symlink("../f2", filepath.Join(dir, "dir", "rel-link"))
				os.Chmod(filepath.Join(dir, "f2"), 0o755)
				os.Chmod(filepath.Join(dir, "dir", "sub"), 0o700)
			}},
		{name: "users and ownership", files: map[string]string{
			"f":          "f\n",
			"Dockerfile": "FROM busybox\nCOPY --chown=berth:berth f /home/berth/f\nCOPY --chown=1234:5678 f /numeric\nUSER berth\nWORKDIR /tmp/w\nRUN touch /tmp/mine\nUSER root\nRUN chown berth /tmp/w\n"}},
		{name: "config instructions", files: map[string]string{
			"Dockerfile": "FROM busybox\nLABEL a=b \"c d\"=\"e f\"\nVOLUME [\"/data\", \"/logs\"]\nSTOPSIGNAL SIGQUIT\nHEALTHCHECK --interval=5s --timeout=3s --retries=2 CMD true\n" +
				"ENV X=1 Y=\"two words\"\nEXPOSE 80 443/udp\nUSER 1000:1000\nWORKDIR /srv\nONBUILD RUN echo later\nSHELL [\"/bin/sh\", \"-ec\"]\nCMD echo hi\nENTRYPOINT [\"/bin/sh\", \"-c\"]\n"}},
		{name: "multi-stage and args", args: []string{"--build-arg", "V=9"}, files: map[string]string{
			"Dockerfile": "ARG BASE=busybox\nFROM $BASE AS b1\nARG V=1\nRUN echo $V > /v\nFROM busybox\nCOPY --from=b1 /v /from-b1\nARG V\nENV V=$V\nRUN echo ${V:-none} > /v2\n"}},
		{name: "dockerignore", files: map[string]string{
			"Dockerfile": "FROM busybox\nCOPY . /ctx/\n", ".dockerignore": "*.log\nsecret\n!keep.log\n",
			"a": "a\n", "b.log": "b\n", "keep.log": "k\n", "secret": "s\n", "sub/c": "c\n"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := c.with(t)
			b := newBuildCtx(t, tc.files)
			if tc.setup != nil {
				tc.setup(b.dir)
			}
			tag := "parity-" + strings.ReplaceAll(tc.name, " ", "-")
			args := append(append([]string{"build", "--network", "none", "-t", tag}, tc.args...), b.dir)
			c.ok(args...)
			peerArgs := append([]string{}, args...)
			if out, errOut, code := peer.runEnv([]string{"DOCKER_BUILDKIT=0"}, peerArgs...); code != 0 {
				t.Fatalf("dockerd build: %s %s", out, errOut)
			}

			berthFS := exportTree(t, c.bin, c.d.Host(), tag)
			dockerFS := exportTree(t, c.bin, peer.host, tag)
			if len(dockerFS) < 100 {
				t.Fatalf("dockerd's export has %d entries: not an image of busybox", len(dockerFS))
			}
			for _, p := range sortedKeys(dockerFS) {
				be, ok := berthFS[p]
				if !ok {
					t.Errorf("%s: only in dockerd's image: %+v", p, dockerFS[p])
					continue
				}
				if be != dockerFS[p] {
					t.Errorf("%s differs: berth %+v, dockerd %+v", p, be, dockerFS[p])
				}
			}
			for _, p := range sortedKeys(berthFS) {
				if _, ok := dockerFS[p]; !ok {
					t.Errorf("%s: only in berth's image: %+v", p, berthFS[p])
				}
			}

			var bc, dc parityConfig
			json.Unmarshal([]byte(c.ok("image", "inspect", "-f", "{{json .Config}}", tag)), &bc)
			json.Unmarshal([]byte(peer.ok("image", "inspect", "-f", "{{json .Config}}", tag)), &dc)
			bj, _ := json.Marshal(bc)
			dj, _ := json.Marshal(dc)
			if string(bj) != string(dj) {
				t.Errorf("configs differ:\nberth   %s\ndockerd %s", bj, dj)
			}
		})
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// runEnv runs the docker CLI against the peer with extra environment.
func (p *peerDockerd) runEnv(env []string, args ...string) (string, string, int) {
	cmd := exec.Command(p.bin, args...)
	cmd.Env = append(append(os.Environ(), "DOCKER_HOST="+p.host), env...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	code := 0
	if err := cmd.Run(); err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return o.String(), e.String(), code
}
