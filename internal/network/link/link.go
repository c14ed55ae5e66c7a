// Package link does the kernel side of berth's bridge networks over
// netlink: bridges, persistent network namespaces bind-mounted on a path,
// veth pairs joining a namespace to a bridge with the container's address,
// MAC and default route, and the sysctls forwarding needs.
//
// Work inside another network namespace goes through a netlink handle
// opened in it (netlink.NewHandleAt); no thread of the caller ever changes
// namespace, except the throw-away thread that creates one.
package link

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// EnsureBridge creates the bridge, or reconciles an existing one: gw as its
// only IPv4 address (e.g. 172.17.0.1/16), the MTU when mtu > 0, and up.
// Calling it again with the same arguments changes nothing.
func EnsureBridge(name string, gw netip.Prefix, mtu int) error {
	if !gw.IsValid() {
		return fmt.Errorf("bridge %s: invalid gateway address %s: %w", name, gw, errdefs.ErrInvalidArgument)
	}
	l, err := netlink.LinkByName(name)
	if isNotFound(err) {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = name
		attrs.MTU = mtu
		// A fixed address keeps the bridge's MAC from following its
		// ports as they come and go, as Docker does.
		attrs.HardwareAddr = randomMAC()
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
			return fmt.Errorf("creating bridge %s: %w", name, err)
		}
		l, err = netlink.LinkByName(name)
	}
	if err != nil {
		return fmt.Errorf("bridge %s: %w", name, err)
	}
	if _, ok := l.(*netlink.Bridge); !ok {
		return fmt.Errorf("%s is a %s link, not a bridge: %w", name, l.Type(), errdefs.ErrConflict)
	}
	if mtu > 0 && l.Attrs().MTU != mtu {
		if err := netlink.LinkSetMTU(l, mtu); err != nil {
			return fmt.Errorf("setting the MTU of bridge %s: %w", name, err)
		}
	}
	if err := reconcileAddr(l, gw); err != nil {
		return fmt.Errorf("bridge %s: %w", name, err)
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(l); err != nil {
			return fmt.Errorf("bringing bridge %s up: %w", name, err)
		}
	}
	return nil
}

// reconcileAddr leaves want as the link's only address of its family.
func reconcileAddr(l netlink.Link, want netip.Prefix) error {
	family := netlink.FAMILY_V4
	if want.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return netlink.AddrList(l, family) })
	if err != nil {
		return err
	}
	have := false
	for _, a := range addrs {
		p, ok := prefixFromIPNet(a.IPNet)
		switch {
		case ok && p == want:
			have = true
		case family == netlink.FAMILY_V6 && a.IP.IsLinkLocalUnicast():
			// The kernel's own link-local address stays.
		default:
			if err := netlink.AddrDel(l, &a); err != nil {
				return fmt.Errorf("removing address %s: %w", a.IPNet, err)
			}
		}
	}
	if have {
		return nil
	}
	if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: ipNet(want)}); err != nil {
		return fmt.Errorf("adding address %s: %w", want, err)
	}
	return nil
}

// DeleteBridge deletes the bridge; an absent bridge is not an error.
func DeleteBridge(name string) error {
	l, err := netlink.LinkByName(name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, ok := l.(*netlink.Bridge); !ok {
		return fmt.Errorf("%s is a %s link, not a bridge: %w", name, l.Type(), errdefs.ErrConflict)
	}
	if err := netlink.LinkDel(l); err != nil && !isNotFound(err) {
		return fmt.Errorf("deleting bridge %s: %w", name, err)
	}
	return nil
}

// ListVeths returns the names of the host's veth links that start with
// prefix.
func ListVeths(prefix string) ([]string, error) {
	links, err := retryDump(netlink.LinkList)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, l := range links {
		if name := l.Attrs().Name; l.Type() == "veth" && strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	return names, nil
}

// HostRoutes returns the destinations of the host's main routing table,
// IPv4 and IPv6, without default routes: the subnets a new network must
// not overlap.
func HostRoutes() ([]netip.Prefix, error) {
	routes, err := retryDump(func() ([]netlink.Route, error) { return netlink.RouteList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, err
	}
	var dsts []netip.Prefix
	for _, r := range routes {
		p, ok := prefixFromIPNet(r.Dst)
		if !ok || p.Bits() == 0 {
			continue
		}
		dsts = append(dsts, p.Masked())
	}
	return dsts, nil
}

// EnableForwarding turns on IPv4 forwarding on the host and lets the
// bridge route packets addressed from 127.0.0.0/8 (route_localnet), which
// DNAT of connections to a published port on 127.0.0.1 needs.
func EnableForwarding(bridge string) error {
	if bridge == "" || strings.ContainsAny(bridge, "/.") {
		return fmt.Errorf("invalid bridge name %q: %w", bridge, errdefs.ErrInvalidArgument)
	}
	for _, key := range []string{
		"net/ipv4/ip_forward",
		"net/ipv4/conf/" + bridge + "/route_localnet",
	} {
		if err := setSysctl(key, "1"); err != nil {
			return err
		}
	}
	return nil
}

// setSysctl writes value to /proc/sys/key unless it already holds it.
func setSysctl(key, value string) error {
	path := "/proc/sys/" + key
	cur, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading sysctl %s: %w", strings.ReplaceAll(key, "/", "."), err)
	}
	if strings.TrimSpace(string(cur)) == value {
		return nil
	}
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("setting sysctl %s: %w", strings.ReplaceAll(key, "/", "."), err)
	}
	return nil
}

// MACFromIP returns Docker's MAC address for a container address:
// 02:42 followed by the four bytes of the IPv4 address. Any other address
// gets a random locally administered unicast MAC address.
func MACFromIP(ip netip.Addr) net.HardwareAddr {
	ip = ip.Unmap()
	if !ip.Is4() {
		return randomMAC()
	}
	a := ip.As4()
	return net.HardwareAddr{0x02, 0x42, a[0], a[1], a[2], a[3]}
}

// randomMAC returns a random locally administered unicast MAC address.
func randomMAC() net.HardwareAddr {
	mac := make(net.HardwareAddr, 6)
	rand.Read(mac)
	mac[0] = mac[0]&^0x01 | 0x02
	return mac
}

// vethName returns a host veth name like Docker's: "veth" and 7 hex digits.
func vethName() string {
	b := make([]byte, 4)
	rand.Read(b)
	return "veth" + hex.EncodeToString(b)[:7]
}

// retryDump runs a netlink dump until the kernel answers without the
// dump being interrupted by a concurrent change.
func retryDump[T any](dump func() ([]T, error)) ([]T, error) {
	for i := 0; ; i++ {
		v, err := dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) || i == 9 {
			return v, err
		}
	}
}

func isNotFound(err error) bool {
	var lnf netlink.LinkNotFoundError
	return errors.As(err, &lnf) || errors.Is(err, unix.ENODEV)
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func prefixFromIPNet(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	addr, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := n.Mask.Size()
	if bits == 0 {
		return netip.Prefix{}, false
	}
	addr = addr.Unmap()
	if bits == 128 && addr.Is4() {
		ones -= 96
	}
	return netip.PrefixFrom(addr, ones), true
}
