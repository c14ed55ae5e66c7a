package cli_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/cli/clitest"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/api/types/volume"
)

const (
	dfImageID = "sha256:3f57d9401f8d42f986df300f0c69192fc41da28ccc8d797829467780db3dd741"
	dfCtrID   = "8c1e7d2f4a6b8c0d2e4f6a8b0c2d4e6f8a0b2c4d6e8f0a2b4c6d8e0f2a4b6c8d"
)

func dfFixture() (images []image.Summary, ctrs []container.Summary, vols []volume.Volume) {
	twoHours := time.Now().Add(-2 * time.Hour).Unix()
	images = []image.Summary{
		{ID: dfImageID, RepoTags: []string{"busybox:latest", "busybox:1"}, Created: twoHours, Size: 4_261_550, SharedSize: 0, Containers: 1},
		{ID: "sha256:aa11bb22cc33dd44ee55ff66aa11bb22cc33dd44ee55ff66aa11bb22cc33dd44", Created: twoHours, Size: 2_000_000, SharedSize: 0, Containers: 0},
	}
	ctrs = []container.Summary{{
		ID: dfCtrID, Names: []string{"/web"}, Image: "busybox", ImageID: dfImageID, Command: "sh -c 'while true; do sleep 1; done'",
		Created: twoHours, State: container.StateRunning, Status: "Up 2 hours", SizeRw: 1234, SizeRootFs: 4_262_784,
		Mounts: []container.MountPoint{{Type: "volume", Name: "data", Driver: "local"}},
	}}
	vols = []volume.Volume{
		{Name: "data", Driver: "local", UsageData: &volume.UsageData{Size: 2048, RefCount: 1}},
		{Name: "old", Driver: "local", UsageData: &volume.UsageData{Size: 6144, RefCount: 0}},
	}
	return images, ctrs, vols
}

// fakeDiskUsage answers /system/df in the shape of the API version: the
// lists before 1.52, the per-type totals from 1.52 on.
func fakeDiskUsage(s *clitest.Server, modern bool) {
	images, ctrs, vols := dfFixture()
	if !modern {
		s.JSON("GET /system/df", http.StatusOK, map[string]any{
			"LayersSize": 6_261_550, "Images": images, "Containers": ctrs, "Volumes": vols, "BuildCache": []build.CacheRecord{},
		})
		return
	}
	s.Handle("GET /system/df", func(w http.ResponseWriter, r *http.Request) {
		verbose := r.URL.Query().Get("verbose") == "1"
		du := system.DiskUsage{
			ImageUsage:      &image.DiskUsage{TotalCount: 2, ActiveCount: 1, TotalSize: 6_261_550, Reclaimable: 2_000_000},
			ContainerUsage:  &container.DiskUsage{TotalCount: 1, ActiveCount: 1, TotalSize: 1234},
			VolumeUsage:     &volume.DiskUsage{TotalCount: 2, ActiveCount: 1, TotalSize: 8192, Reclaimable: 6144},
			BuildCacheUsage: &build.DiskUsage{},
		}
		if verbose {
			du.ImageUsage.Items, du.ContainerUsage.Items, du.VolumeUsage.Items = images, ctrs, vols
		}
		clitest.WriteJSON(w, http.StatusOK, du)
	})
}

func TestSystemDf(t *testing.T) {
	const summary = "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n" +
		"Images          2         1         6.262MB   2MB (31%)\n" +
		"Containers      1         1         1.234kB   0B (0%)\n" +
		"Local Volumes   2         1         8.192kB   6.144kB (75%)\n" +
		"Build Cache     0         0         0B        0B\n"
	const verbose = "Images space usage:\n\n" +
		"REPOSITORY   TAG       IMAGE ID       CREATED       SIZE      SHARED SIZE   UNIQUE SIZE   CONTAINERS\n" +
		"busybox      latest    3f57d9401f8d   2 hours ago   4.26MB    0B            4.262MB       1\n" +
		"<none>       <none>    aa11bb22cc33   2 hours ago   2MB       0B            2MB           0\n" +
		"\nContainers space usage:\n\n" +
		"CONTAINER ID   IMAGE     COMMAND                  LOCAL VOLUMES   SIZE      CREATED       STATUS       NAMES\n" +
		"8c1e7d2f4a6b   busybox   \"sh -c 'while true; …\"   1               1.23kB    2 hours ago   Up 2 hours   web\n" +
		"\nLocal Volumes space usage:\n\n" +
		"VOLUME NAME   LINKS     SIZE\n" +
		"data          1         2.048kB\n" +
		"old           0         6.144kB\n" +
		"\nBuild cache usage: 0B\n\n" +
		"CACHE ID   CACHE TYPE   SIZE      CREATED   LAST USED   USAGE     SHARED\n"
	for _, api := range []struct {
		version string
		modern  bool
	}{{"1.51", false}, {"1.56", true}} {
		t.Run("API "+api.version, func(t *testing.T) {
			s := clitest.New(t)
			s.SetAPIVersion(api.version)
			fakeDiskUsage(s, api.modern)
			for _, tc := range []struct {
				args []string
				out  string
			}{
				{[]string{"system", "df"}, summary},
				{[]string{"system", "df", "--format", "table"}, summary},
				{[]string{"system", "df", "--format", "{{.Type}}: {{.Reclaimable}}"},
					"Images: 2MB (31%)\nContainers: 0B (0%)\nLocal Volumes: 6.144kB (75%)\nBuild Cache: 0B\n"},
				{[]string{"system", "df", "--format", "table {{.Type}}\t{{.Size}}"},
					"TYPE            SIZE\nImages          6.262MB\nContainers      1.234kB\nLocal Volumes   8.192kB\nBuild Cache     0B\n"},
				{[]string{"system", "df", "--format", "json"},
					`{"Active":"1","Reclaimable":"2MB (31%)","Size":"6.262MB","TotalCount":"2","Type":"Images"}` + "\n" +
						`{"Active":"1","Reclaimable":"0B (0%)","Size":"1.234kB","TotalCount":"1","Type":"Containers"}` + "\n" +
						`{"Active":"1","Reclaimable":"6.144kB (75%)","Size":"8.192kB","TotalCount":"2","Type":"Local Volumes"}` + "\n" +
						`{"Active":"0","Reclaimable":"0B","Size":"0B","TotalCount":"0","Type":"Build Cache"}` + "\n"},
				{[]string{"system", "df", "-v"}, verbose},
				{[]string{"system", "df", "-v", "--format", "{{range .Images}}{{.ID}} {{.Repository}}\n{{end}}{{range .Volumes}}{{.Name}}={{.Links}}\n{{end}}"},
					dfImageID + " busybox\nsha256:aa11bb22cc33dd44ee55ff66aa11bb22cc33dd44ee55ff66aa11bb22cc33dd44 <none>\ndata=1\nold=0\n"},
			} {
				n := len(s.Requests())
				r := run(t, s, "", tc.args...)
				if r.code != 0 || r.out != tc.out || r.err != "" {
					t.Errorf("%v: got %+v\nwant %q", tc.args, r, tc.out)
				}
				q := s.Requests()[n].Query
				if got := q["type"]; len(got) != 4 || q.Has("verbose") != slices.Contains(tc.args, "-v") {
					t.Errorf("%v: query %v", tc.args, q)
				}
			}
		})
	}
}
