// Package image holds the image commands: images/image ls, image inspect,
// rmi, tag, history, import, pull, push, save, load, image prune and
// search.
package image

import (
	"github.com/berth-dev/berth/internal/cli/build"
	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/berth-dev/berth/internal/cli/inspect"
	"github.com/spf13/cobra"
)

// NewImageCommand returns "berth image" and its subcommands.
func NewImageCommand(cli *command.Cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage images",
		Args:  command.NoArgs,
		RunE:  command.ShowHelp,
	}
	ls := newListCommand(cli)
	ls.Use = "ls [OPTIONS] [REPOSITORY[:TAG]]"
	ls.Aliases = []string{"list"}
	rm := newRemoveCommand(cli)
	rm.Use = "rm [OPTIONS] IMAGE [IMAGE...]"
	rm.Aliases = []string{"remove", "rmi"}
	cmd.AddCommand(ls, rm, newInspectCommand(cli), newTagCommand(cli), newHistoryCommand(cli),
		newImportCommand(cli), newPullCommand(cli), newPushCommand(cli), newSaveCommand(cli),
		newLoadCommand(cli), newPruneCommand(cli), build.NewBuildCommand(cli))
	return cmd
}

// AddShortcuts adds the top-level image commands (images, rmi, tag, …),
// ordered among docker's common commands as docker orders them.
func AddShortcuts(root *cobra.Command, cli *command.Cli) {
	pull := newPullCommand(cli)
	pull.Annotations["category-top"] = "5"
	push := newPushCommand(cli)
	push.Annotations["category-top"] = "6"
	images := newListCommand(cli)
	images.Annotations["category-top"] = "7"
	search := NewSearchCommand(cli)
	search.Annotations = map[string]string{"category-top": "10"}
	root.AddCommand(images, newRemoveCommand(cli), newTagCommand(cli), newHistoryCommand(cli),
		newImportCommand(cli), pull, push, newSaveCommand(cli), newLoadCommand(cli), search)
}

func newInspectCommand(cli *command.Cli) *cobra.Command {
	var tmplText string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] IMAGE [IMAGE...]",
		Short: "Display detailed information on one or more images",
		Args:  command.RequiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return inspect.Inspect(cmd.Context(), cli.Out(), args, tmplText, inspect.Image(cli.Client()))
		},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().StringVarP(&tmplText, "format", "f", "", inspect.FormatHelp)
	return cmd
}
