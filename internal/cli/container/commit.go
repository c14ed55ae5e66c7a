package container

import (
	"fmt"

	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/berth-dev/berth/internal/cli/opts"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func newCommitCommand(cli *command.Cli) *cobra.Command {
	var o client.ContainerCommitOptions
	pause := true
	changes := opts.NewList(nil)
	cmd := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args:  command.RequiresRangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				o.Reference = args[1]
			}
			o.NoPause, o.Changes = !pause, changes.Values()
			res, err := cli.Client().ContainerCommit(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			fmt.Fprintln(cli.Out(), res.ID)
			return nil
		},
		Annotations:           map[string]string{"aliases": "berth container commit, berth commit"},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.StringVarP(&o.Author, "author", "a", "", `Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")`)
	f.VarP(&changes, "change", "c", "Apply Dockerfile instruction to the created image")
	f.StringVarP(&o.Comment, "message", "m", "", "Commit message")
	f.BoolVarP(&pause, "pause", "p", true, "Pause container during commit")
	return cmd
}
