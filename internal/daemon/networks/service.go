// Package networks is berthd's network service: the predefined bridge,
// host and none networks, user-defined bridge networks, and each running
// container's sandbox on them — one namespace with an endpoint (veth,
// address) per network, published ports, embedded DNS — built from
// internal/network's parts.
package networks

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/network/dns"
	"github.com/berth-dev/berth/internal/network/firewall"
	"github.com/berth-dev/berth/internal/network/ipam"
	"github.com/berth-dev/berth/internal/network/link"
	"github.com/containerd/errdefs"
)

// Names of the predefined networks and the default bridge interface.
const (
	BridgeName        = "bridge"
	HostName          = "host"
	NoneName          = "none"
	DefaultBridgeIf   = "berth0"
	bridgeNameOption  = "com.docker.network.bridge.name"
	gatewayModeOption = "com.docker.network.bridge.gateway_mode_ipv4"
	defaultBridgeCIDR = "172.17.0.0/16"
)

// Network is one network as berth stores it.
type Network struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Driver     string            `json:"driver"` // bridge, host, null
	Created    time.Time         `json:"created"`
	Internal   bool              `json:"internal,omitempty"`
	Attachable bool              `json:"attachable,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	Options    map[string]string `json:"options,omitempty"`
	Bridge     string            `json:"bridge,omitempty"`
	Pool       ipam.Pool         `json:"pool,omitzero"`
	// UserDefined networks get the embedded DNS; the default bridge not.
	UserDefined bool `json:"userDefined,omitempty"`
	// AutoSubnet tells that berth chose the subnet: containers cannot
	// ask for an address (--ip) there, as in Docker.
	AutoSubnet bool `json:"autoSubnet,omitempty"`
}

// Config wires the service.
type Config struct {
	Root     string // state: networks.json, ipam.json
	NetnsDir string // persistent network namespaces of containers
	Firewall firewall.Firewall
	// Bip is the default bridge's address and prefix (--bip), FixedCIDR
	// its containers' range, MTU the bridges' MTU; zero values: defaults.
	Bip       netip.Prefix
	FixedCIDR netip.Prefix
	MTU       int
	Pools     []ipam.AddressPool
	// DefaultBridge is the default bridge's interface (DefaultBridgeIf
	// when empty).
	DefaultBridge string
	// AllowDirectRouting lets other hosts reach every network's
	// containers by routing (dockerd's allow-direct-routing).
	AllowDirectRouting bool
}

// Service manages networks and the containers' endpoints on them.
type Service struct {
	cfg  Config
	ipam *ipam.Allocator
	fw   firewall.Firewall

	records records

	mu       sync.Mutex
	networks map[string]*Network // by ID
	// sandboxes holds the live sandbox of each running container on
	// bridge networks, by container ID.
	sandboxes map[string]*Sandbox
}

// New loads the networks, creates the predefined ones and programs the
// bridges and the firewall from scratch (no duplicates after a crash).
func New(cfg Config) (*Service, error) {
	if err := os.MkdirAll(cfg.Root, 0o700); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.NetnsDir, 0o755); err != nil {
		return nil, err
	}
	alloc, err := ipam.Open(filepath.Join(cfg.Root, "ipam.json"))
	if err != nil {
		return nil, err
	}
	if len(cfg.Pools) == 0 {
		cfg.Pools = ipam.DefaultPools()
	}
	if cfg.DefaultBridge == "" {
		cfg.DefaultBridge = DefaultBridgeIf
	}
	s := &Service{
		cfg: cfg, ipam: alloc, fw: cfg.Firewall, records: records{dir: filepath.Join(cfg.Root, "endpoints")},
		networks: map[string]*Network{}, sandboxes: map[string]*Sandbox{},
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	if err := s.fw.Reset(); err != nil {
		return nil, fmt.Errorf("firewall: %w", err)
	}
	if err := s.ensurePredefined(); err != nil {
		return nil, err
	}
	for _, n := range s.networks {
		if n.Driver == "bridge" {
			if err := s.program(n); err != nil {
				return nil, fmt.Errorf("network %s: %w", n.Name, err)
			}
		}
	}
	return s, nil
}

func (s *Service) statePath() string { return filepath.Join(s.cfg.Root, "networks.json") }

func (s *Service) load() error {
	data, err := os.ReadFile(s.statePath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var list []*Network
	if err := json.Unmarshal(data, &list); err != nil {
		return fmt.Errorf("%s: %w", s.statePath(), err)
	}
	for _, n := range list {
		s.networks[n.ID] = n
	}
	return nil
}

// save writes the networks; s.mu must be held.
func (s *Service) save() error {
	list := slices.Collect(maps.Values(s.networks))
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	data, err := json.Marshal(list)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(s.statePath(), data, 0o600)
}

func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ensurePredefined creates bridge, host and none on first start. The
// default bridge takes --bip, or 172.17.0.0/16, or when that is routed on
// the host already (a docker0, say) the next free default pool.
func (s *Service) ensurePredefined() error {
	for _, name := range []string{BridgeName, HostName, NoneName} {
		if s.byName(name) != nil {
			continue
		}
		n := &Network{ID: newID(), Name: name, Created: time.Now().UTC(), Options: map[string]string{}, Labels: map[string]string{}}
		switch name {
		case HostName:
			n.Driver = "host"
		case NoneName:
			n.Driver = "null"
		case BridgeName:
			n.Driver = "bridge"
			n.Bridge = s.cfg.DefaultBridge
			pool, err := s.defaultBridgePool()
			if err != nil {
				return err
			}
			n.Pool = pool
			n.Options = map[string]string{
				"com.docker.network.bridge.default_bridge":       "true",
				"com.docker.network.bridge.enable_icc":           "true",
				"com.docker.network.bridge.enable_ip_masquerade": "true",
				bridgeNameOption: s.cfg.DefaultBridge,
			}
			if _, err := s.ipam.AddNetwork(n.ID, pool); err != nil && !errors.Is(err, ipam.ErrPoolOverlap) {
				return err
			}
		}
		s.networks[n.ID] = n
	}
	return s.save()
}

func (s *Service) defaultBridgePool() (ipam.Pool, error) {
	if s.cfg.Bip.IsValid() {
		return ipam.Pool{Subnet: s.cfg.Bip.Masked(), Gateway: s.cfg.Bip.Addr(), IPRange: s.cfg.FixedCIDR}, nil
	}
	routes, err := link.HostRoutes()
	if err != nil {
		return ipam.Pool{}, err
	}
	def := netip.MustParsePrefix(defaultBridgeCIDR)
	pools := append([]ipam.AddressPool{{Base: def, Size: 16}}, s.cfg.Pools...)
	subnet, err := ipam.ChooseSubnet(pools, s.usedSubnets(), routes)
	if err != nil {
		return ipam.Pool{}, err
	}
	if subnet != def {
		slog.Info("default bridge: 172.17.0.0/16 is routed on the host already; using the next free pool", "subnet", subnet)
	}
	return ipam.Pool{Subnet: subnet, IPRange: s.cfg.FixedCIDR}, nil
}

func (s *Service) usedSubnets() []netip.Prefix {
	var used []netip.Prefix
	for _, n := range s.networks {
		if n.Pool.Subnet.IsValid() {
			used = append(used, n.Pool.Subnet)
		}
	}
	return used
}

// program sets up a bridge network's interface and firewall rules.
func (s *Service) program(n *Network) error {
	pools := s.ipam.Networks()
	pool, ok := pools[n.ID]
	if !ok {
		var err error
		if pool, err = s.ipam.AddNetwork(n.ID, n.Pool); err != nil {
			return err
		}
	}
	n.Pool = pool
	gw := netip.PrefixFrom(pool.Gateway, pool.Subnet.Bits())
	if err := link.EnsureBridge(n.Bridge, gw, s.cfg.MTU); err != nil {
		return err
	}
	if err := link.EnableForwarding(n.Bridge); err != nil {
		return err
	}
	mode := n.Options[gatewayModeOption]
	routed := s.cfg.AllowDirectRouting || mode == "routed" || mode == "nat-unprotected"
	return s.fw.AddNetwork(firewall.Network{Name: n.Name, Bridge: n.Bridge, Subnet: pool.Subnet, Internal: n.Internal, ICC: true, Routed: routed})
}

// byName finds a network by name; s.mu held or during New.
func (s *Service) byName(name string) *Network {
	for _, n := range s.networks {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Get finds a network by full ID, name or unique ID prefix, as dockerd.
func (s *Service) Get(ref string) (*Network, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.getLocked(ref)
}

func (s *Service) getLocked(ref string) (*Network, error) {
	if n, ok := s.networks[ref]; ok {
		return n, nil
	}
	if n := s.byName(ref); n != nil {
		return n, nil
	}
	var found *Network
	for id, n := range s.networks {
		if ref != "" && strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("network %s is ambiguous", ref))
			}
			found = n
		}
	}
	if found == nil {
		return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("network %s not found", ref))
	}
	return found, nil
}

// Shutdown stops the embedded DNS servers, frees the reserved host ports
// and removes berth's firewall table (published ports stop until the next
// start); bridges and container namespaces stay with their containers.
func (s *Service) Shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sb := range s.sandboxes {
		if sb.dns != nil {
			sb.dns.Close()
			sb.dns = nil
		}
		for _, l := range sb.reserved {
			l.Close()
		}
		sb.reserved = nil
	}
	if err := s.fw.Delete(); err != nil {
		slog.Warn("removing the firewall table", "err", err)
	}
}

// dnsUpstreams are the host's resolvers, for the embedded DNS.
func dnsUpstreams() []string {
	data, _ := os.ReadFile("/etc/resolv.conf")
	return dns.HostUpstreams(data)
}
