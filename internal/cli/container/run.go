package container

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

type runOptions struct {
	createOptions
	detach, sigProxy bool
	detachKeys       string
}

func newRunCommand(cli *command.Cli) *cobra.Command {
	var o runOptions
	var copts *containerOptions
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  command.RequiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			copts.image, copts.args = args[0], args[1:]
			return runRun(cmd, cli, &o, copts)
		},
		Annotations:           map[string]string{"category-top": "1", "aliases": "berth container run, berth run"},
		DisableFlagsInUseLine: true,
	}
	fs := cmd.Flags()
	fs.SetInterspersed(false)
	fs.BoolVarP(&o.detach, "detach", "d", false, "Run container in background and print container ID")
	fs.BoolVar(&o.sigProxy, "sig-proxy", true, "Proxy received signals to the process")
	fs.StringVar(&o.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	addCreateFlags(fs, &o.createOptions, "running")
	copts = addFlags(fs)
	return cmd
}

func runRun(cmd *cobra.Command, cli *command.Cli, o *runOptions, copts *containerOptions) error {
	ctx := cmd.Context()
	if _, err := cli.Client().Ping(ctx, client.PingOptions{}); err != nil {
		return err
	}
	cfg, err := parseForCreate(cmd, &o.createOptions, copts)
	if err != nil {
		return err
	}
	return runContainer(ctx, cmd, cli, o, copts, cfg)
}

// runContainer is docker's run sequence: create (pulling when needed),
// forward signals, attach before starting, wait for the exit (or the
// removal with --rm) from before the start, start, and exit with the
// container's status.
func runContainer(ctx context.Context, cmd *cobra.Command, cli *command.Cli, o *runOptions, copts *containerOptions, cfg *createConfig) error {
	config := cfg.Config
	c := cli.Client()
	if !o.detach {
		if err := cli.In().CheckTty(config.AttachStdin, config.Tty); err != nil {
			return err
		}
	} else {
		if copts.attach.Len() != 0 {
			return errors.New("conflicting options: cannot specify both --attach and --detach")
		}
		config.AttachStdin, config.AttachStdout, config.AttachStderr, config.StdinOnce = false, false, false, false
	}
	if err := validateDetachKeys(o.detachKeys); err != nil {
		return err
	}

	id, err := createContainer(ctx, cli, cfg, &o.createOptions)
	if err != nil {
		return toStatusError(cmd, err)
	}
	if o.sigProxy {
		defer forwardSignals(ctx, c, id)()
	}

	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()

	attach := config.AttachStdin || config.AttachStdout || config.AttachStderr
	var printed chan struct{}
	var streamErr chan error
	if !attach {
		printed = make(chan struct{})
		go func() {
			defer close(printed)
			fmt.Fprintln(cli.Out(), id)
		}()
	} else {
		opts := client.ContainerAttachOptions{
			Stream: true, Stdin: config.AttachStdin, Stdout: config.AttachStdout, Stderr: config.AttachStderr,
			DetachKeys: o.detachKeys,
		}
		closeFn, ch, err := attachContainer(ctx, cli, id, config.Tty, opts)
		if err != nil {
			return err
		}
		defer closeFn()
		streamErr = ch
	}

	statusCtx, cancelStatus := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelStatus()
	status := waitExit(statusCtx, c, id, copts.autoRemove)

	if _, err := c.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		if attach {
			cancel()
			<-streamErr
		}
		if copts.autoRemove {
			<-status
		}
		return toStatusError(cmd, err)
	}
	if !attach {
		<-printed
		return nil
	}
	if config.Tty && cli.Out().IsTerminal() {
		monitorTTYSize(ctx, cli, containerResizer(c, id))
	}

	select {
	case err := <-streamErr:
		if err != nil {
			if isDetach(err) {
				return nil
			}
			slog.Debug("error hijack", "error", err)
			return err
		}
		if s := <-status; s != 0 {
			return command.StatusError{StatusCode: s}
		}
	case s := <-status:
		// The output may still be draining: keep streaming unless no
		// output is attached.
		if !config.AttachStdout && !config.AttachStderr {
			cancel()
		}
		<-streamErr
		if s != 0 {
			return command.StatusError{StatusCode: s}
		}
	}
	return nil
}

// attachContainer attaches to the container and streams in the
// background; the channel receives the end of the stream.
func attachContainer(ctx context.Context, cli *command.Cli, id string, tty bool, opts client.ContainerAttachOptions) (func(), chan error, error) {
	res, err := cli.Client().ContainerAttach(ctx, id, opts)
	if err != nil {
		return nil, nil, err
	}
	s := &streamer{cli: cli, resp: res.HijackedResponse, tty: tty, detachKeys: opts.DetachKeys}
	if opts.Stdin {
		s.in = cli.In()
	}
	if opts.Stdout {
		s.out = cli.Out()
	}
	if opts.Stderr {
		s.errw = cli.Err()
		if tty {
			s.errw = cli.Out()
		}
	}
	ch := make(chan error, 1)
	go func() { ch <- s.stream(ctx) }()
	return res.HijackedResponse.Close, ch, nil
}

// toStatusError gives a failed create or start docker's exit status: 127
// when the command was not found, 126 when it cannot be executed, 125
// otherwise.
func toStatusError(cmd *cobra.Command, err error) error {
	msg := err.Error()
	code := 125
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"),
		strings.Contains(msg, "system cannot find the file specified"):
		code = 127
	case strings.Contains(msg, "permission denied"), strings.Contains(msg, "is a directory"):
		code = 126
	}
	return command.StatusError{Cause: err, Status: command.WithHelp(cmd, errors.New(command.Message(err))).Error(), StatusCode: code}
}
