package container

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/berth-dev/berth/internal/cli/command"
	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func newStartCommand(cli *command.Cli) *cobra.Command {
	var attach, interactive bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  command.RequiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validateDetachKeys(detachKeys); err != nil {
				return err
			}
			if !attach && !interactive {
				return startAll(cmd.Context(), cli, args)
			}
			if len(args) > 1 {
				return errors.New("you cannot start and attach multiple containers at once")
			}
			return startAttached(cmd.Context(), cli, args[0], interactive, detachKeys)
		},
		Annotations:           map[string]string{"aliases": "berth container start, berth start"},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.BoolVarP(&attach, "attach", "a", false, "Attach STDOUT/STDERR and forward signals")
	f.BoolVarP(&interactive, "interactive", "i", false, "Attach container's STDIN")
	f.StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

func startAll(ctx context.Context, cli *command.Cli, ids []string) error {
	var failed []string
	for _, id := range ids {
		if _, err := cli.Client().ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
			fmt.Fprintln(cli.Err(), command.Message(err))
			failed = append(failed, id)
			continue
		}
		fmt.Fprintln(cli.Out(), id)
	}
	if len(failed) > 0 {
		return fmt.Errorf("Error: failed to start containers: %s", strings.Join(failed, ", "))
	}
	return nil
}

// startAttached attaches to a container, then starts it, and returns its
// exit status, as "start -a" does.
func startAttached(ctx context.Context, cli *command.Cli, ref string, interactive bool, detachKeys string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c := cli.Client()
	info, err := c.ContainerInspect(ctx, ref, client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	ctr := info.Container
	if !ctr.Config.Tty {
		defer forwardSignals(ctx, c, ctr.ID)()
	}
	opts := client.ContainerAttachOptions{
		Stream: true, Stdin: interactive && ctr.Config.OpenStdin, Stdout: true, Stderr: true, DetachKeys: detachKeys,
	}
	res, err := c.ContainerAttach(ctx, ctr.ID, opts)
	if err != nil {
		return err
	}
	defer res.HijackedResponse.Close()
	s := &streamer{cli: cli, out: cli.Out(), errw: cli.Err(), resp: res.HijackedResponse, tty: ctr.Config.Tty, detachKeys: detachKeys}
	if opts.Stdin {
		s.in = cli.In()
	}
	streamErr := make(chan error, 1)
	go func() { streamErr <- s.stream(ctx) }()

	status := waitExit(ctx, c, ctr.ID, ctr.HostConfig.AutoRemove)
	if _, err := c.ContainerStart(ctx, ctr.ID, client.ContainerStartOptions{}); err != nil {
		cancel()
		<-streamErr
		if ctr.HostConfig.AutoRemove {
			<-status
		}
		return err
	}
	if ctr.Config.Tty && cli.Out().IsTerminal() {
		monitorTTYSize(ctx, cli, containerResizer(c, ctr.ID))
	}
	if err := <-streamErr; err != nil {
		if isDetach(err) {
			return nil
		}
		return err
	}
	if st := <-status; st != 0 {
		return command.StatusError{StatusCode: st}
	}
	return nil
}

func newAttachCommand(cli *command.Cli) *cobra.Command {
	var noStdin, sigProxy bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  command.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAttach(cmd.Context(), cli, args[0], noStdin, sigProxy, detachKeys)
		},
		Annotations:           map[string]string{"aliases": "berth container attach, berth attach"},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.BoolVar(&noStdin, "no-stdin", false, "Do not attach STDIN")
	f.BoolVar(&sigProxy, "sig-proxy", true, "Proxy all received signals to the process")
	f.StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

func runningContainer(ctx context.Context, c *client.Client, ref string) (*ctypes.InspectResponse, error) {
	res, err := c.ContainerInspect(ctx, ref, client.ContainerInspectOptions{})
	if err != nil {
		return nil, err
	}
	st := res.Container.State
	switch {
	case !st.Running:
		return nil, errors.New("cannot attach to a stopped container, start it first")
	case st.Paused:
		return nil, errors.New("cannot attach to a paused container, unpause it first")
	case st.Restarting:
		return nil, errors.New("cannot attach to a restarting container, wait until it is running")
	}
	return &res.Container, nil
}

func runAttach(ctx context.Context, cli *command.Cli, ref string, noStdin, sigProxy bool, detachKeys string) error {
	if err := validateDetachKeys(detachKeys); err != nil {
		return err
	}
	c := cli.Client()
	wait := c.ContainerWait(context.WithoutCancel(ctx), ref, client.ContainerWaitOptions{})
	ctr, err := runningContainer(ctx, c, ref)
	if err != nil {
		return err
	}
	if err := cli.In().CheckTty(!noStdin, ctr.Config.Tty); err != nil {
		return err
	}
	opts := client.ContainerAttachOptions{
		Stream: true, Stdin: !noStdin && ctr.Config.OpenStdin, Stdout: true, Stderr: true, DetachKeys: detachKeys,
	}
	if sigProxy && !ctr.Config.Tty {
		defer forwardSignals(ctx, c, ref)()
	}
	res, err := c.ContainerAttach(ctx, ref, opts)
	if err != nil {
		return err
	}
	defer res.HijackedResponse.Close()
	if _, err := runningContainer(ctx, c, ref); err != nil {
		return err
	}
	if ctr.Config.Tty && cli.Out().IsTerminal() {
		// Nudge the size so that the program redraws.
		h, w := cli.Out().TtySize()
		_ = containerResizer(c, ref)(ctx, h+1, w+1)
		monitorTTYSize(ctx, cli, containerResizer(c, ref))
	}
	s := &streamer{cli: cli, out: cli.Out(), errw: cli.Err(), resp: res.HijackedResponse, tty: ctr.Config.Tty, detachKeys: detachKeys}
	if opts.Stdin {
		s.in = cli.In()
	}
	if err := s.stream(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	select {
	case r := <-wait.Result:
		if r.Error != nil {
			return errors.New(r.Error.Message)
		}
		if r.StatusCode != 0 {
			return command.StatusError{StatusCode: int(r.StatusCode)}
		}
	case err := <-wait.Error:
		return err
	}
	return nil
}
