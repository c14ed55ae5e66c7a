package networks

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/network/dns"
	"github.com/berth-dev/berth/internal/network/firewall"
	"github.com/berth-dev/berth/internal/network/link"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
)

// Ephemeral host ports for -P and "-p 80", as Docker's range.
const (
	portRangeStart = 32768
	portRangeEnd   = 60999
)

// JoinRequest describes a container joining its network at start.
type JoinRequest struct {
	ContainerID string
	Name        string // container name, without "/"
	Hostname    string
	Mode        string // HostConfig.NetworkMode
	Aliases     []string
	IPv4        netip.Addr // --ip, or zero
	Ports       network.PortMap
	PublishAll  bool
	Exposed     network.PortSet
}

// Attachment is a running container's place on a bridge network.
type Attachment struct {
	ContainerID string                 `json:"containerID"`
	NetworkID   string                 `json:"networkID"`
	Name        string                 `json:"name"`
	Aliases     []string               `json:"aliases,omitempty"`
	NetnsPath   string                 `json:"netnsPath"`
	Addr        netip.Prefix           `json:"addr"`
	Gateway     netip.Addr             `json:"gateway,omitzero"`
	MAC         string                 `json:"mac"`
	HostVeth    string                 `json:"hostVeth"`
	Ports       []firewall.PortMapping `json:"ports,omitempty"`
	Bindings    network.PortMap        `json:"bindings,omitempty"`
	UserDefined bool                   `json:"userDefined,omitempty"`
	dns         *dns.Server
	reserved    []io.Closer
}

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

func (s *Service) endpointPath(id string) string {
	return filepath.Join(s.cfg.Root, "endpoints", id+".json")
}

// NetnsPath is where a container's network namespace is kept.
func (s *Service) NetnsPath(containerID string) string {
	return filepath.Join(s.cfg.NetnsDir, containerID)
}

// Join creates the container's network namespace and wires it to its
// bridge network: address, veth, published ports, and for user-defined
// networks the embedded DNS. On failure nothing is left.
func (s *Service) Join(req JoinRequest) (_ *Attachment, retErr error) {
	n, err := s.resolveMode(req.Mode)
	if err != nil {
		return nil, err
	}
	if n.Driver != "bridge" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("network " + n.Name + " has no endpoints")
	}
	a := &Attachment{ContainerID: req.ContainerID, NetworkID: n.ID, Name: req.Name, Aliases: req.Aliases,
		NetnsPath: s.NetnsPath(req.ContainerID), UserDefined: n.UserDefined}
	defer func() {
		if retErr != nil {
			s.teardown(a)
		}
	}()
	if req.IPv4.IsValid() && !n.UserDefined {
		return nil, errdefs.ErrInvalidArgument.WithMessage("user specified IP address is supported on user defined networks only")
	}
	ip, err := s.ipam.Allocate(n.ID, req.ContainerID, req.IPv4)
	if err != nil {
		return nil, err
	}
	a.Addr = netip.PrefixFrom(ip, n.Pool.Subnet.Bits())
	if !n.Internal {
		a.Gateway = n.Pool.Gateway
	}
	if err := link.NewNetns(a.NetnsPath); err != nil {
		return nil, fmt.Errorf("network namespace: %w", err)
	}
	mac := link.MACFromIP(ip)
	a.MAC = mac.String()
	veth, err := link.Attach(a.NetnsPath, link.Endpoint{Bridge: n.Bridge, IfName: "eth0", Addr: a.Addr, Gateway: a.Gateway, MAC: mac, MTU: s.cfg.MTU})
	if err != nil {
		return nil, fmt.Errorf("attaching to network %s: %w", n.Name, err)
	}
	a.HostVeth = veth
	if err := s.publish(a, req); err != nil {
		return nil, err
	}
	if n.UserDefined {
		if err := s.startDNS(a); err != nil {
			return nil, err
		}
	}
	if err := s.persist(a); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.attached[a.ContainerID] = a
	s.mu.Unlock()
	return a, nil
}

// publish resolves the port bindings (random host ports where none is
// given, -P for every exposed port), reserves each host port by binding
// it, and programs the DNAT rules.
func (s *Service) publish(a *Attachment, req JoinRequest) error {
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
			a.reserved = append(a.reserved, l)
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

// startDNS runs the embedded resolver in the container's namespace:
// names of the containers on the same network, forwarded otherwise.
func (s *Service) startDNS(a *Attachment) error {
	netID := a.NetworkID
	srv, err := dns.Start(dns.Config{
		NetnsPath: a.NetnsPath,
		Upstream:  dnsUpstreams(),
		Lookup: func(name string) ([]netip.Addr, bool) {
			return s.lookup(netID, name)
		},
		Reverse: func(addr netip.Addr) ([]string, bool) {
			return s.reverse(netID, addr)
		},
	})
	if err != nil {
		return fmt.Errorf("embedded DNS: %w", err)
	}
	a.dns = srv
	return nil
}

// lookup resolves a name on network netID: a container's name, alias or
// short (12-character) ID.
func (s *Service) lookup(netID, name string) ([]netip.Addr, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var addrs []netip.Addr
	for _, a := range s.attached {
		if a.NetworkID != netID {
			continue
		}
		if strings.EqualFold(a.Name, name) || slices.ContainsFunc(a.Aliases, func(x string) bool { return strings.EqualFold(x, name) }) ||
			(len(name) >= 12 && strings.HasPrefix(a.ContainerID, strings.ToLower(name))) {
			addrs = append(addrs, a.Addr.Addr())
		}
	}
	return addrs, len(addrs) > 0
}

func (s *Service) reverse(netID string, addr netip.Addr) ([]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.attached {
		if a.NetworkID == netID && a.Addr.Addr() == addr {
			n := s.networks[netID]
			return []string{a.Name + "." + n.Name}, true
		}
	}
	return nil, false
}

func (s *Service) persist(a *Attachment) error {
	data, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.endpointPath(a.ContainerID)), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(s.endpointPath(a.ContainerID), data, 0o600)
}

