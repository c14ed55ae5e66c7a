package container

import (
	"context"
	"io"

	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func newLogsCommand(cli *command.Cli) *cobra.Command {
	var o client.ContainerLogsOptions
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  command.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLogs(cmd.Context(), cli, args[0], o)
		},
		Annotations:           map[string]string{"aliases": "berth container logs, berth logs"},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.BoolVarP(&o.Follow, "follow", "f", false, "Follow log output")
	f.StringVar(&o.Since, "since", "", `Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	f.StringVar(&o.Until, "until", "", `Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	f.BoolVarP(&o.Timestamps, "timestamps", "t", false, "Show timestamps")
	f.BoolVar(&o.Details, "details", false, "Show extra details provided to logs")
	f.StringVarP(&o.Tail, "tail", "n", "all", "Number of lines to show from the end of the logs")
	return cmd
}

// runLogs streams the logs; the client turns relative --since/--until
// into timestamps. Output of a container without a TTY is demultiplexed.
func runLogs(ctx context.Context, cli *command.Cli, ref string, o client.ContainerLogsOptions) error {
	info, err := cli.Client().ContainerInspect(ctx, ref, client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	o.ShowStdout, o.ShowStderr = true, true
	rc, err := cli.Client().ContainerLogs(ctx, info.Container.ID, o)
	if err != nil {
		return err
	}
	defer rc.Close()
	if info.Container.Config != nil && info.Container.Config.Tty {
		_, err = io.Copy(cli.Out(), rc)
	} else {
		_, err = stdcopy.StdCopy(cli.Out(), cli.Err(), rc)
	}
	return err
}
