package firewall

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}

// TestRootPortsTiming reports the latency of AddPorts and RemovePorts (one
// container, a TCP and a UDP port: median of 100) and how the table scales
// with 1000 published ports: the rule count stays constant, DNAT is one map
// lookup.
func TestRootPortsTiming(t *testing.T) {
	tb := newTestbed(t)
	must(t, tb.fw.AddNetwork(front))
	ms := []PortMapping{
		{Proto: "tcp", HostPort: 8080, ContainerIP: ipC1, ContainerPort: 80},
		{Proto: "udp", HostPort: 8080, ContainerIP: ipC1, ContainerPort: 80},
	}
	var add, del []time.Duration
	for range 100 {
		t0 := time.Now()
		must(t, tb.fw.AddPorts("c1", ms))
		t1 := time.Now()
		must(t, tb.fw.RemovePorts("c1"))
		add, del = append(add, t1.Sub(t0)), append(del, time.Since(t1))
	}
	t.Logf("AddPorts (2 ports) median %v, RemovePorts median %v (100 runs)", median(add), median(del))

	base := tb.inventory(t)
	t0 := time.Now()
	for i := range 1000 {
		must(t, tb.fw.AddPorts(fmt.Sprintf("c%d", i), []PortMapping{
			{Proto: "tcp", HostPort: uint16(20000 + i), ContainerIP: ipC1, ContainerPort: 80}}))
	}
	oneByOne := time.Since(t0)
	var add1k []time.Duration
	for range 20 {
		t1 := time.Now()
		must(t, tb.fw.AddPorts("extra", []PortMapping{{Proto: "tcp", HostPort: 19999, ContainerIP: ipC1, ContainerPort: 80}}))
		add1k = append(add1k, time.Since(t1))
		must(t, tb.fw.RemovePorts("extra"))
	}
	got := tb.inventory(t)
	rules := func(inv []string) []string {
		return slices.DeleteFunc(slices.Clone(inv), func(s string) bool { return s[:4] == "set:" })
	}
	if !slices.Equal(rules(got), rules(base)) {
		t.Errorf("chains changed with 1000 ports: %v, was %v", got, base)
	}
	if !slices.Contains(got, "set:ports4 1000") {
		t.Errorf("want 1000 elements in ports4: %v", got)
	}
	reach(t, tb.out, "tcp", "192.0.2.1:20999", "c1")
	reach(t, tb.ns, "tcp", "127.0.0.1:20000", "c1")

	var bulk []PortMapping
	for i := range 1000 {
		bulk = append(bulk, PortMapping{Proto: "udp", HostIP: netip.MustParseAddr("10.77.0.1"), HostPort: uint16(30000 + i), ContainerIP: ipC1, ContainerPort: 80})
	}
	t2 := time.Now()
	must(t, tb.fw.AddPorts("bulk", bulk))
	bulkAdd := time.Since(t2)
	t3 := time.Now()
	must(t, tb.fw.RemovePorts("bulk"))
	bulkDel := time.Since(t3)
	t.Logf("1000 owners x 1 port: %v in all; with them, AddPorts of one more: median %v; one call of 1000 ports: add %v, remove %v; rules unchanged (%v)",
		oneByOne, median(add1k), bulkAdd, bulkDel, rules(got))
}
