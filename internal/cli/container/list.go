package container

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/berth-dev/berth/internal/cli/format"
	"github.com/berth-dev/berth/internal/cli/opts"
	"github.com/distribution/reference"
	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

const defaultPsFormat = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"

var psHeader = format.Header{
	"ID": "CONTAINER ID", "Names": "NAMES", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
	"RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
	"Labels": "LABELS", "Mounts": "MOUNTS", "LocalVolumes": "LOCAL VOLUMES", "Networks": "NETWORKS",
	"Platform": "PLATFORM",
}

type psOptions struct {
	quiet, size, all, noTrunc, latest bool
	last                              int
	format                            string
	filter                            opts.Filter
}

func newPsCommand(cli *command.Cli) *cobra.Command {
	o := psOptions{filter: opts.NewFilter()}
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS]",
		Short: "List containers",
		Args:  command.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPs(cmd.Context(), cli, &o, cmd.Flags().Changed("size"))
		},
		Annotations: map[string]string{
			"category-top": "3",
			"aliases":      "berth container ls, berth container list, berth container ps, berth ps",
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Only display container IDs")
	f.BoolVarP(&o.size, "size", "s", false, "Display total file sizes")
	f.BoolVarP(&o.all, "all", "a", false, "Show all containers (default shows just running)")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "Don't truncate output")
	f.BoolVarP(&o.latest, "latest", "l", false, "Show the latest created container (includes all states)")
	f.IntVarP(&o.last, "last", "n", -1, "Show n last created containers (includes all states)")
	f.StringVar(&o.format, "format", "", format.TableHelp)
	f.VarP(&o.filter, "filter", "f", "Filter output based on conditions provided")
	return cmd
}

// psListOptions builds the list request; a --format that shows .Size asks
// the daemon for sizes.
func psListOptions(o *psOptions, sizeSet bool) (client.ContainerListOptions, error) {
	lo := client.ContainerListOptions{All: o.all, Limit: o.last, Size: o.size, Filters: o.filter.Value()}
	if o.latest && o.last == -1 {
		lo.Limit = 1
	}
	if o.format != "" {
		tmpl, err := format.Parse(o.format)
		if err != nil {
			return lo, fmt.Errorf("failed to parse template: %w", err)
		}
		probe := &psRow{}
		if err := tmpl.Execute(io.Discard, probe); err != nil {
			return lo, fmt.Errorf("failed to execute template: %w", err)
		}
		if !o.quiet && !lo.Size && !sizeSet && probe.sizeUsed {
			lo.Size = true
		}
	}
	return lo, nil
}

func runPs(ctx context.Context, cli *command.Cli, o *psOptions, sizeSet bool) error {
	if o.format != "" && o.quiet {
		fmt.Fprintln(cli.Err(), "WARNING: Ignoring custom format, because both --format and --quiet are set.")
	}
	lo, err := psListOptions(o, sizeSet)
	if err != nil {
		return err
	}
	res, err := cli.Client().ContainerList(ctx, lo)
	if err != nil {
		return err
	}
	rows := make([]*psRow, 0, len(res.Items))
	for _, c := range res.Items {
		rows = append(rows, &psRow{c: c, trunc: !o.noTrunc})
	}
	return format.Write(cli.Out(), psFormat(o.format, o.quiet, lo.Size), psHeader, rows)
}

func psFormat(src string, quiet, size bool) format.Format {
	switch {
	case quiet:
		return format.QuietTemplate
	case src == "" || src == format.TableKey:
		if size {
			return defaultPsFormat + `\t{{.Size}}`
		}
		return defaultPsFormat
	}
	return format.Format(src)
}

// psRow is one container of "berth ps", with docker's field names.
type psRow struct {
	c        ctypes.Summary
	trunc    bool
	sizeUsed bool
}

func (r *psRow) MarshalJSON() ([]byte, error) { return format.MarshalMethods(r) }

// ID is the container ID, shortened unless --no-trunc.
func (r *psRow) ID() string {
	if r.trunc {
		return format.TruncateID(r.c.ID)
	}
	return r.c.ID
}

