package e2e

import (
	"os"
	"regexp"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestDockerCLIImages covers import, images (flags and filters), image
// inspect, tag, history and rmi through the docker CLI.
func TestDockerCLIImages(t *testing.T) {
	c := newDockerCLI(t)
	tarball := testutil.BusyboxTarball(t)
	busyboxID := c.ok("image", "inspect", "-f", "{{.Id}}", "busybox")

	// import FILE REPO[:TAG] prints the new image's ID.
	fileID := c.ok("import", "-c", `CMD ["sh"]`, tarball, "fromfile:v1")
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(fileID) {
		t.Fatalf("import printed %q, want sha256:<64 hex>", fileID)
	}
	// import - with every --change instruction and a message, from stdin.
	f, err := os.Open(tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out, errOut, code := c.runIn(f, "import",
		"-c", `CMD ["-n", "hi"]`, "-c", `ENTRYPOINT ["echo"]`, "-c", "ENV A=1 B=two",
		"-c", "WORKDIR /srv/app", "-c", "EXPOSE 8080/tcp", "-c", "USER berth", "-c", "LABEL tier=web team=core",
		"-m", "imported for tests", "-", "configured:t")
	if code != 0 {
		t.Fatalf("import -: exit %d, %q %q", code, out, errOut)
	}
	cfgID := strings.TrimSpace(out)
	cfg := c.ok("image", "inspect", "-f",
		"{{json .Config.Cmd}}|{{json .Config.Entrypoint}}|{{json .Config.Env}}|{{.Config.WorkingDir}}|{{json .Config.ExposedPorts}}|{{.Config.User}}|{{json .Config.Labels}}|{{.Comment}}",
		"configured:t")
	want := `["-n","hi"]|["echo"]|["A=1","B=two"]|/srv/app|{"8080/tcp":{}}|berth|{"team":"core","tier":"web"}|imported for tests`
	if cfg != want {
		t.Errorf("configured image config:\n got %s\nwant %s", cfg, want)
	}
	// The configured image runs as its config says.
	if got := c.ok("run", "--rm", "configured:t"); got != "hi" {
		t.Errorf("run configured:t printed %q, want hi (echo -n hi)", got)
	}
	if got := c.ok("run", "--rm", "--entrypoint", "sh", "configured:t", "-c", "id -u; pwd; echo $A $B"); got != "1000\n/srv/app\n1 two" {
		t.Errorf("configured image's user/workdir/env: %q", got)
	}
	// A bad instruction is refused.
	c.fails(1, "import", "-c", "RUN true", tarball, "bad:change")

	// A nameless import is dangling.
	danglingID := c.ok("import", tarball)
	c.ok("tag", "busybox", "bb:v1")
	c.ok("tag", "busybox:latest", "bb:v2")
	c.fails(1, "tag", "nosuch", "x:y")

	// image inspect.
	var img struct {
		Id, Os, Architecture, Comment, Created string
		RepoTags, RepoDigests                  []string
		Size                                   int64
		Config                                 struct{ Cmd []string }
		RootFS                                 struct {
			Type   string
			Layers []string
		}
		GraphDriver struct{ Name string }
	}
	c.inspectJSON("image", "busybox", &img)
	if img.Id != busyboxID || img.Os != "linux" || img.Architecture != goruntime.GOARCH ||
		img.RootFS.Type != "layers" || len(img.RootFS.Layers) != 1 || img.Size <= 0 ||
		img.GraphDriver.Name != "overlay2" || len(img.Config.Cmd) != 1 || img.Config.Cmd[0] != "sh" {
		t.Errorf("image inspect busybox: %+v", img)
	}
	dcWantSet(t, "busybox RepoTags", strings.Join(img.RepoTags, "\n"), "bb:v1", "bb:v2", "busybox:latest")
	if _, err := time.Parse(time.RFC3339Nano, img.Created); err != nil {
		t.Errorf("Created %q: %v", img.Created, err)
	}
	errOut = c.fails(1, "image", "inspect", "nosuch")
	dcWantContains(t, "image inspect nosuch", errOut, "No such image: nosuch")

	// images: the table, -q, -a, --no-trunc, --digests, --format.
	out = c.ok("images")
	rows := dcLines(out)
	if len(rows) != 7 || !slices.Equal(dcFields(rows[0]), []string{"REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"}) {
		t.Fatalf("docker images:\n%s", out)
	}
	for _, r := range rows[1:] {
		if f := dcFields(r); len(f) != 5 || !dcShortIDRe.MatchString(f[2]) || !strings.HasSuffix(f[4], "MB") {
			t.Errorf("images row %q", r)
		}
	}
	short := func(id string) string { return strings.TrimPrefix(id, "sha256:")[:12] }
	dcWantSet(t, "images -q", c.ok("images", "-q"),
		short(busyboxID), short(busyboxID), short(busyboxID), short(fileID), short(cfgID), short(danglingID))
	dcWantSet(t, "image ls -a -q", c.ok("image", "ls", "-a", "-q"),
		short(busyboxID), short(busyboxID), short(busyboxID), short(fileID), short(cfgID), short(danglingID))
	dcWantSet(t, "images --format", c.ok("images", "--format", "{{.Repository}}:{{.Tag}}"),
		"bb:v1", "bb:v2", "busybox:latest", "fromfile:v1", "configured:t", "<none>:<none>")
	out = c.ok("images", "--no-trunc", "configured")
	dcWantContains(t, "images --no-trunc", out, cfgID)
	out = c.ok("images", "--digests", "configured")
	if rows := dcLines(out); len(rows) != 2 || !slices.Equal(dcFields(rows[0]), []string{"REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"}) ||
		dcFields(rows[1])[2] != "<none>" {
		t.Errorf("images --digests:\n%s", out)
	}

	// Filters.
	format := []string{"--format", "{{.Repository}}:{{.Tag}}"}
	filter := func(f string) string { return c.ok(append([]string{"images", "--filter", f}, format...)...) }
	dcWantLines(t, "dangling=true", filter("dangling=true"), "<none>:<none>")
	dcWantSet(t, "dangling=false", filter("dangling=false"),
		"bb:v1", "bb:v2", "busybox:latest", "fromfile:v1", "configured:t")
	dcWantSet(t, "reference=bb", filter("reference=bb"), "bb:v1", "bb:v2")
	dcWantSet(t, "reference=bb:v1", filter("reference=bb:v1"), "bb:v1")
	dcWantSet(t, "reference=*:v*", filter("reference=*:v*"), "bb:v1", "bb:v2", "fromfile:v1")
	dcWantSet(t, "label=tier", filter("label=tier"), "configured:t")
	dcWantSet(t, "label=tier=web", filter("label=tier=web"), "configured:t")
	dcWantSet(t, "label=tier=db", filter("label=tier=db"))
	// Creation order: busybox, fromfile, configured, dangling.
	dcWantSet(t, "before=configured:t", filter("before=configured:t"), "bb:v1", "bb:v2", "busybox:latest", "fromfile:v1")
	dcWantSet(t, "since=fromfile:v1", filter("since=fromfile:v1"), "configured:t", "<none>:<none>")
	errOut = c.fails(1, "images", "--filter", "nosuch=1")
	dcWantContains(t, "unknown filter", errOut, "invalid filter 'nosuch'")

	// history.
	out = c.ok("history", "configured:t")
	if rows := dcLines(out); len(rows) != 2 || !slices.Equal(dcFields(rows[0]), []string{"IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"}) ||
		!strings.HasPrefix(rows[1], short(cfgID)) || !strings.HasSuffix(rows[1], "imported for tests") {
		t.Errorf("history:\n%s", out)
	}
	out = c.ok("history", "-H=false", "--no-trunc", "configured:t")
	if rows := dcLines(out); len(rows) != 2 || !strings.HasPrefix(rows[1], cfgID) ||
		!regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d`).MatchString(rows[1]) ||
		!strings.Contains(rows[1], " "+strconv.FormatInt(img.Size, 10)+" ") {
		t.Errorf("history -H=false --no-trunc (size %d):\n%s", img.Size, out)
	}
	dcWantLines(t, "history -q", c.ok("history", "-q", "configured:t"), short(cfgID))

	// rmi: untag while other tags remain.
	dcWantLines(t, "rmi bb:v1", c.ok("rmi", "bb:v1"), "Untagged: bb:v1")
	errOut = c.fails(1, "rmi", "nosuch")
	dcWantContains(t, "rmi nosuch", errOut, "Error response from daemon: No such image: nosuch:latest")
	// An ID (prefix) naming an image with several tags needs -f.
	errOut = c.fails(1, "rmi", short(busyboxID))
	dcWantContains(t, "rmi multi-tagged ID", errOut,
		"conflict: unable to delete "+short(busyboxID)+" (must be forced) - image is referenced in multiple repositories")
	// Refused while a container uses the image.
	ctr := c.ok("create", "fromfile:v1", "true")
	errOut = c.fails(1, "rmi", "fromfile:v1")
	dcWantContains(t, "rmi image of a container", errOut,
		"conflict: unable to delete fromfile:v1 (must be forced) - container "+ctr[:12]+
			" is using its referenced image "+short(fileID))
	errOut = c.fails(1, "rmi", short(fileID))
	dcWantContains(t, "rmi ID of an image of a stopped container", errOut,
		"conflict: unable to delete "+short(fileID)+" (must be forced) - image is being used by stopped container "+ctr[:12])
	c.ok("start", ctr)
	c.ok("wait", ctr)
	c.ok("rm", ctr)
	// Several at once: untag and delete.
	out = c.ok("rmi", "fromfile:v1", "configured:t")
	dcWantLines(t, "rmi two images", out,
		"Untagged: fromfile:v1", "Deleted: "+fileID, "Untagged: configured:t", "Deleted: "+cfgID)
	// Not even -f removes the image of a running container.
	running := c.ok("run", "-d", "busybox", "sleep", "300")
	errOut = c.fails(1, "rmi", "-f", short(busyboxID))
	dcWantContains(t, "rmi -f of a running container's image", errOut,
		"conflict: unable to delete "+short(busyboxID)+" (cannot be forced) - image is being used by running container "+running[:12])
	c.ok("rm", "-f", running)
	// -f on an ID removes every tag and the image.
	out = c.ok("rmi", "-f", short(busyboxID))
	dcWantSet(t, "rmi -f ID", out, "Untagged: bb:v2", "Untagged: busybox:latest", "Deleted: "+busyboxID)
	c.fails(1, "image", "inspect", busyboxID)

	// rmi $(docker images -q) leaves no image: tagged ones, the dangling
	// one from the start, another and an image whose tag was moved away.
	c.d.ImportBusybox(t, "busybox")
	c.ok("import", tarball, "third")
	c.ok("import", tarball)
	c.ok("import", "-c", "ENV MOVED=1", tarball, "third")
	ids := dcLines(c.ok("images", "-q"))
	if len(ids) != 5 {
		t.Fatalf("images -q: %q", ids)
	}
	out = c.ok(append([]string{"rmi"}, ids...)...)
	// Each image is deleted, and then the layer they shared.
	for _, id := range ids {
		dcWantContains(t, "rmi $(docker images -q)", out, "Deleted: sha256:"+id)
	}
	if l := dcLines(out); !strings.HasPrefix(l[len(l)-1], "Deleted: "+img.RootFS.Layers[0]) {
		t.Errorf("rmi of the last image on a layer does not end with the layer's deletion:\n%s", out)
	}
	if out := c.ok("images", "-a", "-q"); out != "" {
		t.Errorf("images left after rmi $(docker images -q): %q", out)
	}
	if rows := dcLines(c.ok("images")); len(rows) != 1 {
		t.Errorf("docker images with no image: %q", rows)
	}
}
