package networks

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/network/ipam"
	"github.com/berth-dev/berth/internal/network/link"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
)

// Create makes a user-defined bridge network.
func (s *Service) Create(req network.CreateRequest) (network.CreateResponse, error) {
	if req.Name == "" {
		return network.CreateResponse{}, errdefs.ErrInvalidArgument.WithMessage("network name cannot be empty")
	}
	driver := req.Driver
	if driver == "" {
		driver = "bridge"
	}
	if driver != "bridge" {
		return network.CreateResponse{}, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("plugin %q not found", driver))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byName(req.Name) != nil {
		return network.CreateResponse{}, errdefs.ErrConflict.WithMessage(fmt.Sprintf("network with name %s already exists", req.Name))
	}
	n := &Network{
		ID: newID(), Name: req.Name, Driver: driver, Created: time.Now().UTC(), Internal: req.Internal,
		Attachable: req.Attachable, Labels: req.Labels, Options: req.Options, UserDefined: true,
	}
	if n.Options == nil {
		n.Options = map[string]string{}
	}
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	n.Bridge = n.Options[bridgeNameOption]
	if n.Bridge == "" {
		n.Bridge = "br-" + n.ID[:12]
	}
	if len(n.Bridge) > 15 {
		return network.CreateResponse{}, errdefs.ErrInvalidArgument.WithMessage("bridge name too long: " + n.Bridge)
	}
	pool, err := s.poolFor(req.IPAM)
	if err != nil {
		return network.CreateResponse{}, err
	}
	if pool, err = s.ipam.AddNetwork(n.ID, pool); err != nil {
		return network.CreateResponse{}, err
	}
	n.Pool = pool
	n.AutoSubnet = req.IPAM == nil || len(req.IPAM.Config) == 0 || !req.IPAM.Config[0].Subnet.IsValid()
	if err := s.program(n); err != nil {
		_ = s.ipam.RemoveNetwork(n.ID)
		_ = link.DeleteBridge(n.Bridge)
		return network.CreateResponse{}, err
	}
	s.networks[n.ID] = n
	if err := s.save(); err != nil {
		return network.CreateResponse{}, err
	}
	return network.CreateResponse{ID: n.ID, Warning: ""}, nil
}

// poolFor reads --subnet, --gateway and --ip-range, or picks a free subnet.
func (s *Service) poolFor(cfg *network.IPAM) (ipam.Pool, error) {
	var p ipam.Pool
	if cfg != nil && len(cfg.Config) > 0 {
		c := cfg.Config[0]
		p.Subnet, p.Gateway, p.IPRange = c.Subnet, c.Gateway, c.IPRange
	}
	if !p.Subnet.IsValid() {
		routes, err := link.HostRoutes()
		if err != nil {
			return p, err
		}
		if p.Subnet, err = ipam.ChooseSubnet(s.cfg.Pools, s.usedSubnets(), routes); err != nil {
			return p, err
		}
	}
	return p, nil
}

// Remove deletes a user-defined network that no container uses.
func (s *Service) Remove(ref string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.getLocked(ref)
	if err != nil {
		return err
	}
	if !n.UserDefined {
		return errdefs.ErrPermissionDenied.WithMessage(fmt.Sprintf("%s is a pre-defined network and cannot be removed", n.Name))
	}
	if u := s.inUseLocked(n.ID); len(u) > 0 {
		return errdefs.ErrPermissionDenied.WithMessage(fmt.Sprintf("error while removing network: network %s has active endpoints (name:%q id:%q)", n.Name, u[0], short(n.ID)))
	}
	if err := s.fw.RemoveNetwork(n.Name); err != nil {
		return err
	}
	if err := link.DeleteBridge(n.Bridge); err != nil {
		return err
	}
	if err := s.ipam.RemoveNetwork(n.ID); err != nil {
		return err
	}
	delete(s.networks, n.ID)
	return s.save()
}

// List returns every network, sorted by name.
func (s *Service) List() []*Network {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := slices.Collect(maps.Values(s.networks))
	slices.SortFunc(list, func(a, b *Network) int { return strings.Compare(a.Name, b.Name) })
	return list
}

// Summary renders a network in Docker's shape; containers maps container
// IDs to their endpoints (for inspect).
func (s *Service) Summary(n *Network) network.Inspect {
	r := network.Inspect{Network: network.Network{
		Name: n.Name, ID: n.ID, Created: n.Created, Scope: "local", Driver: n.Driver, EnableIPv4: n.Driver == "bridge",
		Internal: n.Internal, Attachable: n.Attachable, Options: n.Options, Labels: n.Labels,
		IPAM: network.IPAM{Driver: "default", Options: map[string]string{}, Config: []network.IPAMConfig{}},
	}, Containers: map[string]network.EndpointResource{}}
	if n.Pool.Subnet.IsValid() {
		r.IPAM.Config = []network.IPAMConfig{{Subnet: n.Pool.Subnet, Gateway: n.Pool.Gateway, IPRange: n.Pool.IPRange}}
	}
	s.mu.Lock()
	s.eachEndpoint(n.ID, func(ep *Endpoint) {
		r.Containers[ep.ContainerID] = network.EndpointResource{
			Name: ep.Name, EndpointID: ep.ID, IPv4Address: ep.Addr, MacAddress: parseMAC(ep.MAC),
		}
	})
	s.mu.Unlock()
	return r
}

// InUse lists the containers attached to a network right now.
func (s *Service) InUse(netID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inUseLocked(netID)
}

func (s *Service) inUseLocked(netID string) []string {
	var names []string
	s.eachEndpoint(netID, func(ep *Endpoint) { names = append(names, ep.Name) })
	sort.Strings(names)
	return names
}

func parseMAC(s string) network.HardwareAddr {
	m, _ := net.ParseMAC(s)
	return network.HardwareAddr(m)
}

// ValidateEndpoint checks what a container asks of network n (--ip,
// --alias) with dockerd's messages: aliases and addresses only on
// user-defined networks, an address only where the user chose the subnet,
// and within it (or within its --ip-range).
func ValidateEndpoint(n *Network, er EndpointRequest) error {
	var errs []error
	ip := er.IPv4
	if !n.UserDefined {
		if ip.IsValid() {
			errs = append(errs, errors.New("user specified IP address is supported on user defined networks only"))
		}
		if len(er.Aliases) > 0 {
			errs = append(errs, errors.New("network-scoped alias is supported only for containers in user defined networks"))
		}
	}
	if ip.IsValid() && (!ip.Unmap().Is4() || ip.IsUnspecified()) {
		errs = append(errs, fmt.Errorf("invalid IPv4 address: %s", ip))
	} else if ip.IsValid() && n.Driver == "bridge" {
		switch r := n.Pool.IPRange; {
		case n.AutoSubnet:
			errs = append(errs, errors.New("user specified IP address is supported only when connecting to networks with user configured subnets"))
		case r.IsValid() && !r.Contains(ip.Unmap()), !r.IsValid() && !n.Pool.Subnet.Contains(ip.Unmap()):
			errs = append(errs, fmt.Errorf("no configured subnet or ip-range contain the IP address %s", ip))
		}
	}
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errdefs.ErrInvalidArgument.WithMessage("invalid endpoint settings:\n" + errs[0].Error())
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errdefs.ErrInvalidArgument.WithMessage("invalid endpoint settings:\n* " + strings.Join(msgs, "\n* "))
}

// IsPrivate tells whether a network gives containers a namespace of
// their own (bridge and none), as opposed to the host's.
func (n *Network) IsPrivate() bool { return n.Driver != "host" }
