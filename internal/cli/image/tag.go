package image

import (
	"context"
	"os"
	"strings"

	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func newTagCommand(cli *command.Cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  command.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := cli.Client().ImageTag(cmd.Context(), client.ImageTagOptions{Source: args[0], Target: args[1]})
			return err
		},
		Annotations:           map[string]string{"aliases": "berth image tag, berth tag"},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().SetInterspersed(false)
	return cmd
}

func newImportCommand(cli *command.Cli) *cobra.Command {
	var changes []string
	var message, platform string
	cmd := &cobra.Command{
		Use:   "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Args:  command.RequiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := ""
			if len(args) > 1 {
				ref = args[1]
			}
			return runImport(cmd.Context(), cli, args[0], ref, client.ImageImportOptions{Message: message, Changes: changes}, platform)
		},
		Annotations:           map[string]string{"aliases": "berth image import, berth import"},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.StringArrayVarP(&changes, "change", "c", nil, "Apply Dockerfile instruction to the created image")
	f.StringVarP(&message, "message", "m", "", "Set commit message for imported image")
	f.StringVar(&platform, "platform", "", "Set platform if server is multi-platform capable")
	return cmd
}

func runImport(ctx context.Context, cli *command.Cli, src, ref string, o client.ImageImportOptions, platform string) error {
	var source client.ImageImportSource
	switch {
	case src == "-":
		source = client.ImageImportSource{Source: cli.In(), SourceName: "-"}
	case strings.HasPrefix(src, "https://"), strings.HasPrefix(src, "http://"):
		source = client.ImageImportSource{SourceName: src}
	default:
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		source = client.ImageImportSource{Source: f, SourceName: "-"}
	}
	if platform != "" {
		p, err := parsePlatform(platform)
		if err != nil {
			return err
		}
		o.Platform = p
	}
	resp, err := cli.Client().ImageImport(ctx, source, ref, o)
	if err != nil {
		return err
	}
	defer resp.Close()
	return RenderProgress(resp, cli.Out())
}
