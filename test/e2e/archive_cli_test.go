package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestArchiveSaveLoad: docker save of one and of two images, rmi, docker
// load: the same IDs, tags and history, and the images run. Also through
// a pipe, by ID, and a load that takes a tag from another image.
func TestArchiveSaveLoad(t *testing.T) {
	c := newDockerCLI(t)
	busyboxID := c.ok("image", "inspect", "-f", "{{.Id}}", "busybox")

	// A second image with two layers: busybox plus a file.
	c.ok("run", "--name", "mkfile", "busybox", "sh", "-c", "echo saved > /f")
	c.ok("commit", "-m", "add /f", "mkfile", "withfile:v1")
	c.ok("rm", "mkfile")
	withfileID := c.ok("image", "inspect", "-f", "{{.Id}}", "withfile:v1")
	history := c.ok("history", "--no-trunc", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Comment}}|{{.Size}}", "withfile:v1")
	diffIDs := c.ok("image", "inspect", "-f", "{{json .RootFS.Layers}}", "withfile:v1")

	dir := t.TempDir()
	one, two := filepath.Join(dir, "one.tar"), filepath.Join(dir, "two.tar")
	c.ok("save", "-o", one, "busybox")
	c.ok("save", "-o", two, "busybox", "withfile:v1")

	// The archive: Docker's manifest.json and an OCI layout, blobs named
	// by their digest, layers that are the images' DiffIDs.
	a := readSavedArchive(t, two)
	for _, f := range []string{"manifest.json", "index.json", "oci-layout", "repositories"} {
		if _, ok := a.files[f]; !ok {
			t.Errorf("archive lacks %s (has %q)", f, a.order)
		}
	}
	a.checkBlobs(t)
	m := a.manifest(t)
	if len(m) != 2 || !slices.Equal(m[0].RepoTags, []string{"busybox:latest"}) || !slices.Equal(m[1].RepoTags, []string{"withfile:v1"}) {
		t.Fatalf("manifest.json: %+v", m)
	}
	if m[1].Config != "blobs/sha256/"+strings.TrimPrefix(withfileID, "sha256:") {
		t.Errorf("config %s, want the image ID's blob", m[1].Config)
	}
	var layers []string
	if err := json.Unmarshal([]byte(diffIDs), &layers); err != nil {
		t.Fatal(err)
	}
	for i, l := range m[1].Layers {
		if l != "blobs/sha256/"+strings.TrimPrefix(layers[i], "sha256:") {
			t.Errorf("layer %d: %s, want the DiffID %s", i, l, layers[i])
		}
	}
	if m[0].Layers[0] != m[1].Layers[0] {
		t.Errorf("the shared base layer is stored twice: %s, %s", m[0].Layers[0], m[1].Layers[0])
	}
	var idx struct {
		Manifests []struct{ Annotations map[string]string }
	}
	if err := json.Unmarshal(a.files["index.json"], &idx); err != nil || len(idx.Manifests) != 2 ||
		idx.Manifests[0].Annotations["io.containerd.image.name"] != "docker.io/library/busybox:latest" ||
		idx.Manifests[1].Annotations["org.opencontainers.image.ref.name"] != "v1" {
		t.Errorf("index.json: %s (%v)", a.files["index.json"], err)
	}

	// rmi both, load both back.
	c.ok("rmi", "busybox", "withfile:v1")
	c.fails(1, "image", "inspect", "busybox")
	out := c.ok("load", "-i", two)
	dcWantLines(t, "load output", out, "Loaded image: busybox:latest", "Loaded image: withfile:v1")
	if got := c.ok("image", "inspect", "-f", "{{.Id}}", "busybox"); got != busyboxID {
		t.Errorf("busybox loaded as %s, saved as %s", got, busyboxID)
	}
	if got := c.ok("image", "inspect", "-f", "{{.Id}}", "withfile:v1"); got != withfileID {
		t.Errorf("withfile:v1 loaded as %s, saved as %s", got, withfileID)
	}
	// The parent link is not in the archive's images: history shows
	// <missing> below the top, the rest is identical.
	gotHistory := c.ok("history", "--no-trunc", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Comment}}|{{.Size}}", "withfile:v1")
	if strip := func(s string) string { return regexp.MustCompile(`sha256:[0-9a-f]{64}\|`).ReplaceAllString(s, "") }; strip(gotHistory) != strip(history) {
		t.Errorf("history after load:\n%s\nwant\n%s", gotHistory, history)
	}
	if got := c.ok("run", "--rm", "withfile:v1", "cat", "/f"); got != "saved" {
		t.Errorf("loaded image printed %q", got)
	}
	// Loading what is there changes nothing.
	out = c.ok("load", "-q", "-i", one)
	dcWantLines(t, "second load", out, "Loaded image: busybox:latest")

	// docker save | docker load, through stdin and stdout.
	piped, _ := c.pipeline([]string{"save", "busybox", "withfile:v1"}, []string{"load"})
	dcWantLines(t, "piped load", piped, "Loaded image: busybox:latest", "Loaded image: withfile:v1")
	c.ok("rmi", "withfile:v1")
	piped, _ = c.pipeline([]string{"save", "busybox"}, []string{"load"})
	dcWantLines(t, "piped load", piped, "Loaded image: busybox:latest")

	// By ID: no tag in the archive, "Loaded image ID".
	byID := filepath.Join(dir, "byid.tar")
	c.ok("save", "-o", byID, strings.TrimPrefix(busyboxID, "sha256:")[:12])
	ida := readSavedArchive(t, byID)
	if m := ida.manifest(t); len(m) != 1 || len(m[0].RepoTags) != 0 {
		t.Errorf("saved by ID: manifest %+v", m)
	}
	out = c.ok("load", "-i", byID)
	dcWantLines(t, "load by ID", out, "Loaded image ID: "+busyboxID)

	// A tag that names another image moves; the old image keeps its ID.
	c.ok("load", "-i", two)
	c.ok("tag", withfileID, "busybox:latest")
	out = c.ok("load", "-i", one)
	dcWantLines(t, "load over a tag", out,
		"The image busybox:latest already exists, renaming the old one with ID "+withfileID+" to empty string",
		"Loaded image: busybox:latest")
	if got := c.ok("image", "inspect", "-f", "{{.Id}}", "busybox"); got != busyboxID {
		t.Errorf("busybox:latest is %s after the load, want %s", got, busyboxID)
	}
	if got := c.ok("image", "inspect", "-f", "{{.Id}}", withfileID); got != withfileID {
		t.Errorf("the old image is gone: %s", got)
	}

	// Unknown names fail before anything is written.
	errOut := c.fails(1, "save", "-o", filepath.Join(dir, "none.tar"), "busybox", "nosuch:tag")
	dcWantContains(t, "save nosuch", errOut, "No such image: nosuch:tag")
	if _, err := os.Stat(filepath.Join(dir, "none.tar")); err == nil {
		if fi, _ := os.Stat(filepath.Join(dir, "none.tar")); fi.Size() > 0 {
			t.Errorf("a failed save left %d bytes", fi.Size())
		}
	}
}

