package link

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/containerd/errdefs"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Endpoint is a container's interface on a bridge network.
type Endpoint struct {
	Bridge string // the bridge the host end joins
	IfName string // the name inside the namespace, e.g. "eth0"
	Addr   netip.Prefix
	// Gateway is the default route's next hop; zero means no default
	// route (an internal network).
	Gateway netip.Addr
	MAC     net.HardwareAddr // nil: MACFromIP(Addr)
	MTU     int              // 0: the kernel's default
}

// Attach joins the network namespace at netnsPath to the bridge: a veth
// pair whose host end (named like Docker's, "veth" and 7 hex digits) is a
// port of the bridge in hairpin mode, and whose other end is created in
// the namespace as ep.IfName, with ep's address and MAC, up, and a
// default route via ep.Gateway. It returns the host end's name. On failure
// nothing is left behind.
func Attach(netnsPath string, ep Endpoint) (hostVeth string, err error) {
	if ep.Bridge == "" || ep.IfName == "" || !ep.Addr.IsValid() {
		return "", fmt.Errorf("endpoint needs a bridge, an interface name and an address: %w", errdefs.ErrInvalidArgument)
	}
	mac := ep.MAC
	if mac == nil {
		mac = MACFromIP(ep.Addr.Addr())
	}
	ns, err := netns.GetFromPath(netnsPath)
	if err != nil {
		return "", fmt.Errorf("opening network namespace: %w", err)
	}
	defer ns.Close()
	nh, err := netlink.NewHandleAt(ns)
	if err != nil {
		return "", fmt.Errorf("netlink in %s: %w", netnsPath, err)
	}
	defer nh.Close()
	if _, err := nh.LinkByName(ep.IfName); err == nil {
		return "", fmt.Errorf("interface %s already exists in %s: %w", ep.IfName, netnsPath, errdefs.ErrAlreadyExists)
	}
	br, err := netlink.LinkByName(ep.Bridge)
	if err != nil {
		return "", fmt.Errorf("bridge %s: %w", ep.Bridge, err)
	}
	if _, ok := br.(*netlink.Bridge); !ok {
		return "", fmt.Errorf("%s is a %s link, not a bridge: %w", ep.Bridge, br.Type(), errdefs.ErrInvalidArgument)
	}

	host, err := addVeth(ep, mac, ns, br.Attrs().Index)
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			Detach(host.Attrs().Name)
		}
	}()
	if err := netlink.LinkSetHairpin(host, true); err != nil {
		return "", fmt.Errorf("hairpin mode on %s: %w", host.Attrs().Name, err)
	}
	if err := configurePeer(nh, ep); err != nil {
		return "", fmt.Errorf("configuring %s in %s: %w", ep.IfName, netnsPath, err)
	}
	return host.Attrs().Name, nil
}

// addVeth creates the pair: the host end up on the bridge, the peer
// already in the namespace under its final name with its MAC, so that it
// never needs moving or renaming.
func addVeth(ep Endpoint, mac net.HardwareAddr, ns netns.NsHandle, bridgeIndex int) (netlink.Link, error) {
	for try := 0; ; try++ {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = vethName()
		attrs.MTU = ep.MTU
		attrs.Flags = net.FlagUp
		veth := &netlink.Veth{
			LinkAttrs:        attrs,
			PeerName:         ep.IfName,
			PeerHardwareAddr: mac,
			PeerNamespace:    netlink.NsFd(ns),
		}
		err := netlink.LinkAdd(veth)
		if errors.Is(err, unix.EEXIST) && try < 3 {
			continue // the random host name was taken
		}
		if err != nil {
			return nil, fmt.Errorf("creating veth pair: %w", err)
		}
		host, err := netlink.LinkByName(attrs.Name)
		if err == nil {
			err = netlink.LinkSetMasterByIndex(host, bridgeIndex)
		}
		if err != nil {
			Detach(attrs.Name)
			return nil, fmt.Errorf("adding %s to bridge %s: %w", attrs.Name, ep.Bridge, err)
		}
		return host, nil
	}
}

// configurePeer addresses the namespace's end, brings it up and routes
// through the gateway.
func configurePeer(nh *netlink.Handle, ep Endpoint) error {
	peer, err := nh.LinkByName(ep.IfName)
	if err != nil {
		return err
	}
	if err := nh.AddrAdd(peer, &netlink.Addr{IPNet: ipNet(ep.Addr)}); err != nil {
		return fmt.Errorf("adding address %s: %w", ep.Addr, err)
	}
	if err := nh.LinkSetUp(peer); err != nil {
		return fmt.Errorf("bringing it up: %w", err)
	}
	if !ep.Gateway.IsValid() {
		return nil
	}
	route := &netlink.Route{LinkIndex: peer.Attrs().Index, Gw: ep.Gateway.AsSlice(), Scope: netlink.SCOPE_UNIVERSE}
	if err := nh.RouteAdd(route); err != nil {
		return fmt.Errorf("default route via %s: %w", ep.Gateway, err)
	}
	return nil
}

// Detach deletes a host veth, and with it its peer in the container's
// namespace. An absent link is not an error.
func Detach(hostVeth string) error {
	l, err := netlink.LinkByName(hostVeth)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if l.Type() != "veth" {
		return fmt.Errorf("%s is a %s link, not a veth: %w", hostVeth, l.Type(), errdefs.ErrInvalidArgument)
	}
	if err := netlink.LinkDel(l); err != nil && !isNotFound(err) {
		return fmt.Errorf("deleting %s: %w", hostVeth, err)
	}
	return nil
}

// SetDefaultRoute routes the namespace's default traffic through gw on
// its interface ifName, replacing the default route it had.
func SetDefaultRoute(netnsPath, ifName string, gw netip.Addr) error {
	nh, err := handleAt(netnsPath)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", netnsPath, err)
	}
	defer nh.Close()
	l, err := nh.LinkByName(ifName)
	if err != nil {
		return fmt.Errorf("interface %s in %s: %w", ifName, netnsPath, err)
	}
	route := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw.AsSlice(), Scope: netlink.SCOPE_UNIVERSE}
	if err := nh.RouteReplace(route); err != nil {
		return fmt.Errorf("default route via %s: %w", gw, err)
	}
	return nil
}
