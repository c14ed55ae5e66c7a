package firewall

import (
	"net/netip"
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
