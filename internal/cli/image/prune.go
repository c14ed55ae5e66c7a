package image

import (
	"context"
	"fmt"
	"strconv"

	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/berth-dev/berth/internal/cli/opts"
	"github.com/docker/go-units"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

const (
	danglingWarning = "WARNING! This will remove all dangling images.\nAre you sure you want to continue?"
	allWarning      = "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue?"
)

type pruneOptions struct {
	all, force bool
	filter     opts.Filter
}

func newPruneCommand(cli *command.Cli) *cobra.Command {
	o := pruneOptions{filter: opts.NewFilter()}
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Args:  command.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPrune(cmd.Context(), cli, o)
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.BoolVarP(&o.all, "all", "a", false, "Remove all unused images, not just dangling ones")
	f.Var(&o.filter, "filter", `Provide filter values (e.g. "until=<timestamp>")`)
	f.BoolVarP(&o.force, "force", "f", false, "Do not prompt for confirmation")
	return cmd
}

// runPrune asks for confirmation unless -f, then removes the dangling
// images (with -a every image no container uses) and lists what went.
// Declining is not an error, as with docker.
func runPrune(ctx context.Context, cli *command.Cli, o pruneOptions) error {
	filters := o.filter.Value().Clone()
	filters.Add("dangling", strconv.FormatBool(!o.all))
	warning := danglingWarning
	if o.all {
		warning = allWarning
	}
	if !o.force && !command.Confirm(cli.In(), cli.Out(), warning) {
		return nil
	}
	res, err := cli.Client().ImagePrune(ctx, client.ImagePruneOptions{Filters: filters})
	if err != nil {
		return err
	}
	var reclaimed uint64
	if r := res.Report; len(r.ImagesDeleted) > 0 {
		fmt.Fprintln(cli.Out(), "Deleted Images:")
		for _, d := range r.ImagesDeleted {
			if d.Untagged != "" {
				fmt.Fprintln(cli.Out(), "untagged:", d.Untagged)
			} else {
				fmt.Fprintln(cli.Out(), "deleted:", d.Deleted)
			}
		}
		fmt.Fprintln(cli.Out())
		reclaimed = r.SpaceReclaimed
	}
	fmt.Fprintln(cli.Out(), "Total reclaimed space:", units.HumanSize(float64(reclaimed)))
	return nil
}
