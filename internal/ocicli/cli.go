// Package ocicli is the OCI runtime command line of berth-runtime (the
// create/start/state/kill/delete interface of the OCI runtime spec, plus the
// run/exec/spec/ps/features/list/pause/resume/update commands runc users
// know) on top of internal/runtime.
package ocicli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// Version is the berth-runtime version, set by the linker.
var Version = "dev"

type globalOpts struct {
	root      string
	log       string
	logFormat string
	debug     bool
	// accepted for compatibility with callers that pass runc's flags
	systemdCgroup bool
	rootless      string
}

// exitError carries a process exit code through cobra.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// Main runs the CLI and returns the process exit code.
func Main(args []string) int {
	g := &globalOpts{}
	root := &cobra.Command{
		Use:           "berth-runtime",
		Short:         "berth's OCI runtime",
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if g.systemdCgroup {
				return errors.New("--systemd-cgroup: the systemd cgroup driver is not supported; berth-runtime manages cgroupfs directly")
			}
			return g.setupLog()
		},
	}
	root.SetVersionTemplate(fmt.Sprintf("berth-runtime version %s\nspec: %s\n", Version, specVersion()))
	pf := root.PersistentFlags()
	pf.StringVar(&g.root, "root", runtime.DefaultRoot, "directory for the containers' state")
	pf.StringVar(&g.log, "log", "", "log file (default stderr)")
	pf.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	pf.BoolVar(&g.debug, "debug", false, "debug logging")
	pf.BoolVar(&g.systemdCgroup, "systemd-cgroup", false, "not supported (an error): cgroupfs is always used")
	pf.StringVar(&g.rootless, "rootless", "auto", "ignored")
	root.AddCommand(
		createCmd(g), startCmd(g), stateCmd(g), killCmd(g), deleteCmd(g), runCmd(g), execCmd(g),
		specCmd(), psCmd(g), featuresCmd(), listCmd(g), pauseCmd(g), resumeCmd(g), updateCmd(g), eventsCmd(g),
	)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	slog.Error(err.Error())
	if g.log != "" || g.logFormat == "json" {
		// The log went to a file: say it on stderr too.
		fmt.Fprintln(os.Stderr, "berth-runtime:", err)
	}
	return 1
}

func (g *globalOpts) setupLog() error {
	var w io.Writer = os.Stderr
	if g.log != "" {
		f, err := os.OpenFile(g.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return fmt.Errorf("open log: %w", err)
		}
		w = f
	}
	level := slog.LevelInfo
	if g.debug {
		level = slog.LevelDebug
	}
	ho := &slog.HandlerOptions{Level: level}
	switch g.logFormat {
	case "json":
		slog.SetDefault(slog.New(slog.NewJSONHandler(w, ho)))
	case "text":
		slog.SetDefault(slog.New(slog.NewTextHandler(w, ho)))
	default:
		return fmt.Errorf("unknown --log-format %q (text or json)", g.logFormat)
	}
	return nil
}

func (g *globalOpts) runtime() (*runtime.Runtime, error) {
	return runtime.New(g.root)
}

func (g *globalOpts) load(id string) (*runtime.Container, error) {
	rt, err := g.runtime()
	if err != nil {
		return nil, err
	}
	return rt.Load(id)
}

func ctx() context.Context { return context.Background() }
