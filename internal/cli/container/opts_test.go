package container

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/pflag"
)

// parseArgs parses run flags and arguments like "berth run" does.
func parseArgs(t *testing.T, args ...string) (*createConfig, error) {
	t.Helper()
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.SetInterspersed(false)
	o := addFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	rest := fs.Args()
	o.image, o.args = rest[0], rest[1:]
	return parse(fs, o)
}

func mustParse(t *testing.T, args ...string) *createConfig {
	t.Helper()
	cfg, err := parseArgs(t, args...)
	if err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return cfg
}

func port(t *testing.T, s string) network.Port {
	p, err := network.ParsePort(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseDefaults(t *testing.T) {
	cfg := mustParse(t, "busybox")
	c, h := cfg.Config, cfg.HostConfig
	if c.Image != "busybox" || c.Cmd != nil || c.Entrypoint != nil {
		t.Errorf("image/cmd/entrypoint: %q %q %q", c.Image, c.Cmd, c.Entrypoint)
	}
	if c.AttachStdin || !c.AttachStdout || !c.AttachStderr || c.OpenStdin || c.StdinOnce || c.Tty {
		t.Errorf("attach defaults: %+v", c)
	}
	if h.NetworkMode != "default" || h.RestartPolicy.Name != "no" {
		t.Errorf("network mode %q, restart %q", h.NetworkMode, h.RestartPolicy.Name)
	}
	if *h.MemorySwappiness != -1 || *h.OomKillDisable || *h.PidsLimit != 0 || h.Init != nil || c.StopTimeout != nil {
		t.Errorf("resource defaults: swappiness %d oom %v pids %d init %v", *h.MemorySwappiness, *h.OomKillDisable, *h.PidsLimit, h.Init)
	}
	if h.DNS != nil || h.DNSSearch == nil || h.DNSOptions == nil {
		t.Errorf("dns: %v %v %v", h.DNS, h.DNSSearch, h.DNSOptions)
	}
	if ep, ok := cfg.NetworkingConfig.EndpointsConfig["default"]; !ok || ep == nil || len(cfg.NetworkingConfig.EndpointsConfig) != 1 {
		t.Errorf("endpoints: %v", cfg.NetworkingConfig.EndpointsConfig)
	}
}

func TestParseMapping(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	if err := os.WriteFile(envFile, []byte("# comment\nFROMFILE=1\n  SPACED=2\nBERTH_TEST_HOSTVAR\nBERTH_TEST_UNSET\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	labelFile := filepath.Join(dir, "labels")
	if err := os.WriteFile(labelFile, []byte("a=1\nb=2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BERTH_TEST_HOSTVAR", "fromhost")
	t.Setenv("BERTH_TEST_E", "fromenv")

	for _, tc := range []struct {
		name  string
		args  []string
		check func(t *testing.T, c *container.Config, h *container.HostConfig, n *network.NetworkingConfig)
	}{
		{"command and args", []string{"busybox", "sh", "-c", "echo hi"}, func(t *testing.T, c *container.Config, _ *container.HostConfig, _ *network.NetworkingConfig) {
			if !reflect.DeepEqual([]string(c.Cmd), []string{"sh", "-c", "echo hi"}) {
				t.Errorf("cmd %q", c.Cmd)
			}
		}},
		{"flags after the image belong to the command", []string{"busybox", "ls", "-l", "--rm"}, func(t *testing.T, c *container.Config, h *container.HostConfig, _ *network.NetworkingConfig) {
			if h.AutoRemove || !reflect.DeepEqual([]string(c.Cmd), []string{"ls", "-l", "--rm"}) {
				t.Errorf("cmd %q autoremove %v", c.Cmd, h.AutoRemove)
			}
		}},
		{"interactive tty", []string{"-i", "-t", "busybox"}, func(t *testing.T, c *container.Config, _ *container.HostConfig, _ *network.NetworkingConfig) {
			if !c.OpenStdin || !c.AttachStdin || !c.StdinOnce || !c.Tty || !c.AttachStdout || !c.AttachStderr {
				t.Errorf("%+v", c)
			}
		}},
		{"attach only stderr", []string{"-a", "STDERR", "busybox"}, func(t *testing.T, c *container.Config, _ *container.HostConfig, _ *network.NetworkingConfig) {
			if c.AttachStdin || c.AttachStdout || !c.AttachStderr {
				t.Errorf("%+v", c)
			}
		}},
		{"env, env file and labels", []string{"-e", "A=1", "--env", "BERTH_TEST_E", "-e", "BERTH_TEST_NOPE", "--env-file", envFile,
			"-l", "x=y", "--label", "flag", "--label-file", labelFile, "busybox"},
			func(t *testing.T, c *container.Config, _ *container.HostConfig, _ *network.NetworkingConfig) {
				wantEnv := []string{"FROMFILE=1", "SPACED=2", "BERTH_TEST_HOSTVAR=fromhost", "A=1", "BERTH_TEST_E=fromenv", "BERTH_TEST_NOPE"}
				if !reflect.DeepEqual(c.Env, wantEnv) {
					t.Errorf("env %q, want %q", c.Env, wantEnv)
				}
				if !reflect.DeepEqual(c.Labels, map[string]string{"a": "1", "b": "2", "x": "y", "flag": ""}) {
					t.Errorf("labels %v", c.Labels)
				}
			}},
		{"process settings", []string{"-w", "/work", "-u", "1000:1000", "--entrypoint", "/bin/sh", "-h", "box", "--domainname", "example.org",
			"--stop-signal", "SIGINT", "--stop-timeout", "7", "--init", "busybox"},
			func(t *testing.T, c *container.Config, h *container.HostConfig, _ *network.NetworkingConfig) {
				if c.WorkingDir != "/work" || c.User != "1000:1000" || !reflect.DeepEqual([]string(c.Entrypoint), []string{"/bin/sh"}) ||
					c.Hostname != "box" || c.Domainname != "example.org" || c.StopSignal != "SIGINT" {
					t.Errorf("%+v", c)
				}
				if c.StopTimeout == nil || *c.StopTimeout != 7 || h.Init == nil || !*h.Init {
					t.Errorf("stop timeout %v init %v", c.StopTimeout, h.Init)
				}
			}},
		{"empty entrypoint resets it", []string{"--entrypoint=", "busybox"}, func(t *testing.T, c *container.Config, _ *container.HostConfig, _ *network.NetworkingConfig) {
			if !reflect.DeepEqual([]string(c.Entrypoint), []string{""}) {
				t.Errorf("entrypoint %q", c.Entrypoint)
			}
		}},
		{"init=false is sent", []string{"--init=false", "busybox"}, func(t *testing.T, _ *container.Config, h *container.HostConfig, _ *network.NetworkingConfig) {
			if h.Init == nil || *h.Init {
				t.Errorf("init %v", h.Init)
			}
		}},
		{"security", []string{"--privileged", "--cap-add", "NET_ADMIN", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
			"--security-opt", "apparmor=unconfined", "--security-opt", "systempaths=unconfined", "--read-only", "busybox"},
			func(t *testing.T, _ *container.Config, h *container.HostConfig, _ *network.NetworkingConfig) {
				if !h.Privileged || !h.ReadonlyRootfs || !reflect.DeepEqual(h.CapAdd, []string{"NET_ADMIN"}) || !reflect.DeepEqual(h.CapDrop, []string{"ALL"}) {
					t.Errorf("%+v", h)
				}
				if !reflect.DeepEqual(h.SecurityOpt, []string{"no-new-privileges", "apparmor=unconfined"}) ||
					h.MaskedPaths == nil || len(h.MaskedPaths) != 0 || h.ReadonlyPaths == nil {
					t.Errorf("security opts %q masked %v readonly %v", h.SecurityOpt, h.MaskedPaths, h.ReadonlyPaths)
				}
			}},
		{"resources", []string{"-m", "512m", "--memory-swap", "-1", "--memory-reservation", "256m", "--cpus", "1.5", "--cpu-shares", "512",
			"--cpuset-cpus", "0-1", "--pids-limit", "100", "--ulimit", "nofile=1024:2048", "--oom-kill-disable", "--memory-swappiness", "10", "--shm-size", "64m", "busybox"},
			func(t *testing.T, _ *container.Config, h *container.HostConfig, _ *network.NetworkingConfig) {
				r := h.Resources
				if r.Memory != 512<<20 || r.MemorySwap != -1 || r.MemoryReservation != 256<<20 || r.NanoCPUs != 1_500_000_000 ||
					r.CPUShares != 512 || r.CpusetCpus != "0-1" || *r.PidsLimit != 100 || !*r.OomKillDisable || *r.MemorySwappiness != 10 {
					t.Errorf("%+v", r)
				}
				if h.ShmSize != 64<<20 {
					t.Errorf("shm %d", h.ShmSize)
				}
				if len(r.Ulimits) != 1 || r.Ulimits[0].Name != "nofile" || r.Ulimits[0].Soft != 1024 || r.Ulimits[0].Hard != 2048 {
					t.Errorf("ulimits %v", r.Ulimits)
				}
			}},
		{"volumes, mounts and tmpfs", []string{"-v", "/data", "-v", "/host:/ctr:ro", "-v", "named:/vol", "-v", "./rel:/rel",
			"--mount", "type=bind,source=/src,target=/dst,readonly", "--mount", "type=tmpfs,target=/t,tmpfs-size=1m",
			"--tmpfs", "/run:rw,size=64k", "--tmpfs", "/cache", "busybox"},
			func(t *testing.T, c *container.Config, h *container.HostConfig, _ *network.NetworkingConfig) {
				wd, _ := os.Getwd()
				if !reflect.DeepEqual(h.Binds, []string{"/host:/ctr:ro", "named:/vol", wd + "/rel:/rel"}) {
					t.Errorf("binds %q", h.Binds)
				}
				if !reflect.DeepEqual(c.Volumes, map[string]struct{}{"/data": {}}) {
					t.Errorf("volumes %v", c.Volumes)
				}
				want := []mount.Mount{
					{Type: mount.TypeBind, Source: "/src", Target: "/dst", ReadOnly: true},
					{Type: mount.TypeTmpfs, Target: "/t", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20}},
				}
				if !reflect.DeepEqual(h.Mounts, want) {
					t.Errorf("mounts %+v", h.Mounts)
				}
				if !reflect.DeepEqual(h.Tmpfs, map[string]string{"/run": "rw,size=64k", "/cache": ""}) {
					t.Errorf("tmpfs %v", h.Tmpfs)
				}
			}},
		{"ports", []string{"-p", "8080:80", "-p", "127.0.0.1:5353:53/udp", "-p", "9000-9001:9000-9001", "-p", "443",
			"-p", "published=8443,target=443", "--expose", "7000-7001", "-P", "busybox"},
			func(t *testing.T, c *container.Config, h *container.HostConfig, _ *network.NetworkingConfig) {
				for _, p := range []string{"80/tcp", "53/udp", "9000/tcp", "9001/tcp", "443/tcp", "7000/tcp", "7001/tcp"} {
					if _, ok := c.ExposedPorts[port(t, p)]; !ok {
						t.Errorf("%s not exposed: %v", p, c.ExposedPorts)
					}
				}
				if got := h.PortBindings[port(t, "80/tcp")]; !reflect.DeepEqual(got, []network.PortBinding{{HostPort: "8080"}}) {
					t.Errorf("80/tcp: %v", got)
				}
				if got := h.PortBindings[port(t, "53/udp")]; !reflect.DeepEqual(got, []network.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "5353"}}) {
					t.Errorf("53/udp: %v", got)
				}
				if got := h.PortBindings[port(t, "9001/tcp")]; !reflect.DeepEqual(got, []network.PortBinding{{HostPort: "9001"}}) {
					t.Errorf("9001/tcp: %v", got)
				}
				if got := h.PortBindings[port(t, "443/tcp")]; len(got) != 2 || got[0].HostPort != "" && got[1].HostPort != "" {
					t.Errorf("443/tcp: %v", got)
				}
				if len(h.PortBindings[port(t, "443/tcp")]) != 2 {
					t.Errorf("443 bindings")
				}
				if !h.PublishAllPorts {
					t.Error("-P not set")
				}
			}},
		{"dns and hosts", []string{"--dns", "8.8.8.8", "--dns-search", "example.org", "--dns-option", "ndots:2",
			"--add-host", "db:10.0.0.2", "--add-host", "gw=host-gateway", "busybox"},
			func(t *testing.T, _ *container.Config, h *container.HostConfig, _ *network.NetworkingConfig) {
				if !reflect.DeepEqual(h.DNS, []netip.Addr{netip.MustParseAddr("8.8.8.8")}) || !reflect.DeepEqual(h.DNSSearch, []string{"example.org"}) ||
					!reflect.DeepEqual(h.DNSOptions, []string{"ndots:2"}) || !reflect.DeepEqual(h.ExtraHosts, []string{"db:10.0.0.2", "gw:host-gateway"}) {
					t.Errorf("dns %v %v %v hosts %v", h.DNS, h.DNSSearch, h.DNSOptions, h.ExtraHosts)
				}
			}},
		{"user-defined network with ip", []string{"--network", "mynet", "--ip", "172.20.0.5", "--network-alias", "web", "busybox"},
			func(t *testing.T, _ *container.Config, h *container.HostConfig, n *network.NetworkingConfig) {
				ep := n.EndpointsConfig["mynet"]
				if h.NetworkMode != "mynet" || ep == nil || ep.IPAMConfig == nil || ep.IPAMConfig.IPv4Address != netip.MustParseAddr("172.20.0.5") ||
					!reflect.DeepEqual(ep.Aliases, []string{"web"}) {
					t.Errorf("mode %q endpoints %+v", h.NetworkMode, n.EndpointsConfig)
				}
			}},
		{"plain network sends no endpoint", []string{"--network", "host", "busybox"}, func(t *testing.T, _ *container.Config, h *container.HostConfig, n *network.NetworkingConfig) {
			if h.NetworkMode != "host" || len(n.EndpointsConfig) != 0 {
				t.Errorf("mode %q endpoints %v", h.NetworkMode, n.EndpointsConfig)
			}
		}},
		{"restart, logging, sysctl, device, cidfile", []string{"--restart", "on-failure:3", "--log-driver", "json-file", "--log-opt", "max-size=1m",
			"--sysctl", "net.ipv4.ip_forward=1", "--device", "/dev/fuse", "--device", "/dev/sda:/dev/xvda:r", "--cidfile", "/tmp/cid", "busybox"},
			func(t *testing.T, _ *container.Config, h *container.HostConfig, _ *network.NetworkingConfig) {
				if h.RestartPolicy != (container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 3}) {
					t.Errorf("restart %+v", h.RestartPolicy)
				}
				if h.LogConfig.Type != "json-file" || !reflect.DeepEqual(h.LogConfig.Config, map[string]string{"max-size": "1m"}) {
					t.Errorf("log %+v", h.LogConfig)
				}
				if !reflect.DeepEqual(h.Sysctls, map[string]string{"net.ipv4.ip_forward": "1"}) || h.ContainerIDFile != "/tmp/cid" {
					t.Errorf("sysctls %v cidfile %q", h.Sysctls, h.ContainerIDFile)
				}
				want := []container.DeviceMapping{
					{PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rwm"},
					{PathOnHost: "/dev/sda", PathInContainer: "/dev/xvda", CgroupPermissions: "r"},
				}
				if !reflect.DeepEqual(h.Devices, want) {
					t.Errorf("devices %+v", h.Devices)
				}
			}},
		{"healthcheck", []string{"--health-cmd", "true", "--health-interval", "5s", "--health-retries", "2", "busybox"},
			func(t *testing.T, c *container.Config, _ *container.HostConfig, _ *network.NetworkingConfig) {
				want := &container.HealthConfig{Test: []string{"CMD-SHELL", "true"}, Interval: 5 * time.Second, Retries: 2}
				if !reflect.DeepEqual(c.Healthcheck, want) {
					t.Errorf("health %+v", c.Healthcheck)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustParse(t, tc.args...)
			tc.check(t, cfg.Config, cfg.HostConfig, cfg.NetworkingConfig)
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--rm", "--restart", "always", "busybox"}, "conflicting options: cannot specify both --restart and --rm"},
		{[]string{"-m", "lots", "busybox"}, `invalid argument "lots" for "-m, --memory" flag: invalid size: 'lots'`},
		{[]string{"--memory-swappiness", "200", "busybox"}, "invalid value: 200. Valid memory swappiness range is 0-100"},
		{[]string{"-a", "stdfoo", "busybox"}, "valid streams are STDIN, STDOUT and STDERR"},
		{[]string{"-p", "abc", "busybox"}, "invalid containerPort: abc"},
		{[]string{"--restart", "on-failure:x", "busybox"}, "maximum retry count must be an integer"},
		{[]string{"--add-host", "nocolon", "busybox"}, `bad format for add-host: "nocolon"`},
		{[]string{"--sysctl", "kernel.hostname=x", "busybox"}, "sysctl 'kernel.hostname=x' is not allowed"},
		{[]string{"--mac-address", "zz", "busybox"}, "zz is not a valid mac address"},
		{[]string{"--security-opt", "label", "busybox"}, `invalid --security-opt: "label"`},
		{[]string{"--no-healthcheck", "--health-cmd", "x", "busybox"}, "--no-healthcheck conflicts with --health-* options"},
		{[]string{"--device", "/dev/sda:rel", "busybox"}, "rel is not an absolute path"},
		{[]string{"--env-file", "/nonexistent/env", "busybox"}, "--env-file: open /nonexistent/env"},
		{[]string{"--log-driver", "none", "--log-opt", "a=b", "busybox"}, "invalid logging opts for driver none"},
		{[]string{"--mount", "type=tmpfs,target=/x,bind-propagation=shared", "busybox"}, "cannot mix 'bind-*' options with mount type 'tmpfs'"},
		{[]string{"--network", "mynet", "--network", "host", "busybox"}, "conflicting options: cannot attach both user-defined and non-user-defined network-modes"},
		{[]string{"--network-alias", "x", "busybox"}, "network-scoped aliases are only supported for user-defined networks"},
		{[]string{"--cpus", "abc", "busybox"}, "failed to parse abc as a rational number"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := parseArgs(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
