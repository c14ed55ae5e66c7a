package firewall

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/google/nftables"
	"github.com/vishvananda/netns"
)

// testbed is the private host of the root tests:
//
//	H (host): br0 172.30.0.1/24, br1 172.31.0.1/24, br2 172.29.0.1/24,
//	          nic0 10.77.0.1/32, ext 192.0.2.1/24 towards O
//	C1, C2 on br0 (.2, .3); C3 on br1 (.2); C4 on br2 (.2)
//	O (another host): 192.0.2.2/24, default route via H
//
// C1, C3 and O serve TCP and UDP on port 80 ("c1", "c3", "out").
type testbed struct {
	*host
	c1, c2, c3, c4, out netns.NsHandle
	fw                  Firewall
	table               string
}

var (
	front    = Network{Name: "front", Bridge: "br0", Subnet: netip.MustParsePrefix("172.30.0.0/24"), ICC: true}
	back     = Network{Name: "back", Bridge: "br1", Subnet: netip.MustParsePrefix("172.31.0.0/24"), ICC: true}
	internal = Network{Name: "internal", Bridge: "br2", Subnet: netip.MustParsePrefix("172.29.0.0/24"), Internal: true, ICC: true}
)

func newTestbed(t *testing.T) *testbed {
	requireRoot(t)
	hs := newHost(t)
	// A fresh namespace starts with forwarding off: enable it, and put
	// back what was there (the namespace dies with the test anyway).
	prev := readSysctl(t, hs.ns, "net.ipv4.ip_forward")
	if prev != "1" {
		sysctl(t, hs.ns, "net.ipv4.ip_forward", "1")
		t.Cleanup(func() { sysctl(t, hs.ns, "net.ipv4.ip_forward", prev) })
	}
	hs.bridge("br0", "172.30.0.1/24")
	hs.bridge("br1", "172.31.0.1/24")
	hs.bridge("br2", "172.29.0.1/24")
	hs.nic("10.77.0.1/32")
	tb := &testbed{host: hs, table: uniqueTable(t)}
	tb.c1 = hs.attach("br0", "172.30.0.2/24", "172.30.0.1", "")
	tb.c2 = hs.attach("br0", "172.30.0.3/24", "172.30.0.1", "")
	tb.c3 = hs.attach("br1", "172.31.0.2/24", "172.31.0.1", "")
	tb.c4 = hs.attach("br2", "172.29.0.2/24", "172.29.0.1", "")
	tb.out = hs.attach("", "192.0.2.2/24", "192.0.2.1", "192.0.2.1/24")
	serve(t, tb.c1, 80, "c1")
	serve(t, tb.c3, 80, "c3")
	serve(t, tb.out, 80, "out")

	fw, err := New(tb.table, WithNetNS(int(hs.ns)))
	must(t, err)
	tb.fw = fw
	must(t, fw.Reset())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ruleset at failure:\n%s", nftDump(hs.ns, tb.table))
		}
		if err := fw.Delete(); err != nil {
			t.Errorf("Delete: %v", err)
		}
		if tb.tableExists() {
			t.Errorf("table %s still present after Delete", tb.table)
		}
	})
	return tb
}

func (tb *testbed) conn() *nftables.Conn {
	c, err := nftables.New(nftables.WithNetNSFd(int(tb.ns)))
	must(tb.t, err)
	return c
}

func (tb *testbed) tableExists() bool {
	tables, err := tb.conn().ListTablesOfFamily(nftables.TableFamilyINet)
	must(tb.t, err)
	for _, x := range tables {
		if x.Name == tb.table {
			return true
		}
	}
	return false
}

// reach asserts that ns gets tag's answer at addr over proto and returns the
// client address the server saw.
func reach(t *testing.T, ns netns.NsHandle, proto, addr, tag string) netip.Addr {
	t.Helper()
	got, client, err := answer(t, ns, proto, addr)
	if err != nil || got != tag {
		t.Fatalf("%s %s: got %q, %v; want an answer from %s", proto, addr, got, err, tag)
	}
	return client
}

