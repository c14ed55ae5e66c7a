// Package network holds the network commands: network create, ls,
// inspect, rm, prune, connect and disconnect.
package network

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/berth-dev/berth/internal/cli/inspect"
	"github.com/berth-dev/berth/internal/cli/opts"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// NewNetworkCommand returns "berth network" and its subcommands.
func NewNetworkCommand(cli *command.Cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "network",
		Short: "Manage networks",
		Args:  command.NoArgs,
		RunE:  command.ShowHelp,
	}
	cmd.AddCommand(newConnectCommand(cli), newCreateCommand(cli), newDisconnectCommand(cli),
		newInspectCommand(cli), newListCommand(cli), newPruneCommand(cli), newRemoveCommand(cli))
	return cmd
}

func newInspectCommand(cli *command.Cli) *cobra.Command {
	var tmplText string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NETWORK [NETWORK...]",
		Short: "Display detailed information on one or more networks",
		Args:  command.RequiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cli.Client()
			return inspect.Inspect(cmd.Context(), cli.Out(), args, tmplText, func(ctx context.Context, ref string) (any, []byte, error) {
				r, err := c.NetworkInspect(ctx, ref, client.NetworkInspectOptions{Verbose: verbose})
				return r.Network, r.Raw, err
			})
		},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().StringVarP(&tmplText, "format", "f", "", inspect.FormatHelp)
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "Verbose output for diagnostics")
	return cmd
}

func newRemoveCommand(cli *command.Cli) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more networks",
		Args:    command.RequiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRemove(cmd.Context(), cli, args, force)
		},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not error if the network does not exist")
	return cmd
}

// runRemove removes each network, printing its name; a failure is printed
// and the others are still removed, and the status is then 1.
func runRemove(ctx context.Context, cli *command.Cli, names []string, force bool) error {
	failed := false
	for _, name := range names {
		if _, err := cli.Client().NetworkRemove(ctx, name, client.NetworkRemoveOptions{}); err != nil {
			if force && cerrdefs.IsNotFound(err) {
				continue
			}
			fmt.Fprintln(cli.Err(), command.Message(err))
			failed = true
			continue
		}
		fmt.Fprintln(cli.Out(), name)
	}
	if failed {
		return command.StatusError{StatusCode: 1, Status: "exit status 1"}
	}
	return nil
}

const pruneWarning = "WARNING! This will remove all custom networks not used by at least one container.\n" +
	"Are you sure you want to continue?"

func newPruneCommand(cli *command.Cli) *cobra.Command {
	var force bool
	filter := opts.NewFilter()
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all unused networks",
		Args:  command.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !force && !askYes(cli, pruneWarning) {
				// docker treats a declined prompt as a cancellation: no
				// message and status 0.
				return nil
			}
			res, err := cli.Client().NetworkPrune(cmd.Context(), client.NetworkPruneOptions{Filters: filter.Value()})
			if err != nil {
				return err
			}
			if len(res.Report.NetworksDeleted) > 0 {
				fmt.Fprintf(cli.Out(), "Deleted Networks:\n%s\n\n", strings.Join(res.Report.NetworksDeleted, "\n"))
			}
			return nil
		},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().Var(&filter, "filter", `Provide filter values (e.g. "until=<timestamp>")`)
	return cmd
}

// askYes prints the question with " [y/N] " and reports whether the
// first line of input is y or Y, as docker's prompt does.
func askYes(cli *command.Cli, question string) bool {
	fmt.Fprint(cli.Out(), question+" [y/N] ")
	sc := bufio.NewScanner(cli.In())
	return sc.Scan() && strings.EqualFold(strings.TrimSpace(sc.Text()), "y")
}

func newConnectCommand(cli *command.Cli) *cobra.Command {
	var ip, ip6 string
	var aliases, linkLocal, driverOpts []string
	var gwPriority int
	links := opts.NewList(nil)
	cmd := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a container to a network",
		Args:  command.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ipam := &network.EndpointIPAMConfig{}
			var err error
			if ipam.IPv4Address, err = parseAddr(ip); err != nil {
				return err
			}
			if ipam.IPv6Address, err = parseAddr(ip6); err != nil {
				return err
			}
			for _, s := range linkLocal {
				a, err := parseAddr(s)
				if err != nil {
					return err
				}
				ipam.LinkLocalIPs = append(ipam.LinkLocalIPs, a)
			}
			dopts := map[string]string{}
			for _, o := range driverOpts {
				k, v, ok := strings.Cut(o, "=")
				if k = strings.TrimSpace(k); !ok || k == "" {
					return errors.New("invalid key/value pair format in driver options")
				}
				dopts[k] = strings.TrimSpace(v)
			}
			_, err = cli.Client().NetworkConnect(cmd.Context(), args[0], client.NetworkConnectOptions{
				Container: args[1],
				EndpointConfig: &network.EndpointSettings{
					IPAMConfig: ipam, Links: links.Values(), Aliases: aliases, DriverOpts: dopts, GwPriority: gwPriority,
				},
			})
			return err
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.StringVar(&ip, "ip", "", `IPv4 address (e.g., "172.30.100.104")`)
	f.StringVar(&ip6, "ip6", "", `IPv6 address (e.g., "2001:db8::33")`)
	f.Var(&links, "link", "Add link to another container")
	f.StringSliceVar(&aliases, "alias", []string{}, "Add network-scoped alias for the container")
	f.StringSliceVar(&linkLocal, "link-local-ip", []string{}, "Add a link-local address for the container")
	f.StringSliceVar(&driverOpts, "driver-opt", []string{}, "driver options for the network")
	f.IntVar(&gwPriority, "gw-priority", 0, "Highest gw-priority provides the default gateway. Accepts positive and negative values.")
	return cmd
}

// parseAddr parses an optional address flag; "" is no address.
func parseAddr(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("invalid IP address: %s", s)
	}
	return a, nil
}

func newDisconnectCommand(cli *command.Cli) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "disconnect [OPTIONS] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Args:  command.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := cli.Client().NetworkDisconnect(cmd.Context(), args[0],
				client.NetworkDisconnectOptions{Container: args[1], Force: force})
			return err
		},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the container to disconnect from a network")
	return cmd
}
