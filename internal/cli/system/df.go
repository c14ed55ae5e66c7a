package system

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/berth-dev/berth/internal/cli/container"
	"github.com/berth-dev/berth/internal/cli/format"
	"github.com/berth-dev/berth/internal/cli/image"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

const (
	defaultDiskUsageFormat = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
	duImagesFormat         = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}"
	duContainersFormat     = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}"
	duVolumesFormat        = "table {{.Name}}\t{{.Links}}\t{{.Size}}"
	duBuildCacheFormat     = "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}"
)

var (
	diskUsageHeader = format.Header{
		"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE",
	}
	volumeHeader     = format.Header{"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE", "Driver": "DRIVER"}
	buildCacheHeader = format.Header{
		"ID": "CACHE ID", "CacheType": "CACHE TYPE", "Size": "SIZE", "CreatedSince": "CREATED",
		"LastUsedSince": "LAST USED", "UsageCount": "USAGE", "Shared": "SHARED",
	}
)

func newDiskUsageCommand(cli *command.Cli) *cobra.Command {
	var tmplText string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show berth disk usage",
		Args:  command.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDiskUsage(cmd.Context(), cli, tmplText, verbose)
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.StringVar(&tmplText, "format", "", format.TableHelp)
	f.BoolVarP(&verbose, "verbose", "v", false, "Show detailed information on space usage")
	return cmd
}

func runDiskUsage(ctx context.Context, cli *command.Cli, tmplText string, verbose bool) error {
	du, err := cli.Client().DiskUsage(ctx, client.DiskUsageOptions{
		Containers: true, Images: true, Volumes: true, BuildCache: true, Verbose: verbose,
	})
	if err != nil {
		return err
	}
	if !verbose {
		f := format.Format(tmplText)
		if tmplText == "" || tmplText == format.TableKey {
			f = defaultDiskUsageFormat
		}
		return format.Write(cli.Out(), f, diskUsageHeader, summaryRows(du))
	}
	details := newDiskUsageDetails(du, tmplText == "" || tmplText == format.TableKey)
	if tmplText == "" || tmplText == format.TableKey {
		return details.writeTables(cli.Out(), du.BuildCache.TotalSize)
	}
	tmpl, err := format.Parse(format.Format(tmplText).Template())
	if err != nil {
		return err
	}
	if err := tmpl.Execute(cli.Out(), details); err != nil {
		return fmt.Errorf("template parsing error: %w", err)
	}
	return nil
}

// usageRow is one line of the summary: a kind of object, how many there
// are, how many are in use, their size and what removing the unused ones
// would free.
type usageRow struct {
	kind                      string
	total, active, size, free int64
	percent                   bool
}

func summaryRows(du client.DiskUsageResult) []*usageRow {
	return []*usageRow{
		{"Images", du.Images.TotalCount, du.Images.ActiveCount, du.Images.TotalSize, du.Images.Reclaimable, true},
		{"Containers", du.Containers.TotalCount, du.Containers.ActiveCount, du.Containers.TotalSize, du.Containers.Reclaimable, true},
		{"Local Volumes", du.Volumes.TotalCount, du.Volumes.ActiveCount, du.Volumes.TotalSize, du.Volumes.Reclaimable, true},
		{"Build Cache", du.BuildCache.TotalCount, du.BuildCache.ActiveCount, du.BuildCache.TotalSize, du.BuildCache.Reclaimable, false},
	}
}

func (r *usageRow) MarshalJSON() ([]byte, error) { return format.MarshalMethods(r) }

// Type names the kind of object.
func (r *usageRow) Type() string { return r.kind }

// TotalCount is the number of objects.
func (r *usageRow) TotalCount() string { return strconv.FormatInt(r.total, 10) }

// Active is the number of objects in use.
func (r *usageRow) Active() string { return strconv.FormatInt(r.active, 10) }

// Size is their total size.
func (r *usageRow) Size() string { return units.HumanSize(float64(r.size)) }

// Reclaimable is the size of the unused objects, with its share of the
// total (not for the build cache, as docker prints it).
func (r *usageRow) Reclaimable() string {
	s := units.HumanSize(float64(r.free))
	if r.percent && r.size > 0 {
		return fmt.Sprintf("%s (%d%%)", s, r.free*100/r.size)
	}
	return s
}

// diskUsageDetails is what -v shows, and what a -v template sees.
type diskUsageDetails struct {
	Images, Containers, Volumes, BuildCache []any
	imageHeader, containerHeader            format.Header
}

func newDiskUsageDetails(du client.DiskUsageResult, trunc bool) *diskUsageDetails {
	d := &diskUsageDetails{}
	d.Images, d.imageHeader = image.DiskUsageRows(du.Images.Items, trunc)
	d.Containers, d.containerHeader = container.DiskUsageRows(du.Containers.Items, trunc)
	d.Volumes = make([]any, 0, len(du.Volumes.Items))
	for _, v := range du.Volumes.Items {
		d.Volumes = append(d.Volumes, &volumeRow{v: v})
	}
	d.BuildCache = make([]any, 0, len(du.BuildCache.Items))
	for _, b := range du.BuildCache.Items {
		d.BuildCache = append(d.BuildCache, &buildCacheRow{b: b, trunc: trunc})
	}
	return d
}

