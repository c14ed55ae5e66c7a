package networks

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/network/dns"
	"github.com/berth-dev/berth/internal/network/firewall"
	"github.com/moby/moby/api/types/network"
)

// Endpoint is one running container's interface on one bridge network.
type Endpoint struct {
	ID          string `json:"id"`
	ContainerID string `json:"containerID"`
	NetworkID   string `json:"networkID"`
	// Name is the container's name, without "/".
	Name    string   `json:"name"`
	Aliases []string `json:"aliases,omitempty"`
	// DNSNames are the names the embedded DNS answers with Addr on the
	// endpoint's network (user-defined networks only).
	DNSNames []string `json:"dnsNames,omitempty"`
	// IfName is the interface in the container: eth0 for the first
	// network joined, eth1, eth2... for the next ones.
	IfName    string       `json:"ifName,omitempty"`
	NetnsPath string       `json:"netnsPath"`
	Addr      netip.Prefix `json:"addr"`
	// Gateway is the network's gateway (none on an internal network);
	// DefaultRoute tells whether the container's default route goes
	// through it (one endpoint of a container has it).
	Gateway      netip.Addr `json:"gateway,omitzero"`
	DefaultRoute bool       `json:"defaultRoute,omitempty"`
	MAC          string     `json:"mac"`
	HostVeth     string     `json:"hostVeth"`
	// Ports and Bindings are the published ports; only the endpoint
	// that carries the default route at start publishes them, as Docker.
	Ports       []firewall.PortMapping `json:"ports,omitempty"`
	Bindings    network.PortMap        `json:"bindings,omitempty"`
	UserDefined bool                   `json:"userDefined,omitempty"`
}

// Sandbox is a running container's network namespace and its endpoints on
// bridge networks, eth0 first.
type Sandbox struct {
	ContainerID string
	NetnsPath   string
	Endpoints   []*Endpoint

	dns      *dns.Server
	reserved []io.Closer // host ports held for the published ports
}

// Endpoint returns the sandbox's endpoint on network netID, or nil.
func (sb *Sandbox) Endpoint(netID string) *Endpoint {
	for _, ep := range sb.Endpoints {
		if ep.NetworkID == netID {
			return ep
		}
	}
	return nil
}

// Resolves tells whether the container uses the embedded DNS: it is on a
// user-defined network, or was since it started (the resolver stays).
func (sb *Sandbox) Resolves() bool {
	return sb.dns != nil || slices.ContainsFunc(sb.Endpoints, func(ep *Endpoint) bool { return ep.UserDefined })
}

// nextIfName is the first free ethN of the sandbox.
func (sb *Sandbox) nextIfName() string {
	for i := 0; ; i++ {
		name := "eth" + strconv.Itoa(i)
		if !slices.ContainsFunc(sb.Endpoints, func(ep *Endpoint) bool { return ep.IfName == name }) {
			return name
		}
	}
}

// routed returns the endpoint carrying the default route, or nil.
func (sb *Sandbox) routed() *Endpoint {
	for _, ep := range sb.Endpoints {
		if ep.DefaultRoute {
			return ep
		}
	}
	return nil
}

// nextRoute picks the endpoint that takes over the default route once
// the routed one is gone: the first, in interface order, with a gateway.
func (sb *Sandbox) nextRoute() *Endpoint {
	for _, ep := range sb.Endpoints {
		if ep.Gateway.IsValid() {
			return ep
		}
	}
	return nil
}

// remove drops the endpoint on netID from the sandbox and returns it.
func (sb *Sandbox) remove(netID string) *Endpoint {
	for i, ep := range sb.Endpoints {
		if ep.NetworkID == netID {
			sb.Endpoints = slices.Delete(sb.Endpoints, i, i+1)
			return ep
		}
	}
	return nil
}

// snapshot copies the sandbox for a caller outside the service's lock.
func (sb *Sandbox) snapshot() *Sandbox {
	c := &Sandbox{ContainerID: sb.ContainerID, NetnsPath: sb.NetnsPath, dns: sb.dns}
	for _, ep := range sb.Endpoints {
		e := *ep
		e.Aliases, e.DNSNames, e.Ports = slices.Clone(ep.Aliases), slices.Clone(ep.DNSNames), slices.Clone(ep.Ports)
		c.Endpoints = append(c.Endpoints, &e)
	}
	return c
}

