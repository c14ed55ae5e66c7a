// Package daemon is berthd's composition root: it owns the data root and
// builds the services behind the API routers' backends.
package daemon

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/builder"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/daemon/config"
	"github.com/berth-dev/berth/internal/daemon/containers"
	"github.com/berth-dev/berth/internal/daemon/images"
	"github.com/berth-dev/berth/internal/daemon/networks"
	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/events"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/layer"
	"github.com/berth-dev/berth/internal/network/firewall"
	"github.com/berth-dev/berth/internal/network/ipam"
	"github.com/berth-dev/berth/internal/oci"
	"github.com/berth-dev/berth/internal/shim"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
	"golang.org/x/sys/unix"
)

// Version of berth, set by the linker.
var Version = "dev"

// API versions served: the docker CLI and the moby client negotiate down to
// the maximum; 1.40 is the oldest client moby's client supports.
const (
	MinAPIVersion = "1.40"
	MaxAPIVersion = "1.56"
)

// Daemon is one berthd instance on one data root.
type Daemon struct {
	cfg     *config.Config
	lock    *os.File
	id      string
	started time.Time

	// Images and Containers are the two services behind the API; Events
	// carries what happens to them.
	Images     *images.Service
	Containers *containers.Service
	Networks   *networks.Service
	Events     *events.Bus
	Builder    *builder.Builder
	// Distribution is the registry client behind pulls, pushes, logins
	// and searches.
	Distribution *distribution.Service
}

// Options are what the process running the daemon supplies.
type Options struct {
	// Shim starts a container monitor: berthd runs its own binary.
	Shim shim.Spawn
	// InitBinary returns the --init reaper's host path.
	InitBinary func() (string, error)
}

// New opens (creating it if needed) the data root and takes its lock: one
// daemon per data root.
func New(cfg *config.Config, opts Options) (*Daemon, error) {
	for _, dir := range []string{cfg.DataRoot, cfg.ExecRoot} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
	}
	lock, err := os.OpenFile(filepath.Join(cfg.DataRoot, "berthd.lock"), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("data root %s is in use by another berthd (lock %s): %w", cfg.DataRoot, lock.Name(), err)
	}
	id, err := engineID(filepath.Join(cfg.DataRoot, "engine-id"))
	if err != nil {
		lock.Close()
		return nil, err
	}
	d := &Daemon{cfg: cfg, lock: lock, id: id, started: time.Now()}
	if err := d.openServices(opts); err != nil {
		lock.Close()
		return nil, err
	}
	return d, nil
}

// openServices opens the stores in Docker's layout under the data root
// and builds the image and container services on them.
func (d *Daemon) openServices(opts Options) error {
	root := d.cfg.DataRoot
	imgs, refs, err := image.New(filepath.Join(root, "image", "overlay2"))
	if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	layers, err := layer.New(filepath.Join(root, "overlay2"))
	if err != nil {
		return fmt.Errorf("layer store: %w", err)
	}
	cstore, err := container.NewStore(filepath.Join(root, "containers"))
	if err != nil {
		return fmt.Errorf("container store: %w", err)
	}
	for _, p := range cstore.Problems() {
		slog.Warn("container store", "problem", p)
	}
	// Archives being loaded; what a crash left there is removed.
	tmp := filepath.Join(root, "tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("temporary directory: %w", err)
	}
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return fmt.Errorf("temporary directory: %w", err)
	}
	regs, err := distribution.NewRegistries(distribution.Config{
		Mirrors: d.cfg.RegistryMirrors, Insecure: d.cfg.InsecureRegistries, CertsDir: d.cfg.RegistryCertsDir,
	})
	if err != nil {
		return err
	}
	d.Distribution, err = distribution.New(distribution.Options{
		Root: filepath.Join(root, "image", "overlay2", "distribution"), Registries: regs, Layers: layers,
		MaxDownloads: d.cfg.MaxConcurrentDL, MaxUploads: d.cfg.MaxConcurrentUL,
	})
	if err != nil {
		return fmt.Errorf("distribution: %w", err)
	}
	if d.Images, err = images.New(images.Config{Images: imgs, Refs: refs, Layers: layers, TmpDir: tmp, Distribution: d.Distribution}); err != nil {
		return err
	}
	d.Distribution.Recover(d.Images.HasTopLayer)
	d.Events = events.New()
	if d.Networks, err = d.openNetworks(); err != nil {
		return fmt.Errorf("networks: %w", err)
	}
	d.Containers, err = containers.New(containers.Config{
		Events: d.Events, Networks: d.Networks,
		Store: cstore, Images: d.Images, Commits: d.Images, Layers: layers, ExecRoot: d.cfg.ExecRoot,
		Shim: opts.Shim, InitBinary: opts.InitBinary, HostCapabilities: oci.HostCapabilities(),
	})
	if err != nil {
		return err
	}
	d.Images.SetUsage(d.Containers)
	d.Images.SetEvents(d.Events)
	d.Builder, err = builder.New(builder.Config{
		Root: filepath.Join(root, "builder"), Images: d.Images, Layers: layers,
		Runner: buildRunner{d.Containers}, Puller: d.Images,
	})
	if err != nil {
		return fmt.Errorf("builder: %w", err)
	}
	d.Containers.Restore(context.Background())
	return nil
}

