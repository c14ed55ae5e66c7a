package ipam

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/containerd/errdefs"
)

func prefixes(ss ...string) []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range ss {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

func TestDefaultPools(t *testing.T) {
	pools := DefaultPools()
	if len(pools) != 16 {
		t.Fatalf("%d pools", len(pools))
	}
	first, last := pools[0], pools[len(pools)-1]
	if first.Base.String() != "172.17.0.0/16" || first.Size != 16 || pools[14].Base.String() != "172.31.0.0/16" {
		t.Errorf("172 pools: %v", pools[:15])
	}
	if last.Base.String() != "192.168.0.0/16" || last.Size != 20 {
		t.Errorf("last pool %v", last)
	}
}

func TestChooseSubnet(t *testing.T) {
	all172 := []string{}
	for _, p := range DefaultPools()[:15] {
		all172 = append(all172, p.Base.String())
	}
	for _, tc := range []struct {
		name       string
		pools      []AddressPool
		used       []netip.Prefix
		hostRoutes []netip.Prefix
		want       string
		errIs      error
	}{
		{name: "first", want: "172.17.0.0/16"},
		{name: "used", used: prefixes("172.17.0.0/16"), want: "172.18.0.0/16"},
		{name: "used inside", used: prefixes("172.17.9.0/24", "172.18.0.0/16"), want: "172.19.0.0/16"},
		{name: "host route", hostRoutes: prefixes("172.17.0.0/16", "10.0.0.0/8"), want: "172.18.0.0/16"},
		{name: "host route covers 172.16/12", hostRoutes: prefixes("172.16.0.0/12"), want: "192.168.0.0/20"},
		{name: "then /20s", used: prefixes(all172...), hostRoutes: prefixes("192.168.0.0/24", "192.168.16.5/32"),
			want: "192.168.32.0/20"},
		{name: "exhausted", used: prefixes("172.16.0.0/12"), hostRoutes: prefixes("192.168.0.0/16"), errIs: ErrNoSubnet},
		{name: "big pool skips a large block", pools: []AddressPool{{Base: netip.MustParsePrefix("10.0.0.0/8"), Size: 24}},
			used: prefixes("10.0.0.0/9"), hostRoutes: prefixes("10.128.0.0/24"), want: "10.128.1.0/24"},
		{name: "big pool exhausted", pools: []AddressPool{{Base: netip.MustParsePrefix("10.0.0.0/8"), Size: 30}},
			used: prefixes("0.0.0.0/1"), errIs: ErrNoSubnet},
		{name: "top of the address space", pools: []AddressPool{{Base: netip.MustParsePrefix("255.255.255.0/24"), Size: 25}},
			used: prefixes("255.255.255.0/25"), want: "255.255.255.128/25"},
		{name: "ipv6", pools: []AddressPool{{Base: netip.MustParsePrefix("fd00::/8"), Size: 64}},
			used: prefixes("fd00::/16", "10.0.0.0/8"), want: "fd01::/64"},
		{name: "bad size", pools: []AddressPool{{Base: netip.MustParsePrefix("10.0.0.0/16"), Size: 8}}, errIs: errdefs.ErrInvalidArgument},
		{name: "no base", pools: []AddressPool{{Size: 24}}, errIs: errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pools := tc.pools
			if pools == nil {
				pools = DefaultPools()
			}
			got, err := ChooseSubnet(pools, tc.used, tc.hostRoutes)
			if tc.errIs != nil {
				if !errors.Is(err, tc.errIs) {
					t.Fatalf("ChooseSubnet = %v, %v; want %v", got, err, tc.errIs)
				}
				return
			}
			if err != nil || got.String() != tc.want {
				t.Fatalf("ChooseSubnet = %v, %v; want %s", got, err, tc.want)
			}
		})
	}
}

func TestNoSubnetWording(t *testing.T) {
	_, err := ChooseSubnet(nil, nil, nil)
	if !errdefs.IsNotFound(err) ||
		err.Error() != "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network: not found" {
		t.Fatalf("error %v", err)
	}
}

func TestLastAddr(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.0/24":     "10.0.0.255",
		"10.0.0.0/31":     "10.0.0.1",
		"10.0.0.7/32":     "10.0.0.7",
		"0.0.0.0/0":       "255.255.255.255",
		"fd00::/64":       "fd00::ffff:ffff:ffff:ffff",
		"172.17.128.0/17": "172.17.255.255",
	} {
		if got := lastAddr(netip.MustParsePrefix(in)).String(); got != want {
			t.Errorf("lastAddr(%s) = %s; want %s", in, got, want)
		}
	}
}
