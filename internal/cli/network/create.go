package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/berth-dev/berth/internal/cli/opts"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

type ipamOptions struct {
	driver                      string
	subnets, ranges, gateways   []string
	auxAddresses, driverOptions *opts.Map
}

func newCreateCommand(cli *command.Cli) *cobra.Command {
	var o client.NetworkCreateOptions
	var ipv4, ipv6 bool
	driverOpts := opts.NewMap(nil)
	labels := opts.NewList(opts.ValidateLabel)
	ipam := ipamOptions{auxAddresses: opts.NewMap(nil), driverOptions: opts.NewMap(nil)}
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network",
		Args:  command.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flag("ipv4").Changed {
				o.EnableIPv4 = &ipv4
			}
			if cmd.Flag("ipv6").Changed {
				o.EnableIPv6 = &ipv6
			}
			var err error
			if o.IPAM, err = ipam.config(); err != nil {
				return err
			}
			o.Options = driverOpts.Values()
			o.Labels = labelMap(labels.Values())
			res, err := cli.Client().NetworkCreate(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			fmt.Fprintln(cli.Out(), res.ID)
			return nil
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.StringVarP(&o.Driver, "driver", "d", "bridge", "Driver to manage the Network")
	f.VarP(driverOpts, "opt", "o", "Set driver specific options")
	f.Var(&labels, "label", "Set metadata on a network")
	f.BoolVar(&o.Internal, "internal", false, "Restrict external access to the network")
	f.BoolVar(&ipv4, "ipv4", true, "Enable or disable IPv4 address assignment")
	f.BoolVar(&ipv6, "ipv6", false, "Enable or disable IPv6 address assignment")
	f.BoolVar(&o.Attachable, "attachable", false, "Enable manual container attachment")
	f.BoolVar(&o.Ingress, "ingress", false, "Create swarm routing-mesh network")
	f.StringVar(&o.Scope, "scope", "", "Control the network's scope")
	f.BoolVar(&o.ConfigOnly, "config-only", false, "Create a configuration only network")
	f.StringVar(&o.ConfigFrom, "config-from", "", "The network from which to copy the configuration")
	f.StringVar(&ipam.driver, "ipam-driver", "default", "IP Address Management Driver")
	f.StringSliceVar(&ipam.subnets, "subnet", []string{}, "Subnet in CIDR format that represents a network segment")
	f.StringSliceVar(&ipam.ranges, "ip-range", []string{}, "Allocate container ip from a sub-range")
	f.StringSliceVar(&ipam.gateways, "gateway", []string{}, "IPv4 or IPv6 Gateway for the master subnet")
	f.Var(ipam.auxAddresses, "aux-address", "Auxiliary IPv4 or IPv6 addresses used by Network driver")
	f.Var(ipam.driverOptions, "ipam-opt", "Set IPAM driver specific options")
	return cmd
}

// labelMap turns key=value labels into a map; a bare key has an empty value.
func labelMap(labels []string) map[string]string {
	m := make(map[string]string, len(labels))
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		m[k] = v
	}
	return m
}

// config groups the ranges, gateways and auxiliary addresses under the
// subnet each belongs to, with docker's checks and messages.
func (o ipamOptions) config() (*network.IPAM, error) {
	if len(o.subnets) < len(o.ranges) || len(o.subnets) < len(o.gateways) {
		return nil, errors.New("every ip-range or gateway must have a corresponding subnet")
	}
	byNet := map[string]*network.IPAMConfig{}
	var order []string
	for _, s := range o.subnets {
		for _, k := range order {
			a, err := subnetMatches(s, k)
			if err != nil {
				return nil, err
			}
			b, err := subnetMatches(k, s)
			if err != nil {
				return nil, err
			}
			if a || b {
				return nil, errors.New("multiple overlapping subnet configuration is not supported")
			}
		}
		if _, _, err := net.ParseCIDR(s); err != nil {
			return nil, fmt.Errorf("invalid subnet: %w", err)
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("invalid subnet: %w", err)
		}
		byNet[s] = &network.IPAMConfig{Subnet: p, AuxAddress: map[string]netip.Addr{}}
		order = append(order, s)
	}
	// assign finds the subnet of value and lets set store it there.
	assign := func(what, value string, set func(c *network.IPAMConfig, s string) error) error {
		match := false
		for _, s := range order {
			ok, err := subnetMatches(s, value)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if err := set(byNet[s], s); err != nil {
				return err
			}
			match = true
		}
		if !match {
			return fmt.Errorf("no matching subnet for %s %s", what, value)
		}
		return nil
	}
	for _, r := range o.ranges {
		if _, _, err := net.ParseCIDR(r); err != nil {
			return nil, err
		}
		err := assign("range", r, func(c *network.IPAMConfig, s string) error {
			if c.IPRange.IsValid() {
				return fmt.Errorf("cannot configure multiple ranges (%s, %s) on the same subnet (%s)", r, c.IPRange, s)
			}
			p, err := netip.ParsePrefix(r)
			c.IPRange = p
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	for _, g := range o.gateways {
		err := assign("gateway", g, func(c *network.IPAMConfig, s string) error {
			if c.Gateway.IsValid() {
				return fmt.Errorf("cannot configure multiple gateways (%s, %s) for the same subnet (%s)", g, c.Gateway, s)
			}
			a, err := netip.ParseAddr(g)
			c.Gateway = a
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	for name, a := range o.auxAddresses.Values() {
		err := assign("aux-address", a, func(c *network.IPAMConfig, _ string) error {
			addr, err := netip.ParseAddr(a)
			c.AuxAddress[name] = addr
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	cfg := make([]network.IPAMConfig, 0, len(order))
	for _, s := range order {
		cfg = append(cfg, *byNet[s])
	}
	return &network.IPAM{Driver: o.driver, Config: cfg, Options: o.driverOptions.Values()}, nil
}

// subnetMatches reports whether the address or prefix data lies in subnet.
func subnetMatches(subnet, data string) (bool, error) {
	_, s, err := net.ParseCIDR(subnet)
	if err != nil {
		return false, fmt.Errorf("invalid subnet: %w", err)
	}
	var ip net.IP
	if strings.Contains(data, "/") {
		if ip, _, err = net.ParseCIDR(data); err != nil {
			return false, err
		}
	} else {
		ip = net.ParseIP(data)
	}
	return s.Contains(ip), nil
}