func unreachable(t *testing.T, ns netns.NsHandle, proto, addr string) {
	t.Helper()
	if got, err := ask(t, ns, proto, addr); err == nil {
		t.Fatalf("%s %s: answered %q, want no answer", proto, addr, got)
	}
}

var (
	ipBr0   = netip.MustParseAddr("172.30.0.1")
	ipC1    = netip.MustParseAddr("172.30.0.2")
	ipC2    = netip.MustParseAddr("172.30.0.3")
	ipC4    = netip.MustParseAddr("172.29.0.2")
	ipHost  = netip.MustParseAddr("10.77.0.1")
	ipExt   = netip.MustParseAddr("192.0.2.1")
	ipOther = netip.MustParseAddr("192.0.2.2")
)

func TestRootPublishedPorts(t *testing.T) {
	tb := newTestbed(t)
	must(t, tb.fw.AddNetwork(front))

	unreachable(t, tb.ns, "tcp", "127.0.0.1:8080") // nothing published yet
	must(t, tb.fw.AddPorts("c1", []PortMapping{
		{Proto: "tcp", HostPort: 8080, ContainerIP: ipC1, ContainerPort: 80},
		{Proto: "udp", HostIP: netip.IPv4Unspecified(), HostPort: 8053, ContainerIP: ipC1, ContainerPort: 80},
		{Proto: "tcp", HostIP: ipHost, HostPort: 8081, ContainerIP: ipC1, ContainerPort: 80},
	}))

	for _, proto := range []string{"tcp", "udp"} {
		port := map[string]string{"tcp": "8080", "udp": "8053"}[proto]
		t.Run(proto, func(t *testing.T) {
			// From the host to its loopback: DNAT in output, then the
			// 127.0.0.1 source is masqueraded to the bridge address.
			if c := reach(t, tb.ns, proto, "127.0.0.1:"+port, "c1"); c != ipBr0 {
				t.Errorf("loopback client seen as %s, want %s", c, ipBr0)
			}
			// From the host to its own address: no masquerade needed.
			if c := reach(t, tb.ns, proto, ipHost.String()+":"+port, "c1"); c != ipHost {
				t.Errorf("host client seen as %s, want %s", c, ipHost)
			}
			// From another host: DNAT in prerouting, client kept.
			if c := reach(t, tb.out, proto, ipExt.String()+":"+port, "c1"); c != ipOther {
				t.Errorf("outside client seen as %s, want %s", c, ipOther)
			}
			// Hairpin: another container and the container itself through
			// the host address; both are masqueraded to the bridge address.
			if c := reach(t, tb.c2, proto, ipHost.String()+":"+port, "c1"); c != ipBr0 {
				t.Errorf("hairpin client seen as %s, want %s", c, ipBr0)
			}
			if c := reach(t, tb.c1, proto, ipHost.String()+":"+port, "c1"); c != ipBr0 {
				t.Errorf("self hairpin client seen as %s, want %s", c, ipBr0)
			}
		})
	}

	// A port bound to one host address answers there only.
	reach(t, tb.ns, "tcp", "10.77.0.1:8081", "c1")
	reach(t, tb.out, "tcp", "10.77.0.1:8081", "c1")
	unreachable(t, tb.ns, "tcp", "127.0.0.1:8081")
	unreachable(t, tb.out, "tcp", "192.0.2.1:8081")
	// Unpublished ports and containers are not reachable from outside.
	unreachable(t, tb.out, "tcp", "192.0.2.1:8082")
	unreachable(t, tb.out, "tcp", "172.30.0.2:80")

	err := tb.fw.AddPorts("other", []PortMapping{
		{Proto: "tcp", HostPort: 9090, ContainerIP: ipC2, ContainerPort: 80},
		{Proto: "tcp", HostPort: 8080, ContainerIP: ipC2, ContainerPort: 80},
	})
	if !errdefs.IsConflict(err) {
		t.Fatalf("AddPorts of a published port: %v, want a conflict", err)
	}

	must(t, tb.fw.RemovePorts("c1"))
	for _, a := range []struct{ proto, addr string }{
		{"tcp", "127.0.0.1:8080"}, {"udp", "127.0.0.1:8053"}, {"tcp", "10.77.0.1:8080"},
		{"tcp", "10.77.0.1:8081"}, {"udp", "10.77.0.1:8053"},
	} {
		unreachable(t, tb.ns, a.proto, a.addr)
	}
	unreachable(t, tb.out, "tcp", "192.0.2.1:8080")
	unreachable(t, tb.c2, "tcp", "10.77.0.1:8080")

	// The port is free again, for another owner.
	must(t, tb.fw.AddPorts("again", []PortMapping{{Proto: "tcp", HostPort: 8080, ContainerIP: ipC1, ContainerPort: 80}}))
	reach(t, tb.out, "tcp", "192.0.2.1:8080", "c1")
}

