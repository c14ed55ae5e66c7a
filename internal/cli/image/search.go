package image

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/berth-dev/berth/internal/cli/format"
	"github.com/berth-dev/berth/internal/cli/opts"
	"github.com/berth-dev/berth/internal/cli/registry"
	apiregistry "github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

const defaultSearchFormat = "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}"

var searchHeader = format.Header{
	"Name": "NAME", "Description": "DESCRIPTION", "StarCount": "STARS", "IsOfficial": "OFFICIAL", "IsAutomated": "AUTOMATED",
}

type searchOptions struct {
	format  string
	noTrunc bool
	limit   int
	filter  opts.Filter
}

// NewSearchCommand returns "berth search".
func NewSearchCommand(cli *command.Cli) *cobra.Command {
	o := searchOptions{filter: opts.NewFilter()}
	cmd := &cobra.Command{
		Use:   "search [OPTIONS] TERM",
		Short: "Search Docker Hub for images",
		Args:  command.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSearch(cmd.Context(), cli, args[0], o)
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.VarP(&o.filter, "filter", "f", "Filter output based on conditions provided")
	f.StringVar(&o.format, "format", "", "Pretty-print search using a Go template")
	f.IntVar(&o.limit, "limit", 0, "Max number of search results")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "Don't truncate output")
	return cmd
}

// runSearch asks the daemon to search the term's registry; filtering and
// the limit are the daemon's, the table is docker's.
func runSearch(ctx context.Context, cli *command.Cli, term string, o searchOptions) error {
	filters := o.filter.Value()
	if _, ok := filters["is-automated"]; ok {
		fmt.Fprintln(cli.Err(), `WARNING: the "is-automated" filter is deprecated, and searching for "is-automated=true" will not yield any results in future.`)
	}
	auth, err := registry.SearchAuth(cli, term)
	if err != nil {
		return err
	}
	res, err := cli.Client().ImageSearch(ctx, term, client.ImageSearchOptions{RegistryAuth: auth, Filters: filters, Limit: o.limit})
	if err != nil {
		return err
	}
	f := format.Format(o.format)
	if o.format == "" || o.format == format.TableKey {
		f = defaultSearchFormat
	}
	rows := make([]*searchRow, 0, len(res.Items))
	for _, r := range res.Items {
		row := &searchRow{r: r, trunc: !o.noTrunc}
		row.IsAutomated = row.flag(r.IsAutomated)
		rows = append(rows, row)
	}
	return format.Write(cli.Out(), f, searchHeader, rows)
}

// searchRow is one result of "berth search".
type searchRow struct {
	r           apiregistry.SearchResult
	trunc, json bool
	// IsAutomated is [OK] for an automated build. Docker Hub no longer
	// has them; templates may still ask, but the JSON leaves it out, as
	// docker's does.
	IsAutomated string
}

// MarshalJSON renders booleans as true/false rather than the table's [OK].
func (s *searchRow) MarshalJSON() ([]byte, error) {
	c := *s
	c.json = true
	return format.MarshalMethods(&c)
}

// Name is the repository name.
func (s *searchRow) Name() string { return s.r.Name }

// Description is the description on one line, shortened to 45 characters.
func (s *searchRow) Description() string {
	d := strings.NewReplacer("\n", " ", "\r", " ").Replace(s.r.Description)
	if s.trunc {
		return format.Ellipsis(d, 45)
	}
	return d
}

// StarCount is the number of stars.
func (s *searchRow) StarCount() string { return strconv.Itoa(s.r.StarCount) }

// IsOfficial is [OK] for an official image.
func (s *searchRow) IsOfficial() string { return s.flag(s.r.IsOfficial) }

func (s *searchRow) flag(v bool) string {
	switch {
	case s.json:
		return strconv.FormatBool(v)
	case v:
		return "[OK]"
	}
	return ""
}
