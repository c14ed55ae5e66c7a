package system

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/berth-dev/berth/internal/cli/format"
	"github.com/berth-dev/berth/internal/cli/inspect"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/swarm"
	apisystem "github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/security"
	"github.com/spf13/cobra"
)

type clientInfo struct {
	Debug bool
	clientVersion
	Plugins  []struct{}
	Warnings []string
}

// info is what the info template sees: the daemon's /info fields at the
// top level, as with docker.
type info struct {
	*apisystem.Info `json:",omitempty"`
	ServerErrors    []string    `json:",omitempty"`
	ClientInfo      *clientInfo `json:",omitempty"`
	ClientErrors    []string    `json:",omitempty"`
}

// NewInfoCommand returns "berth info".
func NewInfoCommand(cli *command.Cli) *cobra.Command {
	var tmplText string
	cmd := &cobra.Command{
		Use:   "info [OPTIONS]",
		Short: "Display system-wide information",
		Args:  command.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runInfo(cmd.Context(), cli, tmplText)
		},
		Annotations: map[string]string{
			"category-top": "12",
			"aliases":      "berth system info, berth info",
		},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().StringVarP(&tmplText, "format", "f", "", inspect.FormatHelp)
	return cmd
}

// NewSystemCommand returns "berth system".
func NewSystemCommand(cli *command.Cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "system",
		Short: "Manage berth",
		Args:  command.NoArgs,
		RunE:  command.ShowHelp,
	}
	cmd.AddCommand(NewInfoCommand(cli), newDiskUsageCommand(cli))
	return cmd
}

func runInfo(ctx context.Context, cli *command.Cli, tmplText string) error {
	in := info{ClientInfo: &clientInfo{clientVersion: newClientVersion(""), Debug: cli.Options.Debug, Plugins: []struct{}{}}}
	res, err := cli.Client().Info(ctx, client.InfoOptions{})
	if err != nil {
		if client.IsErrConnectionFailed(err) {
			if tmplText == "" {
				printInfo(cli, in)
			}
			return err
		}
		in.ServerErrors = append(in.ServerErrors, err.Error())
	} else {
		in.Info = &res.Info
	}
	if tmplText == "" {
		in.ClientInfo.APIVersion = cli.Client().ClientVersion()
		return printInfo(cli, in)
	}
	if tmplText == format.JSONKey {
		tmplText = format.JSONTemplate
	}
	tmpl, perr := format.Parse(tmplText)
	if perr != nil {
		return command.StatusError{StatusCode: 64, Status: perr.Error()}
	}
	if in.Info == nil {
		in.Info = &apisystem.Info{}
		for _, e := range in.ServerErrors {
			fmt.Fprintln(cli.Err(), e)
		}
	}
	err = tmpl.Execute(cli.Out(), in)
	fmt.Fprintln(cli.Out())
	return err
}

func printInfo(cli *command.Cli, in info) error {
	out := cli.Out()
	fmt.Fprintln(out, "Client:")
	c := in.ClientInfo
	nonEmpty(out, " Version:   ", c.Version)
	fmt.Fprintln(out, " Context:   ", c.Context)
	fmt.Fprintln(out, " Debug Mode:", c.Debug)
	fmt.Fprintln(out)
	fmt.Fprintln(out, "Server:")
	if in.Info != nil {
		printServerInfo(out, cli.Err(), in.Info)
	}
	for _, e := range in.ServerErrors {
		fmt.Fprintln(cli.Err(), "ERROR:", e)
	}
	if len(in.ServerErrors) > 0 {
		return errors.New("errors pretty printing info")
	}
	return nil
}

func nonEmpty(w io.Writer, label, value string) {
	if value != "" {
		fmt.Fprintln(w, label, value)
	}
}

