package firewall

import (
	"bytes"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

func TestPortElement(t *testing.T) {
	c := netip.MustParseAddr("172.30.0.2")
	for _, tc := range []struct {
		m        PortMapping
		set      string
		key, val []byte
	}{
		{PortMapping{Proto: "tcp", HostPort: 8080, ContainerIP: c, ContainerPort: 80}, mapPorts4,
			[]byte{6, 0, 0, 0, 0x1f, 0x90, 0, 0}, []byte{172, 30, 0, 2, 0, 80, 0, 0}},
		{PortMapping{Proto: "udp", HostPort: 53, ContainerIP: c, ContainerPort: 5353}, mapPorts4,
			[]byte{17, 0, 0, 0, 0, 53, 0, 0}, []byte{172, 30, 0, 2, 0x14, 0xe9, 0, 0}},
		{PortMapping{Proto: "tcp", HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 443, ContainerIP: c, ContainerPort: 443}, mapPorts4Addr,
			[]byte{127, 0, 0, 1, 6, 0, 0, 0, 1, 0xbb, 0, 0}, []byte{172, 30, 0, 2, 1, 0xbb, 0, 0}},
	} {
		set, e := portElement(tc.m)
		if set != tc.set || !bytes.Equal(e.Key, tc.key) || !bytes.Equal(e.Val, tc.val) {
			t.Errorf("%s: %s %v : %v, want %s %v : %v", tc.m, set, e.Key, e.Val, tc.set, tc.key, tc.val)
		}
		s := sets(&nftables.Table{Name: "t"})[set]
		if int(s.KeyType.Bytes) != len(e.Key) || int(s.DataType.Bytes) != len(e.Val) {
			t.Errorf("%s: element sizes %d:%d, set wants %d:%d", tc.m, len(e.Key), len(e.Val), s.KeyType.Bytes, s.DataType.Bytes)
		}
	}
}

// verdicts lists the verdicts and NAT statements ending each rule.
func verdicts(rules [][]expr.Any) []string {
	var out []string
	for _, r := range rules {
		switch e := r[len(r)-1].(type) {
		case *expr.Verdict:
			out = append(out, map[expr.VerdictKind]string{expr.VerdictAccept: "accept", expr.VerdictDrop: "drop", expr.VerdictJump: "jump"}[e.Kind])
		case *expr.Masq:
			out = append(out, "masquerade")
		case *expr.NAT:
			out = append(out, "dnat")
		case *expr.Lookup:
			out = append(out, "vmap")
		default:
			out = append(out, "?")
		}
	}
	return out
}

func TestNetworkRules(t *testing.T) {
	sub := netip.MustParsePrefix("172.30.0.0/24")
	for _, tc := range []struct {
		name     string
		n        Network
		fwd, nat []string
	}{
		{"icc", Network{Name: "n", Bridge: "br0", Subnet: sub, ICC: true},
			[]string{"accept", "drop", "accept"}, []string{"masquerade", "masquerade"}},
		{"no icc", Network{Name: "n", Bridge: "br0", Subnet: sub},
			[]string{"drop", "drop", "accept"}, []string{"masquerade", "masquerade"}},
		{"internal", Network{Name: "n", Bridge: "br0", Subnet: sub, Internal: true, ICC: true},
			[]string{"accept", "drop", "drop"}, []string{"masquerade"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := networkRules(tc.n, sets(&nftables.Table{Name: "t"}))
			if got := verdicts(r["fwd-n"]); !slices.Equal(got, tc.fwd) {
				t.Errorf("fwd-n: %v, want %v", got, tc.fwd)
			}
			if got := verdicts(r["nat-n"]); !slices.Equal(got, tc.nat) {
				t.Errorf("nat-n: %v, want %v", got, tc.nat)
			}
		})
	}
	base := baseRules(sets(&nftables.Table{Name: "t"}))
	if got, want := verdicts(base[chainForward]), []string{"accept", "accept", "vmap", "accept", "drop"}; !slices.Equal(got, want) {
		t.Errorf("forward: %v, want %v", got, want)
	}
	if got, want := verdicts(base[chainPorts]), []string{"dnat", "dnat"}; !slices.Equal(got, want) {
		t.Errorf("ports: %v, want %v", got, want)
	}
}

func TestSaddrInMask(t *testing.T) {
	for _, tc := range []struct {
		p          string
		mask, addr []byte
	}{
		{"172.30.0.0/24", []byte{255, 255, 255, 0}, []byte{172, 30, 0, 0}},
		{"127.0.0.1/8", []byte{255, 0, 0, 0}, []byte{127, 0, 0, 0}},
		{"10.1.2.3/17", []byte{255, 255, 128, 0}, []byte{10, 1, 0, 0}},
		{"10.1.2.3/32", []byte{255, 255, 255, 255}, []byte{10, 1, 2, 3}},
	} {
		e := saddrIn(netip.MustParsePrefix(tc.p))
		mask := e[1].(*expr.Bitwise).Mask
		addr := e[2].(*expr.Cmp).Data
		if !bytes.Equal(mask, tc.mask) || !bytes.Equal(addr, tc.addr) {
			t.Errorf("%s: mask %v addr %v, want %v %v", tc.p, mask, addr, tc.mask, tc.addr)
		}
	}
}
