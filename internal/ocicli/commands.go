package ocicli

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/berth-dev/berth/internal/signals"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/specgen"
	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func specVersion() string { return specs.Version }

type createOpts struct {
	bundle, consoleSocket, pidFile string
	noPivot, noNewKeyring          bool
	preserveFds                    int
}

func (o *createOpts) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&o.bundle, "bundle", "b", ".", "path to the bundle directory")
	f.StringVar(&o.consoleSocket, "console-socket", "", "unix socket that receives the pty master of a terminal process")
	f.StringVar(&o.pidFile, "pid-file", "", "file to write the init process PID to")
	f.BoolVar(&o.noPivot, "no-pivot", false, "use MS_MOVE and chroot instead of pivot_root (for ramfs)")
	f.BoolVar(&o.noNewKeyring, "no-new-keyring", false, "accepted for compatibility")
	f.IntVar(&o.preserveFds, "preserve-fds", 0, "not supported: must be 0")
}

func (o *createOpts) runtimeOpts(stdio runtime.IO) (runtime.CreateOpts, error) {
	if o.preserveFds != 0 {
		return runtime.CreateOpts{}, errors.New("--preserve-fds is not supported")
	}
	return runtime.CreateOpts{
		IO: stdio, ConsoleSocket: o.consoleSocket, PidFile: o.pidFile, NoPivot: o.noPivot,
	}, nil
}

func stdio() runtime.IO { return runtime.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr} }

func createCmd(g *globalOpts) *cobra.Command {
	o := &createOpts{}
	cmd := &cobra.Command{
		Use:   "create [flags] CONTAINER-ID",
		Short: "create a container from a bundle; its process waits for start",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := g.runtime()
			if err != nil {
				return err
			}
			ro, err := o.runtimeOpts(stdio())
			if err != nil {
				return err
			}
			_, err = rt.Create(ctx(), args[0], o.bundle, ro)
			return err
		},
	}
	o.flags(cmd)
	return cmd
}

func startCmd(g *globalOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "start CONTAINER-ID",
		Short: "run the user process of a created container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.load(args[0])
			if err != nil {
				return err
			}
			return c.Start(ctx())
		},
	}
}

func stateCmd(g *globalOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "state CONTAINER-ID",
		Short: "print the OCI state of a container as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.load(args[0])
			if err != nil {
				return err
			}
			st, err := c.State()
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(st)
		},
	}
}

func killCmd(g *globalOpts) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "kill [flags] CONTAINER-ID [SIGNAL]",
		Short: "send a signal (default SIGTERM) to the container's init process",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			sig := unix.SIGTERM
			if len(args) == 2 {
				var err error
				if sig, err = signals.Parse(args[1]); err != nil {
					return err
				}
			}
			c, err := g.load(args[0])
			if err != nil {
				return err
			}
			return c.Kill(sig, all)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "signal every process of the container")
	return cmd
}

func deleteCmd(g *globalOpts) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "delete [flags] CONTAINER-ID",
		Short: "delete a stopped container (with --force, kill it first)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.load(args[0])
			if err != nil {
				if force && errors.Is(err, runtime.ErrNotExist) {
					return nil
				}
				return err
			}
			return c.Delete(ctx(), force)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill a running container before deleting it")
	return cmd
}

func runCmd(g *globalOpts) *cobra.Command {
	o := &createOpts{}
	var detach, keep bool
	cmd := &cobra.Command{
		Use:   "run [flags] CONTAINER-ID",
		Short: "create and start a container, and wait for it unless detached",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := g.runtime()
			if err != nil {
				return err
			}
			spec, err := runtime.LoadSpec(o.bundle)
			if err != nil {
				return err
			}
			ro, err := o.runtimeOpts(stdio())
			if err != nil {
				return err
			}
			var term *terminal
			if spec.Process.Terminal && o.consoleSocket == "" {
				if detach {
					return errors.New("a detached container with a terminal needs --console-socket")
				}
				term = newTerminal()
				ro.Console = term.attach
			}
			bundle, err := filepath.Abs(o.bundle)
			if err != nil {
				return err
			}
			c, err := rt.CreateFromSpec(ctx(), args[0], bundle, spec, ro)
			if err != nil {
				return err
			}
			if err := c.Start(ctx()); err != nil {
				_ = c.Delete(ctx(), true)
				return err
			}
			if detach {
				return nil
			}
			stop := forwardSignals(c.Pid(), term)
			status, werr := c.Wait(ctx())
			stop()
			if term != nil {
				term.close()
			}
			if !keep {
				if err := c.Delete(ctx(), true); err != nil && werr == nil {
					werr = err
				}
			}
			if werr != nil {
				return werr
			}
			if status.OOMKilled {
				fmt.Fprintln(os.Stderr, "berth-runtime: container was killed by the OOM killer")
			}
			return exitError{status.Code}
		},
	}
	o.flags(cmd)
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "return after start instead of waiting")
	cmd.Flags().BoolVar(&keep, "keep", false, "do not delete the container after it exits")
	return cmd
}

