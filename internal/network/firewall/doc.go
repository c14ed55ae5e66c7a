// Package firewall programs berth's packet filtering and NAT: outbound
// masquerade for bridge networks, isolation between them, and published
// ports (DNAT). It talks to nf_tables over netlink (github.com/google/nftables);
// no iptables or nft binary and no userland proxy are involved.
//
// # One table, rebuilt from memory
//
// Everything lives in a single table owned by berth (default name "berth").
// The daemon's own records are the source of truth; the table is derived
// from them. Reset deletes and recreates the table in one transaction (at
// daemon start, so a crashed daemon leaves no duplicates and no leftovers),
// then the daemon replays AddNetwork and AddPorts. Delete removes the table
// on shutdown. Nothing outside the table is touched.
//
// The table is of family inet rather than ip: one object to reset and delete
// for both address families, and the interface-based filter rules below work
// for IPv4 and IPv6 alike. NAT in an inet table needs Linux 5.2. Only IPv4
// subnets and addresses are implemented for now; IPv6 ones are refused with
// errdefs.ErrNotImplemented.
//
// # Layout
//
//	set  bridges      ifname                          every berth bridge
//	set  routed       ifname                          bridges reachable by routing (Network.Routed)
//	map  fwd_from     ifname : verdict                bridge -> jump fwd-<network>
//	map  nat_from     ifname : verdict                bridge -> jump nat-<network>
//	map  nat_to       ifname : verdict                bridge -> jump nat-<network>
//	map  ports4       l4proto . port : addr . port    published on all host addresses
//	map  ports4_addr  addr . l4proto . port : addr . port  published on one host address
//
//	chain prerouting  nat dstnat:  fib daddr type local jump ports
//	chain output      nat -100:    fib daddr type local jump ports
//	chain ports:      dnat ip to ip daddr . l4proto . th dport map @ports4_addr
//	                  dnat ip to l4proto . th dport map @ports4
//	chain postrouting nat srcnat:  oifname @bridges ip saddr 127.0.0.0/8 masquerade
//	                               iifname vmap @nat_from
//	                               oifname vmap @nat_to
//	chain nat-<net>:               oifname <br> ip saddr <subnet> ct status dnat masquerade (hairpin)
//	                               oifname != <br> ip saddr <subnet> masquerade (unless internal)
//	chain forward     filter 0, policy accept:
//	                               oifname @bridges ct state established,related accept
//	                               oifname @bridges ct status dnat accept   (published ports)
//	                               iifname vmap @fwd_from
//	                               oifname @routed accept                   (allow-direct-routing)
//	                               oifname @bridges drop                    (unsolicited inbound)
//	chain fwd-<net>:               oifname <br> accept (ICC) | drop (no ICC)
//	                               oifname @bridges drop                    (isolation)
//	                               accept | drop (internal)
//
// Bookkeeping: a network owns a regular chain in each of the filter and NAT
// hooks plus one element in each of bridges, fwd_from, nat_from and nat_to, so
// RemoveNetwork deletes exactly those by name and key; no rule handles are
// needed and base-chain rule order never changes. Published ports are map
// elements keyed by (proto, port) or (address, proto, port): DNAT costs one
// hash lookup whatever the number of ports, the rule count stays constant,
// and adding or removing an owner's ports is one element batch. The owner ->
// elements index is kept in memory (it is rebuilt by the daemon's replay
// after Reset). Every call is one netlink batch (one Flush), which nf_tables
// applies atomically: a failed call changes neither the kernel nor the
// in-memory records.
//
// Costs measured on a 2-core VM (Linux 6.18): AddPorts of a TCP and a UDP
// port takes about 0.2-0.3 ms, RemovePorts about 15 ms (deleting elements
// waits for the kernel's commit of the removal); with 1000 published ports
// the chains are unchanged, one more AddPorts still takes about 0.3 ms, and
// one call publishing 1000 ports takes about 2.5 ms.
//
// # What the rest of the daemon must provide
//
//   - net.ipv4.ip_forward=1 (the bridge driver enables it).
//   - route_localnet=1 on each bridge (EnableRouteLocalnet), so that
//     connections from the host to 127.0.0.1:<port> can be DNATed and
//     routed out of the bridge; the postrouting rule above then masquerades
//     their 127.0.0.0/8 source to the bridge address, since the container
//     could not answer 127.0.0.1.
//   - Hairpin (a container reaching a published port through a host address,
//     including its own port) is DNATed in prerouting and masqueraded when
//     it goes back into its own bridge, so the answer returns through the
//     host and is un-NATed there. The rule matches the source subnet, since
//     bridged packets have no input interface in postrouting. With
//     br_netfilter active (bridge-nf-call-iptables=1, the kernel's default
//     once loaded) the DNATed packet is bridged back out of the port it
//     came in by, so the bridge ports need hairpin mode, as Docker sets when
//     its userland proxy is off.
//   - Postrouting dispatches to a network's chain by input interface
//     (outbound traffic) and by output interface (hairpin); the two paths
//     meet in one chain per network.
//   - ICC=false drops traffic between containers of one bridge in the
//     forward hook, which bridged frames only traverse when br_netfilter is
//     loaded with net.bridge.bridge-nf-call-iptables=1, as Docker requires too.
//   - Another firewall's drop verdict (for instance an iptables FORWARD
//     policy DROP) still applies: an accept in berth's table does not
//     override other tables.
package firewall
