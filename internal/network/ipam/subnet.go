package ipam

import (
	"fmt"
	"math"
	"net/netip"

	"github.com/containerd/errdefs"
)

// AddressPool is one entry of Docker's default-address-pools: Base is cut
// into subnets of prefix length Size, handed to networks created without a
// subnet.
type AddressPool struct {
	Base netip.Prefix
	Size int
}

// DefaultPools returns dockerd's default address pools: 172.17.0.0/16 to
// 172.31.0.0/16 whole, then 192.168.0.0/16 in /20s.
func DefaultPools() []AddressPool {
	var pools []AddressPool
	for b := 17; b <= 31; b++ {
		pools = append(pools, AddressPool{Base: netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(b), 0, 0}), 16), Size: 16})
	}
	return append(pools, AddressPool{Base: netip.MustParsePrefix("192.168.0.0/16"), Size: 20})
}

// ChooseSubnet returns the first subnet of the pools, in order, that
// overlaps neither a subnet in use by a network nor a destination routed on
// the host.
func ChooseSubnet(pools []AddressPool, used, hostRoutes []netip.Prefix) (netip.Prefix, error) {
	for _, p := range pools {
		base := unmapPrefix(p.Base).Masked()
		if !base.IsValid() || p.Size < base.Bits() || p.Size > base.Addr().BitLen() {
			return netip.Prefix{}, fmt.Errorf("invalid address pool %s with size %d: %w", p.Base, p.Size, errdefs.ErrInvalidArgument)
		}
		// Step over whole blocks in use rather than every subnet in them.
		for addr := base.Addr(); base.Contains(addr); {
			cand := netip.PrefixFrom(addr, p.Size)
			o, hit := firstOverlap(cand, used, hostRoutes)
			if !hit {
				return cand, nil
			}
			end := lastAddr(cand)
			if o.Bits() < p.Size {
				end = lastAddr(o)
			}
			if addr = end.Next(); !addr.IsValid() {
				break // the top of the address space
			}
		}
	}
	return netip.Prefix{}, ErrNoSubnet
}

// firstOverlap returns a prefix of the lists that overlaps p.
func firstOverlap(p netip.Prefix, lists ...[]netip.Prefix) (netip.Prefix, bool) {
	for _, l := range lists {
		for _, o := range l {
			if o = unmapPrefix(o).Masked(); p.Overlaps(o) {
				return o, true
			}
		}
	}
	return netip.Prefix{}, false
}

// hostBits is the number of host bits of a prefix.
func hostBits(p netip.Prefix) int {
	return p.Addr().BitLen() - p.Bits()
}

// rangeSize is the number of addresses in p, capped at math.MaxUint64.
func rangeSize(p netip.Prefix) uint64 {
	if h := hostBits(p); h < 64 {
		return 1 << h
	}
	return math.MaxUint64
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