func execCmd(g *globalOpts) *cobra.Command {
	var (
		processFile, consoleSocket, pidFile, cwd, user string
		env, caps, gids                                []string
		tty, detach, noNewPrivs                        bool
	)
	cmd := &cobra.Command{
		Use:   "exec [flags] CONTAINER-ID [COMMAND [ARG...]]",
		Short: "run an extra process inside a running container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.load(args[0])
			if err != nil {
				return err
			}
			p, err := execProcess(c.Spec(), processFile, args[1:])
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("tty") {
				p.Terminal = tty
			}
			if cwd != "" {
				p.Cwd = cwd
			}
			p.Env = append(p.Env, env...)
			if user != "" {
				if err := parseUser(user, &p.User); err != nil {
					return err
				}
			}
			for _, g := range gids {
				n, err := strconv.ParseUint(g, 10, 32)
				if err != nil {
					return fmt.Errorf("invalid --additional-gids %q", g)
				}
				p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(n))
			}
			if len(caps) > 0 {
				if p.Capabilities == nil {
					p.Capabilities = &specs.LinuxCapabilities{}
				}
				pc := p.Capabilities
				pc.Bounding = append(pc.Bounding, caps...)
				pc.Effective = append(pc.Effective, caps...)
				pc.Permitted = append(pc.Permitted, caps...)
			}
			if noNewPrivs {
				p.NoNewPrivileges = true
			}
			eo := runtime.ExecOpts{IO: stdio(), ConsoleSocket: consoleSocket, PidFile: pidFile}
			var term *terminal
			if p.Terminal && consoleSocket == "" {
				if detach {
					return errors.New("a detached terminal process needs --console-socket")
				}
				term = newTerminal()
				eo.Console = term.attach
			}
			proc, err := c.Exec(ctx(), p, eo)
			if err != nil {
				return err
			}
			if detach {
				return nil
			}
			stop := forwardSignals(proc.Pid, term)
			status, err := proc.Wait(ctx())
			stop()
			if term != nil {
				term.close()
			}
			if err != nil {
				return err
			}
			return exitError{status.Code}
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.StringVarP(&processFile, "process", "p", "", "JSON file with the process (an OCI process object)")
	f.StringVar(&consoleSocket, "console-socket", "", "unix socket that receives the pty master")
	f.StringVar(&pidFile, "pid-file", "", "file to write the process PID to")
	f.StringVar(&cwd, "cwd", "", "working directory")
	f.StringVarP(&user, "user", "u", "", "UID[:GID]")
	f.StringArrayVarP(&env, "env", "e", nil, "extra environment variable KEY=VALUE")
	f.StringSliceVarP(&gids, "additional-gids", "g", nil, "extra groups")
	f.StringArrayVarP(&caps, "cap", "c", nil, "extra capability")
	f.BoolVarP(&tty, "tty", "t", false, "allocate a pseudo-TTY")
	f.BoolVarP(&detach, "detach", "d", false, "do not wait for the process")
	f.BoolVar(&noNewPrivs, "no-new-privs", false, "set no_new_privs")
	return cmd
}

