package image

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/berth-dev/berth/internal/cli/format"
	"github.com/berth-dev/berth/internal/cli/opts"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

const (
	defaultHistoryFormat  = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
	rawTimesHistoryFormat = "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
)

var historyHeader = format.Header{
	"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY",
	"Size": "SIZE", "Comment": "COMMENT",
}

type historyOptions struct {
	human, quiet, noTrunc bool
	format, platform      string
}

func newHistoryCommand(cli *command.Cli) *cobra.Command {
	var o historyOptions
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  command.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runHistory(cmd.Context(), cli, args[0], o)
		},
		Annotations:           map[string]string{"aliases": "berth image history, berth history"},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.BoolVarP(&o.human, "human", "H", true, "Print sizes and dates in human readable format")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Only show image IDs")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "Don't truncate output")
	f.StringVar(&o.format, "format", "", format.TableHelp)
	f.StringVar(&o.platform, "platform", "", "Show history for the given platform")
	return cmd
}

func runHistory(ctx context.Context, cli *command.Cli, img string, o historyOptions) error {
	var hopts []client.ImageHistoryOption
	if o.platform != "" {
		p, err := parsePlatform(o.platform)
		if err != nil {
			return err
		}
		hopts = append(hopts, client.ImageHistoryWithPlatform(p))
	}
	res, err := cli.Client().ImageHistory(ctx, img, hopts...)
	if err != nil {
		return err
	}
	f := format.Format(o.format)
	switch {
	case o.format == "" || o.format == format.TableKey:
		switch {
		case o.quiet:
			f = format.QuietTemplate
		case !o.human:
			f = rawTimesHistoryFormat
		default:
			f = defaultHistoryFormat
		}
	}
	rows := make([]*historyRow, 0, len(res.Items))
	for _, h := range res.Items {
		rows = append(rows, &historyRow{h: h, trunc: !o.noTrunc, human: o.human})
	}
	return format.Write(cli.Out(), f, historyHeader, rows)
}

// historyRow is one layer of "berth history".
type historyRow struct {
	h            image.HistoryResponseItem
	trunc, human bool
}

func (r *historyRow) MarshalJSON() ([]byte, error) { return format.MarshalMethods(r) }

// ID is the layer's image ID ("<missing>" for layers of pulled images).
func (r *historyRow) ID() string {
	if r.trunc {
		return format.TruncateID(r.h.ID)
	}
	return r.h.ID
}

// CreatedAt is the creation time in RFC 3339.
func (r *historyRow) CreatedAt() string { return time.Unix(r.h.Created, 0).Format(time.RFC3339) }

var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Unix()

// CreatedSince is the age, or the time with -H=false.
func (r *historyRow) CreatedSince() string {
	if !r.human {
		return r.CreatedAt()
	}
	if r.h.Created <= epoch {
		return "N/A"
	}
	return units.HumanDuration(time.Now().UTC().Sub(time.Unix(r.h.Created, 0))) + " ago"
}

// CreatedBy is the instruction that made the layer.
func (r *historyRow) CreatedBy() string {
	s := strings.ReplaceAll(r.h.CreatedBy, "\t", " ")
	if r.trunc {
		return format.Ellipsis(s, 45)
	}
	return s
}

// Size is the layer size.
func (r *historyRow) Size() string {
	if r.human {
		return format.Size(r.h.Size)
	}
	return strconv.FormatInt(r.h.Size, 10)
}

// Comment is the layer comment.
func (r *historyRow) Comment() string { return r.h.Comment }

func parsePlatform(s string) (ocispec.Platform, error) { return opts.ParsePlatform(s) }
