package image

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/berth-dev/berth/internal/cli/opts"
	"github.com/distribution/reference"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/jsonmessage"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

// PullOptions tune Pull.
type PullOptions struct {
	All      bool
	Platform string
	Quiet    bool
}

// Pull pulls ref and renders the daemon's progress on out (a terminal gets
// progress bars).
func Pull(ctx context.Context, cli *command.Cli, ref string, o PullOptions, out io.Writer) error {
	var platforms []ocispec.Platform
	if o.Platform != "" {
		p, err := opts.ParsePlatform(o.Platform)
		if err != nil {
			return err
		}
		platforms = append(platforms, p)
	}
	resp, err := cli.Client().ImagePull(ctx, ref, client.ImagePullOptions{All: o.All, Platforms: platforms})
	if err != nil {
		return err
	}
	defer resp.Close()
	if o.Quiet {
		out = io.Discard
	}
	return RenderProgress(resp, out)
}

// RenderProgress displays a JSON progress stream on out.
func RenderProgress(in io.Reader, out io.Writer) error {
	fd, isTerm := uintptr(0), false
	if o, ok := out.(*command.Out); ok {
		fd, isTerm = o.FD(), o.IsTerminal()
	}
	return jsonmessage.DisplayJSONMessagesStream(in, out, fd, isTerm, nil)
}

func newPullCommand(cli *command.Cli) *cobra.Command {
	var o PullOptions
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  command.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPull(cmd.Context(), cli, args[0], o)
		},
		Annotations:           map[string]string{"aliases": "berth image pull, berth pull"},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.BoolVarP(&o.All, "all-tags", "a", false, "Download all tagged images in the repository")
	f.BoolVarP(&o.Quiet, "quiet", "q", false, "Suppress verbose output")
	f.StringVar(&o.Platform, "platform", "", "Set platform if server is multi-platform capable")
	f.Bool("disable-content-trust", true, "Skip image verification")
	_ = f.MarkHidden("disable-content-trust")
	return cmd
}

func runPull(ctx context.Context, cli *command.Cli, remote string, o PullOptions) error {
	ref, err := reference.ParseNormalizedNamed(remote)
	switch {
	case err != nil:
		return err
	case o.All && !reference.IsNameOnly(ref):
		return errors.New("tag can't be used with --all-tags/-a")
	case !o.All && reference.IsNameOnly(ref):
		ref = reference.TagNameOnly(ref)
		if t, ok := ref.(reference.Tagged); ok && !o.Quiet {
			fmt.Fprintln(cli.Out(), "Using default tag:", t.Tag())
		}
	}
	if err := Pull(ctx, cli, reference.FamiliarString(ref), o, cli.Out()); err != nil {
		return err
	}
	fmt.Fprintln(cli.Out(), ref.String())
	return nil
}
