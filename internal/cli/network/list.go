package network

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/berth-dev/berth/internal/cli/format"
	"github.com/berth-dev/berth/internal/cli/opts"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

const defaultListFormat = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"

var listHeader = format.Header{
	"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv4": "IPV4", "IPv6": "IPV6",
	"Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT",
}

type listOptions struct {
	quiet, noTrunc bool
	format         string
	filter         opts.Filter
}

func newListCommand(cli *command.Cli) *cobra.Command {
	o := listOptions{filter: opts.NewFilter()}
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    command.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runList(cmd.Context(), cli, o)
		},
		Annotations:           map[string]string{"aliases": "berth network ls, berth network list"},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Only display network IDs")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "Do not truncate the output")
	f.StringVar(&o.format, "format", "", format.TableHelp)
	f.VarP(&o.filter, "filter", "f", `Provide filter values (e.g. "driver=bridge")`)
	return cmd
}

func runList(ctx context.Context, cli *command.Cli, o listOptions) error {
	res, err := cli.Client().NetworkList(ctx, client.NetworkListOptions{Filters: o.filter.Value()})
	if err != nil {
		return err
	}
	slices.SortFunc(res.Items, func(a, b network.Summary) int { return compareNames(a.Name, b.Name) })
	rows := make([]*listRow, len(res.Items))
	for i, n := range res.Items {
		rows[i] = &listRow{trunc: !o.noTrunc, n: n}
	}
	return format.Write(cli.Out(), listFormat(o.format, o.quiet), listHeader, rows)
}

// listFormat picks the template: a given one wins over -q, as in docker.
func listFormat(src string, quiet bool) format.Format {
	switch {
	case src == "" || src == format.TableKey:
		if quiet {
			return format.QuietTemplate
		}
		return defaultListFormat
	case src == "raw" && quiet:
		return `network_id: {{.ID}}`
	case src == "raw":
		return `network_id: {{.ID}}\nname: {{.Name}}\ndriver: {{.Driver}}\nscope: {{.Scope}}\n`
	}
	return format.Format(src)
}

// compareNames orders names with runs of digits compared as numbers.
func compareNames(a, b string) int {
	ra, rb := runs(a), runs(b)
	for i := 0; i < len(ra) && i < len(rb); i++ {
		x, y := ra[i], rb[i]
		if isDigit(x[0]) && isDigit(y[0]) {
			x, y = strings.TrimLeft(x, "0"), strings.TrimLeft(y, "0")
			if c := cmp.Or(cmp.Compare(len(x), len(y)), strings.Compare(x, y)); c != 0 {
				return c
			}
			continue
		}
		if c := strings.Compare(x, y); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(ra), len(rb))
}

// runs splits s into alternating runs of digits and other bytes.
func runs(s string) []string {
	var out []string
	for start := 0; start < len(s); {
		end := start + 1
		for end < len(s) && isDigit(s[end]) == isDigit(s[start]) {
			end++
		}
		out = append(out, s[start:end])
		start = end
	}
	return out
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// listRow is one line of "berth network ls".
type listRow struct {
	trunc bool
	n     network.Summary
}

func (r *listRow) MarshalJSON() ([]byte, error) { return format.MarshalMethods(r) }

// ID is the network ID, shortened unless --no-trunc.
func (r *listRow) ID() string {
	if r.trunc {
		return format.TruncateID(r.n.ID)
	}
	return r.n.ID
}

// Name is the network name.
func (r *listRow) Name() string { return r.n.Name }

// Driver is the network driver.
func (r *listRow) Driver() string { return r.n.Driver }

// Scope is the network scope.
func (r *listRow) Scope() string { return r.n.Scope }

// IPv4 tells whether IPv4 is enabled.
func (r *listRow) IPv4() string { return strconv.FormatBool(r.n.EnableIPv4) }

// IPv6 tells whether IPv6 is enabled.
func (r *listRow) IPv6() string { return strconv.FormatBool(r.n.EnableIPv6) }

// Internal tells whether the network is internal.
func (r *listRow) Internal() string { return strconv.FormatBool(r.n.Internal) }

// Labels lists the labels as sorted key=value pairs.
func (r *listRow) Labels() string {
	out := make([]string, 0, len(r.n.Labels))
	for k, v := range r.n.Labels {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// Label returns one label's value.
func (r *listRow) Label(name string) string { return r.n.Labels[name] }

// CreatedAt is the creation time.
func (r *listRow) CreatedAt() string { return r.n.Created.String() }