// openNetworks builds the network service from the configuration: the
// default bridge from --bip/--fixed-cidr/--mtu and the address pools.
func (d *Daemon) openNetworks() (*networks.Service, error) {
	// Several daemons on one host (tests, the two "hosts" of the
	// cross-host scenario) each own their bridge and their table.
	bridge, table := networks.DefaultBridgeIf, firewall.DefaultTable
	if d.cfg.Bridge != "" && d.cfg.Bridge != bridge {
		bridge, table = d.cfg.Bridge, firewall.DefaultTable+"_"+d.cfg.Bridge
	}
	fw, err := firewall.New(table)
	if err != nil {
		return nil, err
	}
	cfg := networks.Config{
		Root: filepath.Join(d.cfg.DataRoot, "network"), NetnsDir: filepath.Join(d.cfg.ExecRoot, "netns"),
		Firewall: fw, MTU: d.cfg.MTU, DefaultBridge: bridge, AllowDirectRouting: d.cfg.AllowDirectRouting,
	}
	if d.cfg.BIP != "" {
		if cfg.Bip, err = netip.ParsePrefix(d.cfg.BIP); err != nil {
			return nil, fmt.Errorf("bip: %w", err)
		}
	}
	if d.cfg.FixedCIDR != "" {
		if cfg.FixedCIDR, err = netip.ParsePrefix(d.cfg.FixedCIDR); err != nil {
			return nil, fmt.Errorf("fixed-cidr: %w", err)
		}
	}
	for _, p := range d.cfg.DefaultAddressPools {
		base, err := netip.ParsePrefix(p.Base)
		if err != nil {
			return nil, fmt.Errorf("default-address-pools: %w", err)
		}
		cfg.Pools = append(cfg.Pools, ipam.AddressPool{Base: base, Size: p.Size})
	}
	return networks.New(cfg)
}

// Close stops the daemon's side of the services (containers keep running
// under their monitors) and releases the data root.
func (d *Daemon) Close() error {
	if d.Containers != nil {
		d.Containers.Shutdown()
	}
	if d.Networks != nil {
		d.Networks.Shutdown()
	}
	return d.lock.Close()
}

// engineID reads the daemon's persistent ID, creating it on first start.
func engineID(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(data))) > 0 {
		return strings.TrimSpace(string(data)), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	id := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
	if err := atomicfile.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write engine ID: %w", err)
	}
	return id, nil
}

