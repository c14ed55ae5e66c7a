package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
)

// hostVeths lists the host's veth-like links named as berth names them.
func hostVeths(t *testing.T) []string {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, i := range ifs {
		if strings.HasPrefix(i.Name, "veth") || strings.HasPrefix(i.Name, "br-") {
			out = append(out, i.Name)
		}
	}
	return out
}

// setElements counts the elements of a set in the daemon's table.
func setElements(t *testing.T, table, set string) int {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tb := &nftables.Table{Name: table, Family: nftables.TableFamilyINet}
	s, err := c.GetSetByName(tb, set)
	if err != nil {
		t.Fatalf("set %s of %s: %v", set, table, err)
	}
	els, err := c.GetSetElements(s)
	if err != nil {
		t.Fatal(err)
	}
	return len(els)
}

// TestNetworkLeaks creates and removes 200 containers on 20 networks, some
// of them connected to a second network (running, and before their start),
// with a kill -9 of the daemon in the middle, and checks that no veth,
// network namespace, bridge, firewall entry or address allocation is left.
func TestNetworkLeaks(t *testing.T) {
	c := newDockerCLI(t)
	before := hostVeths(t)
	c.ok("network", "create", "--subnet", "10.88.0.0/24", "leakx")
	for n := 0; n < 20; n++ {
		net := fmt.Sprintf("leak%02d", n)
		c.ok("network", "create", net)
		for i := 0; i < 10; i++ {
			switch {
			case i == 2:
				// Connected while running, left by a disconnect and by
				// the removal.
				c.ok("run", "-d", "--name", "multi", "--network", net, "-p", "80", "busybox", "sleep", "300")
				c.ok("network", "connect", "leakx", "multi")
				c.ok("exec", "multi", "ping", "-c1", "-W2", "10.88.0.1")
				if n%2 == 0 {
					c.ok("network", "disconnect", "leakx", "multi")
				}
				c.ok("rm", "-f", "multi")
			case i == 4:
				// Connected before its start.
				c.ok("create", "--name", "late", "--network", net, "busybox", "sleep", "300")
				c.ok("network", "connect", "--ip", fmt.Sprintf("10.88.0.%d", 100+n), "leakx", "late")
				c.ok("start", "late")
				c.ok("rm", "-f", "late")
			case i%2 == 1:
				c.ok("run", "--rm", "-p", "80", "--network", net, "busybox", "true")
			default:
				c.ok("run", "--rm", "--network", net, "busybox", "true")
			}
		}
		if n == 10 {
			// Containers running across a daemon crash, one of them on
			// two networks: their endpoints are rebuilt at restart, and
			// torn down when they go.
			for i := 0; i < 3; i++ {
				c.ok("run", "-d", "--name", fmt.Sprintf("survivor%d", i), "--network", net, "-p", "80", "busybox", "sleep", "300")
			}
			c.ok("network", "connect", "leakx", "survivor1")
			c.d.Kill9()
			c.d.Start()
			for i := 0; i < 3; i++ {
				c.ok("exec", fmt.Sprintf("survivor%d", i), "true")
			}
			c.ok("exec", "survivor1", "ping", "-c1", "-W2", "10.88.0.1")
			c.ok("rm", "-f", "survivor0", "survivor1", "survivor2")
		}
		c.ok("network", "rm", net)
	}
	c.ok("network", "rm", "leakx")
	// The kernel deletes a namespace's veth in the background once the
	// namespace is gone: give it a moment.
	after := hostVeths(t)
	for deadline := time.Now().Add(30 * time.Second); !slices.Equal(after, before) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		after = hostVeths(t)
	}
	if !slices.Equal(after, before) {
		t.Errorf("links left: before %v, after %v", before, after)
	}
	if ents, _ := os.ReadDir(filepath.Join(c.d.ExecRoot, "netns")); len(ents) > 0 {
		t.Errorf("network namespaces left: %d", len(ents))
	}
	if ents, _ := os.ReadDir(filepath.Join(c.d.DataRoot, "network", "endpoints")); len(ents) > 0 {
		t.Errorf("endpoint records left: %d", len(ents))
	}
	var st struct {
		Networks map[string]struct {
			Addrs map[string]string `json:"addresses"`
		} `json:"networks"`
	}
	data, err := os.ReadFile(filepath.Join(c.d.DataRoot, "network", "ipam.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Networks) != 1 {
		t.Errorf("IPAM networks left: %d, want only the default bridge's", len(st.Networks))
	}
	for id, n := range st.Networks {
		if len(n.Addrs) > 0 {
			t.Errorf("addresses still allocated on %s: %v", id, n.Addrs)
		}
	}
	table := "berth_" + c.d.Bridge
	if n := setElements(t, table, "bridges"); n != 1 {
		t.Errorf("bridges in the firewall: %d, want 1 (the default)", n)
	}
	for _, m := range []string{"ports4", "ports4_addr"} {
		if n := setElements(t, table, m); n != 0 {
			t.Errorf("published ports left in %s: %d", m, n)
		}
	}
}