// ifIndex orders interface names numerically (eth2 before eth10); an
// endpoint recorded before interfaces were named is eth0.
func ifIndex(name string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(name, "eth"))
	if err != nil {
		return 0
	}
	return n
}

// dnsNames are the names an endpoint answers to, as Docker's: the
// container's name, its aliases, its short ID and its hostname, each once.
func dnsNames(name string, aliases []string, containerID, hostname string) []string {
	var out []string
	for _, n := range slices.Concat([]string{name}, aliases, []string{short(containerID), hostname}) {
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// answersTo tells whether the endpoint's container has the name: one of
// its DNS names (any case), or a prefix of 12 or more characters of its ID.
func (ep *Endpoint) answersTo(name string) bool {
	if slices.ContainsFunc(ep.DNSNames, func(n string) bool { return strings.EqualFold(n, name) }) {
		return true
	}
	return len(name) >= 12 && strings.HasPrefix(ep.ContainerID, strings.ToLower(name))
}

// records keeps one file per endpoint, <dir>/<container>/<network>.json,
// so that a daemon restart (or crash) finds every piece to restore or to
// tear down. Before containers had several networks the record was one
// file per container, <dir>/<container>.json; such records are still read.
type records struct{ dir string }

func (r records) containerDir(containerID string) string { return filepath.Join(r.dir, containerID) }

func (r records) path(containerID, netID string) string {
	return filepath.Join(r.containerDir(containerID), netID+".json")
}

func (r records) legacyPath(containerID string) string {
	return filepath.Join(r.dir, containerID+".json")
}

func (r records) save(ep *Endpoint) error {
	data, err := json.Marshal(ep)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(r.containerDir(ep.ContainerID), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(r.path(ep.ContainerID, ep.NetworkID), data, 0o600)
}

// remove deletes an endpoint's record, and the container's directory with
// its last one.
func (r records) remove(containerID, netID string) {
	if err := os.Remove(r.path(containerID, netID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		slog.Warn("removing endpoint record", "container", short(containerID), "err", err)
	}
	// Fails while other endpoints are recorded, as it should.
	_ = os.Remove(r.containerDir(containerID))
}

// removeAll deletes every record of a container.
func (r records) removeAll(containerID string) {
	for _, p := range []string{r.containerDir(containerID), r.legacyPath(containerID)} {
		if err := os.RemoveAll(p); err != nil {
			slog.Warn("removing endpoint records", "container", short(containerID), "err", err)
		}
	}
}

// load reads a container's endpoints, in interface order. Unreadable
// records are skipped (the namespace goes with the container anyway).
func (r records) load(containerID string) []*Endpoint {
	files, _ := filepath.Glob(filepath.Join(r.containerDir(containerID), "*.json"))
	files = append(files, r.legacyPath(containerID))
	var eps []*Endpoint
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var ep Endpoint
		if err := json.Unmarshal(data, &ep); err != nil || ep.NetworkID == "" {
			slog.Warn("unreadable endpoint record", "file", f, "err", err)
			continue
		}
		if ep.IfName == "" { // a record from before several networks
			ep.IfName, ep.DefaultRoute = "eth0", ep.Gateway.IsValid()
			if ep.UserDefined {
				ep.DNSNames = dnsNames(ep.Name, ep.Aliases, ep.ContainerID, "")
			}
		}
		if slices.ContainsFunc(eps, func(e *Endpoint) bool { return e.NetworkID == ep.NetworkID }) {
			continue
		}
		eps = append(eps, &ep)
	}
	slices.SortFunc(eps, func(a, b *Endpoint) int { return ifIndex(a.IfName) - ifIndex(b.IfName) })
	return eps
}

// containers lists the containers that have records.
func (r records) containers() []string {
	entries, _ := os.ReadDir(r.dir)
	var ids []string
	for _, e := range entries {
		id := strings.TrimSuffix(e.Name(), ".json")
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}
