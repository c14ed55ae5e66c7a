package container

import (
	"context"
	"io"

	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/berth-dev/berth/internal/cli/image"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func newExportCommand(cli *command.Cli) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Export a container's filesystem as a tar archive",
		Args:  command.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return image.WriteArchive(cmd.Context(), cli, output, "failed to export container", func(ctx context.Context) (io.ReadCloser, error) {
				return cli.Client().ContainerExport(ctx, args[0], client.ContainerExportOptions{})
			})
		},
		Annotations:           map[string]string{"aliases": "berth container export, berth export"},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return cmd
}
