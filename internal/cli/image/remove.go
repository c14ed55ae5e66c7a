package image

import (
	"context"
	"errors"
	"fmt"

	"github.com/berth-dev/berth/internal/cli/command"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func newRemoveCommand(cli *command.Cli) *cobra.Command {
	var force, noPrune bool
	cmd := &cobra.Command{
		Use:   "rmi [OPTIONS] IMAGE [IMAGE...]",
		Short: "Remove one or more images",
		Args:  command.RequiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRemove(cmd.Context(), cli, args, client.ImageRemoveOptions{Force: force, PruneChildren: !noPrune})
		},
		Annotations:           map[string]string{"aliases": "berth image rm, berth image remove, berth rmi"},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.BoolVarP(&force, "force", "f", false, "Force removal of the image")
	f.BoolVar(&noPrune, "no-prune", false, "Do not delete untagged parents")
	return cmd
}

// runRemove removes each image, printing what was untagged and deleted.
// With --force, a missing image is reported but is not a failure.
func runRemove(ctx context.Context, cli *command.Cli, images []string, o client.ImageRemoveOptions) error {
	fatal := false
	var errs []error
	for _, img := range images {
		res, err := cli.Client().ImageRemove(ctx, img, o)
		if err != nil {
			fatal = fatal || !cerrdefs.IsNotFound(err)
			errs = append(errs, err)
			continue
		}
		for _, d := range res.Items {
			if d.Deleted != "" {
				fmt.Fprintln(cli.Out(), "Deleted:", d.Deleted)
			} else {
				fmt.Fprintln(cli.Out(), "Untagged:", d.Untagged)
			}
		}
	}
	err := errors.Join(errs...)
	if err == nil || !o.Force || fatal {
		return err
	}
	fmt.Fprintln(cli.Err(), command.Message(err))
	return nil
}
