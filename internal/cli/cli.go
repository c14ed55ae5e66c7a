// Package cli is berth's command line: a Docker-compatible client of the
// Engine API built on cobra. Main is the whole program; cmd/berth calls it.
package cli

import (
	"context"
	"errors"
	"fmt"
	"github.com/berth-dev/berth/internal/cli/build"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/berth-dev/berth/internal/cli/container"
	"github.com/berth-dev/berth/internal/cli/image"
	"github.com/berth-dev/berth/internal/cli/inspect"
	"github.com/berth-dev/berth/internal/cli/network"
	clopts "github.com/berth-dev/berth/internal/cli/opts"
	"github.com/berth-dev/berth/internal/cli/registry"
	"github.com/berth-dev/berth/internal/cli/system"
	"github.com/spf13/cobra"
)

// Main runs the CLI with the process's standard streams and returns the
// exit status.
func Main(args []string) int {
	return Run(context.Background(), args, os.Stdin, os.Stdout, os.Stderr)
}

// signalError is the cause of a context cancelled by SIGINT or SIGTERM.
type signalError struct{ sig syscall.Signal }

func (signalError) Error() string { return "" }

// Run runs the CLI on the given streams.
func Run(ctx context.Context, args []string, in io.ReadCloser, out, errw io.Writer) int {
	ctx, stop := notifyContext(ctx)
	defer stop()

	cli := command.New(in, out, errw)
	defer cli.Close()
	root := NewRootCommand(cli)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var se signalError
	if errors.As(context.Cause(ctx), &se) {
		return 128 + int(se.sig)
	}
	if msg := command.Message(err); msg != "" {
		fmt.Fprintln(errw, msg)
	}
	return ExitCode(err)
}

// ExitCode maps a command's error to the process exit status.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var se command.StatusError
	if errors.As(err, &se) && se.StatusCode != 0 {
		return se.StatusCode
	}
	return 1
}

func notifyContext(ctx context.Context) (context.Context, func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-ctx.Done():
		case sig := <-ch:
			cancel(signalError{sig: sig.(syscall.Signal)})
		}
		signal.Stop(ch)
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel(nil)
	}
}

// NewRootCommand builds the berth command tree on cli.
func NewRootCommand(cli *command.Cli) *cobra.Command {
	opts := &cli.Options
	hosts := clopts.NewList(nil)
	root := &cobra.Command{
		Use:              "berth [OPTIONS] COMMAND [ARG...]",
		Short:            "A self-sufficient runtime for containers",
		SilenceUsage:     true,
		SilenceErrors:    true,
		TraverseChildren: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				cmd.SetOut(cli.Err())
				return cmd.Help()
			}
			return fmt.Errorf("berth: unknown command: berth %s\n\nRun 'berth --help' for more information", args[0])
		},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			opts.Hosts = hosts.Values()
			if err := setupLogging(cli.Err(), opts); err != nil {
				return err
			}
			return cli.Initialize(cmd.Flags().Changed)
		},
		Version:               fmt.Sprintf("%s, build %s", command.Version, command.GitCommit),
		DisableFlagsInUseLine: true,
		CompletionOptions:     cobra.CompletionOptions{HiddenDefaultCmd: true},
	}
	root.SetIn(cli.In())
	root.SetOut(cli.Out())
	root.SetErr(cli.Err())
	root.SetVersionTemplate("berth version {{.Version}}\n")
	setupUsage(root)

	f := root.PersistentFlags()
	f.BoolP("help", "h", false, "Print usage")
	_ = f.MarkShorthandDeprecated("help", "use --help")
	f.Lookup("help").Hidden = true

	g := root.Flags()
	g.StringVar(&opts.ConfigDir, "config", command.DefaultConfigDir(), "Location of client config files")
	g.BoolVarP(&opts.Debug, "debug", "D", false, "Enable debug mode")
	g.StringVarP(&opts.LogLevel, "log-level", "l", "info", `Set the logging level ("debug", "info", "warn", "error", "fatal")`)
	g.BoolVar(&opts.TLS, "tls", false, "Use TLS; implied by --tlsverify")
	g.BoolVar(&opts.TLSVerify, "tlsverify", os.Getenv(command.EnvTLSVerify) != "", "Use TLS and verify the remote")
	g.StringVar(&opts.CACert, "tlscacert", "", "Trust certs signed only by this CA")
	g.StringVar(&opts.Cert, "tlscert", "", "Path to TLS certificate file")
	g.StringVar(&opts.Key, "tlskey", "", "Path to TLS key file")
	g.VarP(&hosts, "host", "H", "Daemon socket to connect to")
	g.BoolP("version", "v", false, "Print version information and quit")

	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return command.FlagError(cmd, err)
	})

	root.AddCommand(
		container.NewContainerCommand(cli),
		image.NewImageCommand(cli),
		system.NewSystemCommand(cli),
		system.NewVersionCommand(cli),
		system.NewInfoCommand(cli),
		inspect.NewInspectCommand(cli),
		network.NewNetworkCommand(cli),
		build.NewBuildCommand(cli),
		registry.NewLoginCommand(cli),
		registry.NewLogoutCommand(cli),
	)
	container.AddShortcuts(root, cli)
	image.AddShortcuts(root, cli)
	return root
}

func setupLogging(w io.Writer, opts *command.ClientOptions) error {
	name := strings.ToLower(opts.LogLevel)
	switch name {
	case "fatal", "panic":
		name = "error"
	case "warning":
		name = "warn"
	case "trace":
		name = "debug"
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(name)); err != nil {
		return fmt.Errorf("Unable to parse logging level: %s", opts.LogLevel)
	}
	if opts.Debug {
		level = slog.LevelDebug
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})))
	return nil
}
