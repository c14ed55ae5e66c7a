package networks

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/network/link"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
)

// JoinRequest describes a container joining its networks at start.
type JoinRequest struct {
	ContainerID string
	Name        string // container name, without "/"
	Hostname    string
	// Networks are the bridge networks to join, in order: the first
	// becomes eth0.
	Networks   []EndpointRequest
	Ports      network.PortMap
	PublishAll bool
	Exposed    network.PortSet
}

// EndpointRequest is what a container asks of one network: --ip and
// --alias (docker run --network, docker network connect).
type EndpointRequest struct {
	Network string // name, ID or ID prefix
	Aliases []string
	IPv4    netip.Addr // zero: the next free address
}

// EndpointRequestFor reads an endpoint configuration of the API.
func EndpointRequestFor(netRef string, es *network.EndpointSettings) EndpointRequest {
	r := EndpointRequest{Network: netRef}
	if es != nil {
		r.Aliases = slices.Clone(es.Aliases)
		if es.IPAMConfig != nil {
			r.IPv4 = es.IPAMConfig.IPv4Address
		}
	}
	return r
}

// errNotConnected is returned by Disconnect for a network the container
// has no endpoint on.
var errNotConnected = errors.New("not connected")

// IsNotConnected tells whether err is Disconnect's "no such endpoint".
func IsNotConnected(err error) bool { return errors.Is(err, errNotConnected) }

// UsesNetns reports whether a network mode gives the container a namespace
// berth wires (bridge networks), as opposed to host, none or container:.
func (s *Service) UsesNetns(mode string) bool {
	n, err := s.resolveMode(mode)
	return err == nil && n.Driver == "bridge"
}

func (s *Service) resolveMode(mode string) (*Network, error) {
	switch mode {
	case "", "default":
		mode = BridgeName
	}
	return s.Get(mode)
}

// Validate checks a network mode at create time.
func (s *Service) Validate(mode string) error {
	if strings.HasPrefix(mode, "container:") {
		return nil
	}
	_, err := s.resolveMode(mode)
	return err
}

// NetnsPath is where a container's network namespace is kept.
func (s *Service) NetnsPath(containerID string) string {
	return filepath.Join(s.cfg.NetnsDir, containerID)
}

// Join creates the container's network namespace and wires it to each of
// its bridge networks: address, veth, the published ports on the endpoint
// with the default route, and the embedded DNS when one network is
// user-defined. On failure nothing is left.
func (s *Service) Join(req JoinRequest) (_ *Sandbox, retErr error) {
	nets := make([]*Network, len(req.Networks))
	for i, er := range req.Networks {
		n, err := s.Get(er.Network)
		if err != nil {
			return nil, err
		}
		if n.Driver != "bridge" {
			return nil, errdefs.ErrInvalidArgument.WithMessage("network " + n.Name + " has no endpoints")
		}
		if err := ValidateEndpoint(n, er); err != nil {
			return nil, err
		}
		nets[i] = n
	}
	sb := &Sandbox{ContainerID: req.ContainerID, NetnsPath: s.NetnsPath(req.ContainerID)}
	defer func() {
		if retErr != nil {
			s.teardown(sb)
		}
	}()
	if err := link.NewNetns(sb.NetnsPath); err != nil {
		return nil, fmt.Errorf("network namespace: %w", err)
	}
	for i, er := range req.Networks {
		ep, err := s.addEndpoint(sb, nets[i], er, req.Name, req.Hostname)
		if err != nil {
			return nil, err
		}
		sb.Endpoints = append(sb.Endpoints, ep)
	}
	if ep := sb.routed(); ep != nil {
		if err := s.publish(sb, ep, req); err != nil {
			return nil, err
		}
	}
	if sb.Resolves() {
		if err := s.startDNS(sb); err != nil {
			return nil, err
		}
	}
	for _, ep := range sb.Endpoints {
		if err := s.records.save(ep); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	s.sandboxes[sb.ContainerID] = sb
	out := sb.snapshot()
	s.mu.Unlock()
	return out, nil
}

// addEndpoint allocates the container's address on n and plugs a veth
// into the namespace as the sandbox's next interface; the default route
// goes through it if no other endpoint has it. On failure nothing of it
// is left.
func (s *Service) addEndpoint(sb *Sandbox, n *Network, er EndpointRequest, name, hostname string) (_ *Endpoint, retErr error) {
	ep := &Endpoint{
		ID: newID(), ContainerID: sb.ContainerID, NetworkID: n.ID, Name: name, Aliases: slices.Clone(er.Aliases),
		IfName: sb.nextIfName(), NetnsPath: sb.NetnsPath, UserDefined: n.UserDefined,
	}
	if n.UserDefined {
		ep.DNSNames = dnsNames(name, er.Aliases, sb.ContainerID, hostname)
	}
	ip, err := s.ipam.Allocate(n.ID, sb.ContainerID, er.IPv4)
	if err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			if err := s.ipam.Release(n.ID, ip); err != nil {
				slog.Warn("releasing an address", "network", n.Name, "addr", ip, "err", err)
			}
		}
	}()
	ep.Addr = netip.PrefixFrom(ip, n.Pool.Subnet.Bits())
	if !n.Internal {
		ep.Gateway = n.Pool.Gateway
	}
	ep.DefaultRoute = ep.Gateway.IsValid() && sb.routed() == nil
	mac := link.MACFromIP(ip)
	ep.MAC = mac.String()
	le := link.Endpoint{Bridge: n.Bridge, IfName: ep.IfName, Addr: ep.Addr, MAC: mac, MTU: s.cfg.MTU}
	if ep.DefaultRoute {
		le.Gateway = ep.Gateway
	}
	if ep.HostVeth, err = link.Attach(sb.NetnsPath, le); err != nil {
		return nil, fmt.Errorf("attaching to network %s: %w", n.Name, err)
	}
	return ep, nil
}