// TestArchiveLoadRefusesBadArchives: a layer that does not match its
// DiffID and a path outside the archive are refused, nothing is stored.
func TestArchiveLoadRefusesBadArchives(t *testing.T) {
	c := newDockerCLI(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.tar")
	c.ok("save", "-o", good, "busybox")

	a := readSavedArchive(t, good)
	m := a.manifest(t)
	layer := m[0].Layers[0]
	tamperedLayer := append([]byte{}, a.files[layer]...)
	// Change a byte in the middle: inside the busybox binary, the bulk
	// of the layer.
	tamperedLayer[len(tamperedLayer)/2] ^= 0xff
	tampered := rewriteArchive(t, dir, "tampered.tar", a, map[string][]byte{layer: tamperedLayer})
	c.ok("rmi", "busybox")
	imagesBefore := c.ok("images", "-aq", "--no-trunc")
	out, errOut, code := c.run("load", "-i", tampered)
	if code == 0 || !strings.Contains(errOut, "invalid diffID for layer 0") {
		t.Errorf("tampered load: exit %d, %q %q", code, out, errOut)
	}
	if got := c.ok("images", "-aq", "--no-trunc"); got != imagesBefore {
		t.Errorf("images after a refused load: %q, before %q", got, imagesBefore)
	}
	escape := rewriteArchive(t, dir, "escape.tar", a, map[string][]byte{"../escape": []byte("x")})
	_, errOut, code = c.run("load", "-i", escape)
	if code == 0 || !strings.Contains(errOut, `entry "../escape" is outside the archive`) {
		t.Errorf("escaping load: exit %d, %q", code, errOut)
	}
	_, errOut, code = c.runIn(strings.NewReader("not an archive"), "load")
	if code == 0 || errOut == "" {
		t.Errorf("loading garbage: exit %d, %q", code, errOut)
	}
}

// TestArchiveExportImport: docker export of a running and of a stopped
// container, docker import of it: a runnable image with the files.
func TestArchiveExportImport(t *testing.T) {
	c := newDockerCLI(t)
	c.ok("run", "-d", "--name", "live", "busybox", "sh", "-c", "echo exported > /f; sleep 1000")
	c.waitFor("/f in the container", func() bool {
		out, _, code := c.run("exec", "live", "cat", "/f")
		return code == 0 && strings.TrimSpace(out) == "exported"
	})
	out, _ := c.pipeline([]string{"export", "live"}, []string{"import", "-", "fromlive:1"})
	if !dcFullIDRe.MatchString(strings.TrimPrefix(strings.TrimSpace(out), "sha256:")) {
		t.Errorf("import printed %q", out)
	}
	if got := c.ok("run", "--rm", "fromlive:1", "cat", "/f"); got != "exported" {
		t.Errorf("imported image: %q", got)
	}
	if st := c.inspect("live", "{{.State.Status}}"); st != "running" {
		t.Errorf("live is %s after the export", st)
	}
	c.ok("rm", "-f", "live")

	c.ok("run", "--name", "done", "busybox", "sh", "-c", "mkdir -p /data && echo stopped > /data/g && rm /bin/vi")
	file := filepath.Join(t.TempDir(), "done.tar")
	c.ok("export", "-o", file, "done")
	c.ok("import", file, "fromdone:1")
	if got := c.ok("run", "--rm", "fromdone:1", "sh", "-c", "cat /data/g; test -e /bin/vi || echo no-vi"); got != "stopped\nno-vi" {
		t.Errorf("imported stopped container: %q", got)
	}
	errOut := c.fails(1, "export", "nosuch")
	dcWantContains(t, "export nosuch", errOut, "No such container: nosuch")
}

// TestArchiveCommit: commit with a message, an author and a change; the
// image runs the new command, history shows the step; a running container
// is paused for the commit and runs on.
func TestArchiveCommit(t *testing.T) {
	c := newDockerCLI(t)
	start := time.Now()
	busyboxID := c.ok("image", "inspect", "-f", "{{.Id}}", "busybox")
	c.ok("run", "--name", "maker", "-e", "FROMRUN=1", "busybox", "sh", "-c", "echo committed > /f")
	id := c.ok("commit", "-m", "the message", "-a", "A. Author <a@example.com>", "-c", `CMD ["cat","/f"]`, "maker", "made:v1")
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(id) {
		t.Fatalf("commit printed %q", id)
	}
	if got := c.ok("run", "--rm", "made:v1"); got != "committed" {
		t.Errorf("committed image printed %q", got)
	}
	got := c.ok("image", "inspect", "-f", "{{.Id}}|{{.Author}}|{{.Comment}}|{{json .Config.Cmd}}|{{len .RootFS.Layers}}", "made:v1")
	if want := id + `|A. Author <a@example.com>|the message|["cat","/f"]|2`; got != want {
		t.Errorf("inspect: %s, want %s", got, want)
	}
	if env := c.ok("image", "inspect", "-f", "{{json .Config.Env}}", "made:v1"); !strings.Contains(env, "FROMRUN=1") {
		t.Errorf("the container's environment is not in the image: %s", env)
	}
	hist := dcLines(c.ok("history", "--no-trunc", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Comment}}", "made:v1"))
	if len(hist) != 2 || hist[0] != id+"|sh -c echo committed > /f|the message" || !strings.HasPrefix(hist[1], busyboxID+"|") {
		t.Errorf("history: %q", hist)
	}

	// A running container: paused while committed (the default), running
	// and not paused after.
	c.ok("run", "-d", "--name", "runner", "busybox", "sh", "-c", "echo live > /g; sleep 1000")
	c.waitFor("/g", func() bool { _, _, code := c.run("exec", "runner", "test", "-e", "/g"); return code == 0 })
	c.ok("commit", "runner", "fromrunning:1")
	if st := c.inspect("runner", "{{.State.Status}} {{.State.Paused}}"); st != "running false" {
		t.Errorf("runner after commit: %s", st)
	}
	if got := c.ok("run", "--rm", "fromrunning:1", "cat", "/g"); got != "live" {
		t.Errorf("image of the running container: %q", got)
	}
	c.ok("commit", "--pause=false", "runner", "fromrunning:2")
	events := c.ok("events", "--since", strconv.FormatInt(start.Unix()-1, 10), "--until", strconv.FormatInt(time.Now().Unix()+1, 10), "--filter", "container=runner", "--format", "{{.Action}}")
	dcWantContains(t, "events", events, "pause", "unpause", "commit")
	c.ok("rm", "-f", "runner")

	errOut := c.fails(1, "commit", "-c", "RUN true", "maker", "bad:1")
	dcWantContains(t, "commit RUN", errOut, "RUN is not a valid change command")
	errOut = c.fails(1, "commit", "nosuch", "x:1")
	dcWantContains(t, "commit nosuch", errOut, "No such container: nosuch")
}

// TestArchiveImagePrune: prune removes dangling images only, -a every
// image no container uses; an image a container uses stays.
func TestArchiveImagePrune(t *testing.T) {
	c := newDockerCLI(t)
	tarball := testutil.BusyboxTarball(t)
	// Images with a label each, so that they differ.
	dangling := c.ok("import", "-c", "LABEL n=dangling", tarball)
	usedDangling := c.ok("import", "-c", "LABEL n=used", tarball)
	c.ok("import", "-c", "LABEL n=tagged", tarball, "tagged:1")
	c.ok("create", "--name", "user", usedDangling, "true")

	out := c.ok("image", "prune", "-f")
	dcWantContains(t, "prune output", out, "Deleted Images:", "deleted: "+dangling, "Total reclaimed space:")
	if strings.Contains(out, usedDangling) {
		t.Errorf("prune removed the image a container uses: %s", out)
	}
	if _, _, code := c.run("image", "inspect", dangling); code == 0 {
		t.Error("the dangling image is still there")
	}
	for _, keep := range []string{usedDangling, "tagged:1", "busybox"} {
		c.ok("image", "inspect", keep)
	}

	out = c.ok("image", "prune", "-a", "-f")
	dcWantContains(t, "prune -a", out, "untagged: tagged:1", "untagged: busybox:latest")
	if got := c.ok("images", "-aq", "--no-trunc"); got != usedDangling {
		t.Errorf("images after prune -a: %q, want only %s", got, usedDangling)
	}
	// Nothing left to prune.
	out = c.ok("image", "prune", "-a", "-f")
	dcWantContains(t, "empty prune", out, "Total reclaimed space: 0B")

	errOut := c.fails(1, "image", "prune", "-f", "--filter", "color=red")
	dcWantContains(t, "bad filter", errOut, "invalid filter 'color'")
}

// TestArchiveSystemDF: system df agrees with images and ps -s.
func TestArchiveSystemDF(t *testing.T) {
	c := newDockerCLI(t)
	c.ok("run", "--name", "writer", "busybox", "sh", "-c", "head -c 300000 /dev/zero > /big")
	c.ok("commit", "writer", "bigger:1")
	c.ok("run", "-d", "--name", "sleeper", "busybox", "sleep", "1000")

	type dfImage struct {
		Id               string
		Size, SharedSize int64
		Containers       int64
		RepoTags         []string
	}
	var df struct {
		LayersSize int64
		Images     []dfImage
		Containers []struct {
			Id         string
			SizeRw     int64
			SizeRootFs int64
			State      string
		}
		Volumes, BuildCache []any
	}
	resp, err := c.d.HTTPClient().Get("http://berthd/v1.50/system/df")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(resp.Body).Decode(&df); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if df.Volumes == nil || df.BuildCache == nil || len(df.Volumes)+len(df.BuildCache) != 0 {
		t.Errorf("volumes %v, build cache %v: want two empty lists", df.Volumes, df.BuildCache)
	}
	sizes := map[string]int64{}
	for _, row := range dcLines(c.ok("images", "--no-trunc", "--format", "{{.ID}} {{.Size}}")) {
		f := strings.Fields(row)
		sizes[f[0]] = 0
	}
	var list []struct {
		Id   string
		Size int64
	}
	resp, err = c.d.HTTPClient().Get("http://berthd/v1.50/images/json")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	for _, img := range list {
		sizes[img.Id] = img.Size
	}
	if len(df.Images) != len(sizes) {
		t.Fatalf("df lists %d images, images %d", len(df.Images), len(sizes))
	}
	var base, bigger dfImage
	for _, img := range df.Images {
		if img.Size != sizes[img.Id] {
			t.Errorf("image %s: df size %d, images size %d", img.Id, img.Size, sizes[img.Id])
		}
		switch {
		case slices.Contains(img.RepoTags, "busybox:latest"):
			base = img
		case slices.Contains(img.RepoTags, "bigger:1"):
			bigger = img
		}
	}
	// The base layer is shared; LayersSize counts it once.
	if base.SharedSize != base.Size || bigger.SharedSize != base.Size || bigger.Size < base.Size+300000 {
		t.Errorf("busybox %+v, bigger %+v: want busybox's layer shared", base, bigger)
	}
	if df.LayersSize != bigger.Size {
		t.Errorf("LayersSize %d, want %d (busybox's layer once, plus bigger's)", df.LayersSize, bigger.Size)
	}
	if base.Containers != 2 || bigger.Containers != 0 {
		t.Errorf("containers per image: busybox %d, bigger %d", base.Containers, bigger.Containers)
	}
	psSizes := map[string]string{}
	for _, row := range dcLines(c.ok("ps", "-as", "--no-trunc", "--format", "{{.ID}}|{{.Size}}")) {
		id, size, _ := strings.Cut(row, "|")
		psSizes[id] = size
	}
	for _, ctr := range df.Containers {
		if _, ok := psSizes[ctr.Id]; !ok {
			t.Errorf("df lists container %s that ps -a does not", ctr.Id)
		}
		if ctr.Id == c.inspect("writer", "{{.Id}}") && (ctr.SizeRw < 300000 || ctr.SizeRootFs != ctr.SizeRw+base.Size) {
			t.Errorf("writer: SizeRw %d, SizeRootFs %d (image %d)", ctr.SizeRw, ctr.SizeRootFs, base.Size)
		}
	}

	// The CLI's summary and verbose views.
	rows := map[string][]string{}
	for _, row := range dcLines(c.ok("system", "df", "--format", "{{.Type}}|{{.TotalCount}}|{{.Active}}")) {
		f := strings.Split(row, "|")
		rows[f[0]] = f[1:]
	}
	if !slices.Equal(rows["Images"], []string{"2", "1"}) || !slices.Equal(rows["Containers"], []string{"2", "1"}) ||
		!slices.Equal(rows["Local Volumes"], []string{"0", "0"}) {
		t.Errorf("system df: %v", rows)
	}
	verbose := c.ok("system", "df", "-v")
	dcWantContains(t, "system df -v", verbose, "Images space usage:", "bigger", "busybox", "Containers space usage:", "writer", "sleeper")
}

// TestArchiveDockerPy runs py/archive_script.py: save/load, commit,
// export/import, df and prune through docker-py.
func TestArchiveDockerPy(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed: skipping the docker-py test")
	}
	if out, err := exec.Command(py, "-c", "import docker").CombinedOutput(); err != nil {
		t.Skipf("docker-py not installed (pip install docker): %s", strings.TrimSpace(string(out)))
	}
	d := testutil.StartBerthd(t)
	d.ImportBusybox(t, "busybox")
	script, err := filepath.Abs(filepath.Join("py", "archive_script.py"))
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code := d.Run(t, py, "-u", script)
	t.Logf("docker-py:\n%s%s", out, errOut)
	if code != 0 || !strings.Contains(out, "all sections passed") {
		t.Fatalf("docker-py script failed (exit %d)", code)
	}
}
