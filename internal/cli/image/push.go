package image

import (
	"context"
	"fmt"
	"io"

	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/berth-dev/berth/internal/cli/opts"
	"github.com/berth-dev/berth/internal/cli/registry"
	"github.com/distribution/reference"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

type pushOptions struct {
	all, quiet bool
	platform   string
}

func newPushCommand(cli *command.Cli) *cobra.Command {
	var o pushOptions
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  command.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPush(cmd.Context(), cli, args[0], o)
		},
		Annotations:           map[string]string{"aliases": "berth image push, berth push"},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.BoolVarP(&o.all, "all-tags", "a", false, "Push all tags of an image to the repository")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress verbose output")
	f.StringVar(&o.platform, "platform", "", "Push a platform-specific manifest as a single-platform image to the registry.\n"+
		"Image index won't be pushed, meaning that other manifests, including attestations won't be preserved.\n"+
		"'os[/arch[/variant]]': Explicit platform (eg. linux/amd64)")
	f.Bool("disable-content-trust", true, "Skip image signing")
	_ = f.MarkHidden("disable-content-trust")
	return cmd
}

// runPush pushes one tag, or with -a every tag of the repository, with
// the credentials stored for its registry.
func runPush(ctx context.Context, cli *command.Cli, remote string, o pushOptions) error {
	ref, err := transferRef(cli, remote, o.all, o.quiet)
	if err != nil {
		return err
	}
	req := client.ImagePushOptions{All: o.all}
	if o.platform != "" {
		p, err := opts.ParsePlatform(o.platform)
		if err != nil {
			return err
		}
		req.Platform = &p
	}
	if req.RegistryAuth, err = registry.ImageAuth(cli, ref.String()); err != nil {
		return err
	}
	resp, err := cli.Client().ImagePush(ctx, reference.FamiliarString(ref), req)
	if err != nil {
		return err
	}
	defer resp.Close()
	if !o.quiet {
		return RenderProgress(resp, cli.Out())
	}
	if err := RenderProgress(resp, io.Discard); err != nil {
		return err
	}
	fmt.Fprintln(cli.Out(), ref.String())
	return nil
}
