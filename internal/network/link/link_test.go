package link

import (
	"net"
	"net/netip"
	"regexp"
	"testing"
)

func TestMACFromIP(t *testing.T) {
	for _, tc := range []struct{ ip, want string }{
		{"172.17.0.2", "02:42:ac:11:00:02"},
		{"10.0.0.1", "02:42:0a:00:00:01"},
		{"::ffff:192.168.1.255", "02:42:c0:a8:01:ff"},
	} {
		if got := MACFromIP(netip.MustParseAddr(tc.ip)).String(); got != tc.want {
			t.Errorf("MACFromIP(%s) = %s; want %s", tc.ip, got, tc.want)
		}
	}
	// Not IPv4: random, unicast and locally administered.
	a, b := MACFromIP(netip.MustParseAddr("fd00::2")), MACFromIP(netip.Addr{})
	for _, mac := range []net.HardwareAddr{a, b} {
		if len(mac) != 6 || mac[0]&0x01 != 0 || mac[0]&0x02 == 0 {
			t.Errorf("MAC %s is not a local unicast address", mac)
		}
	}
	if a.String() == b.String() {
		t.Errorf("two random MACs are equal: %s", a)
	}
}

func TestVethName(t *testing.T) {
	re := regexp.MustCompile(`^veth[0-9a-f]{7}$`)
	seen := map[string]bool{}
	for range 100 {
		n := vethName()
		if !re.MatchString(n) {
			t.Fatalf("name %q", n)
		}
		seen[n] = true
	}
	if len(seen) < 95 {
		t.Errorf("only %d distinct names in 100", len(seen))
	}
}

func TestPrefixFromIPNet(t *testing.T) {
	_, v4, _ := net.ParseCIDR("10.1.2.0/24")
	_, v6, _ := net.ParseCIDR("fd00::/64")
	mapped := &net.IPNet{IP: net.ParseIP("10.1.2.0"), Mask: net.CIDRMask(120, 128)}
	for _, tc := range []struct {
		in   *net.IPNet
		want string
	}{
		{v4, "10.1.2.0/24"},
		{v6, "fd00::/64"},
		{mapped, "10.1.2.0/24"},
		{nil, "invalid Prefix"},
		{&net.IPNet{IP: net.IP{1, 2}}, "invalid Prefix"},
	} {
		got, _ := prefixFromIPNet(tc.in)
		if got.String() != tc.want {
			t.Errorf("prefixFromIPNet(%v) = %s; want %s", tc.in, got, tc.want)
		}
	}
	p := netip.MustParsePrefix("172.17.0.1/16")
	if got, _ := prefixFromIPNet(ipNet(p)); got != p {
		t.Errorf("round trip %s gave %s", p, got)
	}
}

func TestEnableForwardingName(t *testing.T) {
	for _, name := range []string{"", "../x", "a/b", "all.x"} {
		if err := EnableForwarding(name); err == nil {
			t.Errorf("EnableForwarding(%q) succeeded", name)
		}
	}
}
