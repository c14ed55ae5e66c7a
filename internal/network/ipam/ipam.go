// Package ipam manages the addresses of berth's networks, as Docker's
// default IPAM driver does: each network owns a subnet that overlaps no
// other, its network, broadcast and gateway addresses are reserved, and
// containers get addresses next-fit (a released address is handed out
// again only after the allocator has gone round the range), or the address
// they ask for.
//
// The state lives in one JSON file, rewritten atomically on every change:
// a crash leaves the old state or the new one, and a change whose write
// fails is undone in memory too, so memory and disk never disagree.
package ipam

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/containerd/errdefs"
)

// Pool is the address configuration of one network.
type Pool struct {
	Subnet  netip.Prefix `json:"subnet"`
	Gateway netip.Addr   `json:"gateway"`
	// IPRange limits the addresses handed out when a container asks for
	// none; the zero value means the whole subnet. An address asked for
	// explicitly needs only to be in the subnet, as in Docker.
	IPRange netip.Prefix `json:"ipRange,omitzero"`
}

// Errors worded as Docker's, classified for the API's status mapping.
var (
	// ErrAddressInUse: the requested address is taken or reserved (403).
	ErrAddressInUse = fmt.Errorf("Address already in use: %w", errdefs.ErrPermissionDenied)
	// ErrPoolOverlap: a new network's subnet overlaps an existing one's (403).
	ErrPoolOverlap = fmt.Errorf("invalid pool request: Pool overlaps with other one on this address space: %w", errdefs.ErrPermissionDenied)
	// ErrNoSubnet: ChooseSubnet found no free subnet in the pools (404, as dockerd).
	ErrNoSubnet = fmt.Errorf("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network: %w", errdefs.ErrNotFound)
)

// NoAvailableError says a network has no free address left. Docker names
// the network by name and ID; the daemon, which knows the name, can render
// it with both.
type NoAvailableError struct {
	Network string
	IPv6    bool
}

func (e *NoAvailableError) Error() string {
	v := 4
	if e.IPv6 {
		v = 6
	}
	return fmt.Sprintf("no available IPv%d addresses on this network's address pools: %s", v, e.Network)
}

// Allocator hands out addresses of several networks and records them in a
// state file. It is safe for concurrent use.
type Allocator struct {
	path  string
	write func(path string, data []byte, perm os.FileMode) error

	mu       sync.Mutex
	networks map[string]*network
}

// network is one network's pool and allocations, as stored.
type network struct {
	Pool
	// Last is the address most recently handed out without being asked
	// for: the next-fit cursor.
	Last  netip.Addr            `json:"last,omitzero"`
	Addrs map[netip.Addr]string `json:"addresses"`
}

type stateFile struct {
	Version  int                 `json:"version"`
	Networks map[string]*network `json:"networks"`
}

const stateVersion = 1

