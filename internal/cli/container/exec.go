package container

import (
	"context"
	"errors"
	"os"

	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/berth-dev/berth/internal/cli/opts"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

type execOptions struct {
	detachKeys, user, workdir            string
	interactive, tty, detach, privileged bool
	env, envFile                         opts.List
}

func newExecCommand(cli *command.Cli) *cobra.Command {
	o := execOptions{env: opts.NewList(opts.ValidateEnv)}
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  command.RequiresMinArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExec(cmd.Context(), cli, args[0], args[1:], &o)
		},
		Annotations:           map[string]string{"category-top": "2", "aliases": "berth container exec, berth exec"},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.StringVar(&o.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	f.BoolVarP(&o.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	f.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	f.BoolVarP(&o.detach, "detach", "d", false, "Detached mode: run command in the background")
	f.StringVarP(&o.user, "user", "u", "", `Username or UID (format: "<name|uid>[:<group|gid>]")`)
	f.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to the command")
	f.VarP(&o.env, "env", "e", "Set environment variables")
	f.Var(&o.envFile, "env-file", "Read in a file of environment variables")
	f.StringVarP(&o.workdir, "workdir", "w", "", "Working directory inside the container")
	return cmd
}

// execCreateOptions maps the exec flags to the exec create request.
func execCreateOptions(o *execOptions, cmdArgs []string) (*client.ExecCreateOptions, error) {
	env, err := opts.ReadKVFiles(o.envFile.Values(), o.env.Values(), os.LookupEnv)
	if err != nil {
		return nil, err
	}
	if err := validateDetachKeys(o.detachKeys); err != nil {
		return nil, err
	}
	e := &client.ExecCreateOptions{
		User: o.user, Privileged: o.privileged, TTY: o.tty, Cmd: cmdArgs, WorkingDir: o.workdir,
		Env: env, DetachKeys: o.detachKeys,
	}
	if !o.detach {
		e.AttachStdout, e.AttachStderr, e.AttachStdin = true, true, o.interactive
	}
	return e, nil
}

func runExec(ctx context.Context, cli *command.Cli, ref string, cmdArgs []string, o *execOptions) error {
	e, err := execCreateOptions(o, cmdArgs)
	if err != nil {
		return err
	}
	c := cli.Client()
	if _, err := c.ContainerInspect(ctx, ref, client.ContainerInspectOptions{}); err != nil {
		return err
	}
	if !o.detach {
		if err := cli.In().CheckTty(e.AttachStdin, e.TTY); err != nil {
			return err
		}
	}
	if e.TTY {
		h, w := cli.Out().TtySize()
		e.ConsoleSize = client.ConsoleSize{Height: h, Width: w}
	}
	res, err := c.ExecCreate(ctx, ref, *e)
	if err != nil {
		return err
	}
	if res.ID == "" {
		return errors.New("exec ID empty")
	}
	if o.detach {
		_, err := c.ExecStart(ctx, res.ID, client.ExecStartOptions{Detach: true, TTY: e.TTY, ConsoleSize: e.ConsoleSize})
		return err
	}
	att, err := c.ExecAttach(ctx, res.ID, client.ExecAttachOptions{TTY: e.TTY, ConsoleSize: e.ConsoleSize})
	if err != nil {
		return err
	}
	defer att.Close()
	s := &streamer{cli: cli, out: cli.Out(), errw: cli.Err(), resp: att.HijackedResponse, tty: e.TTY, detachKeys: e.DetachKeys}
	if e.TTY {
		s.errw = cli.Out()
	}
	if e.AttachStdin {
		s.in = cli.In()
	}
	streamErr := make(chan error, 1)
	go func() { streamErr <- s.stream(ctx) }()
	if e.TTY && cli.In().IsTerminal() {
		monitorTTYSize(ctx, cli, execResizer(c, res.ID))
	}
	if err := <-streamErr; err != nil {
		return err
	}
	ins, err := c.ExecInspect(ctx, res.ID, client.ExecInspectOptions{})
	if err != nil {
		if client.IsErrConnectionFailed(err) {
			return command.StatusError{StatusCode: -1}
		}
		return err
	}
	if ins.ExitCode != 0 {
		return command.StatusError{StatusCode: ins.ExitCode}
	}
	return nil
}