// Connect plugs a running container into one more network: a new
// interface in its namespace (eth1, eth2, ...), its address there, and
// its names in that network's DNS. A container on the network already
// gets Docker's "endpoint ... already exists" (403).
func (s *Service) Connect(containerID, name, hostname string, er EndpointRequest) (*Endpoint, error) {
	n, err := s.Get(er.Network)
	if err != nil {
		return nil, err
	}
	if err := ValidateEndpoint(n, er); err != nil {
		return nil, err
	}
	if n.Driver != "bridge" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("network " + n.Name + " has no endpoints")
	}
	s.mu.Lock()
	sb := s.sandboxes[containerID]
	var view *Sandbox
	if sb != nil {
		view = sb.snapshot()
	}
	s.mu.Unlock()
	if sb == nil {
		return nil, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("container %s has no network namespace", short(containerID)))
	}
	if view.Endpoint(n.ID) != nil {
		return nil, errdefs.ErrPermissionDenied.WithMessage(fmt.Sprintf("endpoint with name %s already exists in network %s", name, n.Name))
	}
	// The caller serialises the changes of one container, so the view
	// (interface names, who has the default route) stays true.
	ep, err := s.addEndpoint(view, n, er, name, hostname)
	if err != nil {
		return nil, err
	}
	if err := s.records.save(ep); err != nil {
		s.dropEndpoint(view, ep)
		return nil, err
	}
	s.mu.Lock()
	sb.Endpoints = append(sb.Endpoints, ep)
	needDNS := n.UserDefined && sb.dns == nil
	s.mu.Unlock()
	if needDNS {
		if err := s.startDNS(sb); err != nil {
			slog.Warn("embedded DNS", "container", short(containerID), "err", err)
		}
	}
	c := *ep
	return &c, nil
}

// Disconnect unplugs a running container from a network: its interface,
// address, DNS names and published ports there go. The default route
// moves to the next endpoint with a gateway, as Docker's. errNotConnected
// (IsNotConnected) when the container has no endpoint on the network.
func (s *Service) Disconnect(containerID, netID string) error {
	s.mu.Lock()
	sb := s.sandboxes[containerID]
	var ep *Endpoint
	if sb != nil {
		ep = sb.remove(netID)
	}
	var next *Endpoint
	if ep != nil && ep.DefaultRoute {
		if next = sb.nextRoute(); next != nil {
			next.DefaultRoute = true
		}
	}
	var reserved []func() error
	if ep != nil && len(ep.Ports) > 0 {
		for _, l := range sb.reserved {
			reserved = append(reserved, l.Close)
		}
		sb.reserved = nil
	}
	s.mu.Unlock()
	if ep == nil {
		return errNotConnected
	}
	s.dropEndpoint(sb, ep)
	for _, closeFn := range reserved {
		closeFn()
	}
	if next != nil {
		if err := link.SetDefaultRoute(sb.NetnsPath, next.IfName, next.Gateway); err != nil {
			slog.Warn("moving the default route", "container", short(containerID), "to", next.IfName, "err", err)
		}
		if err := s.records.save(next); err != nil {
			slog.Warn("saving endpoint record", "container", short(containerID), "err", err)
		}
	}
	return nil
}

// dropEndpoint removes what addEndpoint and publish made for ep. The
// record goes first: after a crash half way, what is left is only seen
// by the container's teardown, which removes it.
func (s *Service) dropEndpoint(sb *Sandbox, ep *Endpoint) {
	s.records.remove(ep.ContainerID, ep.NetworkID)
	if len(ep.Ports) > 0 {
		if err := s.fw.RemovePorts(ep.ContainerID); err != nil {
			slog.Warn("unpublishing ports", "container", short(ep.ContainerID), "err", err)
		}
	}
	if err := link.Detach(ep.HostVeth); err != nil {
		slog.Warn("removing veth", "container", short(ep.ContainerID), "err", err)
	}
	if err := s.ipam.Release(ep.NetworkID, ep.Addr.Addr()); err != nil {
		slog.Warn("releasing an address", "container", short(ep.ContainerID), "err", err)
	}
}