// Open loads the allocator's state from path, or starts empty when the
// file does not exist yet (its directory is created). A file that cannot
// be read or parsed is an error: starting empty would hand out addresses
// that containers still hold.
func Open(path string) (*Allocator, error) {
	a := &Allocator{path: path, write: atomicfile.WriteFile, networks: map[string]*network{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		return a, nil
	}
	if err != nil {
		return nil, err
	}
	var st stateFile
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("ipam state %s is corrupt: %w", path, err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("ipam state %s: unsupported version %d", path, st.Version)
	}
	for id, n := range st.Networks {
		if n == nil || !n.Subnet.IsValid() || !n.Gateway.IsValid() {
			return nil, fmt.Errorf("ipam state %s is corrupt: network %s has no subnet or gateway", path, id)
		}
		if n.Addrs == nil {
			n.Addrs = map[netip.Addr]string{}
		}
		for addr := range n.Addrs {
			if !n.Subnet.Contains(addr) {
				return nil, fmt.Errorf("ipam state %s is corrupt: address %s is outside network %s's subnet %s", path, addr, id, n.Subnet)
			}
		}
		a.networks[id] = n
	}
	return a, nil
}

// save writes the whole state. Callers hold a.mu and undo their change
// when it fails.
func (a *Allocator) save() error {
	data, err := json.MarshalIndent(stateFile{Version: stateVersion, Networks: a.networks}, "", "\t")
	if err != nil {
		return err
	}
	if err := a.write(a.path, data, 0o600); err != nil {
		return fmt.Errorf("saving ipam state: %w", err)
	}
	return nil
}

// AddNetwork registers a network's pool. A zero Gateway becomes the
// subnet's first host address. The network and broadcast addresses and the
// gateway are reserved. It returns the pool as completed.
func (a *Allocator) AddNetwork(netID string, p Pool) (Pool, error) {
	p, err := normalize(p)
	if err != nil {
		return Pool{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.networks[netID]; ok {
		return Pool{}, fmt.Errorf("network %s already has an address pool: %w", netID, errdefs.ErrAlreadyExists)
	}
	for _, n := range a.networks {
		if n.Subnet.Overlaps(p.Subnet) {
			return Pool{}, ErrPoolOverlap
		}
	}
	a.networks[netID] = &network{Pool: p, Addrs: map[netip.Addr]string{}}
	if err := a.save(); err != nil {
		delete(a.networks, netID)
		return Pool{}, err
	}
	return p, nil
}

// normalize validates a pool and fills in its gateway.
func normalize(p Pool) (Pool, error) {
	if !p.Subnet.IsValid() {
		return Pool{}, fmt.Errorf("invalid subnet %q: %w", p.Subnet, errdefs.ErrInvalidArgument)
	}
	p.Subnet = unmapPrefix(p.Subnet)
	if m := p.Subnet.Masked(); m != p.Subnet {
		return Pool{}, fmt.Errorf("invalid subnet %s: it should be %s: %w", p.Subnet, m, errdefs.ErrInvalidArgument)
	}
	if p.IPRange.IsValid() {
		p.IPRange = unmapPrefix(p.IPRange)
		if m := p.IPRange.Masked(); m != p.IPRange {
			return Pool{}, fmt.Errorf("invalid ip-range %s: it should be %s: %w", p.IPRange, m, errdefs.ErrInvalidArgument)
		}
		if p.IPRange.Bits() < p.Subnet.Bits() || !p.Subnet.Contains(p.IPRange.Addr()) {
			return Pool{}, fmt.Errorf("invalid ip-range %s: it must be a subset of subnet %s: %w", p.IPRange, p.Subnet, errdefs.ErrInvalidArgument)
		}
	}
	if !p.Gateway.IsValid() {
		p.Gateway = p.Subnet.Addr()
		if hostBits(p.Subnet) > 1 {
			p.Gateway = p.Gateway.Next()
		}
		return p, nil
	}
	p.Gateway = p.Gateway.Unmap()
	if !p.Subnet.Contains(p.Gateway) {
		return Pool{}, fmt.Errorf("invalid gateway %s: it does not belong to subnet %s: %w", p.Gateway, p.Subnet, errdefs.ErrInvalidArgument)
	}
	return p, nil
}

// unmapPrefix turns an IPv4-mapped IPv6 prefix into the IPv4 prefix.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if !p.Addr().Is4In6() || p.Bits() < 96 {
		return p
	}
	return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
}

// RemoveNetwork forgets a network and every address allocated in it.
func (a *Allocator) RemoveNetwork(netID string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	n, ok := a.networks[netID]
	if !ok {
		return notFound(netID)
	}
	delete(a.networks, netID)
	if err := a.save(); err != nil {
		a.networks[netID] = n
		return err
	}
	return nil
}

func notFound(netID string) error {
	return fmt.Errorf("network %s has no address pool: %w", netID, errdefs.ErrNotFound)
}

// Allocate gives owner an address of the network: want when it is valid,
// otherwise the next free address of the pool's range after the one
// handed out last, wrapping round at the end.
func (a *Allocator) Allocate(netID, owner string, want netip.Addr) (netip.Addr, error) {
	if owner == "" {
		return netip.Addr{}, fmt.Errorf("allocating an address needs an owner: %w", errdefs.ErrInvalidArgument)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	n, ok := a.networks[netID]
	if !ok {
		return netip.Addr{}, notFound(netID)
	}
	lastBefore := n.Last
	var addr netip.Addr
	if want.IsValid() {
		want = want.Unmap()
		if !n.Subnet.Contains(want) {
			return netip.Addr{}, fmt.Errorf("invalid address %s: It does not belong to any of this network's subnets: %w", want, errdefs.ErrInvalidArgument)
		}
		if n.taken(want) {
			return netip.Addr{}, ErrAddressInUse
		}
		addr = want
	} else {
		var found bool
		if addr, found = n.nextFree(); !found {
			return netip.Addr{}, &NoAvailableError{Network: netID, IPv6: n.Subnet.Addr().Is6()}
		}
		n.Last = addr
	}
	n.Addrs[addr] = owner
	if err := a.save(); err != nil {
		delete(n.Addrs, addr)
		n.Last = lastBefore
		return netip.Addr{}, err
	}
	return addr, nil
}

// reserved reports whether addr is the network's own: network address,
// IPv4 broadcast address or gateway. Point-to-point subnets (/31, /32 and
// their IPv6 equivalents) have no network or broadcast address.
func (n *network) reserved(addr netip.Addr) bool {
	if addr == n.Gateway {
		return true
	}
	if hostBits(n.Subnet) <= 1 {
		return false
	}
	return addr == n.Subnet.Addr() || (addr.Is4() && addr == lastAddr(n.Subnet))
}

func (n *network) taken(addr netip.Addr) bool {
	_, used := n.Addrs[addr]
	return used || n.reserved(addr)
}

// nextFree finds the first free address of the range after the cursor.
func (n *network) nextFree() (netip.Addr, bool) {
	r := n.IPRange
	if !r.IsValid() {
		r = n.Subnet
	}
	first, last := r.Addr(), lastAddr(r)
	start := first
	if n.Last.IsValid() && r.Contains(n.Last) && n.Last != last {
		start = n.Last.Next()
	}
	// At most len(Addrs)+3 addresses of the range are occupied, so one
	// more step than that finds a free one unless the range is full.
	steps := uint64(len(n.Addrs)) + 4
	if size := rangeSize(r); size < steps {
		steps = size
	}
	addr := start
	for range steps {
		if !n.taken(addr) {
			return addr, true
		}
		if addr == last {
			addr = first
		} else {
			addr = addr.Next()
		}
	}
	return netip.Addr{}, false
}

// Release frees an address of the network. Releasing a free address does
// nothing.
func (a *Allocator) Release(netID string, addr netip.Addr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	n, ok := a.networks[netID]
	if !ok {
		return notFound(netID)
	}
	addr = addr.Unmap()
	owner, ok := n.Addrs[addr]
	if !ok {
		return nil
	}
	delete(n.Addrs, addr)
	if err := a.save(); err != nil {
		n.Addrs[addr] = owner
		return err
	}
	return nil
}

// ReleaseOwner frees every address owner holds, in every network.
func (a *Allocator) ReleaseOwner(owner string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	type held struct {
		n    *network
		addr netip.Addr
	}
	var freed []held
	for _, n := range a.networks {
		for addr, o := range n.Addrs {
			if o == owner {
				delete(n.Addrs, addr)
				freed = append(freed, held{n, addr})
			}
		}
	}
	if len(freed) == 0 {
		return nil
	}
	if err := a.save(); err != nil {
		for _, h := range freed {
			h.n.Addrs[h.addr] = owner
		}
		return err
	}
	return nil
}

// Owners returns a copy of the network's allocations, address to owner; nil
// for an unknown network. Reserved addresses are not listed.
func (a *Allocator) Owners(netID string) map[netip.Addr]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	n, ok := a.networks[netID]
	if !ok {
		return nil
	}
	return maps.Clone(n.Addrs)
}

// Networks returns the pools of all networks by network ID.
func (a *Allocator) Networks() map[string]Pool {
	a.mu.Lock()
	defer a.mu.Unlock()
	pools := make(map[string]Pool, len(a.networks))
	for id, n := range a.networks {
		pools[id] = n.Pool
	}
	return pools
}
