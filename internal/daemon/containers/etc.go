package containers

import (
	"bufio"
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/daemon/networks"
)

type etcFiles struct{ hostname, hosts, resolv string }

func (s *Service) etcPaths(id string) etcFiles {
	dir := s.store.Dir(id)
	return etcFiles{
		hostname: filepath.Join(dir, "hostname"),
		hosts:    filepath.Join(dir, "hosts"),
		resolv:   filepath.Join(dir, "resolv.conf"),
	}
}

// writeEtcFiles writes the container's /etc/hostname, /etc/hosts and
// /etc/resolv.conf next to its configuration, as dockerd does. With the
// host's network the host's hosts and resolv.conf are used.
func (s *Service) writeEtcFiles(c *container.Container, sb *networks.Sandbox) (etcFiles, error) {
	f := s.etcPaths(c.ID)
	hosts, resolv := etcContent(c, sb)
	for _, w := range []struct {
		path string
		data []byte
	}{
		{f.hostname, []byte(c.Config.Hostname + "\n")},
		{f.hosts, hosts},
		{f.resolv, resolv},
	} {
		if err := atomicfile.WriteFile(w.path, w.data, 0o644); err != nil {
			return etcFiles{}, err
		}
	}
	return f, nil
}

// updateEtcFiles rewrites a running container's hosts and resolv.conf
// after its networks changed: an address per network in hosts, and the
// embedded DNS once it is on a user-defined network. The files are
// bind-mounted into the container, so they are rewritten in place (a
// renamed new file would stay invisible to it), as dockerd does.
func (s *Service) updateEtcFiles(c *container.Container) {
	f := s.etcPaths(c.ID)
	hosts, resolv := etcContent(c, s.cfg.Networks.Sandbox(c.ID))
	for path, data := range map[string][]byte{f.hosts: hosts, f.resolv: resolv} {
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
			continue
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			slog.Warn("updating the container's "+filepath.Base(path), "container", c.ID[:12], "err", err)
		}
	}
}

// etcContent renders a container's hosts and resolv.conf.
func etcContent(c *container.Container, sb *networks.Sandbox) (hostsData, resolvData []byte) {
	hostNet := c.HostConfig.NetworkMode == "host"
	name := c.Config.Hostname
	var hosts bytes.Buffer
	if hostNet {
		if b, err := os.ReadFile("/etc/hosts"); err == nil {
			hosts.Write(b)
		}
	} else {
		hosts.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
		if sb != nil {
			for _, ep := range sb.Endpoints {
				hosts.WriteString(ep.Addr.Addr().String() + "\t" + name + "\n")
			}
		}
		for _, h := range c.HostConfig.ExtraHosts {
			if host, ip, ok := strings.Cut(h, ":"); ok {
				hosts.WriteString(ip + "\t" + host + "\n")
			}
		}
	}
	var dns []string
	for _, a := range c.HostConfig.DNS {
		dns = append(dns, a.String())
	}
	resolv := resolvConf(hostNet, dns, c.HostConfig.DNSSearch, c.HostConfig.DNSOptions)
	if sb != nil && sb.Resolves() && len(dns) == 0 {
		// The embedded DNS answers the networks' names and forwards the
		// rest to the host's resolvers.
		resolv = resolvConf(true, []string{"127.0.0.11"}, c.HostConfig.DNSSearch, append([]string{"ndots:0"}, c.HostConfig.DNSOptions...))
	}
	return hosts.Bytes(), resolv
}

// resolvConf derives the container's resolv.conf from the host's: in a
// network namespace of its own the host's loopback resolvers are not
// reachable, so they are dropped (Google's public resolvers replace an
// empty list, as in Docker). --dns, --dns-search and --dns-option override.
func resolvConf(hostNet bool, dns, search, options []string) []byte {
	host, _ := os.ReadFile("/etc/resolv.conf")
	var ns, srch, opts []string
	sc := bufio.NewScanner(bytes.NewReader(host))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if hostNet || !(strings.HasPrefix(f[1], "127.") || f[1] == "::1") {
				ns = append(ns, f[1])
			}
		case "search", "domain":
			srch = f[1:]
		case "options":
			opts = append(opts, f[1:]...)
		}
	}
	if len(dns) > 0 {
		ns = dns
	}
	if len(ns) == 0 {
		ns = []string{"8.8.8.8", "8.8.4.4"}
	}
	if len(search) > 0 {
		srch = search
	}
	if len(options) > 0 {
		opts = options
	}
	var b bytes.Buffer
	for _, n := range ns {
		b.WriteString("nameserver " + n + "\n")
	}
	if len(srch) > 0 && !(len(srch) == 1 && srch[0] == ".") {
		b.WriteString("search " + strings.Join(srch, " ") + "\n")
	}
	if len(opts) > 0 {
		b.WriteString("options " + strings.Join(opts, " ") + "\n")
	}
	return b.Bytes()
}

func hostHostname() string {
	n, err := os.Hostname()
	if err != nil {
		return "localhost"
	}
	return n
}
