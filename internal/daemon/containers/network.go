package containers

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/daemon/networks"
	"github.com/containerd/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
)

// Docker's messages for the network modes that cannot take more networks.
const (
	errSharedNetns = "container sharing network namespace with another container or host cannot be connected to any other network"
	errHostNet     = "cannot connect container to host network - container must be created in host network mode"
	errNoneNet     = "container cannot be connected to multiple networks with one of the networks in private (none) mode"
	errLeaveHost   = "cannot disconnect container from host network - container was created in host network mode"
)

// ConnectNetwork connects a container to a network (POST
// /networks/{id}/connect). A running container gets a new interface at
// once; a created or stopped one keeps the network in its configuration
// and joins it at start.
func (s *Service) ConnectNetwork(ctx context.Context, netRef, ref string, es *network.EndpointSettings) error {
	c, err := s.store.Get(ref)
	if err != nil {
		return err
	}
	if s.cfg.Networks == nil {
		return errdefs.ErrNotImplemented.WithMessage("networking is disabled")
	}
	n, err := s.cfg.Networks.Get(netRef)
	if err != nil {
		return err
	}
	if es == nil {
		es = &network.EndpointSettings{}
	}
	c.Lock()
	defer c.Unlock()
	if c.State.RemovalInProgress || c.State.Dead {
		return errRemoval(c.ID)
	}
	if strings.HasPrefix(string(c.HostConfig.NetworkMode), "container:") {
		return errdefs.ErrInvalidArgument.WithMessage(errSharedNetns)
	}
	req := networks.EndpointRequestFor(n.ID, es)
	if err := networks.ValidateEndpoint(n, req); err != nil {
		return err
	}
	names := c.Networks()
	if n.Driver == "host" && !slices.Contains(names, n.Name) {
		return errdefs.ErrInvalidArgument.WithMessage(errHostNet)
	}
	for _, name := range names {
		if other, err := s.cfg.Networks.Get(name); err == nil {
			if err := compatible(other, n); err != nil {
				return err
			}
		}
	}
	connected := slices.ContainsFunc(names, func(name string) bool { return s.networkID(c, name) == n.ID })
	cfg := &network.EndpointSettings{NetworkID: n.ID, Aliases: slices.Clone(es.Aliases), IPAMConfig: es.IPAMConfig.Copy()}
	if !c.State.Running {
		if connected {
			return nil // as dockerd: the configuration already there stays
		}
		c.SetEndpoint(n.Name, cfg)
		return s.store.Save(c)
	}
	if connected || n.Driver != "bridge" {
		return errdefs.ErrPermissionDenied.WithMessage(fmt.Sprintf("endpoint with name %s already exists in network %s", c.Name, n.Name))
	}
	if _, err := s.cfg.Networks.Connect(c.ID, c.Name, c.Config.Hostname, req); err != nil {
		return err
	}
	c.SetEndpoint(n.Name, cfg)
	if err := s.store.Save(c); err != nil {
		_ = s.cfg.Networks.Disconnect(c.ID, n.ID)
		return err
	}
	s.updateEtcFiles(c)
	s.emitNetwork(eventtypes.ActionConnect, n, c.ID)
	return nil
}

// DisconnectNetwork disconnects a container from a network (POST
// /networks/{id}/disconnect): a running container loses the interface,
// address and names there; a stopped one the network in its
// configuration.
func (s *Service) DisconnectNetwork(ctx context.Context, netRef, ref string, force bool) error {
	c, err := s.store.Get(ref)
	if err != nil {
		return err
	}
	if s.cfg.Networks == nil {
		return errdefs.ErrNotImplemented.WithMessage("networking is disabled")
	}
	n, nerr := s.cfg.Networks.Get(netRef)
	if nerr != nil && !force {
		return nerr
	}
	c.Lock()
	defer c.Unlock()
	if !c.State.Running || nerr != nil {
		if c.State.RemovalInProgress || c.State.Dead {
			return errRemoval(c.ID)
		}
		name := netRef
		if n != nil {
			name = n.Name
		}
		if !s.removeConfigured(c, name, n) {
			return fmt.Errorf("container %s is not connected to the network %s", c.ID, name)
		}
		return s.store.Save(c)
	}
	if c.HostConfig.NetworkMode == "host" && n.Driver == "host" {
		return errdefs.ErrInvalidArgument.WithMessage(errLeaveHost)
	}
	if n.Driver == "bridge" {
		if err := s.cfg.Networks.Disconnect(c.ID, n.ID); err != nil {
			if networks.IsNotConnected(err) {
				return fmt.Errorf("container %s is not connected to network %s", c.ID, n.Name)
			}
			return err
		}
	} else if !slices.Contains(c.Networks(), n.Name) {
		return fmt.Errorf("container %s is not connected to network %s", c.ID, n.Name)
	}
	s.removeConfigured(c, n.Name, n)
	if err := s.store.Save(c); err != nil {
		return err
	}
	s.updateEtcFiles(c)
	s.emitNetwork(eventtypes.ActionDisconnect, n, c.ID)
	return nil
}