func TestRootNetworks(t *testing.T) {
	tb := newTestbed(t)
	// Without berth's rules the host routes everything: the outside sees
	// the containers' own addresses, bridges reach each other, and the
	// internal network gets out. Each of these must change below.
	if c := reach(t, tb.c1, "tcp", "192.0.2.2:80", "out"); c != ipC1 {
		t.Fatalf("before AddNetwork, outside saw %s, want %s", c, ipC1)
	}
	reach(t, tb.c3, "tcp", "172.30.0.2:80", "c1")
	reach(t, tb.c1, "tcp", "172.31.0.2:80", "c3")
	reach(t, tb.c4, "tcp", "192.0.2.2:80", "out")
	reach(t, tb.out, "tcp", "172.30.0.2:80", "c1")

	must(t, tb.fw.AddNetwork(front))
	must(t, tb.fw.AddNetwork(back))
	must(t, tb.fw.AddNetwork(internal))

	// Outbound NAT, TCP and UDP.
	for _, proto := range []string{"tcp", "udp"} {
		if c := reach(t, tb.c1, proto, "192.0.2.2:80", "out"); c != ipExt {
			t.Errorf("%s: outside saw %s, want the host's %s", proto, c, ipExt)
		}
	}
	if c := reach(t, tb.c3, "tcp", "192.0.2.2:80", "out"); c != ipExt {
		t.Errorf("outside saw %s, want the host's %s", c, ipExt)
	}
	// Same bridge: direct, not masqueraded.
	if c := reach(t, tb.c2, "tcp", "172.30.0.2:80", "c1"); c != ipC2 {
		t.Errorf("same-bridge client seen as %s, want %s", c, ipC2)
	}
	// Isolation between bridges, both ways, and from the outside.
	unreachable(t, tb.c3, "tcp", "172.30.0.2:80")
	unreachable(t, tb.c1, "tcp", "172.31.0.2:80")
	unreachable(t, tb.c4, "tcp", "172.30.0.2:80")
	unreachable(t, tb.out, "tcp", "172.30.0.2:80")
	// Internal: no way out.
	unreachable(t, tb.c4, "tcp", "192.0.2.2:80")
	unreachable(t, tb.c4, "udp", "192.0.2.2:80")

	// Removing a network removes exactly its rules.
	must(t, tb.fw.RemoveNetwork("front"))
	if c := reach(t, tb.c1, "tcp", "192.0.2.2:80", "out"); c != ipC1 {
		t.Errorf("after RemoveNetwork, outside saw %s, want %s (no masquerade)", c, ipC1)
	}
	if c := reach(t, tb.c3, "tcp", "192.0.2.2:80", "out"); c != ipExt {
		t.Errorf("other network lost its masquerade: outside saw %s", c)
	}
	unreachable(t, tb.c4, "tcp", "192.0.2.2:80")
	must(t, tb.fw.RemoveNetwork("front")) // unknown: no-op
	must(t, tb.fw.AddNetwork(front))      // and back, without leftovers in the way
	if c := reach(t, tb.c1, "tcp", "192.0.2.2:80", "out"); c != ipExt {
		t.Errorf("after AddNetwork again, outside saw %s", c)
	}
	if err := tb.fw.AddNetwork(Network{Name: "dup", Bridge: "br0", Subnet: front.Subnet}); !errdefs.IsConflict(err) {
		t.Errorf("AddNetwork on a used bridge: %v, want a conflict", err)
	}
}

