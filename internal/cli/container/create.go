package container

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/berth-dev/berth/internal/cli/image"
	"github.com/berth-dev/berth/internal/cli/opts"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Pull policies of create and run.
const (
	pullAlways  = "always"
	pullMissing = "missing"
	pullNever   = "never"
)

// createOptions are the create flags that are not container settings.
type createOptions struct {
	name, platform, pull string
	quiet                bool
}

func addCreateFlags(fs *pflag.FlagSet, o *createOptions, verb string) {
	fs.StringVar(&o.name, "name", "", "Assign a name to the container")
	fs.StringVar(&o.pull, "pull", pullMissing, `Pull image before `+verb+` ("always", "missing", "never")`)
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress the pull output")
	// -h is --hostname here, so help has no shorthand.
	fs.Bool("help", false, "Print usage")
	fs.StringVar(&o.platform, "platform", os.Getenv("BERTH_DEFAULT_PLATFORM"), "Set platform if server is multi-platform capable")
	fs.Bool("disable-content-trust", true, "Skip image verification")
	_ = fs.MarkHidden("disable-content-trust")
}

func newCreateCommand(cli *command.Cli) *cobra.Command {
	var o createOptions
	var copts *containerOptions
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  command.RequiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			copts.image, copts.args = args[0], args[1:]
			return runCreate(cmd, cli, &o, copts)
		},
		Annotations:           map[string]string{"aliases": "berth container create, berth create"},
		DisableFlagsInUseLine: true,
	}
	fs := cmd.Flags()
	fs.SetInterspersed(false)
	addCreateFlags(fs, &o, "creating")
	copts = addFlags(fs)
	return cmd
}

// parseForCreate validates the pull policy and maps the flags; failures
// exit 125 with a pointer to --help.
func parseForCreate(cmd *cobra.Command, o *createOptions, copts *containerOptions) (*createConfig, error) {
	if err := validatePull(o.pull); err != nil {
		return nil, command.StatusError{Status: command.WithHelp(cmd, err).Error(), StatusCode: 125}
	}
	cfg, err := parse(cmd.Flags(), copts)
	if err != nil {
		return nil, command.StatusError{Cause: err, Status: command.WithHelp(cmd, err).Error(), StatusCode: 125}
	}
	return cfg, nil
}

func runCreate(cmd *cobra.Command, cli *command.Cli, o *createOptions, copts *containerOptions) error {
	ctx := cmd.Context()
	if _, err := cli.Client().Ping(ctx, client.PingOptions{}); err != nil {
		return err
	}
	cfg, err := parseForCreate(cmd, o, copts)
	if err != nil {
		return err
	}
	id, err := createContainer(ctx, cli, cfg, o)
	if err != nil {
		return err
	}
	fmt.Fprintln(cli.Out(), id)
	return nil
}

func validatePull(v string) error {
	switch v {
	case pullAlways, pullMissing, pullNever, "":
		return nil
	}
	return fmt.Errorf("invalid pull option: '%s': must be one of %q, %q or %q", v, pullAlways, pullMissing, pullNever)
}

// cidFile is --cidfile: created before the container, removed again when
// no ID was written.
type cidFile struct {
	path    string
	f       *os.File
	written bool
}

func newCIDFile(path string) (*cidFile, error) {
	if path == "" {
		return &cidFile{}, nil
	}
	if _, err := os.Stat(path); err == nil {
		return nil, errors.New("container ID file found, make sure the other container isn't running or delete " + path)
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("failed to create the container ID file: %w", err)
	}
	return &cidFile{path: path, f: f}, nil
}

func (c *cidFile) Write(id string) error {
	if c.f == nil {
		return nil
	}
	if _, err := c.f.WriteString(id); err != nil {
		return fmt.Errorf("failed to write the container ID (%s) to file: %w", id, err)
	}
	c.written = true
	return nil
}

func (c *cidFile) Close() {
	if c.f == nil {
		return
	}
	_ = c.f.Close()
	if !c.written {
		_ = os.Remove(c.path)
	}
}

// createContainer creates the container, pulling the image first with
// --pull=always, or when the daemon does not have it with --pull=missing.
// Warnings go to stderr; the ID goes to the --cidfile.
func createContainer(ctx context.Context, cli *command.Cli, cfg *createConfig, o *createOptions) (string, error) {
	var platform *ocispec.Platform
	if o.platform != "" {
		p, err := opts.ParsePlatform(o.platform)
		if err != nil {
			return "", fmt.Errorf("error parsing specified platform: %w", err)
		}
		platform = &p
	}
	cid, err := newCIDFile(cfg.HostConfig.ContainerIDFile)
	if err != nil {
		return "", err
	}
	defer cid.Close()

	ref, err := reference.ParseAnyReference(cfg.Config.Image)
	if err != nil {
		return "", err
	}
	var named reference.Named
	if n, ok := ref.(reference.Named); ok {
		named = reference.TagNameOnly(n)
	}
	pull := func() error {
		return image.Pull(ctx, cli, cfg.Config.Image, image.PullOptions{Platform: o.platform, Quiet: o.quiet}, cli.Err())
	}
	if o.pull == pullAlways {
		if err := pull(); err != nil {
			return "", err
		}
	}
	cfg.HostConfig.ConsoleSize[0], cfg.HostConfig.ConsoleSize[1] = cli.Out().TtySize()
	req := client.ContainerCreateOptions{
		Name: o.name, Platform: platform,
		Config: cfg.Config, HostConfig: cfg.HostConfig, NetworkingConfig: cfg.NetworkingConfig,
	}
	res, err := cli.Client().ContainerCreate(ctx, req)
	if err != nil {
		if !cerrdefs.IsNotFound(err) || named == nil || o.pull != pullMissing {
			return "", err
		}
		if !o.quiet {
			fmt.Fprintf(cli.Err(), "Unable to find image '%s' locally\n", reference.FamiliarString(named))
		}
		if err := pull(); err != nil {
			return "", err
		}
		if res, err = cli.Client().ContainerCreate(ctx, req); err != nil {
			return "", err
		}
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(cli.Err(), "WARNING:", w)
	}
	return res.ID, cid.Write(res.ID)
}