// execProcess is the container's process with the given args, or the
// process read from a --process file.
func execProcess(spec *specs.Spec, file string, args []string) (*specs.Process, error) {
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		var p specs.Process
		if err := json.Unmarshal(data, &p); err != nil {
			return nil, fmt.Errorf("--process %s: %w", file, err)
		}
		return &p, nil
	}
	if len(args) == 0 {
		return nil, errors.New("exec needs a command or --process")
	}
	p := *spec.Process
	p.Args = args
	p.Terminal = false
	p.ConsoleSize = nil
	p.Env = append([]string(nil), spec.Process.Env...)
	return &p, nil
}

func parseUser(s string, u *specs.User) error {
	uid, gid, hasGid := strings.Cut(s, ":")
	n, err := strconv.ParseUint(uid, 10, 32)
	if err != nil {
		return fmt.Errorf("invalid --user %q: numeric UID[:GID] expected", s)
	}
	u.UID = uint32(n)
	if hasGid {
		n, err := strconv.ParseUint(gid, 10, 32)
		if err != nil {
			return fmt.Errorf("invalid --user %q: numeric UID[:GID] expected", s)
		}
		u.GID = uint32(n)
	}
	return nil
}

func specCmd() *cobra.Command {
	var bundle, seccompProfile string
	var rootless bool
	cmd := &cobra.Command{
		Use:   "spec",
		Short: "write a default config.json into the bundle directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			spec := specgen.Default()
			if rootless {
				toRootless(spec, os.Getuid(), os.Getgid())
			}
			switch seccompProfile {
			case "":
			case "default":
				// Docker's default profile, for this spec's capabilities.
				prof, err := seccomp.GetDefaultProfile(spec)
				if err != nil {
					return fmt.Errorf("default seccomp profile: %w", err)
				}
				spec.Linux.Seccomp = prof
			default:
				return fmt.Errorf("unknown --seccomp %q (only \"default\")", seccompProfile)
			}
			path := filepath.Join(bundle, "config.json")
			if _, err := os.Stat(path); err == nil {
				return fmt.Errorf("%s already exists; remove it first", path)
			}
			data, err := json.MarshalIndent(spec, "", "\t")
			if err != nil {
				return err
			}
			return os.WriteFile(path, append(data, '\n'), 0o644)
		},
	}
	cmd.Flags().StringVarP(&bundle, "bundle", "b", ".", "bundle directory")
	cmd.Flags().BoolVar(&rootless, "rootless", false, "a spec for a container started by an unprivileged user (user namespace)")
	cmd.Flags().StringVar(&seccompProfile, "seccomp", "", `add a seccomp profile: "default" is Docker's default profile`)
	return cmd
}

func psCmd(g *globalOpts) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "ps [flags] CONTAINER-ID [ps OPTIONS]",
		Short: "list the processes of a container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.load(args[0])
			if err != nil {
				return err
			}
			pids, err := c.Processes()
			if err != nil {
				return err
			}
			switch format {
			case "json":
				if pids == nil {
					pids = []int{}
				}
				return json.NewEncoder(cmd.OutOrStdout()).Encode(pids)
			case "table":
				return psTable(cmd.OutOrStdout(), pids, args[1:])
			}
			return fmt.Errorf("unknown --format %q (table or json)", format)
		},
	}
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	return cmd
}

// psTable runs the host's ps with the given options and keeps the header and
// the lines of the container's processes.
func psTable(w io.Writer, pids []int, psArgs []string) error {
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	out, err := exec.Command("ps", psArgs...).Output()
	if err != nil {
		return fmt.Errorf("ps %s: %w", strings.Join(psArgs, " "), err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	col := -1
	for i, h := range strings.Fields(lines[0]) {
		if h == "PID" {
			col = i
		}
	}
	if col < 0 {
		return errors.New("ps output has no PID column")
	}
	in := map[string]bool{}
	for _, p := range pids {
		in[strconv.Itoa(p)] = true
	}
	fmt.Fprintln(w, lines[0])
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) > col && in[f[col]] {
			fmt.Fprintln(w, l)
		}
	}
	return nil
}