// compatible checks, as dockerd, that a container on network other can
// also be on n: host and none take no second network.
func compatible(other, n *networks.Network) error {
	switch {
	case other.ID == n.ID:
		return nil
	case !other.IsPrivate() || !n.IsPrivate():
		return errdefs.ErrInvalidArgument.WithMessage(errSharedNetns)
	case other.Driver == "null" || n.Driver == "null":
		return errdefs.ErrInvalidArgument.WithMessage(errNoneNet)
	}
	return nil
}

// removeConfigured drops the named network (or, under another key, the
// network n) from c's configuration.
func (s *Service) removeConfigured(c *container.Container, name string, n *networks.Network) bool {
	if c.RemoveEndpoint(name) {
		return true
	}
	for _, key := range c.Networks() {
		if n != nil && s.networkID(c, key) == n.ID {
			return c.RemoveEndpoint(key)
		}
	}
	return false
}

// networkID is the ID of the network c knows by name: the one recorded
// when it joined, else the network of that name now.
func (s *Service) networkID(c *container.Container, name string) string {
	if es := c.Endpoints[name]; es != nil && es.NetworkID != "" {
		return es.NetworkID
	}
	if n, err := s.cfg.Networks.Get(name); err == nil {
		return n.ID
	}
	return ""
}

func errRemoval(id string) error {
	return fmt.Errorf("Container %s is marked for removal and cannot be connected or disconnected to the network", id)
}

// emitNetwork publishes a network event about a container, with dockerd's
// attributes.
func (s *Service) emitNetwork(action eventtypes.Action, n *networks.Network, containerID string) {
	if s.cfg.Events == nil || n == nil {
		return
	}
	attrs := map[string]string{"container": containerID, "name": n.Name, "type": n.Driver}
	s.cfg.Events.Publish(eventtypes.NetworkEventType, action, n.ID, attrs)
}