// TestRootNoICC needs br_netfilter: only then do frames between two ports
// of one bridge traverse the inet forward hook.
func TestRootNoICC(t *testing.T) {
	tb := newTestbed(t)
	if readSysctlMaybe(tb.ns, "net.bridge.bridge-nf-call-iptables") != "1" {
		t.Skip("br_netfilter is not active: bridged traffic bypasses the forward hook")
	}
	n := front
	n.ICC = false
	reach(t, tb.c2, "tcp", "172.30.0.2:80", "c1")
	must(t, tb.fw.AddNetwork(n))
	unreachable(t, tb.c2, "tcp", "172.30.0.2:80")
	if c := reach(t, tb.c1, "tcp", "192.0.2.2:80", "out"); c != ipExt {
		t.Errorf("outside saw %s, want %s", c, ipExt)
	}
	// Published ports stay reachable through the host, as with Docker.
	must(t, tb.fw.AddPorts("c1", []PortMapping{{Proto: "tcp", HostPort: 8080, ContainerIP: ipC1, ContainerPort: 80}}))
	reach(t, tb.c2, "tcp", "10.77.0.1:8080", "c1")
}

// inventory describes the table: "chain:<name> <rules>" and "set:<name>
// <elements>", sorted.
func (tb *testbed) inventory(t *testing.T) []string {
	t.Helper()
	c := tb.conn()
	table := &nftables.Table{Name: tb.table, Family: nftables.TableFamilyINet}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	must(t, err)
	var out []string
	for _, ch := range chains {
		if ch.Table.Name != tb.table {
			continue
		}
		rules, err := c.GetRules(table, ch)
		must(t, err)
		out = append(out, fmt.Sprintf("chain:%s %d", ch.Name, len(rules)))
	}
	sets, err := c.GetSets(table)
	must(t, err)
	for _, s := range sets {
		elems, err := c.GetSetElements(s)
		must(t, err)
		out = append(out, fmt.Sprintf("set:%s %d", s.Name, len(elems)))
	}
	slices.Sort(out)
	return out
}

var emptyTable = []string{
	"chain:forward 5", "chain:output 1", "chain:ports 2", "chain:postrouting 3", "chain:prerouting 1",
	"set:bridges 0", "set:fwd_from 0", "set:nat_from 0", "set:nat_to 0", "set:ports4 0", "set:ports4_addr 0", "set:routed 0",
}

