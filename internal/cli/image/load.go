package image

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/berth-dev/berth/internal/cli/opts"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

type loadOptions struct {
	input, platform string
	quiet           bool
}

func newLoadCommand(cli *command.Cli) *cobra.Command {
	var o loadOptions
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load an image from a tar archive or STDIN",
		Args:  command.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runLoad(cmd.Context(), cli, o)
		},
		Annotations:           map[string]string{"aliases": "berth image load, berth load"},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.StringVarP(&o.input, "input", "i", "", "Read from tar archive file, instead of STDIN")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress the load output")
	f.StringVar(&o.platform, "platform", "", `Load only the given platform variant. Formatted as "os[/arch[/variant]]" (e.g., "linux/amd64")`)
	return cmd
}

// runLoad sends the archive to the daemon and prints its report ("Loaded
// image: …"); progress bars only on a terminal without -q.
func runLoad(ctx context.Context, cli *command.Cli, o loadOptions) error {
	var in io.Reader = cli.In()
	if o.input == "" {
		if cli.In().IsTerminal() {
			return errors.New("requested load from stdin, but stdin is empty")
		}
	} else {
		f, err := os.Open(o.input)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	var lopts []client.ImageLoadOption
	if o.quiet || !cli.Out().IsTerminal() {
		lopts = append(lopts, client.ImageLoadWithQuiet(true))
	}
	if o.platform != "" {
		p, err := opts.ParsePlatform(o.platform)
		if err != nil {
			return fmt.Errorf("invalid platform: %w", err)
		}
		lopts = append(lopts, client.ImageLoadWithPlatforms(p))
	}
	resp, err := cli.Client().ImageLoad(ctx, in, lopts...)
	if err != nil {
		return err
	}
	defer resp.Close()
	return renderStream(resp, cli.Out())
}

// renderStream displays a daemon response that is a JSON progress stream
// as such, and copies any other body as it is.
func renderStream(body io.Reader, out io.Writer) error {
	br := bufio.NewReader(body)
	for {
		b, err := br.Peek(1)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch b[0] {
		case ' ', '\t', '\r', '\n':
			_, _ = br.ReadByte()
			continue
		case '{':
			return RenderProgress(br, out)
		}
		_, err = io.Copy(out, br)
		return err
	}
}
