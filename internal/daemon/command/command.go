// Package command is berthd's command line: flags like dockerd's, the
// configuration file, the listeners, and the signals (SIGTERM/SIGINT stop,
// SIGHUP reloads).
package command

import (
	"context"
	"errors"
	"fmt"
	buildrouter "github.com/berth-dev/berth/internal/api/router/build"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	containerrouter "github.com/berth-dev/berth/internal/api/router/container"
	imagerouter "github.com/berth-dev/berth/internal/api/router/image"
	networkrouter "github.com/berth-dev/berth/internal/api/router/network"
	"github.com/berth-dev/berth/internal/api/router/system"
	"github.com/berth-dev/berth/internal/api/server"
	"github.com/berth-dev/berth/internal/daemon"
	"github.com/berth-dev/berth/internal/daemon/config"
	"github.com/berth-dev/berth/internal/shim"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Main runs berthd and returns its exit code.
func Main(args []string) int {
	var configFile string
	cmd := &cobra.Command{
		Use:           "berthd [OPTIONS]",
		Short:         "berth's container engine daemon (Docker Engine API)",
		Version:       daemon.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config-file", config.DefaultConfigFile, "daemon configuration file (Docker's daemon.json keys)")
	f.StringArrayP("host", "H", nil, "daemon socket(s) to listen on (unix:///path, tcp://host:port with --tlsverify)")
	f.String("data-root", config.DefaultDataRoot, "root directory of persistent state")
	f.String("exec-root", config.DefaultExecRoot, "root directory of execution state")
	f.String("pidfile", config.DefaultPidfile, "path to the daemon's PID file")
	f.StringP("log-level", "l", "info", `log level ("debug", "info", "warn", "error")`)
	f.BoolP("debug", "D", false, "debug mode")
	f.StringP("group", "G", "berth", "group of the unix socket")
	f.Bool("tlsverify", false, "use TLS and verify the client")
	f.String("tlscacert", "", "trust certs signed only by this CA")
	f.String("tlscert", "", "path to the TLS certificate file")
	f.String("tlskey", "", "path to the TLS key file")
	f.StringArray("registry-mirror", nil, "preferred registry mirror")
	f.StringArray("insecure-registry", nil, "registry that may be reached over HTTP or unverified TLS")
	f.String("registry-certs-dir", "/etc/berth/certs.d", "directory of per-registry certificates (HOST:PORT/ca.crt, client.cert, client.key)")
	f.Int("max-concurrent-downloads", 3, "maximum concurrent layer downloads of each pull")
	f.Int("max-concurrent-uploads", 5, "maximum concurrent layer uploads of each push")
	f.StringP("bridge", "b", "", `name of the default bridge interface (default "berth0")`)
	f.String("bip", "", "address and prefix of the default bridge, e.g. 172.17.0.1/16")
	f.String("fixed-cidr", "", "range of the default bridge's container addresses")
	f.Int("mtu", 0, "MTU of the bridges and container interfaces")
	f.Bool("allow-direct-routing", false, "let other hosts reach containers' addresses by routing, not only published ports")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := load(cmd.Flags(), configFile)
		if err != nil {
			return err
		}
		return run(cmd.Context(), cfg, configFile)
	}
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "berthd:", err)
		return 1
	}
	return 0
}

// flagKeys maps berthd's flags to daemon.json keys.
var flagKeys = map[string]string{
	"host": "hosts", "data-root": "data-root", "exec-root": "exec-root", "pidfile": "pidfile",
	"log-level": "log-level", "debug": "debug", "group": "group", "tlsverify": "tlsverify",
	"tlscacert": "tlscacert", "tlscert": "tlscert", "tlskey": "tlskey",
	"registry-mirror": "registry-mirrors", "insecure-registry": "insecure-registries",
	"registry-certs-dir": "registry-certs-dir", "max-concurrent-downloads": "max-concurrent-downloads", "max-concurrent-uploads": "max-concurrent-uploads",
	"bridge": "bridge", "bip": "bip", "fixed-cidr": "fixed-cidr", "mtu": "mtu", "allow-direct-routing": "allow-direct-routing",
}

// load merges the configuration file with the flags that were set.
func load(fs *pflag.FlagSet, configFile string) (*config.Config, error) {
	file, set, err := config.Load(configFile, fs.Changed("config-file"))
	if err != nil {
		return nil, err
	}
	var flags []config.Flag
	fs.Visit(func(fl *pflag.Flag) {
		key, ok := flagKeys[fl.Name]
		if !ok {
			return
		}
		flags = append(flags, config.Flag{Key: key, Value: fl.Value.String(), Apply: applier(fs, fl.Name)})
	})
	return config.Merge(file, set, flags)
}