// Names lists the names; shortened output shows only the first one
// without a slash (links excluded).
func (r *psRow) Names() string {
	var names []string
	for _, n := range r.c.Names {
		n = strings.TrimPrefix(n, "/")
		if r.trunc {
			if !strings.Contains(n, "/") {
				return n
			}
			continue
		}
		names = append(names, n)
	}
	return strings.Join(names, ",")
}

// Image is the image as given at creation, shortened to a familiar
// reference without digest.
func (r *psRow) Image() string {
	img := r.c.Image
	if img == "" {
		return "<no image>"
	}
	if !r.trunc {
		return img
	}
	if t := format.TruncateID(r.c.ImageID); t == format.TruncateID(img) {
		return t
	}
	ref, err := reference.ParseNormalizedNamed(img)
	if err != nil {
		return img
	}
	if _, ok := ref.(reference.Digested); ok {
		tagged, isTagged := ref.(reference.Tagged)
		ref = reference.TrimNamed(ref)
		if isTagged {
			if withTag, err := reference.WithTag(ref, tagged.Tag()); err == nil {
				ref = withTag
			}
		}
	}
	return reference.FamiliarString(ref)
}

// Command is the quoted command, shortened to 20 characters.
func (r *psRow) Command() string {
	cmd := r.c.Command
	if r.trunc {
		cmd = format.Ellipsis(cmd, 20)
	}
	return strconv.Quote(cmd)
}

// CreatedAt is the creation time.
func (r *psRow) CreatedAt() string { return time.Unix(r.c.Created, 0).String() }

// RunningFor is the container's age.
func (r *psRow) RunningFor() string { return format.Since(time.Unix(r.c.Created, 0)) }

// Ports are the exposed and published ports.
func (r *psRow) Ports() string { return format.Ports(r.c.Ports) }

// State is the state name.
func (r *psRow) State() string { return string(r.c.State) }

// Status is the human status ("Up 5 seconds").
func (r *psRow) Status() string { return r.c.Status }

// Size is the writable layer size, with the virtual size.
func (r *psRow) Size() string {
	r.sizeUsed = true
	rw := format.Size(r.c.SizeRw)
	if r.c.SizeRootFs > 0 {
		return fmt.Sprintf("%s (virtual %s)", rw, format.Size(r.c.SizeRootFs))
	}
	return rw
}

// Labels lists key=value labels, sorted.
func (r *psRow) Labels() string {
	l := make([]string, 0, len(r.c.Labels))
	for k, v := range r.c.Labels {
		l = append(l, k+"="+v)
	}
	slices.Sort(l)
	return strings.Join(l, ",")
}

// Label returns one label's value.
func (r *psRow) Label(name string) string { return r.c.Labels[name] }

// Mounts names the mounts (volume names or sources).
func (r *psRow) Mounts() string {
	m := make([]string, 0, len(r.c.Mounts))
	for _, mp := range r.c.Mounts {
		name := mp.Name
		if name == "" {
			name = mp.Source
		}
		if r.trunc {
			name = format.Ellipsis(name, 15)
		}
		m = append(m, name)
	}
	return strings.Join(m, ",")
}

// LocalVolumes counts the local-driver volumes.
func (r *psRow) LocalVolumes() string {
	n := 0
	for _, m := range r.c.Mounts {
		if m.Driver == "local" {
			n++
		}
	}
	return strconv.Itoa(n)
}

// Platform is the platform of the image manifest the container runs, nil
// when the daemon does not tell (null in --format json, as with docker).
func (r *psRow) Platform() *psPlatform {
	if d := r.c.ImageManifestDescriptor; d != nil && d.Platform != nil {
		return &psPlatform{*d.Platform}
	}
	return nil
}

// psPlatform prints as os/architecture[/variant].
type psPlatform struct{ ocispec.Platform }

func (p psPlatform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// Networks names the networks, sorted.
func (r *psRow) Networks() string {
	if r.c.NetworkSettings == nil {
		return ""
	}
	n := make([]string, 0, len(r.c.NetworkSettings.Networks))
	for k := range r.c.NetworkSettings.Networks {
		n = append(n, k)
	}
	slices.Sort(n)
	return strings.Join(n, ",")
}
