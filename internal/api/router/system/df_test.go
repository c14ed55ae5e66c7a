package system

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/api/server"
	"github.com/moby/moby/api/types/build"
	containertypes "github.com/moby/moby/api/types/container"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/volume"
)

// lastDF records the options of the last disk usage request.
var lastDF DiskUsageOptions

func (fakeBackend) SystemDiskUsage(_ context.Context, o DiskUsageOptions) (*DiskUsage, error) {
	lastDF = o
	du := &DiskUsage{}
	if o.Images {
		du.LayersSize = 300
		du.Images = []imagetypes.Summary{
			{ID: "sha256:a", Size: 200, SharedSize: 100, Containers: 1},
			{ID: "sha256:b", Size: 150, SharedSize: 100, Containers: 0},
		}
	}
	if o.Containers {
		du.Containers = []containertypes.Summary{
			{ID: "c1", State: containertypes.StateRunning, SizeRw: 10},
			{ID: "c2", State: containertypes.StateExited, SizeRw: 5},
		}
	}
	if o.Volumes {
		du.Volumes = []volume.Volume{}
	}
	if o.BuildCache {
		du.BuildCache = []build.CacheRecord{}
	}
	return du, nil
}

func TestSystemDF(t *testing.T) {
	s := server.New(server.Options{MinAPIVersion: "1.40", MaxAPIVersion: "1.56", ServerVersion: "v"},
		&Router{Backend: fakeBackend{}, MaxAPIVersion: "1.56"})
	all := DiskUsageOptions{Images: true, Containers: true, Volumes: true, BuildCache: true}
	tests := []struct {
		path     string
		code     int
		opts     DiskUsageOptions
		contains []string
		absent   []string
	}{
		{"/v1.50/system/df", 200, all,
			[]string{`"LayersSize":300`, `"Images":[{`, `"Containers":[{`, `"Volumes":[]`, `"BuildCache":[]`},
			[]string{`"ImageUsage"`}},
		{"/v1.50/system/df?type=image", 200, DiskUsageOptions{Images: true},
			[]string{`"LayersSize":300`, `"Images":[{`}, []string{`"Containers":[`, `"Volumes"`}},
		{"/v1.41/system/df?type=image", 200, all, []string{`"Volumes":[]`}, nil},
		{"/v1.52/system/df", 200, all,
			[]string{`"ImageUsage":{"ActiveCount":1,"Reclaimable":50,"TotalCount":2,"TotalSize":300}`,
				`"ContainerUsage":{"ActiveCount":1,"Reclaimable":5,"TotalCount":2,"TotalSize":15}`},
			[]string{`"Items"`, `"LayersSize"`}},
		{"/v1.52/system/df?type=container&verbose=1", 200, DiskUsageOptions{Containers: true},
			[]string{`"ContainerUsage":{"ActiveCount":1,"Items":[{`}, []string{`"ImageUsage"`}},
		{"/system/df?type=disk", 400, DiskUsageOptions{}, []string{`"unknown object type: disk"`}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
			body := rec.Body.String()
			if rec.Code != tc.code {
				t.Fatalf("%d %s", rec.Code, body)
			}
			if tc.code == 200 && lastDF != tc.opts {
				t.Errorf("options %+v, want %+v", lastDF, tc.opts)
			}
			for _, c := range tc.contains {
				if !strings.Contains(body, c) {
					t.Errorf("%s lacks %s", body, c)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(body, a) {
					t.Errorf("%s has %s", body, a)
				}
			}
		})
	}
}
