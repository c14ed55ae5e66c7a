package image

import (
	"context"
	"strconv"
	"time"

	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/berth-dev/berth/internal/cli/format"
	"github.com/berth-dev/berth/internal/cli/opts"
	"github.com/distribution/reference"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

const (
	defaultListFormat       = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}"
	defaultListDigestFormat = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}"
)

var listHeader = format.Header{
	"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
	"CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS",
	"SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE",
}

type listOptions struct {
	quiet, all, noTrunc, digests bool
	format                       string
	filter                       opts.Filter
}

func newListCommand(cli *command.Cli) *cobra.Command {
	o := listOptions{filter: opts.NewFilter()}
	cmd := &cobra.Command{
		Use:   "images [OPTIONS] [REPOSITORY[:TAG]]",
		Short: "List images",
		Args:  command.RequiresMaxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			match := ""
			if len(args) > 0 {
				match = args[0]
			}
			return runList(cmd.Context(), cli, o, match)
		},
		Annotations:           map[string]string{"aliases": "berth image ls, berth image list, berth images"},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Only show image IDs")
	f.BoolVarP(&o.all, "all", "a", false, "Show all images (default hides intermediate images)")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "Don't truncate output")
	f.BoolVar(&o.digests, "digests", false, "Show digests")
	f.StringVar(&o.format, "format", "", format.TableHelp)
	f.VarP(&o.filter, "filter", "f", "Filter output based on conditions provided")
	return cmd
}

func runList(ctx context.Context, cli *command.Cli, o listOptions, match string) error {
	filters := o.filter.Value()
	if match != "" {
		filters.Add("reference", match)
	}
	res, err := cli.Client().ImageList(ctx, client.ImageListOptions{All: o.all, Filters: filters})
	if err != nil {
		return err
	}
	f := listFormat(o.format, o.quiet, o.digests)
	rows := listRows(res.Items, !o.noTrunc, o.digests || f.Contains("{{.Digest}}"), o.digests)
	return format.Write(cli.Out(), f, listHeader, rows)
}

func listFormat(src string, quiet, digests bool) format.Format {
	switch {
	case src == "" || src == format.TableKey:
		switch {
		case quiet:
			return format.QuietTemplate
		case digests:
			return defaultListDigestFormat
		}
		return defaultListFormat
	case quiet:
		return format.QuietTemplate
	}
	f := format.Format(src)
	if f.IsTable() && digests && !f.Contains("{{.Digest}}") {
		f += "\t{{.Digest}}"
	}
	return f
}

// listRow is one line of "berth images": an image under one repository
// and tag (an image with several tags gives several rows).
type listRow struct {
	trunc           bool
	img             image.Summary
	repo, tag, dgst string
}

func dangling(img image.Summary) bool {
	if len(img.RepoTags) == 0 && len(img.RepoDigests) == 0 {
		return true
	}
	return len(img.RepoTags) == 1 && img.RepoTags[0] == "<none>:<none>" &&
		len(img.RepoDigests) == 1 && img.RepoDigests[0] == "<none>@<none>"
}

