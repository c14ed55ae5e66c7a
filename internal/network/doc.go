// Package network is the home of berth's container networking: IPAM
// (ipam), links and namespaces over netlink (link), the nftables firewall
// (firewall) and the embedded DNS server (dns). The daemon composes them.
package network

import (
	// Pinned for the subpackages being written; see DEPENDENCIES.md.
	_ "github.com/google/nftables"
	_ "github.com/miekg/dns"
	_ "github.com/vishvananda/netlink"
	_ "github.com/vishvananda/netns"
)
