package networks

import (
	"fmt"
	"net/netip"

	"github.com/berth-dev/berth/internal/network/dns"
)

// startDNS runs the embedded resolver in the container's namespace: the
// names of the containers on the user-defined networks the container is
// on, forwarded otherwise.
func (s *Service) startDNS(sb *Sandbox) error {
	id := sb.ContainerID
	srv, err := dns.Start(dns.Config{
		NetnsPath: sb.NetnsPath,
		Upstream:  dnsUpstreams(),
		Lookup: func(name string) ([]netip.Addr, bool) {
			return s.lookup(id, name)
		},
		Reverse: func(addr netip.Addr) ([]string, bool) {
			return s.reverse(id, addr)
		},
	})
	if err != nil {
		return fmt.Errorf("embedded DNS: %w", err)
	}
	s.mu.Lock()
	sb.dns = srv
	s.mu.Unlock()
	return nil
}

// lookup resolves a name for the container: the networks it is on are
// searched in interface order, and the first one where some container has
// the name answers with their addresses there, as Docker's resolver.
func (s *Service) lookup(containerID, name string) ([]netip.Addr, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	found, _ := s.search(containerID, func(ep *Endpoint) bool { return ep.answersTo(name) })
	addrs := make([]netip.Addr, len(found))
	for i, ep := range found {
		addrs[i] = ep.Addr.Addr()
	}
	return addrs, len(addrs) > 0
}

// reverse finds the container with addr on one of the container's
// user-defined networks: "name.network".
func (s *Service) reverse(containerID string, addr netip.Addr) ([]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	found, n := s.search(containerID, func(ep *Endpoint) bool { return ep.Addr.Addr() == addr })
	if len(found) == 0 || n == nil {
		return nil, false
	}
	return []string{found[0].Name + "." + n.Name}, true
}

// search returns the endpoints that match on the first of the container's
// user-defined networks (in interface order) where any does, and that
// network; s.mu is held.
func (s *Service) search(containerID string, match func(*Endpoint) bool) ([]*Endpoint, *Network) {
	sb := s.sandboxes[containerID]
	if sb == nil {
		return nil, nil
	}
	for _, own := range sb.Endpoints {
		if !own.UserDefined {
			continue
		}
		var found []*Endpoint
		s.eachEndpoint(own.NetworkID, func(ep *Endpoint) {
			if match(ep) {
				found = append(found, ep)
			}
		})
		if len(found) > 0 {
			return found, s.networks[own.NetworkID]
		}
	}
	return nil, nil
}

// eachEndpoint calls fn for every live endpoint on network netID; s.mu
// is held.
func (s *Service) eachEndpoint(netID string, fn func(*Endpoint)) {
	for _, sb := range s.sandboxes {
		for _, ep := range sb.Endpoints {
			if ep.NetworkID == netID {
				fn(ep)
			}
		}
	}
}
