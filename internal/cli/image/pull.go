package image

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/berth-dev/berth/internal/cli/opts"
	"github.com/berth-dev/berth/internal/cli/registry"
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

// Pull pulls ref with the credentials stored for its registry and renders
// the daemon's progress on out (a terminal gets progress bars).
func Pull(ctx context.Context, cli *command.Cli, ref string, o PullOptions, out io.Writer) error {
	var platforms []ocispec.Platform
	if o.Platform != "" {
		p, err := opts.ParsePlatform(o.Platform)
		if err != nil {
			return err
		}
		platforms = append(platforms, p)
	}
	auth, err := registry.ImageAuth(cli, ref)
	if err != nil {
		return err
	}
	resp, err := cli.Client().ImagePull(ctx, ref, client.ImagePullOptions{All: o.All, Platforms: platforms, RegistryAuth: auth})
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

// transferRef parses the reference of a pull or push: with -a it must
// name a repository only, without it gets the default tag, announced
// unless quiet.
func transferRef(cli *command.Cli, remote string, all, quiet bool) (reference.Named, error) {
	ref, err := reference.ParseNormalizedNamed(remote)
	switch {
	case err != nil:
		return nil, err
	case all && !reference.IsNameOnly(ref):
		return nil, errors.New("tag can't be used with --all-tags/-a")
	case !all && reference.IsNameOnly(ref):
		ref = reference.TagNameOnly(ref)
		if t, ok := ref.(reference.Tagged); ok && !quiet {
			fmt.Fprintln(cli.Out(), "Using default tag:", t.Tag())
		}
	}
	return ref, nil
}

func runPull(ctx context.Context, cli *command.Cli, remote string, o PullOptions) error {
	ref, err := transferRef(cli, remote, o.All, o.Quiet)
	if err != nil {
		return err
	}
	if err := Pull(ctx, cli, reference.FamiliarString(ref), o, cli.Out()); err != nil {
		return err
	}
	fmt.Fprintln(cli.Out(), ref.String())
	return nil
}