func TestRootResetDelete(t *testing.T) {
	tb := newTestbed(t)
	if got := tb.inventory(t); !slices.Equal(got, emptyTable) {
		t.Fatalf("after Reset: %v, want %v", got, emptyTable)
	}
	must(t, tb.fw.AddNetwork(front))
	must(t, tb.fw.AddNetwork(internal))
	must(t, tb.fw.AddPorts("c1", []PortMapping{
		{Proto: "tcp", HostPort: 8080, ContainerIP: ipC1, ContainerPort: 80},
		{Proto: "udp", HostIP: ipHost, HostPort: 8080, ContainerIP: ipC1, ContainerPort: 80},
	}))
	routedFront := front
	routedFront.Routed = true
	must(t, tb.fw.RemoveNetwork("front"))
	must(t, tb.fw.AddNetwork(routedFront))
	want := []string{
		"chain:forward 5", "chain:fwd-front 3", "chain:fwd-internal 3", "chain:nat-front 2", "chain:nat-internal 1",
		"chain:output 1", "chain:ports 2", "chain:postrouting 3", "chain:prerouting 1",
		"set:bridges 2", "set:fwd_from 2", "set:nat_from 2", "set:nat_to 2", "set:ports4 1", "set:ports4_addr 1", "set:routed 1",
	}
	if got := tb.inventory(t); !slices.Equal(got, want) {
		t.Fatalf("with two networks and two ports: %v, want %v", got, want)
	}
	must(t, tb.fw.RemovePorts("c1"))
	must(t, tb.fw.RemoveNetwork("front"))
	must(t, tb.fw.RemoveNetwork("internal"))
	if got := tb.inventory(t); !slices.Equal(got, emptyTable) {
		t.Fatalf("after removing everything: %v, want %v", got, emptyTable)
	}

	// A daemon that crashed left its rules; the next one resets them,
	// twice without duplicates, and replays its networks.
	must(t, tb.fw.AddNetwork(front))
	must(t, tb.fw.AddPorts("c1", []PortMapping{{Proto: "tcp", HostPort: 8080, ContainerIP: ipC1, ContainerPort: 80}}))
	next, err := New(tb.table, WithNetNS(int(tb.ns)))
	must(t, err)
	if err := next.AddNetwork(front); !errors.Is(err, errNotReady) {
		t.Fatalf("AddNetwork before Reset: %v", err)
	}
	must(t, next.Reset())
	must(t, next.Reset())
	if got := tb.inventory(t); !slices.Equal(got, emptyTable) {
		t.Fatalf("after Reset over a crashed daemon's table: %v, want %v", got, emptyTable)
	}
	unreachable(t, tb.out, "tcp", "192.0.2.1:8080")
	must(t, next.AddNetwork(front))
	must(t, next.AddPorts("c1", []PortMapping{{Proto: "tcp", HostPort: 8080, ContainerIP: ipC1, ContainerPort: 80}}))
	reach(t, tb.out, "tcp", "192.0.2.1:8080", "c1")

	must(t, next.Delete())
	if tb.tableExists() {
		t.Fatal("table present after Delete")
	}
	unreachable(t, tb.out, "tcp", "192.0.2.1:8080")
	must(t, next.Delete()) // idempotent
	if err := next.AddPorts("c1", nil); !errors.Is(err, errNotReady) {
		t.Fatalf("AddPorts after Delete: %v", err)
	}
}

// TestRootAtomic makes the kernel refuse the second element of a batch
// (an element planted behind the bookkeeping's back) and checks that the
// first one was not applied either.
func TestRootAtomic(t *testing.T) {
	tb := newTestbed(t)
	must(t, tb.fw.AddNetwork(front))
	c := tb.conn()
	ports := sets(&nftables.Table{Name: tb.table, Family: nftables.TableFamilyINet})[mapPorts4]
	_, planted := portElement(PortMapping{Proto: "tcp", HostPort: 7000, ContainerIP: ipC2, ContainerPort: 81})
	must(t, c.SetAddElements(ports, []nftables.SetElement{planted}))
	must(t, c.Flush())

	err := tb.fw.AddPorts("c1", []PortMapping{
		{Proto: "tcp", HostPort: 7001, ContainerIP: ipC1, ContainerPort: 80},
		{Proto: "tcp", HostPort: 7000, ContainerIP: ipC1, ContainerPort: 80},
	})
	if err == nil {
		t.Fatal("AddPorts over a conflicting kernel element succeeded")
	}
	elems, err := c.GetSetElements(ports)
	must(t, err)
	if len(elems) != 1 {
		t.Fatalf("ports4 has %d elements after a failed batch, want only the planted one", len(elems))
	}
	unreachable(t, tb.out, "tcp", "192.0.2.1:7001")
	// Nothing was recorded either: the first port is free.
	must(t, tb.fw.AddPorts("c1", []PortMapping{{Proto: "tcp", HostPort: 7001, ContainerIP: ipC1, ContainerPort: 80}}))
	reach(t, tb.out, "tcp", "192.0.2.1:7001", "c1")
}
