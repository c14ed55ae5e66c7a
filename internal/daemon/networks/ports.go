package networks

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/network/firewall"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
)

// Ephemeral host ports for -P and "-p 80", as Docker's range.
const (
	portRangeStart = 32768
	portRangeEnd   = 60999
)

// publish resolves the port bindings (random host ports where none is
// given, -P for every exposed port), reserves each host port by binding
// it, and programs the DNAT rules.
func (s *Service) publish(sb *Sandbox, a *Endpoint, req JoinRequest) error {
	bindings := network.PortMap{}
	for p, bs := range req.Ports {
		bindings[p] = slices.Clone(bs)
	}
	if req.PublishAll {
		for p := range req.Exposed {
			if _, ok := bindings[p]; !ok {
				bindings[p] = []network.PortBinding{{}}
			}
		}
	}
	a.Bindings = network.PortMap{}
	ports := slices.SortedFunc(func(yield func(network.Port) bool) {
		for p := range bindings {
			if !yield(p) {
				return
			}
		}
	}, func(x, y network.Port) int { return strings.Compare(x.String(), y.String()) })
	for _, p := range ports {
		for _, b := range bindings[p] {
			m, l, err := reserve(p, b)
			if err != nil {
				return err
			}
			sb.reserved = append(sb.reserved, l)
			m.ContainerIP = a.Addr.Addr()
			a.Ports = append(a.Ports, m)
			hostIP := b.HostIP
			if !hostIP.IsValid() {
				hostIP = netip.IPv4Unspecified()
			}
			a.Bindings[p] = append(a.Bindings[p], network.PortBinding{HostIP: hostIP, HostPort: strconv.Itoa(int(m.HostPort))})
		}
	}
	if len(a.Ports) == 0 {
		return nil
	}
	return s.fw.AddPorts(a.ContainerID, a.Ports)
}

// reserve binds the host port of a binding so no other program (or
// container) can take it, picking a free ephemeral port when none is
// given. The error reads as Docker's.
func reserve(p network.Port, b network.PortBinding) (firewall.PortMapping, io.Closer, error) {
	m := firewall.PortMapping{Proto: string(p.Proto()), HostIP: b.HostIP, ContainerPort: p.Num()}
	host := "0.0.0.0"
	if b.HostIP.IsValid() {
		host = b.HostIP.String()
	}
	lo, hi := 0, 0
	if b.HostPort != "" {
		r, err := network.ParsePortRange(b.HostPort)
		if err != nil {
			return m, nil, errdefs.ErrInvalidArgument.WithMessage("invalid host port: " + b.HostPort)
		}
		lo, hi = int(r.Start()), int(r.End())
	}
	try := func(port int) (io.Closer, error) {
		addr := net.JoinHostPort(host, strconv.Itoa(port))
		if m.Proto == "udp" {
			return net.ListenPacket("udp", addr)
		}
		return net.Listen("tcp", addr)
	}
	if lo != 0 && lo == hi {
		l, err := try(lo)
		if err != nil {
			return m, nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("Bind for %s:%d failed: port is already allocated", host, lo))
		}
		m.HostPort = uint16(lo)
		return m, l, nil
	}
	if lo == 0 {
		lo, hi = portRangeStart, portRangeEnd
	}
	start := lo + rand.IntN(hi-lo+1)
	for i := 0; i <= hi-lo; i++ {
		port := lo + (start-lo+i)%(hi-lo+1)
		if l, err := try(port); err == nil {
			m.HostPort = uint16(port)
			return m, l, nil
		}
	}
	return m, nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("Bind for %s failed: all ports in %d-%d are allocated", host, lo, hi))
}
