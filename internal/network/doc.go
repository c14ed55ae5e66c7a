// Package network is the home of berth's container networking parts: IPAM
// (ipam), links and namespaces over netlink (link), the nftables firewall
// (firewall) and the embedded DNS server (dns). internal/daemon/networks
// composes them into berthd's network service.
package network