func applier(fs *pflag.FlagSet, name string) func(*config.Config) {
	str := func() string { v, _ := fs.GetString(name); return v }
	arr := func() []string { v, _ := fs.GetStringArray(name); return v }
	boolean := func() bool { v, _ := fs.GetBool(name); return v }
	return func(c *config.Config) {
		switch name {
		case "host":
			c.Hosts = arr()
		case "data-root":
			c.DataRoot = str()
		case "exec-root":
			c.ExecRoot = str()
		case "pidfile":
			c.Pidfile = str()
		case "log-level":
			c.LogLevel = str()
		case "debug":
			c.Debug = boolean()
		case "group":
			c.Group = str()
		case "tlsverify":
			c.TLSVerify = boolean()
		case "tlscacert":
			c.TLSCACert = str()
		case "tlscert":
			c.TLSCert = str()
		case "tlskey":
			c.TLSKey = str()
		case "registry-mirror":
			c.RegistryMirrors = arr()
		case "insecure-registry":
			c.InsecureRegistries = arr()
		case "registry-certs-dir":
			c.RegistryCertsDir = str()
		case "max-concurrent-downloads":
			c.MaxConcurrentDL, _ = fs.GetInt(name)
		case "max-concurrent-uploads":
			c.MaxConcurrentUL, _ = fs.GetInt(name)
		case "bridge":
			c.Bridge = str()
		case "bip":
			c.BIP = str()
		case "fixed-cidr":
			c.FixedCIDR = str()
		case "mtu":
			c.MTU, _ = fs.GetInt(name)
		case "allow-direct-routing":
			c.AllowDirectRouting = boolean()
		}
	}
}

func setupLog(c *config.Config) error {
	level := slog.LevelInfo
	switch strings.ToLower(c.LogLevel) {
	case "debug":
		level = slog.LevelDebug
	case "info", "":
	case "warn", "warning":
		level = slog.LevelWarn
	case "error", "fatal", "panic":
		level = slog.LevelError
	default:
		return fmt.Errorf("unable to parse logging level: %s", c.LogLevel)
	}
	if c.Debug {
		level = slog.LevelDebug
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	return nil
}

// run starts the daemon and serves until SIGTERM or SIGINT.
func run(ctx context.Context, cfg *config.Config, configFile string) error {
	if err := setupLog(cfg); err != nil {
		return err
	}
	d, err := daemon.New(cfg, daemon.Options{
		Shim:       shim.Spawn{Exe: "/proc/self/exe", Args: []string{"shim"}},
		InitBinary: initBinary(cfg.ExecRoot),
	})
	if err != nil {
		return err
	}
	defer d.Close()
	if cfg.Pidfile != "" {
		if err := os.MkdirAll(filepath.Dir(cfg.Pidfile), 0o755); err != nil {
			return fmt.Errorf("pidfile: %w", err)
		}
		if err := os.WriteFile(cfg.Pidfile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			return fmt.Errorf("pidfile: %w", err)
		}
		defer os.Remove(cfg.Pidfile)
	}
	srv := server.New(server.Options{
		MinAPIVersion: daemon.MinAPIVersion, MaxAPIVersion: daemon.MaxAPIVersion, ServerVersion: daemon.Version,
	},
		&system.Router{Backend: d, MaxAPIVersion: daemon.MaxAPIVersion, Events: d.Events, Experimental: cfg.Experimental},
		&imagerouter.Router{Backend: d.Images},
		&containerrouter.Router{Backend: d.Containers},
		&networkrouter.Router{Backend: d.Networks, Connector: d.Containers},
		&buildrouter.Router{Backend: d.Builder},
	)

	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	tlsOpts := server.TLSOptions{Verify: cfg.TLSVerify, CACert: cfg.TLSCACert, Cert: cfg.TLSCert, KeyFile: cfg.TLSKey}
	for _, h := range cfg.Hosts {
		l, err := server.Listen(h, cfg.Group, tlsOpts)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", h, err)
		}
		listeners = append(listeners, l)
	}
	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		go func(l net.Listener) { errc <- srv.Serve(l) }(l)
	}
	slog.Info("berthd is serving the API", "hosts", cfg.Hosts, "data-root", cfg.DataRoot, "version", daemon.Version)

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	for {
		select {
		case err := <-errc:
			if err != nil {
				return err
			}
		case s := <-sigs:
			if s == syscall.SIGHUP {
				reload(cfg, configFile)
				continue
			}
			slog.Info("shutting down", "signal", s)
			sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			err := srv.Shutdown(sctx)
			cancel()
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			return nil
		}
	}
}

// reload re-reads the configuration file on SIGHUP. What can change at run
// time (the log level and debug) is applied; the rest needs a restart.
func reload(cfg *config.Config, configFile string) {
	file, set, err := config.Load(configFile, false)
	if err != nil {
		slog.Error("reload: configuration not applied", "error", err)
		return
	}
	if set["log-level"] {
		cfg.LogLevel = file.LogLevel
	}
	if set["debug"] {
		cfg.Debug = file.Debug
	}
	if err := setupLog(cfg); err != nil {
		slog.Error("reload", "error", err)
		return
	}
	slog.Info("reloaded configuration", "file", configFile)
}
