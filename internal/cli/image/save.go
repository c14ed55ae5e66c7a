package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/berth-dev/berth/internal/cli/opts"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// errTerminalOutput refuses to write a tar archive to a terminal.
var errTerminalOutput = errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")

func newSaveCommand(cli *command.Cli) *cobra.Command {
	var output, platform string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
		Args:  command.RequiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var sopts []client.ImageSaveOption
			if platform != "" {
				p, err := opts.ParsePlatform(platform)
				if err != nil {
					return fmt.Errorf("invalid platform: %w", err)
				}
				sopts = append(sopts, client.ImageSaveWithPlatforms(p))
			}
			return WriteArchive(cmd.Context(), cli, output, "failed to save image", func(ctx context.Context) (io.ReadCloser, error) {
				return cli.Client().ImageSave(ctx, args, sopts...)
			})
		},
		Annotations:           map[string]string{"aliases": "berth image save, berth save"},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	f.StringVar(&platform, "platform", "", `Save only the given platform variant. Formatted as "os[/arch[/variant]]" (e.g., "linux/amd64")`)
	return cmd
}

// WriteArchive copies the archive open returns to the file path, or to
// standard output when path is empty (never a terminal). The file is
// written beside its final name and renamed into place only once the
// whole archive arrived, readable by its owner only; a failure leaves any
// existing file untouched. what prefixes errors about the path ("failed
// to save image").
func WriteArchive(ctx context.Context, cli *command.Cli, path, what string, open func(context.Context) (io.ReadCloser, error)) error {
	if path == "" {
		if cli.Out().IsTerminal() {
			return errTerminalOutput
		}
	} else if err := checkOutputPath(path); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	body, err := open(ctx)
	if err != nil {
		return err
	}
	defer body.Close()
	if path == "" {
		_, err := io.Copy(cli.Out(), body)
		return err
	}
	return atomicfile.Write(path, body, 0o600)
}

// checkOutputPath requires the output's directory to exist and the
// output not to be a directory.
func checkOutputPath(path string) error {
	dir := filepath.Dir(filepath.Clean(path))
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("invalid output path: directory %q does not exist", dir)
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("invalid output path: %q is a directory", path)
	}
	return nil
}