// sandboxNetworks lists the networks of a container's live endpoints.
func (s *Service) sandboxNetworks(sb *networks.Sandbox) []*networks.Network {
	var out []*networks.Network
	if sb == nil {
		return nil
	}
	for _, ep := range sb.Endpoints {
		if n, err := s.cfg.Networks.Get(ep.NetworkID); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// normalizeNetworks turns the networks asked for at create into c's
// configuration: each one resolved to its name and ID and checked, the
// network mode's first, the others by name. Host and none take no other
// network; a container: mode has none of its own.
func (s *Service) normalizeNetworks(c *container.Container, asked map[string]*network.EndpointSettings) error {
	mode := string(c.HostConfig.NetworkMode)
	primary := container.PrimaryNetwork(c.HostConfig.NetworkMode)
	switch {
	case s.cfg.Networks == nil:
		c.Endpoints = asked
		return nil
	case primary == "":
		c.Endpoints, c.NetworkOrder = nil, []string{}
		return nil
	}
	refs := []string{primary}
	for _, ref := range slices.Sorted(maps.Keys(asked)) {
		if ref != primary && ref != mode {
			refs = append(refs, ref)
		}
	}
	c.Endpoints, c.NetworkOrder = nil, []string{}
	var first *networks.Network
	for _, ref := range refs {
		n, err := s.cfg.Networks.Get(ref)
		if err != nil {
			return errdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
		es := asked[ref]
		if first == nil {
			first = n
			if es == nil {
				es = asked[mode]
			}
		} else if err := compatible(first, n); err != nil {
			return err
		}
		if err := networks.ValidateEndpoint(n, networks.EndpointRequestFor(n.ID, es)); err != nil {
			return err
		}
		cfg := &network.EndpointSettings{NetworkID: n.ID}
		if es != nil {
			cfg.Aliases, cfg.IPAMConfig = slices.Clone(es.Aliases), es.IPAMConfig.Copy()
		}
		c.SetEndpoint(n.Name, cfg)
	}
	return nil
}

// joinRequest lists c's bridge networks for Join; c is locked.
func (s *Service) joinRequest(c *container.Container) networks.JoinRequest {
	req := networks.JoinRequest{
		ContainerID: c.ID, Name: c.Name, Hostname: c.Config.Hostname,
		Ports: c.HostConfig.PortBindings, PublishAll: c.HostConfig.PublishAllPorts, Exposed: c.Config.ExposedPorts,
	}
	for _, name := range c.Networks() {
		ref := name
		if id := s.networkID(c, name); id != "" {
			ref = id
		}
		req.Networks = append(req.Networks, networks.EndpointRequestFor(ref, c.Endpoints[name]))
	}
	return req
}

// usesNetns tells whether c gets a namespace berth wires: a mode that
// names a bridge network, or one that is gone (the start then fails with
// Docker's "network ... not found").
func (s *Service) usesNetns(c *container.Container) bool {
	primary := container.PrimaryNetwork(c.HostConfig.NetworkMode)
	if s.cfg.Networks == nil || primary == "" {
		return false
	}
	n, err := s.cfg.Networks.Get(primary)
	if err != nil {
		return errdefs.IsNotFound(err)
	}
	return n.Driver == "bridge"
}

// networkSettings describes the container's networks in Docker's shape:
// each network it is on, with the live endpoint's address, gateway and
// MAC while it runs; its published ports; exposed ports without bindings.
func (s *Service) networkSettings(c *container.Container) (*containertypes.NetworkSettings, []containertypes.PortSummary) {
	ns := &containertypes.NetworkSettings{Ports: network.PortMap{}, Networks: map[string]*network.EndpointSettings{}}
	var summary []containertypes.PortSummary
	if mode := string(c.HostConfig.NetworkMode); s.cfg.Networks == nil || container.PrimaryNetwork(c.HostConfig.NetworkMode) == "" {
		if p := container.PrimaryNetwork(c.HostConfig.NetworkMode); p != "" {
			mode = p
		}
		ns.Networks[mode] = &network.EndpointSettings{}
	} else {
		summary = s.endpointSettings(c, ns)
	}
	for p := range c.Config.ExposedPorts {
		if _, ok := ns.Ports[p]; !ok {
			ns.Ports[p] = nil
			summary = append(summary, containertypes.PortSummary{PrivatePort: p.Num(), Type: string(p.Proto())})
		}
	}
	return ns, summary
}

// endpointSettings fills ns.Networks with c's networks and, while it
// runs, its endpoints and published ports.
func (s *Service) endpointSettings(c *container.Container, ns *containertypes.NetworkSettings) []containertypes.PortSummary {
	sb := s.cfg.Networks.Sandbox(c.ID)
	for _, name := range c.Networks() {
		es := c.Endpoints[name].Copy()
		if es == nil {
			es = &network.EndpointSettings{}
		}
		key := name
		if n, err := s.cfg.Networks.Get(s.networkID(c, name)); err == nil {
			key, es.NetworkID = n.Name, n.ID
		}
		if ep := sandboxEndpoint(sb, es.NetworkID); ep != nil {
			_, live := s.cfg.Networks.Settings(ep)
			live.IPAMConfig = es.IPAMConfig
			es = live
		}
		ns.Networks[key] = es
	}
	if sb == nil {
		return nil
	}
	ns.SandboxKey = sb.NetnsPath
	var summary []containertypes.PortSummary
	for _, ep := range sb.Endpoints {
		if name, es := s.cfg.Networks.Settings(ep); ns.Networks[name] == nil {
			// Joined but not in the configuration (a crash between the
			// two): shown all the same.
			ns.Networks[name] = es
		}
		for p, bs := range ep.Bindings {
			ns.Ports[p] = bs
		}
		for _, m := range ep.Ports {
			ps := containertypes.PortSummary{PrivatePort: m.ContainerPort, PublicPort: m.HostPort, Type: m.Proto, IP: m.HostIP}
			if !ps.IP.IsValid() {
				ps.IP = netip.IPv4Unspecified()
			}
			summary = append(summary, ps)
		}
	}
	return summary
}

func sandboxEndpoint(sb *networks.Sandbox, netID string) *networks.Endpoint {
	if sb == nil {
		return nil
	}
	return sb.Endpoint(netID)
}

// onNetwork tells whether c is on the network named or identified by ref
// (the ps filter network=).
func (s *Service) onNetwork(c *container.Container, refs []string) bool {
	for _, name := range c.Networks() {
		id := ""
		if s.cfg.Networks != nil {
			id = s.networkID(c, name)
		}
		for _, ref := range refs {
			if ref == name || (id != "" && ref == id) {
				return true
			}
		}
	}
	return false
}