// Leave undoes Join when the container stops. It is safe to call for a
// container that never joined.
func (s *Service) Leave(containerID string) {
	s.mu.Lock()
	sb := s.sandboxes[containerID]
	delete(s.sandboxes, containerID)
	s.mu.Unlock()
	if sb == nil {
		sb = &Sandbox{ContainerID: containerID, NetnsPath: s.NetnsPath(containerID), Endpoints: s.records.load(containerID)}
	}
	s.teardown(sb)
}

// teardown removes every piece of a sandbox that exists.
func (s *Service) teardown(sb *Sandbox) {
	id := sb.ContainerID
	if sb.dns != nil {
		sb.dns.Close()
	}
	for _, l := range sb.reserved {
		l.Close()
	}
	if err := s.fw.RemovePorts(id); err != nil {
		slog.Warn("unpublishing ports", "container", short(id), "err", err)
	}
	// Deleting the namespace takes the veth pairs with it, in the
	// background (deleting the veths first costs ~20 ms each).
	if err := link.DeleteNetns(sb.NetnsPath); err != nil {
		slog.Warn("removing network namespace", "container", short(id), "err", err)
		for _, ep := range sb.Endpoints {
			if err := link.Detach(ep.HostVeth); err != nil {
				slog.Warn("removing veth", "container", short(id), "err", err)
			}
		}
	}
	if err := s.ipam.ReleaseOwner(id); err != nil {
		slog.Warn("releasing addresses", "container", short(id), "err", err)
	}
	s.records.removeAll(id)
}

// Restore re-creates the daemon-side parts of a running container's
// endpoints after a daemon restart: port reservations, firewall rules
// and DNS. The namespace and veths survived with the container.
func (s *Service) Restore(containerID string) (*Sandbox, error) {
	sb := &Sandbox{ContainerID: containerID, NetnsPath: s.NetnsPath(containerID), Endpoints: s.records.load(containerID)}
	if _, err := os.Stat(sb.NetnsPath); err != nil && len(sb.Endpoints) == 0 {
		// A container that left every network keeps its namespace.
		return nil, errdefs.ErrNotFound.WithMessage("no network namespace for " + short(containerID))
	}
	s.migrateRecords(sb)
	var errs []error
	for _, ep := range sb.Endpoints {
		for p, bs := range ep.Bindings {
			for _, b := range bs {
				hb := b
				if hb.HostIP == netip.IPv4Unspecified() {
					hb.HostIP = netip.Addr{}
				}
				if _, l, err := reserve(p, hb); err == nil {
					sb.reserved = append(sb.reserved, l)
				}
			}
		}
		if len(ep.Ports) > 0 {
			if err := s.fw.AddPorts(containerID, ep.Ports); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if sb.Resolves() {
		if err := s.startDNS(sb); err != nil {
			errs = append(errs, err)
		}
	}
	s.mu.Lock()
	s.sandboxes[containerID] = sb
	out := sb.snapshot()
	s.mu.Unlock()
	return out, errors.Join(errs...)
}

// migrateRecords rewrites a record of the one-network layout as
// per-endpoint records.
func (s *Service) migrateRecords(sb *Sandbox) {
	legacy := s.records.legacyPath(sb.ContainerID)
	if _, err := os.Stat(legacy); err != nil {
		return
	}
	for _, ep := range sb.Endpoints {
		if ep.ID == "" {
			ep.ID = newID()
		}
		if err := s.records.save(ep); err != nil {
			slog.Warn("saving endpoint record", "container", short(sb.ContainerID), "err", err)
			return
		}
	}
	os.Remove(legacy)
}

// Sandbox returns a copy of a running container's sandbox, or nil.
func (s *Service) Sandbox(containerID string) *Sandbox {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sb := s.sandboxes[containerID]; sb != nil {
		return sb.snapshot()
	}
	return nil
}

// Settings renders an endpoint as Docker's endpoint settings, with the
// network's name.
func (s *Service) Settings(ep *Endpoint) (string, *network.EndpointSettings) {
	name := ep.NetworkID
	if n, err := s.Get(ep.NetworkID); err == nil {
		name = n.Name
	}
	mac, _ := net.ParseMAC(ep.MAC)
	es := &network.EndpointSettings{
		NetworkID: ep.NetworkID, EndpointID: ep.ID, Gateway: ep.Gateway, IPAddress: ep.Addr.Addr(),
		IPPrefixLen: ep.Addr.Bits(), MacAddress: network.HardwareAddr(mac), Aliases: slices.Clone(ep.Aliases),
		DNSNames: slices.Clone(ep.DNSNames),
	}
	return name, es
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Reconcile tears down what is left of the sandboxes of containers that
// no longer run (a crash between a container's exit and its teardown):
// endpoint records, namespaces, addresses.
func (s *Service) Reconcile(running func(containerID string) bool) {
	for _, id := range s.records.containers() {
		if !running(id) {
			slog.Info("removing a stale network sandbox", "container", short(id))
			s.Leave(id)
		}
	}
	entries, _ := os.ReadDir(s.cfg.NetnsDir)
	for _, e := range entries {
		if !running(e.Name()) {
			s.Leave(e.Name())
		}
	}
}
