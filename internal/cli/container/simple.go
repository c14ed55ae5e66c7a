package container

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/cli/command"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// eachContainer runs op on every container, 50 at a time like docker,
// printing each name that succeeded in argument order and joining the
// errors.
func eachContainer(ctx context.Context, cli *command.Cli, ids []string, op func(ctx context.Context, id string) error, ignore func(error) bool) error {
	results := make([]chan error, len(ids))
	sem := make(chan struct{}, 50)
	for i, id := range ids {
		results[i] = make(chan error, 1)
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i] <- op(ctx, id)
		}()
	}
	var errs []error
	for i, id := range ids {
		if err := <-results[i]; err != nil {
			if ignore == nil || !ignore(err) {
				errs = append(errs, err)
			}
			continue
		}
		fmt.Fprintln(cli.Out(), id)
	}
	return errors.Join(errs...)
}

// simpleCommand is a command over one or more containers that prints the
// ones it handled.
func simpleCommand(cli *command.Cli, use, short string, op func(c *client.Client) func(ctx context.Context, id string) error) *cobra.Command {
	name, _, _ := strings.Cut(use, " ")
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  command.RequiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(cmd.Context(), cli, args, op(cli.Client()), nil)
		},
		Annotations:           map[string]string{"aliases": "berth container " + name + ", berth " + name},
		DisableFlagsInUseLine: true,
	}
}

func newPauseCommand(cli *command.Cli) *cobra.Command {
	return simpleCommand(cli, "pause CONTAINER [CONTAINER...]", "Pause all processes within one or more containers",
		func(c *client.Client) func(context.Context, string) error {
			return func(ctx context.Context, id string) error {
				_, err := c.ContainerPause(ctx, id, client.ContainerPauseOptions{})
				return err
			}
		})
}

func newUnpauseCommand(cli *command.Cli) *cobra.Command {
	return simpleCommand(cli, "unpause CONTAINER [CONTAINER...]", "Unpause all processes within one or more containers",
		func(c *client.Client) func(context.Context, string) error {
			return func(ctx context.Context, id string) error {
				_, err := c.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{})
				return err
			}
		})
}

func newKillCommand(cli *command.Cli) *cobra.Command {
	var signal string
	cmd := simpleCommand(cli, "kill [OPTIONS] CONTAINER [CONTAINER...]", "Kill one or more running containers",
		func(c *client.Client) func(context.Context, string) error {
			return func(ctx context.Context, id string) error {
				_, err := c.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: signal})
				return err
			}
		})
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "Signal to send to the container")
	return cmd
}

// stopFlags are the flags of stop and restart; a timeout is sent only
// when given.
type stopFlags struct {
	signal  string
	timeout int
}

func (s *stopFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&s.signal, "signal", "s", "", "Signal to send to the container")
	f.IntVarP(&s.timeout, "timeout", "t", 0, "Seconds to wait before killing the container")
	f.IntVar(&s.timeout, "time", 0, "Seconds to wait before killing the container (deprecated: use --timeout)")
	_ = f.MarkDeprecated("time", "use --timeout instead")
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error {
		if cmd.Flags().Changed("time") && cmd.Flags().Changed("timeout") {
			return errors.New("conflicting options: cannot specify both --timeout and --time")
		}
		return nil
	}
}

func (s *stopFlags) timeoutPtr(cmd *cobra.Command) *int {
	if cmd.Flags().Changed("timeout") || cmd.Flags().Changed("time") {
		t := s.timeout
		return &t
	}
	return nil
}

func newStopCommand(cli *command.Cli) *cobra.Command {
	var s stopFlags
	var cmd *cobra.Command
	cmd = simpleCommand(cli, "stop [OPTIONS] CONTAINER [CONTAINER...]", "Stop one or more running containers",
		func(c *client.Client) func(context.Context, string) error {
			return func(ctx context.Context, id string) error {
				_, err := c.ContainerStop(ctx, id, client.ContainerStopOptions{Signal: s.signal, Timeout: s.timeoutPtr(cmd)})
				return err
			}
		})
	s.add(cmd)
	return cmd
}

func newRestartCommand(cli *command.Cli) *cobra.Command {
	var s stopFlags
	cmd := &cobra.Command{
		Use:   "restart [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Restart one or more containers",
		Args:  command.RequiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var errs []error
			for _, id := range args {
				_, err := cli.Client().ContainerRestart(cmd.Context(), id, client.ContainerRestartOptions{Signal: s.signal, Timeout: s.timeoutPtr(cmd)})
				if err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(cli.Out(), id)
			}
			return errors.Join(errs...)
		},
		Annotations:           map[string]string{"aliases": "berth container restart, berth restart"},
		DisableFlagsInUseLine: true,
	}
	s.add(cmd)
	return cmd
}

func newRmCommand(cli *command.Cli) *cobra.Command {
	var o client.ContainerRemoveOptions
	cmd := &cobra.Command{
		Use:   "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Remove one or more containers",
		Args:  command.RequiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.Client()
			rm := func(ctx context.Context, id string) error {
				id = strings.Trim(id, "/")
				if id == "" {
					return errors.New("container name cannot be empty")
				}
				_, err := c.ContainerRemove(ctx, id, o)
				return err
			}
			var ignore func(error) bool
			if o.Force {
				ignore = cerrdefs.IsNotFound
			}
			return eachContainer(cmd.Context(), cli, args, rm, ignore)
		},
		Annotations:           map[string]string{"aliases": "berth container rm, berth container remove, berth rm"},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.BoolVarP(&o.RemoveVolumes, "volumes", "v", false, "Remove anonymous volumes associated with the container")
	f.BoolVarP(&o.RemoveLinks, "link", "l", false, "Remove the specified link")
	f.BoolVarP(&o.Force, "force", "f", false, "Force the removal of a running container (uses SIGKILL)")
	return cmd
}

func newWaitCommand(cli *command.Cli) *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  command.RequiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var errs []error
			for _, id := range args {
				res := cli.Client().ContainerWait(cmd.Context(), id, client.ContainerWaitOptions{})
				select {
				case r := <-res.Result:
					fmt.Fprintln(cli.Out(), strconv.FormatInt(r.StatusCode, 10))
				case err := <-res.Error:
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		},
		Annotations:           map[string]string{"aliases": "berth container wait, berth wait"},
		DisableFlagsInUseLine: true,
	}
}

func newRenameCommand(cli *command.Cli) *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  command.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := cli.Client().ContainerRename(cmd.Context(), args[0], client.ContainerRenameOptions{NewName: args[1]})
			if err != nil {
				fmt.Fprintln(cli.Err(), command.Message(err))
				return fmt.Errorf("Error: failed to rename container named %s", args[0])
			}
			return nil
		},
		Annotations:           map[string]string{"aliases": "berth container rename, berth rename"},
		DisableFlagsInUseLine: true,
	}
}