// SystemVersion answers GET /version.
func (d *Daemon) SystemVersion(context.Context) (*system.VersionResponse, error) {
	return &system.VersionResponse{
		Platform:      system.PlatformInfo{Name: "berth"},
		Version:       Version,
		APIVersion:    MaxAPIVersion,
		MinAPIVersion: MinAPIVersion,
		Os:            goruntime.GOOS,
		Arch:          goruntime.GOARCH,
		GoVersion:     goruntime.Version(),
		KernelVersion: kernelVersion(),
		Experimental:  d.cfg.Experimental,
		Components: []system.ComponentVersion{
			{Name: "Engine", Version: Version, Details: map[string]string{
				"ApiVersion": MaxAPIVersion, "MinAPIVersion": MinAPIVersion, "Os": goruntime.GOOS, "Arch": goruntime.GOARCH,
				"GoVersion": goruntime.Version(), "KernelVersion": kernelVersion(),
			}},
			{Name: "berth-runtime", Version: Version, Details: map[string]string{"GitCommit": ""}},
		},
	}, nil
}

// AuthenticateToRegistry answers POST /auth: the credentials are checked
// against the registry, not stored.
func (d *Daemon) AuthenticateToRegistry(ctx context.Context, ac *registry.AuthConfig) (string, error) {
	return d.Distribution.Registries().Login(ctx, *ac)
}

// SystemInfo answers GET /info.
func (d *Daemon) SystemInfo(context.Context) (*system.Info, error) {
	var si unix.Sysinfo_t
	_ = unix.Sysinfo(&si)
	hostname, _ := os.Hostname()
	cgroupVersion := "1"
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		cgroupVersion = "2"
	}
	total, running, paused, stopped := d.Containers.Counts()
	return &system.Info{
		ID:                 d.id,
		Containers:         total,
		ContainersRunning:  running,
		ContainersPaused:   paused,
		ContainersStopped:  stopped,
		Images:             d.Images.Count(),
		Driver:             "overlay2",
		DriverStatus:       [][2]string{{"Backing Filesystem", backingFS(d.cfg.DataRoot)}},
		MemoryLimit:        true,
		SwapLimit:          true,
		CPUCfsPeriod:       true,
		CPUCfsQuota:        true,
		CPUShares:          true,
		CPUSet:             true,
		PidsLimit:          true,
		OomKillDisable:     cgroupVersion == "1",
		IPv4Forwarding:     readTrim("/proc/sys/net/ipv4/ip_forward") == "1",
		Debug:              d.cfg.Debug,
		NGoroutines:        goruntime.NumGoroutine(),
		SystemTime:         time.Now().Format(time.RFC3339Nano),
		LoggingDriver:      "json-file",
		CgroupDriver:       "cgroupfs",
		CgroupVersion:      cgroupVersion,
		KernelVersion:      kernelVersion(),
		OperatingSystem:    osRelease("PRETTY_NAME"),
		OSVersion:          osRelease("VERSION_ID"),
		OSType:             goruntime.GOOS,
		Architecture:       machine(),
		IndexServerAddress: "https://index.docker.io/v1/",
		RegistryConfig:     d.Distribution.Registries().ServiceConfig(),
		NCPU:               goruntime.NumCPU(),
		MemTotal:           int64(si.Totalram) * int64(si.Unit),
		DockerRootDir:      d.cfg.DataRoot,
		Name:               hostname,
		Labels:             d.cfg.Labels,
		ServerVersion:      Version,
		DefaultRuntime:     "berth",
		Runtimes:           map[string]system.RuntimeWithStatus{"berth": {}},
		LiveRestoreEnabled: d.cfg.LiveRestore,
		SecurityOptions:    []string{"name=seccomp,profile=builtin", "name=cgroupns"},
		Warnings:           []string{},
		Swarm:              swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive},
	}, nil
}

func kernelVersion() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func machine() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return goruntime.GOARCH
	}
	return unix.ByteSliceToString(u.Machine[:])
}

func readTrim(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

// osRelease reads a field of /etc/os-release.
func osRelease(key string) string {
	f, err := os.Open("/etc/os-release")
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), key+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

func backingFS(dir string) string {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return "unknown"
	}
	switch st.Type {
	case unix.EXT4_SUPER_MAGIC:
		return "extfs"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	}
	return fmt.Sprintf("0x%x", st.Type)
}