// writeTables prints docker's four -v sections.
func (d *diskUsageDetails) writeTables(w io.Writer, buildCacheSize int64) error {
	sections := []struct {
		title  string
		f      format.Format
		header format.Header
		rows   []any
	}{
		{"Images space usage:", duImagesFormat, d.imageHeader, d.Images},
		{"\nContainers space usage:", duContainersFormat, d.containerHeader, d.Containers},
		{"\nLocal Volumes space usage:", duVolumesFormat, volumeHeader, d.Volumes},
		{"\nBuild cache usage: " + units.HumanSize(float64(buildCacheSize)), duBuildCacheFormat, buildCacheHeader, d.BuildCache},
	}
	for _, s := range sections {
		fmt.Fprintf(w, "%s\n\n", s.title)
		if err := format.Write(w, s.f, s.header, s.rows); err != nil {
			return err
		}
	}
	return nil
}

// volumeRow is a volume in "system df -v".
type volumeRow struct{ v volume.Volume }

func (r *volumeRow) MarshalJSON() ([]byte, error) { return format.MarshalMethods(r) }

// Name is the volume name.
func (r *volumeRow) Name() string { return r.v.Name }

// Driver is the volume driver.
func (r *volumeRow) Driver() string { return r.v.Driver }

// Mountpoint is where the volume lives on the host.
func (r *volumeRow) Mountpoint() string { return r.v.Mountpoint }

// Scope is local or global.
func (r *volumeRow) Scope() string { return r.v.Scope }

// Labels lists key=value labels, sorted.
func (r *volumeRow) Labels() string {
	l := make([]string, 0, len(r.v.Labels))
	for k, v := range r.v.Labels {
		l = append(l, k+"="+v)
	}
	slices.Sort(l)
	return strings.Join(l, ",")
}

// Group is a cluster volume's group, N/A for a local one.
func (r *volumeRow) Group() string {
	if r.v.ClusterVolume == nil {
		return "N/A"
	}
	return r.v.ClusterVolume.Spec.Group
}

// Availability is a cluster volume's availability, N/A for a local one.
func (r *volumeRow) Availability() string {
	if r.v.ClusterVolume == nil {
		return "N/A"
	}
	return string(r.v.ClusterVolume.Spec.Availability)
}

// Status is a cluster volume's state, N/A for a local one.
func (r *volumeRow) Status() string {
	cv := r.v.ClusterVolume
	switch {
	case cv == nil:
		return "N/A"
	case cv.Info == nil || cv.Info.VolumeID == "":
		return "pending creation"
	case len(cv.PublishStatus) == 0:
		return "created"
	case len(cv.PublishStatus) == 1:
		return "in use (1 node)"
	}
	return fmt.Sprintf("in use (%d nodes)", len(cv.PublishStatus))
}

// Links counts the containers using the volume.
func (r *volumeRow) Links() string {
	if r.v.UsageData == nil {
		return "N/A"
	}
	return strconv.FormatInt(r.v.UsageData.RefCount, 10)
}

// Size is the volume's size.
func (r *volumeRow) Size() string {
	if r.v.UsageData == nil {
		return "N/A"
	}
	return units.HumanSize(float64(r.v.UsageData.Size))
}

// buildCacheRow is a build cache record in "system df -v".
type buildCacheRow struct {
	b     build.CacheRecord
	trunc bool
}

func (r *buildCacheRow) MarshalJSON() ([]byte, error) { return format.MarshalMethods(r) }

// ID is the record's ID, marked with * while in use.
func (r *buildCacheRow) ID() string {
	id := r.b.ID
	if r.trunc {
		id = format.TruncateID(id)
	}
	if r.b.InUse {
		return id + "*"
	}
	return id
}

// CacheType is the kind of record.
func (r *buildCacheRow) CacheType() string { return r.b.Type }

// Size is the record's size.
func (r *buildCacheRow) Size() string { return format.Size(r.b.Size) }

// CreatedSince is the record's age.
func (r *buildCacheRow) CreatedSince() string { return format.Since(r.b.CreatedAt) }

// LastUsedSince is the time since the record was last used.
func (r *buildCacheRow) LastUsedSince() string {
	if r.b.LastUsedAt == nil {
		return ""
	}
	return format.Since(*r.b.LastUsedAt)
}

// UsageCount is how often the record was used.
func (r *buildCacheRow) UsageCount() string { return strconv.Itoa(r.b.UsageCount) }

// Shared tells whether the record is shared.
func (r *buildCacheRow) Shared() string { return strconv.FormatBool(r.b.Shared) }

// CreatedAt is the creation time.
func (r *buildCacheRow) CreatedAt() string { return r.b.CreatedAt.Format(time.RFC3339) }
