package container

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/cli/opts"
	"github.com/docker/go-connections/nat"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/pflag"
)

// containerOptions are the flags create and run share; parse maps them to
// the create request the way docker does.
type containerOptions struct {
	attach, volumes, tmpfs, links, aliases, linkLocalIPs        opts.List
	env, envFile, labels, labelFile, devices, deviceCgroupRules opts.List
	publish, expose, dns, dnsSearch, dnsOptions, extraHosts     opts.List
	volumesFrom, capAdd, capDrop, groupAdd, securityOpt         opts.List
	storageOpt, logOpts                                         opts.List
	mounts                                                      opts.Mounts
	networks                                                    opts.Networks
	ulimits                                                     *opts.Ulimits
	sysctls, annotations                                        *opts.Map

	privileged, publishAll, stdin, tty, oomKillDisable, readOnly bool
	autoRemove, init, noHealthcheck                              bool
	pidMode, utsMode, usernsMode, cgroupnsMode, ipcMode          string
	containerIDFile, entrypoint, hostname, domainname, user      string
	workingDir, cpusetCpus, cpusetMems, macAddress, restart      string
	logDriver, cgroupParent, volumeDriver, stopSignal, isolation string
	runtime, healthCmd                                           string
	ip, ip6                                                      net.IP
	oomScoreAdj, stopTimeout, healthRetries                      int
	cpuShares, cpuPeriod, cpuQuota, swappiness, pidsLimit        int64
	blkioWeight                                                  uint16
	memory, memoryReservation, shmSize                           opts.MemBytes
	memorySwap                                                   opts.MemSwapBytes
	cpus                                                         opts.NanoCPUs
	healthInterval, healthTimeout, healthStartPeriod             time.Duration
	healthStartInterval                                          time.Duration

	image string
	args  []string
}