// Leave undoes Join when the container stops. It is safe to call for a
// container that never joined.
func (s *Service) Leave(containerID string) {
	s.mu.Lock()
	a := s.attached[containerID]
	delete(s.attached, containerID)
	s.mu.Unlock()
	if a == nil {
		a = s.readAttachment(containerID)
	}
	if a == nil {
		a = &Attachment{ContainerID: containerID, NetnsPath: s.NetnsPath(containerID)}
	}
	s.teardown(a)
}

func (s *Service) readAttachment(id string) *Attachment {
	data, err := os.ReadFile(s.endpointPath(id))
	if err != nil {
		return nil
	}
	var a Attachment
	if json.Unmarshal(data, &a) != nil {
		return nil
	}
	return &a
}

// teardown removes every piece of an attachment that exists.
func (s *Service) teardown(a *Attachment) {
	if a.dns != nil {
		a.dns.Close()
	}
	for _, l := range a.reserved {
		l.Close()
	}
	if err := s.fw.RemovePorts(a.ContainerID); err != nil {
		slog.Warn("unpublishing ports", "container", short(a.ContainerID), "err", err)
	}
	// Deleting the namespace takes the veth pair with it, in the
	// background (deleting the veth first costs ~20 ms).
	if err := link.DeleteNetns(a.NetnsPath); err != nil {
		slog.Warn("removing network namespace", "container", short(a.ContainerID), "err", err)
		if a.HostVeth != "" {
			if err := link.Detach(a.HostVeth); err != nil {
				slog.Warn("removing veth", "container", short(a.ContainerID), "err", err)
			}
		}
	}
	if err := s.ipam.ReleaseOwner(a.ContainerID); err != nil {
		slog.Warn("releasing addresses", "container", short(a.ContainerID), "err", err)
	}
	if err := os.Remove(s.endpointPath(a.ContainerID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		slog.Warn("removing endpoint record", "container", short(a.ContainerID), "err", err)
	}
}

// Restore re-creates the daemon-side parts of a running container's
// attachment after a daemon restart: port reservations, firewall rules
// and DNS. The namespace and veth survived with the container.
func (s *Service) Restore(containerID string) (*Attachment, error) {
	a := s.readAttachment(containerID)
	if a == nil {
		return nil, errdefs.ErrNotFound.WithMessage("no network attachment for " + short(containerID))
	}
	for p, bs := range a.Bindings {
		for _, b := range bs {
			hb := b
			if hb.HostIP == netip.IPv4Unspecified() {
				hb.HostIP = netip.Addr{}
			}
			if _, l, err := reserve(p, hb); err == nil {
				a.reserved = append(a.reserved, l)
			}
		}
	}
	if len(a.Ports) > 0 {
		if err := s.fw.AddPorts(a.ContainerID, a.Ports); err != nil {
			return a, err
		}
	}
	if a.UserDefined {
		if err := s.startDNS(a); err != nil {
			return a, err
		}
	}
	s.mu.Lock()
	s.attached[containerID] = a
	s.mu.Unlock()
	return a, nil
}

// Attached returns the live attachment of a container, if any.
func (s *Service) Attached(containerID string) *Attachment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attached[containerID]
}

// Settings renders an attachment as Docker's endpoint settings.
func (s *Service) Settings(a *Attachment) (string, *network.EndpointSettings) {
	n, err := s.Get(a.NetworkID)
	name := a.NetworkID
	if err == nil {
		name = n.Name
	}
	mac, _ := net.ParseMAC(a.MAC)
	ep := &network.EndpointSettings{
		NetworkID: a.NetworkID, EndpointID: a.HostVeth, Gateway: a.Gateway, IPAddress: a.Addr.Addr(),
		IPPrefixLen: a.Addr.Bits(), MacAddress: network.HardwareAddr(mac), Aliases: a.Aliases,
	}
	if a.UserDefined {
		ep.DNSNames = append([]string{a.Name, short(a.ContainerID)}, a.Aliases...)
	}
	return name, ep
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Reconcile tears down what is left of the attachments of containers
// that no longer run (a crash between a container's exit and its
// teardown): endpoint records, namespaces, addresses.
func (s *Service) Reconcile(running func(containerID string) bool) {
	files, _ := filepath.Glob(filepath.Join(s.cfg.Root, "endpoints", "*.json"))
	for _, f := range files {
		id := strings.TrimSuffix(filepath.Base(f), ".json")
		if !running(id) {
			slog.Info("removing a stale network attachment", "container", short(id))
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
