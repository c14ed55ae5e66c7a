// Package container holds the container commands: create, run, start,
// attach, exec, ps, inspect, logs, wait, stop, kill, rm, restart, rename,
// top, port, pause, unpause, prune, stats, commit and export.
package container

import (
	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/berth-dev/berth/internal/cli/inspect"
	"github.com/spf13/cobra"
)

// NewContainerCommand returns "berth container" and its subcommands.
func NewContainerCommand(cli *command.Cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "container",
		Short: "Manage containers",
		Args:  command.NoArgs,
		RunE:  command.ShowHelp,
	}
	ls := newPsCommand(cli)
	ls.Use = "ls [OPTIONS]"
	ls.Aliases = []string{"ps", "list"}
	rm := newRmCommand(cli)
	rm.Aliases = []string{"remove"}
	cmd.AddCommand(ls, rm, newInspectCommand(cli), newPruneCommand(cli))
	cmd.AddCommand(commands(cli)...)
	return cmd
}

// AddShortcuts adds the top-level container commands (run, ps, exec, …).
func AddShortcuts(root *cobra.Command, cli *command.Cli) {
	ps := newPsCommand(cli)
	root.AddCommand(ps, newRmCommand(cli))
	root.AddCommand(commands(cli)...)
}

// commands are the container commands that have the same name at the top
// level and under "berth container".
func commands(cli *command.Cli) []*cobra.Command {
	return []*cobra.Command{
		newCreateCommand(cli), newRunCommand(cli), newStartCommand(cli), newAttachCommand(cli),
		newExecCommand(cli), newLogsCommand(cli), newWaitCommand(cli), newStopCommand(cli),
		newKillCommand(cli), newRestartCommand(cli), newRenameCommand(cli), newTopCommand(cli),
		newPortCommand(cli), newPauseCommand(cli), newUnpauseCommand(cli), newStatsCommand(cli),
		newCommitCommand(cli), newExportCommand(cli),
	}
}

func newInspectCommand(cli *command.Cli) *cobra.Command {
	var tmplText string
	var size bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Display detailed information on one or more containers",
		Args:  command.RequiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return inspect.Inspect(cmd.Context(), cli.Out(), args, tmplText, inspect.Container(cli.Client(), size))
		},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().StringVarP(&tmplText, "format", "f", "", inspect.FormatHelp)
	cmd.Flags().BoolVarP(&size, "size", "s", false, "Display total file sizes")
	return cmd
}