// addFlags declares the container flags on fs.
func addFlags(fs *pflag.FlagSet) *containerOptions {
	o := &containerOptions{
		attach: opts.NewList(opts.ValidateAttach), env: opts.NewList(opts.ValidateEnv),
		labels: opts.NewList(opts.ValidateLabel), dns: opts.NewList(opts.ValidateIPAddress),
		dnsSearch: opts.NewList(opts.ValidateDNSSearch), extraHosts: opts.NewList(opts.ValidateExtraHost),
		deviceCgroupRules: opts.NewList(validateDeviceCgroupRule),
		ulimits:           opts.NewUlimits(), sysctls: opts.NewMap(opts.ValidateSysctl), annotations: opts.NewMap(nil),
	}
	fs.VarP(&o.attach, "attach", "a", "Attach to STDIN, STDOUT or STDERR")
	fs.Var(&o.deviceCgroupRules, "device-cgroup-rule", "Add a rule to the cgroup allowed devices list")
	fs.Var(&o.devices, "device", "Add a host device to the container")
	fs.VarP(&o.env, "env", "e", "Set environment variables")
	fs.Var(&o.envFile, "env-file", "Read in a file of environment variables")
	fs.StringVar(&o.entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	fs.Var(&o.groupAdd, "group-add", "Add additional groups to join")
	fs.StringVarP(&o.hostname, "hostname", "h", "", "Container host name")
	fs.StringVar(&o.domainname, "domainname", "", "Container NIS domain name")
	fs.BoolVarP(&o.stdin, "interactive", "i", false, "Keep STDIN open even if not attached")
	fs.VarP(&o.labels, "label", "l", "Set meta data on a container")
	fs.Var(&o.labelFile, "label-file", "Read in a line delimited file of labels")
	fs.BoolVar(&o.readOnly, "read-only", false, "Mount the container's root filesystem as read only")
	fs.StringVar(&o.restart, "restart", string(container.RestartPolicyDisabled), "Restart policy to apply when a container exits")
	fs.StringVar(&o.stopSignal, "stop-signal", "", "Signal to stop the container")
	fs.IntVar(&o.stopTimeout, "stop-timeout", 0, "Timeout (in seconds) to stop a container")
	fs.Var(o.sysctls, "sysctl", "Sysctl options")
	fs.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fs.Var(o.ulimits, "ulimit", "Ulimit options")
	fs.StringVarP(&o.user, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	fs.StringVarP(&o.workingDir, "workdir", "w", "", "Working directory inside the container")
	fs.BoolVar(&o.autoRemove, "rm", false, "Automatically remove the container and its associated anonymous volumes when it exits")

	fs.Var(&o.capAdd, "cap-add", "Add Linux capabilities")
	fs.Var(&o.capDrop, "cap-drop", "Drop Linux capabilities")
	fs.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to this container")
	fs.Var(&o.securityOpt, "security-opt", "Security Options")
	fs.StringVar(&o.usernsMode, "userns", "", "User namespace to use")
	fs.StringVar(&o.cgroupnsMode, "cgroupns", "", "Cgroup namespace to use (host|private)")

	fs.Var(&o.extraHosts, "add-host", "Add a custom host-to-IP mapping (host:ip)")
	fs.Var(&o.dns, "dns", "Set custom DNS servers")
	fs.Var(&o.dnsOptions, "dns-opt", "Set DNS options")
	fs.Var(&o.dnsOptions, "dns-option", "Set DNS options")
	_ = fs.MarkHidden("dns-opt")
	fs.Var(&o.dnsSearch, "dns-search", "Set custom DNS search domains")
	fs.Var(&o.expose, "expose", "Expose a port or a range of ports")
	fs.IPVar(&o.ip, "ip", nil, "IPv4 address (e.g., 172.30.100.104)")
	fs.IPVar(&o.ip6, "ip6", nil, "IPv6 address (e.g., 2001:db8::33)")
	fs.Var(&o.links, "link", "Add link to another container")
	fs.Var(&o.linkLocalIPs, "link-local-ip", "Container IPv4/IPv6 link-local addresses")
	fs.StringVar(&o.macAddress, "mac-address", "", "Container MAC address (e.g., 92:d0:c6:0a:29:33)")
	fs.VarP(&o.publish, "publish", "p", "Publish a container's port(s) to the host")
	fs.BoolVarP(&o.publishAll, "publish-all", "P", false, "Publish all exposed ports to random ports")
	fs.Var(&o.networks, "net", "Connect a container to a network")
	fs.Var(&o.networks, "network", "Connect a container to a network")
	_ = fs.MarkHidden("net")
	fs.Var(&o.aliases, "net-alias", "Add network-scoped alias for the container")
	fs.Var(&o.aliases, "network-alias", "Add network-scoped alias for the container")
	_ = fs.MarkHidden("net-alias")

	fs.StringVar(&o.logDriver, "log-driver", "", "Logging driver for the container")
	fs.StringVar(&o.volumeDriver, "volume-driver", "", "Optional volume driver for the container")
	fs.Var(&o.logOpts, "log-opt", "Log driver options")
	fs.Var(&o.storageOpt, "storage-opt", "Storage driver options for the container")
	fs.Var(&o.tmpfs, "tmpfs", "Mount a tmpfs directory")
	fs.Var(&o.volumesFrom, "volumes-from", "Mount volumes from the specified container(s)")
	fs.VarP(&o.volumes, "volume", "v", "Bind mount a volume")
	fs.Var(&o.mounts, "mount", "Attach a filesystem mount to the container")

	fs.StringVar(&o.healthCmd, "health-cmd", "", "Command to run to check health")
	fs.DurationVar(&o.healthInterval, "health-interval", 0, "Time between running the check (ms|s|m|h) (default 0s)")
	fs.IntVar(&o.healthRetries, "health-retries", 0, "Consecutive failures needed to report unhealthy")
	fs.DurationVar(&o.healthTimeout, "health-timeout", 0, "Maximum time to allow one check to run (ms|s|m|h) (default 0s)")
	fs.DurationVar(&o.healthStartPeriod, "health-start-period", 0, "Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)")
	fs.DurationVar(&o.healthStartInterval, "health-start-interval", 0, "Time between running the check during the start period (ms|s|m|h) (default 0s)")
	fs.BoolVar(&o.noHealthcheck, "no-healthcheck", false, "Disable any container-specified HEALTHCHECK")

	fs.Uint16Var(&o.blkioWeight, "blkio-weight", 0, "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)")
	fs.StringVar(&o.containerIDFile, "cidfile", "", "Write the container ID to the file")
	fs.StringVar(&o.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fs.StringVar(&o.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fs.Int64Var(&o.cpuPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	fs.Int64Var(&o.cpuQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	fs.Int64VarP(&o.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fs.Var(&o.cpus, "cpus", "Number of CPUs")
	fs.VarP(&o.memory, "memory", "m", "Memory limit")
	fs.Var(&o.memoryReservation, "memory-reservation", "Memory soft limit")
	fs.Var(&o.memorySwap, "memory-swap", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	fs.Int64Var(&o.swappiness, "memory-swappiness", -1, "Tune container memory swappiness (0 to 100)")
	fs.BoolVar(&o.oomKillDisable, "oom-kill-disable", false, "Disable OOM Killer")
	fs.IntVar(&o.oomScoreAdj, "oom-score-adj", 0, "Tune host's OOM preferences (-1000 to 1000)")
	fs.Int64Var(&o.pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")

	fs.StringVar(&o.cgroupParent, "cgroup-parent", "", "Optional parent cgroup for the container")
	fs.StringVar(&o.ipcMode, "ipc", "", "IPC mode to use")
	fs.StringVar(&o.isolation, "isolation", "", "Container isolation technology")
	fs.StringVar(&o.pidMode, "pid", "", "PID namespace to use")
	fs.Var(&o.shmSize, "shm-size", "Size of /dev/shm")
	fs.StringVar(&o.utsMode, "uts", "", "UTS namespace to use")
	fs.StringVar(&o.runtime, "runtime", "", "Runtime to use for this container")
	fs.BoolVar(&o.init, "init", false, "Run an init inside the container that forwards signals and reaps processes")
	fs.Var(o.annotations, "annotation", "Add an annotation to the container (passed through to the OCI runtime)")
	return o
}

// createConfig is what ContainerCreate receives.
type createConfig struct {
	Config           *container.Config
	HostConfig       *container.HostConfig
	NetworkingConfig *network.NetworkingConfig
}

// parse maps the flags to the create request exactly as docker does.
func parse(fs *pflag.FlagSet, o *containerOptions) (*createConfig, error) {
	attachStdin, attachStdout, attachStderr := o.attach.Has("stdin"), o.attach.Has("stdout"), o.attach.Has("stderr")
	if o.macAddress != "" {
		if _, err := net.ParseMAC(strings.TrimSpace(o.macAddress)); err != nil {
			return nil, fmt.Errorf("%s is not a valid mac address", o.macAddress)
		}
	}
	if o.stdin {
		attachStdin = true
	}
	if o.attach.Len() == 0 {
		attachStdout, attachStderr = true, true
	}
	if o.swappiness != -1 && (o.swappiness < 0 || o.swappiness > 100) {
		return nil, fmt.Errorf("invalid value: %d. Valid memory swappiness range is 0-100", o.swappiness)
	}

	binds, volumes, err := splitVolumes(o.volumes.Values())
	if err != nil {
		return nil, err
	}
	tmpfs := map[string]string{}
	for _, t := range o.tmpfs.Values() {
		k, v, _ := strings.Cut(t, ":")
		tmpfs[k] = v
	}

	var entrypoint []string
	if o.entrypoint != "" {
		entrypoint = []string{o.entrypoint}
	} else if fs.Changed("entrypoint") {
		entrypoint = []string{""}
	}

	exposed, bindings, err := parsePorts(o.publish.Values(), o.expose.Values())
	if err != nil {
		return nil, err
	}
	devices := make([]container.DeviceMapping, 0, o.devices.Len())
	for _, d := range o.devices.Values() {
		dm, err := parseDevice(d)
		if err != nil {
			return nil, err
		}
		devices = append(devices, dm)
	}
	env, err := opts.ReadKVFiles(o.envFile.Values(), o.env.Values(), os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("--env-file: %w", err)
	}
	labels, err := opts.ReadKVFiles(o.labelFile.Values(), o.labels.Values(), nil)
	if err != nil {
		return nil, fmt.Errorf("--label-file: %w", err)
	}
	if err := checkModes(o); err != nil {
		return nil, err
	}
	restart, err := parseRestartPolicy(o.restart)
	if err != nil {
		return nil, err
	}
	logOpts := opts.KVMap(o.logOpts.Values())
	if o.logDriver == "none" && o.logOpts.Len() > 0 {
		return nil, fmt.Errorf("invalid logging opts for driver %s", o.logDriver)
	}
	secOpts, err := parseSecurityOpts(o.securityOpt.Values())
	if err != nil {
		return nil, err
	}
	secOpts, masked, readonly := systemPaths(secOpts)
	storageOpts := map[string]string{}
	for _, s := range o.storageOpt.Values() {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return nil, errors.New("invalid storage option")
		}
		storageOpts[k] = v
	}
	health, err := parseHealth(o)
	if err != nil {
		return nil, err
	}

	config := &container.Config{
		Hostname: o.hostname, Domainname: o.domainname, ExposedPorts: exposed, User: o.user,
		Tty: o.tty, OpenStdin: o.stdin,
		AttachStdin: attachStdin, AttachStdout: attachStdout, AttachStderr: attachStderr,
		Env: env, Cmd: o.args, Image: o.image, Volumes: volumes, Entrypoint: entrypoint,
		WorkingDir: o.workingDir, Labels: opts.KVMap(labels), StopSignal: o.stopSignal, Healthcheck: health,
	}
	if len(o.args) == 0 {
		config.Cmd = nil
	}
	if fs.Changed("stop-timeout") {
		config.StopTimeout = &o.stopTimeout
	}
	hostConfig := &container.HostConfig{
		Binds: binds, ContainerIDFile: o.containerIDFile, OomScoreAdj: o.oomScoreAdj,
		AutoRemove: o.autoRemove, Privileged: o.privileged, PortBindings: bindings,
		Links: o.links.Values(), PublishAllPorts: o.publishAll,
		DNS: netipAddrs(o.dns.OrEmpty()), DNSSearch: o.dnsSearch.OrEmpty(), DNSOptions: o.dnsOptions.OrEmpty(),
		ExtraHosts: o.extraHosts.Values(), VolumesFrom: o.volumesFrom.Values(),
		IpcMode: container.IpcMode(o.ipcMode), NetworkMode: container.NetworkMode(o.networks.Mode()),
		PidMode: container.PidMode(o.pidMode), UTSMode: container.UTSMode(o.utsMode),
		UsernsMode: container.UsernsMode(o.usernsMode), CgroupnsMode: container.CgroupnsMode(o.cgroupnsMode),
		CapAdd: o.capAdd.Values(), CapDrop: o.capDrop.Values(), GroupAdd: o.groupAdd.Values(),
		RestartPolicy: restart, SecurityOpt: secOpts, StorageOpt: storageOpts, ReadonlyRootfs: o.readOnly,
		LogConfig:    container.LogConfig{Type: o.logDriver, Config: logOpts},
		VolumeDriver: o.volumeDriver, Isolation: container.Isolation(o.isolation), ShmSize: o.shmSize.Value(),
		Tmpfs: tmpfs, Sysctls: o.sysctls.Values(), Runtime: o.runtime, Mounts: o.mounts.Value(),
		MaskedPaths: masked, ReadonlyPaths: readonly, Annotations: o.annotations.Values(),
		Resources: container.Resources{
			CgroupParent: o.cgroupParent, Memory: o.memory.Value(), MemoryReservation: o.memoryReservation.Value(),
			MemorySwap: o.memorySwap.Value(), MemorySwappiness: &o.swappiness, OomKillDisable: &o.oomKillDisable,
			NanoCPUs: o.cpus.Value(), CPUShares: o.cpuShares, CPUPeriod: o.cpuPeriod, CPUQuota: o.cpuQuota,
			CpusetCpus: o.cpusetCpus, CpusetMems: o.cpusetMems, PidsLimit: &o.pidsLimit,
			BlkioWeight: o.blkioWeight, Ulimits: o.ulimits.Values(),
			DeviceCgroupRules: o.deviceCgroupRules.Values(), Devices: devices,
		},
	}
	if o.autoRemove && !hostConfig.RestartPolicy.IsNone() {
		return nil, errors.New("conflicting options: cannot specify both --restart and --rm")
	}
	if fs.Changed("init") {
		hostConfig.Init = &o.init
	}
	if config.OpenStdin && config.AttachStdin {
		config.StdinOnce = true
	}
	endpoints, err := parseNetworks(o)
	if err != nil {
		return nil, err
	}
	return &createConfig{Config: config, HostConfig: hostConfig,
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: endpoints}}, nil
}

// splitVolumes sends -v values with a source to Binds (relative host paths
// made absolute) and anonymous volumes to Config.Volumes.
func splitVolumes(specs []string) (binds []string, volumes map[string]struct{}, _ error) {
	volumes = map[string]struct{}{}
	for _, spec := range specs {
		v, err := opts.ParseVolume(spec)
		if err != nil {
			return nil, nil, err
		}
		if v.Source == "" {
			volumes[spec] = struct{}{}
			continue
		}
		if host, rest, ok := strings.Cut(spec, ":"); ok && v.IsBind() && !filepath.IsAbs(host) && strings.HasPrefix(host, ".") {
			if abs, err := filepath.Abs(host); err == nil {
				spec = abs + ":" + rest
			}
		}
		binds = append(binds, spec)
	}
	return binds, volumes, nil
}

// parsePorts maps -p (short syntax, or published=…,target=…,protocol=…)
// and --expose to the exposed port set and the port bindings.
func parsePorts(publish, expose []string) (network.PortSet, network.PortMap, error) {
	specs := make([]string, 0, len(publish))
	for _, p := range publish {
		if !strings.Contains(p, "=") {
			specs = append(specs, p)
			continue
		}
		params := map[string]string{"protocol": "tcp"}
		for _, kv := range strings.Split(p, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, nil, fmt.Errorf("invalid publish opts format (should be name=value but got '%s')", kv)
			}
			params[k] = v
		}
		specs = append(specs, fmt.Sprintf("%s:%s/%s", params["published"], params["target"], params["protocol"]))
	}
	natPorts, natBindings, err := nat.ParsePortSpecs(specs)
	if err != nil {
		return nil, nil, err
	}
	bindings := network.PortMap{}
	for port, bs := range natBindings {
		p, err := network.ParsePort(string(port))
		if err != nil {
			return nil, nil, err
		}
		bindings[p] = []network.PortBinding{}
		for _, b := range bs {
			var ip netip.Addr
			if b.HostIP != "" {
				if ip, err = netip.ParseAddr(b.HostIP); err != nil {
					return nil, nil, err
				}
			}
			bindings[p] = append(bindings[p], network.PortBinding{HostIP: ip, HostPort: b.HostPort})
		}
	}
	exposed := network.PortSet{}
	for port := range natPorts {
		p, err := network.ParsePort(string(port))
		if err != nil {
			return nil, nil, err
		}
		exposed[p] = struct{}{}
	}
	for _, e := range expose {
		r, err := network.ParsePortRange(e)
		if err != nil {
			return nil, nil, fmt.Errorf("invalid range format for --expose: %w", err)
		}
		for p := range r.All() {
			exposed[p] = struct{}{}
		}
	}
	return exposed, bindings, nil
}

func checkModes(o *containerOptions) error {
	switch {
	case !container.PidMode(o.pidMode).Valid():
		return errors.New("--pid: invalid PID mode")
	case !container.UTSMode(o.utsMode).Valid():
		return errors.New("--uts: invalid UTS mode")
	case !container.UsernsMode(o.usernsMode).Valid():
		return errors.New("--userns: invalid USER mode")
	case !container.CgroupnsMode(o.cgroupnsMode).Valid():
		return errors.New("--cgroupns: invalid CGROUP mode")
	}
	return nil
}

func parseRestartPolicy(s string) (container.RestartPolicy, error) {
	if s == "" {
		return container.RestartPolicy{}, nil
	}
	name, count, ok := strings.Cut(s, ":")
	if ok && name == "" {
		return container.RestartPolicy{}, errors.New("invalid restart policy format: no policy provided before colon")
	}
	p := container.RestartPolicy{Name: container.RestartPolicyMode(name)}
	if count != "" {
		n, err := strconv.Atoi(count)
		if err != nil {
			return container.RestartPolicy{}, errors.New("invalid restart policy format: maximum retry count must be an integer")
		}
		p.MaximumRetryCount = n
	}
	return p, nil
}

// parseSecurityOpts checks key=value (or key:value) options and inlines a
// seccomp profile file.
func parseSecurityOpts(secOpts []string) ([]string, error) {
	for i, opt := range secOpts {
		k, v, ok := strings.Cut(opt, "=")
		if !ok && k != "no-new-privileges" {
			k, v, ok = strings.Cut(opt, ":")
		}
		if (!ok || v == "") && k != "no-new-privileges" {
			return secOpts, fmt.Errorf("invalid --security-opt: %q", opt)
		}
		if k != "seccomp" || v == "builtin" || v == "unconfined" {
			continue
		}
		b, err := os.ReadFile(v)
		if err != nil {
			return secOpts, fmt.Errorf("opening seccomp profile (%s) failed: %w", v, err)
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, b); err != nil {
			return secOpts, fmt.Errorf("compacting json for seccomp profile (%s) failed: %w", v, err)
		}
		secOpts[i] = "seccomp=" + buf.String()
	}
	return secOpts, nil
}

// systemPaths handles systempaths=unconfined on the client: it clears the
// masked and read-only path lists and is not sent on.
func systemPaths(secOpts []string) (filtered, masked, readonly []string) {
	for _, opt := range secOpts {
		if opt == "systempaths=unconfined" {
			masked, readonly = []string{}, []string{}
			continue
		}
		filtered = append(filtered, opt)
	}
	return filtered, masked, readonly
}

func parseHealth(o *containerOptions) (*container.HealthConfig, error) {
	set := o.healthCmd != "" || o.healthInterval != 0 || o.healthTimeout != 0 ||
		o.healthStartPeriod != 0 || o.healthRetries != 0 || o.healthStartInterval != 0
	if o.noHealthcheck {
		if set {
			return nil, errors.New("--no-healthcheck conflicts with --health-* options")
		}
		return &container.HealthConfig{Test: []string{"NONE"}}, nil
	}
	if !set {
		return nil, nil
	}
	for _, c := range []struct {
		neg  bool
		flag string
	}{
		{o.healthInterval < 0, "interval"}, {o.healthTimeout < 0, "timeout"}, {o.healthRetries < 0, "retries"},
		{o.healthStartPeriod < 0, "start-period"}, {o.healthStartInterval < 0, "start-interval"},
	} {
		if c.neg {
			return nil, fmt.Errorf("--health-%s cannot be negative", c.flag)
		}
	}
	var test []string
	if o.healthCmd != "" {
		test = []string{"CMD-SHELL", o.healthCmd}
	}
	return &container.HealthConfig{
		Test: test, Interval: o.healthInterval, Timeout: o.healthTimeout, StartPeriod: o.healthStartPeriod,
		StartInterval: o.healthStartInterval, Retries: o.healthRetries,
	}, nil
}

// parseNetworks builds the endpoint settings: one for "default" when no
// --network is given; none for a single plain network.
func parseNetworks(o *containerOptions) (map[string]*network.EndpointSettings, error) {
	nets := o.networks.Value()
	endpoints := map[string]*network.EndpointSettings{}
	if len(nets) == 0 {
		nets = []opts.NetworkAttachment{{Target: "default"}}
	}
	userDefined, builtin := false, false
	for i, n := range nets {
		if container.NetworkMode(n.Target).IsUserDefined() {
			userDefined = true
		} else {
			builtin = true
		}
		if i == 0 {
			if err := applyLegacyNetworkFlags(&n, o); err != nil {
				return nil, err
			}
		}
		ep, err := endpointSettings(n)
		if err != nil {
			return nil, err
		}
		if _, dup := endpoints[n.Target]; dup {
			return nil, fmt.Errorf("network %q is specified multiple times", n.Target)
		}
		if i == 0 && len(o.networks.Value()) == 1 && reflect.ValueOf(*ep).IsZero() {
			continue
		}
		endpoints[n.Target] = ep
	}
	if userDefined && builtin && len(o.networks.Value()) > 0 {
		return nil, errors.New("conflicting options: cannot attach both user-defined and non-user-defined network-modes")
	}
	return endpoints, nil
}

// applyLegacyNetworkFlags puts --network-alias, --link, --ip, --ip6,
// --mac-address and --link-local-ip on the first network.
func applyLegacyNetworkFlags(n *opts.NetworkAttachment, o *containerOptions) error {
	for _, c := range []struct {
		both bool
		msg  string
	}{
		{len(n.Aliases) > 0 && o.aliases.Len() > 0, "--network-alias and per-network alias"},
		{len(n.Links) > 0 && o.links.Len() > 0, "--link and per-network links"},
		{n.IPv4Address.IsValid() && o.ip != nil, "--ip and per-network IPv4 address"},
		{n.IPv6Address.IsValid() && o.ip6 != nil, "--ip6 and per-network IPv6 address"},
		{n.MacAddress != "" && o.macAddress != "", "--mac-address and per-network MAC address"},
		{len(n.LinkLocalIPs) > 0 && o.linkLocalIPs.Len() > 0, "--link-local-ip and per-network link-local IP addresses"},
	} {
		if c.both {
			return errors.New("conflicting options: cannot specify both " + c.msg)
		}
	}
	if o.aliases.Len() > 0 {
		n.Aliases = append([]string(nil), o.aliases.Values()...)
	}
	if container.NetworkMode(n.Target).IsUserDefined() && o.links.Len() > 0 {
		n.Links = append([]string(nil), o.links.Values()...)
	}
	if o.ip != nil {
		if a, ok := netip.AddrFromSlice(o.ip.To4()); ok {
			n.IPv4Address = a
		}
	}
	if o.ip6 != nil {
		if a, ok := netip.AddrFromSlice(o.ip6.To16()); ok {
			n.IPv6Address = a
		}
	}
	if o.macAddress != "" {
		n.MacAddress = o.macAddress
	}
	if o.linkLocalIPs.Len() > 0 {
		n.LinkLocalIPs = netipAddrs(o.linkLocalIPs.Values())
	}
	return nil
}

func endpointSettings(n opts.NetworkAttachment) (*network.EndpointSettings, error) {
	if strings.TrimSpace(n.Target) == "" {
		return nil, errors.New("no name set for network")
	}
	if !container.NetworkMode(n.Target).IsUserDefined() {
		if len(n.Aliases) > 0 {
			return nil, errors.New("network-scoped aliases are only supported for user-defined networks")
		}
		if len(n.Links) > 0 {
			return nil, errors.New("links are only supported for user-defined networks")
		}
	}
	ep := &network.EndpointSettings{GwPriority: n.GwPriority}
	ep.Aliases = append(ep.Aliases, n.Aliases...)
	if len(n.DriverOpts) > 0 {
		ep.DriverOpts = n.DriverOpts
	}
	if len(n.Links) > 0 {
		ep.Links = n.Links
	}
	if n.IPv4Address.IsValid() || n.IPv6Address.IsValid() || len(n.LinkLocalIPs) > 0 {
		ep.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: n.IPv4Address, IPv6Address: n.IPv6Address, LinkLocalIPs: n.LinkLocalIPs}
	}
	if n.MacAddress != "" {
		mac, err := net.ParseMAC(strings.TrimSpace(n.MacAddress))
		if err != nil {
			return nil, fmt.Errorf("%s is not a valid mac address", n.MacAddress)
		}
		ep.MacAddress = network.HardwareAddr(mac)
	}
	return ep, nil
}

var deviceCgroupRule = regexp.MustCompile(`^[acb] ([0-9]+|\*):([0-9]+|\*) [rwm]{1,3}$`)

func validateDeviceCgroupRule(v string) (string, error) {
	if deviceCgroupRule.MatchString(v) {
		return v, nil
	}
	return v, fmt.Errorf("invalid device cgroup format '%s'", v)
}

// validDeviceMode reports whether mode is a non-empty combination of r,
// w and m, each at most once.
func validDeviceMode(mode string) bool {
	if mode == "" {
		return false
	}
	seen := map[rune]bool{}
	for _, c := range mode {
		if !strings.ContainsRune("rwm", c) || seen[c] {
			return false
		}
		seen[c] = true
	}
	return true
}

// parseDevice parses --device HOST[:CONTAINER][:PERMISSIONS].
func parseDevice(spec string) (container.DeviceMapping, error) {
	parts := strings.Split(spec, ":")
	if len(parts) > 3 || parts[0] == "" {
		return container.DeviceMapping{}, fmt.Errorf("bad format for path: %s", spec)
	}
	d := container.DeviceMapping{PathOnHost: parts[0], CgroupPermissions: "rwm"}
	switch len(parts) {
	case 2:
		if validDeviceMode(parts[1]) {
			d.CgroupPermissions = parts[1]
		} else {
			d.PathInContainer = parts[1]
		}
	case 3:
		if !validDeviceMode(parts[2]) {
			return container.DeviceMapping{}, fmt.Errorf("bad mode specified: %s", parts[2])
		}
		d.PathInContainer, d.CgroupPermissions = parts[1], parts[2]
	}
	if d.PathInContainer == "" {
		d.PathInContainer = d.PathOnHost
	}
	target := d.PathInContainer
	if !path.IsAbs(target) {
		return container.DeviceMapping{}, fmt.Errorf("%s is not an absolute path", target)
	}
	if len(parts) < 3 {
		d.PathInContainer = path.Clean(target)
	}
	if len(parts) == 1 {
		d.PathOnHost = d.PathInContainer
	}
	return d, nil
}

func netipAddrs(ips []string) []netip.Addr {
	if len(ips) == 0 {
		return nil
	}
	out := make([]netip.Addr, 0, len(ips))
	for _, s := range ips {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a)
		}
	}
	return out
}