func listCmd(g *globalOpts) *cobra.Command {
	var format string
	var quiet bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "list containers",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := g.runtime()
			if err != nil {
				return err
			}
			cs, err := rt.List()
			if err != nil {
				return err
			}
			states := []*specs.State{}
			for _, c := range cs {
				if st, err := c.State(); err == nil {
					states = append(states, st)
				}
			}
			w := cmd.OutOrStdout()
			switch {
			case quiet:
				for _, s := range states {
					fmt.Fprintln(w, s.ID)
				}
			case format == "json":
				return json.NewEncoder(w).Encode(states)
			case format == "table":
				tw := tabwriter.NewWriter(w, 12, 1, 3, ' ', 0)
				fmt.Fprintln(tw, "ID\tPID\tSTATUS\tBUNDLE")
				for _, s := range states {
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle)
				}
				return tw.Flush()
			default:
				return fmt.Errorf("unknown --format %q (table or json)", format)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only IDs")
	return cmd
}

func pauseCmd(g *globalOpts) *cobra.Command {
	return &cobra.Command{
		Use: "pause CONTAINER-ID", Short: "freeze every process of a container", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.load(args[0])
			if err != nil {
				return err
			}
			return c.Pause()
		},
	}
}

func resumeCmd(g *globalOpts) *cobra.Command {
	return &cobra.Command{
		Use: "resume CONTAINER-ID", Short: "thaw a paused container", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.load(args[0])
			if err != nil {
				return err
			}
			return c.Resume()
		},
	}
}

func updateCmd(g *globalOpts) *cobra.Command {
	var resources string
	cmd := &cobra.Command{
		Use:   "update -r FILE CONTAINER-ID",
		Short: "change the resource limits of a container (OCI linux.resources JSON, - for stdin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in io.Reader = os.Stdin
			if resources != "-" {
				f, err := os.Open(resources)
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			var r specs.LinuxResources
			if err := json.NewDecoder(in).Decode(&r); err != nil {
				return fmt.Errorf("resources: %w", err)
			}
			c, err := g.load(args[0])
			if err != nil {
				return err
			}
			return c.Update(&r)
		},
	}
	cmd.Flags().StringVarP(&resources, "resources", "r", "-", "file with linux.resources JSON")
	return cmd
}

func featuresCmd() *cobra.Command {
	return &cobra.Command{
		Use: "features", Short: "print the features this runtime implements (JSON)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "    ")
			return enc.Encode(runtimeFeatures())
		},
	}
}

func runtimeFeatures() *features.Features {
	yes, no := true, false
	nsNames := []string{"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"}
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions: []string{
			"async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "mand", "noatime",
			"nodev", "nodiratime", "noexec", "nomand", "norelatime", "nostrictatime", "nosuid", "private",
			"rbind", "relatime", "remount", "ro", "rprivate", "rshared", "rslave", "runbindable", "rw",
			"shared", "slave", "strictatime", "suid", "sync", "unbindable",
		},
		Linux: &features.Linux{
			Namespaces:   nsNames,
			Capabilities: runtime.KnownCapabilities(),
			Cgroup:       &features.Cgroup{V1: &yes, V2: &yes, Systemd: &no, SystemdUser: &no},
			Seccomp: &features.Seccomp{
				Enabled:        &yes,
				Actions:        []string{"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"},
				Operators:      []string{"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"},
				Archs:          []string{"SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"},
				KnownFlags:     []string{"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"},
				SupportedFlags: []string{"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"},
			},
			Apparmor: &features.Apparmor{Enabled: &no},
			Selinux:  &features.Selinux{Enabled: &no},
		},
	}
}

func eventsCmd(g *globalOpts) *cobra.Command {
	var stats bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "events [flags] CONTAINER-ID",
		Short: "print resource usage of a container as JSON (once with --stats, else every --interval)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.load(args[0])
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			for {
				s, err := c.Stats()
				if err != nil {
					return err
				}
				if err := enc.Encode(map[string]any{"type": "stats", "id": args[0], "data": s}); err != nil {
					return err
				}
				if stats {
					return nil
				}
				time.Sleep(interval)
				if st, err := c.State(); err != nil || st.Status == specs.StateStopped {
					return err
				}
			}
		},
	}
	cmd.Flags().BoolVar(&stats, "stats", false, "print the statistics once and exit")
	cmd.Flags().DurationVar(&interval, "interval", 5*time.Second, "interval between statistics")
	return cmd
}
