package container

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/berth-dev/berth/internal/cli/opts"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func newTopCommand(cli *command.Cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Args:  command.RequiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := cli.Client().ContainerTop(cmd.Context(), args[0], client.ContainerTopOptions{Arguments: args[1:]})
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cli.Out(), 20, 1, 3, ' ', 0)
			fmt.Fprintln(w, strings.Join(res.Titles, "\t"))
			for _, p := range res.Processes {
				fmt.Fprintln(w, strings.Join(p, "\t"))
			}
			return w.Flush()
		},
		Annotations:           map[string]string{"aliases": "berth container top, berth top"},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().SetInterspersed(false)
	return cmd
}

func newPortCommand(cli *command.Cli) *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  command.RequiresRangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			port := ""
			if len(args) > 1 {
				port = args[1]
			}
			return runPort(cmd.Context(), cli, args[0], port)
		},
		Annotations:           map[string]string{"aliases": "berth container port, berth port"},
		DisableFlagsInUseLine: true,
	}
}

func runPort(ctx context.Context, cli *command.Cli, ref, port string) error {
	res, err := cli.Client().ContainerInspect(ctx, ref, client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	var ports network.PortMap
	if res.Container.NetworkSettings != nil {
		ports = res.Container.NetworkSettings.Ports
	}
	var out []string
	if port != "" {
		p, err := network.ParsePort(port)
		if err != nil {
			return err
		}
		bindings := ports[p]
		if len(bindings) == 0 {
			return fmt.Errorf("no public port '%s' published for %s", port, ref)
		}
		for _, b := range bindings {
			out = append(out, net.JoinHostPort(b.HostIP.String(), b.HostPort))
		}
	} else {
		for p, bindings := range ports {
			for _, b := range bindings {
				out = append(out, fmt.Sprintf("%s -> %s", p, net.JoinHostPort(b.HostIP.String(), b.HostPort)))
			}
		}
	}
	if len(out) > 0 {
		slices.SortFunc(out, naturalCompare)
		fmt.Fprintln(cli.Out(), strings.Join(out, "\n"))
	}
	return nil
}

// naturalCompare orders strings with digit runs compared as numbers.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digits(a), digits(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if c := len(na) - len(nb); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func digits(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

func newPruneCommand(cli *command.Cli) *cobra.Command {
	var force bool
	filter := opts.NewFilter()
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  command.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !force {
				ok, err := confirm(cli, "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?")
				if err != nil {
					return err
				}
				if !ok {
					return errors.New("container prune has been cancelled")
				}
			}
			res, err := cli.Client().ContainerPrune(cmd.Context(), client.ContainerPruneOptions{Filters: filter.Value()})
			if err != nil {
				return err
			}
			var reclaimed uint64
			if len(res.Report.ContainersDeleted) > 0 {
				fmt.Fprintln(cli.Out(), "Deleted Containers:")
				for _, id := range res.Report.ContainersDeleted {
					fmt.Fprintln(cli.Out(), id)
				}
				fmt.Fprintln(cli.Out())
				reclaimed = res.Report.SpaceReclaimed
			}
			fmt.Fprintln(cli.Out(), "Total reclaimed space:", units.HumanSize(float64(reclaimed)))
			return nil
		},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().Var(&filter, "filter", `Provide filter values (e.g. "until=<timestamp>")`)
	return cmd
}

// confirm asks a yes/no question on stdout and reads the answer from
// stdin; only y or yes (any case) confirm.
func confirm(cli *command.Cli, question string) (bool, error) {
	fmt.Fprint(cli.Out(), question+" [y/N] ")
	line, err := bufio.NewReader(cli.In()).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(cli.Out())
		return false, nil
	}
	answer := strings.ToLower(strings.TrimSpace(line))
	return answer == "y" || answer == "yes", nil
}
