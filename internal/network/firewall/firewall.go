package firewall

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/errdefs"
)

// DefaultTable is the name of berth's nftables table.
const DefaultTable = "berth"

// Network is a bridge network as the firewall sees it.
type Network struct {
	Name     string
	Bridge   string       // the bridge interface's name
	Subnet   netip.Prefix // the containers' addresses
	Internal bool         // no traffic leaves the bridge, none enters it
	ICC      bool         // containers on the bridge may talk to each other
	// Routed lets other hosts reach the containers' addresses directly
	// (routed, not only through published ports), as dockerd's
	// allow-direct-routing and gateway mode "nat-unprotected": the
	// tutorial's cross-host routes need it.
	Routed bool
}

// PortMapping publishes ContainerIP:ContainerPort on HostIP:HostPort.
type PortMapping struct {
	Proto         string     // "tcp" or "udp"
	HostIP        netip.Addr // zero or unspecified: every host address
	HostPort      uint16
	ContainerIP   netip.Addr
	ContainerPort uint16
}

// Firewall programs berth's rules. Reset must come first; every other call
// fails until it has.
type Firewall interface {
	// Reset (re)creates the table empty and forgets all networks and ports.
	Reset() error
	// AddNetwork sets up masquerade, forwarding and isolation for n.
	AddNetwork(n Network) error
	// RemoveNetwork removes what AddNetwork(n) added; unknown names are a no-op.
	RemoveNetwork(name string) error
	// AddPorts publishes ms for owner (a container or endpoint ID), all or
	// nothing. A host address, protocol and port already published fails
	// with errdefs.ErrConflict.
	AddPorts(owner string, ms []PortMapping) error
	// RemovePorts unpublishes every port of owner; unknown owners are a no-op.
	RemovePorts(owner string) error
	// Delete removes the table; it succeeds if the table is absent.
	Delete() error
}

var errNotReady = errors.New("firewall: table not set up (Reset first)")

// maxNameLen bounds network names so that chain names stay short.
const maxNameLen = 128

func (n Network) validate() error {
	switch {
	case n.Name == "" || len(n.Name) > maxNameLen || strings.ContainsAny(n.Name, "\x00 \t\n"):
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("firewall: invalid network name %q", n.Name))
	case n.Bridge == "" || len(n.Bridge) > 15 || strings.ContainsAny(n.Bridge, "\x00/ \t\n"):
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("firewall: network %s: invalid bridge name %q", n.Name, n.Bridge))
	case !n.Subnet.IsValid():
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("firewall: network %s: no subnet", n.Name))
	case !n.Subnet.Addr().Is4():
		return errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("firewall: network %s: IPv6 subnet %s not supported", n.Name, n.Subnet))
	}
	return nil
}

// normalize validates m and maps an unspecified host address to the zero
// value.
func (m PortMapping) normalize() (PortMapping, error) {
	bad := func(format string, a ...any) (PortMapping, error) {
		return m, errdefs.ErrInvalidArgument.WithMessage("firewall: " + fmt.Sprintf(format, a...))
	}
	if m.Proto != "tcp" && m.Proto != "udp" {
		return bad("unsupported protocol %q", m.Proto)
	}
	if m.HostPort == 0 || m.ContainerPort == 0 {
		return bad("port 0 in %s", m)
	}
	if m.HostIP.IsValid() && m.HostIP.Unmap().Is4() && m.HostIP.Unmap().IsUnspecified() {
		m.HostIP = netip.Addr{}
	}
	if m.HostIP.IsValid() {
		m.HostIP = m.HostIP.Unmap()
		if !m.HostIP.Is4() {
			return m, errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("firewall: IPv6 host address in %s not supported", m))
		}
	}
	if !m.ContainerIP.IsValid() {
		return bad("no container address in %s", m)
	}
	m.ContainerIP = m.ContainerIP.Unmap()
	if !m.ContainerIP.Is4() {
		return m, errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("firewall: IPv6 container address in %s not supported", m))
	}
	return m, nil
}

func (m PortMapping) String() string {
	host := "*"
	if m.HostIP.IsValid() {
		host = m.HostIP.String()
	}
	return fmt.Sprintf("%s:%d/%s->%s:%d", host, m.HostPort, m.Proto, m.ContainerIP, m.ContainerPort)
}

// portKey identifies a published port: one per map element.
type portKey struct {
	hostIP netip.Addr
	proto  string
	port   uint16
}

func (m PortMapping) key() portKey { return portKey{m.HostIP, m.Proto, m.HostPort} }

// state is the bookkeeping shared by the nftables implementation and the
// fake: checks come first, and records change only after the kernel (or the
// fake) accepted the change.
type state struct {
	ready    bool
	networks map[string]Network
	ports    map[string][]PortMapping // by owner
	used     map[portKey]string       // -> owner
}

func (s *state) reset() {
	*s = state{ready: true, networks: map[string]Network{}, ports: map[string][]PortMapping{}, used: map[portKey]string{}}
}

func (s *state) checkNetwork(n Network) error {
	if !s.ready {
		return errNotReady
	}
	if err := n.validate(); err != nil {
		return err
	}
	for _, o := range s.networks {
		if o.Name == n.Name || o.Bridge == n.Bridge {
			return errdefs.ErrConflict.WithMessage(fmt.Sprintf("firewall: network %s (bridge %s) conflicts with network %s (bridge %s)", n.Name, n.Bridge, o.Name, o.Bridge))
		}
	}
	return nil
}

// checkPorts returns ms normalized, or why they cannot be published.
func (s *state) checkPorts(owner string, ms []PortMapping) ([]PortMapping, error) {
	if !s.ready {
		return nil, errNotReady
	}
	if owner == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("firewall: empty port owner")
	}
	out := make([]PortMapping, 0, len(ms))
	seen := map[portKey]bool{}
	for _, m := range ms {
		m, err := m.normalize()
		if err != nil {
			return nil, err
		}
		k := m.key()
		if o, ok := s.used[k]; ok || seen[k] {
			if !ok {
				o = owner
			}
			return nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("firewall: %s: host port already published by %s", m, o))
		}
		seen[k] = true
		out = append(out, m)
	}
	return out, nil
}

func (s *state) addPorts(owner string, ms []PortMapping) {
	s.ports[owner] = append(s.ports[owner], ms...)
	for _, m := range ms {
		s.used[m.key()] = owner
	}
}

func (s *state) removePorts(owner string) {
	for _, m := range s.ports[owner] {
		delete(s.used, m.key())
	}
	delete(s.ports, owner)
}

// networkList returns the networks sorted by name.
func (s *state) networkList() []Network {
	out := make([]Network, 0, len(s.networks))
	for _, n := range s.networks {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b Network) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// EnableRouteLocalnet sets net.ipv4.conf.<bridge>.route_localnet=1 in the
// calling thread's network namespace, so that connections from the host to
// 127.0.0.1:<published port> may be routed to a container on bridge.
func EnableRouteLocalnet(bridge string) error {
	if bridge == "" || bridge == "." || bridge == ".." || strings.Contains(bridge, "/") {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("firewall: invalid bridge name %q", bridge))
	}
	p := filepath.Join("/proc/sys/net/ipv4/conf", bridge, "route_localnet")
	if err := os.WriteFile(p, []byte("1"), 0o644); err != nil {
		return fmt.Errorf("firewall: enable route_localnet: %w", err)
	}
	return nil
}