// printServerInfo prints the daemon's information in docker's layout, so
// that scripts parsing "docker info" work unchanged.
func printServerInfo(out, errw io.Writer, i *apisystem.Info) {
	fmt.Fprintln(out, " Containers:", i.Containers)
	fmt.Fprintln(out, "  Running:", i.ContainersRunning)
	fmt.Fprintln(out, "  Paused:", i.ContainersPaused)
	fmt.Fprintln(out, "  Stopped:", i.ContainersStopped)
	fmt.Fprintln(out, " Images:", i.Images)
	nonEmpty(out, " Server Version:", i.ServerVersion)
	nonEmpty(out, " Storage Driver:", i.Driver)
	for _, p := range i.DriverStatus {
		fmt.Fprintf(out, "  %s: %s\n", p[0], p[1])
	}
	for _, p := range i.SystemStatus {
		fmt.Fprintf(out, " %s: %s\n", p[0], p[1])
	}
	nonEmpty(out, " Logging Driver:", i.LoggingDriver)
	nonEmpty(out, " Cgroup Driver:", i.CgroupDriver)
	nonEmpty(out, " Cgroup Version:", i.CgroupVersion)
	fmt.Fprintln(out, " Plugins:")
	fmt.Fprintln(out, "  Volume:", strings.Join(i.Plugins.Volume, " "))
	fmt.Fprintln(out, "  Network:", strings.Join(i.Plugins.Network, " "))
	if len(i.Plugins.Authorization) != 0 {
		fmt.Fprintln(out, "  Authorization:", strings.Join(i.Plugins.Authorization, " "))
	}
	fmt.Fprintln(out, "  Log:", strings.Join(i.Plugins.Log, " "))
	if len(i.CDISpecDirs) > 0 {
		fmt.Fprintln(out, " CDI spec directories:")
		for _, d := range i.CDISpecDirs {
			fmt.Fprintf(out, "  %s\n", d)
		}
	}
	fmt.Fprintln(out, " Swarm:", i.Swarm.LocalNodeState)
	if s := i.Swarm.LocalNodeState; s != swarm.LocalNodeStateInactive && s != swarm.LocalNodeStateLocked {
		fmt.Fprintln(out, "  NodeID:", i.Swarm.NodeID)
		if i.Swarm.Error != "" {
			fmt.Fprintln(out, "  Error:", i.Swarm.Error)
		}
		fmt.Fprintln(out, "  Is Manager:", i.Swarm.ControlAvailable)
		fmt.Fprintln(out, "  Node Address:", i.Swarm.NodeAddr)
	}
	if len(i.Runtimes) > 0 {
		names := make([]string, 0, len(i.Runtimes))
		for n := range i.Runtimes {
			names = append(names, n)
		}
		slices.Sort(names)
		fmt.Fprintln(out, " Runtimes:", strings.Join(names, " "))
		fmt.Fprintln(out, " Default Runtime:", i.DefaultRuntime)
	}
	if i.OSType == "linux" {
		fmt.Fprintln(out, " Init Binary:", i.InitBinary)
		fmt.Fprintln(out, " containerd version:", i.ContainerdCommit.ID)
		fmt.Fprintln(out, " runc version:", i.RuncCommit.ID)
		fmt.Fprintln(out, " init version:", i.InitCommit.ID)
		if opts := security.DecodeOptions(i.SecurityOptions); len(opts) != 0 {
			fmt.Fprintln(out, " Security Options:")
			for _, so := range opts {
				fmt.Fprintln(out, "  "+so.Name)
				for _, o := range so.Options {
					if o.Key == "profile" {
						fmt.Fprintln(out, "   Profile:", o.Value)
					}
				}
			}
		}
	}
	nonEmpty(out, " Kernel Version:", i.KernelVersion)
	nonEmpty(out, " Operating System:", i.OperatingSystem)
	nonEmpty(out, " OSType:", i.OSType)
	nonEmpty(out, " Architecture:", i.Architecture)
	fmt.Fprintln(out, " CPUs:", i.NCPU)
	fmt.Fprintln(out, " Total Memory:", units.BytesSize(float64(i.MemTotal)))
	nonEmpty(out, " Name:", i.Name)
	nonEmpty(out, " ID:", i.ID)
	fmt.Fprintln(out, " Docker Root Dir:", i.DockerRootDir)
	fmt.Fprintln(out, " Debug Mode:", i.Debug)
	if i.Debug {
		fmt.Fprintln(out, "  File Descriptors:", i.NFd)
		fmt.Fprintln(out, "  Goroutines:", i.NGoroutines)
		fmt.Fprintln(out, "  System Time:", i.SystemTime)
		fmt.Fprintln(out, "  EventsListeners:", i.NEventsListener)
	}
	nonEmpty(out, " HTTP Proxy:", i.HTTPProxy)
	nonEmpty(out, " HTTPS Proxy:", i.HTTPSProxy)
	nonEmpty(out, " No Proxy:", i.NoProxy)
	if len(i.Labels) > 0 {
		fmt.Fprintln(out, " Labels:")
		for _, l := range i.Labels {
			fmt.Fprintln(out, "  "+l)
		}
	}
	fmt.Fprintln(out, " Experimental:", i.ExperimentalBuild)
	if rc := i.RegistryConfig; rc != nil && (len(rc.InsecureRegistryCIDRs) > 0 || len(rc.IndexConfigs) > 0) {
		fmt.Fprintln(out, " Insecure Registries:")
		names := make([]string, 0, len(rc.IndexConfigs))
		for _, ic := range rc.IndexConfigs {
			if ic != nil && !ic.Secure {
				names = append(names, ic.Name)
			}
		}
		slices.Sort(names)
		for _, n := range names {
			fmt.Fprintln(out, "  "+n)
		}
		for _, cidr := range rc.InsecureRegistryCIDRs {
			fmt.Fprintf(out, "  %s\n", cidr)
		}
	}
	if rc := i.RegistryConfig; rc != nil && len(rc.Mirrors) > 0 {
		fmt.Fprintln(out, " Registry Mirrors:")
		for _, m := range rc.Mirrors {
			fmt.Fprintln(out, "  "+m)
		}
	}
	fmt.Fprintln(out, " Live Restore Enabled:", i.LiveRestoreEnabled)
	if i.ProductLicense != "" {
		fmt.Fprintln(out, " Product License:", i.ProductLicense)
	}
	fmt.Fprintln(out)
	for _, w := range i.Warnings {
		fmt.Fprintln(errw, w)
	}
}
