package networks

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/network/ipam"
	"github.com/berth-dev/berth/internal/network/link"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"net"
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
	for _, a := range s.attached {
		if a.NetworkID == n.ID {
			r.Containers[a.ContainerID] = network.EndpointResource{
				Name: a.Name, EndpointID: a.HostVeth, IPv4Address: a.Addr, MacAddress: parseMAC(a.MAC),
			}
		}
	}
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
	for _, a := range s.attached {
		if a.NetworkID == netID {
			names = append(names, a.Name)
		}
	}
	return names
}

func parseMAC(s string) network.HardwareAddr {
	m, _ := net.ParseMAC(s)
	return network.HardwareAddr(m)
}