// listRows expands images into rows: one per repository and tag, crossed
// with the repository's digests when digests are shown.
func listRows(images []image.Summary, trunc, needDigest, showDigests bool) []*listRow {
	var rows []*listRow
	for _, img := range images {
		add := func(repo, tag, digest string) {
			rows = append(rows, &listRow{trunc: trunc, img: img, repo: repo, tag: tag, dgst: digest})
		}
		if dangling(img) {
			add("<none>", "<none>", "<none>")
			continue
		}
		tags, digests := map[string][]string{}, map[string][]string{}
		var repos []string
		for _, s := range img.RepoTags {
			ref, err := reference.ParseNormalizedNamed(s)
			if err != nil {
				continue
			}
			if t, ok := ref.(reference.NamedTagged); ok {
				name := reference.FamiliarName(ref)
				if _, seen := tags[name]; !seen {
					repos = append(repos, name)
				}
				tags[name] = append(tags[name], t.Tag())
			}
		}
		var digestRepos []string
		for _, s := range img.RepoDigests {
			ref, err := reference.ParseNormalizedNamed(s)
			if err != nil {
				continue
			}
			if c, ok := ref.(reference.Canonical); ok {
				name := reference.FamiliarName(ref)
				if _, seen := digests[name]; !seen {
					digestRepos = append(digestRepos, name)
				}
				digests[name] = append(digests[name], c.Digest().String())
			}
		}
		for _, repo := range repos {
			ds := digests[repo]
			delete(digests, repo)
			if !needDigest {
				ds = nil
			}
			for _, tag := range tags[repo] {
				if len(ds) == 0 {
					add(repo, tag, "<none>")
					continue
				}
				for _, d := range ds {
					add(repo, tag, d)
				}
			}
		}
		for _, repo := range digestRepos {
			ds, left := digests[repo]
			if !left {
				continue
			}
			if !showDigests {
				add(repo, "<none>", "")
				continue
			}
			for _, d := range ds {
				add(repo, "<none>", d)
			}
		}
	}
	return rows
}

func (r *listRow) MarshalJSON() ([]byte, error) { return format.MarshalMethods(r) }

// ID is the image ID, shortened unless --no-trunc.
func (r *listRow) ID() string {
	if r.trunc {
		return format.TruncateID(r.img.ID)
	}
	return r.img.ID
}

// Repository is the familiar repository name.
func (r *listRow) Repository() string { return r.repo }

// Tag is the tag.
func (r *listRow) Tag() string { return r.tag }

// Digest is the repository digest.
func (r *listRow) Digest() string { return r.dgst }

// CreatedSince is the image's age.
func (r *listRow) CreatedSince() string {
	t := time.Unix(r.img.Created, 0)
	if t.IsZero() {
		return ""
	}
	return format.Since(t)
}

// CreatedAt is the creation time.
func (r *listRow) CreatedAt() string { return time.Unix(r.img.Created, 0).String() }

// Size is the image size.
func (r *listRow) Size() string { return format.Size(r.img.Size) }

// Containers counts the containers using the image.
func (r *listRow) Containers() string {
	if r.img.Containers == -1 {
		return "N/A"
	}
	return strconv.FormatInt(r.img.Containers, 10)
}

// SharedSize is the size shared with other images.
func (r *listRow) SharedSize() string {
	if r.img.SharedSize == -1 {
		return "N/A"
	}
	return units.HumanSize(float64(r.img.SharedSize))
}

// UniqueSize is the size only this image uses.
func (r *listRow) UniqueSize() string {
	if r.img.Size == -1 || r.img.SharedSize == -1 {
		return "N/A"
	}
	return units.HumanSize(float64(r.img.Size - r.img.SharedSize))
}

// VirtualSize is the image size with four significant digits (kept for
// templates written for older docker releases).
func (r *listRow) VirtualSize() string { return units.HumanSize(float64(r.img.Size)) }

// DiskUsageRows renders images for the images section of "berth system
// df -v": one row per image under its first tag, as docker shows it. The
// header titles the columns.
func DiskUsageRows(images []image.Summary, trunc bool) ([]any, format.Header) {
	rows := make([]any, 0, len(images))
	for _, img := range images {
		repo, tag := "<none>", "<none>"
		if len(img.RepoTags) > 0 && !dangling(img) {
			ref, err := reference.ParseNormalizedNamed(img.RepoTags[0])
			if err != nil {
				continue
			}
			if t, ok := ref.(reference.NamedTagged); ok {
				repo, tag = reference.FamiliarName(ref), t.Tag()
			}
		}
		rows = append(rows, &listRow{trunc: trunc, img: img, repo: repo, tag: tag})
	}
	return rows, listHeader
}
