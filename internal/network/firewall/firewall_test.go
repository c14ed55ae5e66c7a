package firewall

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/containerd/errdefs"
)

func TestNetworkValidate(t *testing.T) {
	sub := netip.MustParsePrefix("172.30.0.0/24")
	for _, tc := range []struct {
		name string
		n    Network
		is   func(error) bool
	}{
		{"ok", Network{Name: "front", Bridge: "br-1234567890a", Subnet: sub}, nil},
		{"no name", Network{Bridge: "br0", Subnet: sub}, errdefs.IsInvalidArgument},
		{"space in name", Network{Name: "a b", Bridge: "br0", Subnet: sub}, errdefs.IsInvalidArgument},
		{"no bridge", Network{Name: "n", Subnet: sub}, errdefs.IsInvalidArgument},
		{"bridge too long", Network{Name: "n", Bridge: "br-1234567890abc", Subnet: sub}, errdefs.IsInvalidArgument},
		{"no subnet", Network{Name: "n", Bridge: "br0"}, errdefs.IsInvalidArgument},
		{"ipv6", Network{Name: "n", Bridge: "br0", Subnet: netip.MustParsePrefix("fd00::/64")}, errdefs.IsNotImplemented},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.n.validate()
			if tc.is == nil && err != nil || tc.is != nil && !tc.is(err) {
				t.Fatalf("validate() = %v", err)
			}
		})
	}
}

func TestPortMappingNormalize(t *testing.T) {
	c := netip.MustParseAddr("172.30.0.2")
	for _, tc := range []struct {
		name string
		m    PortMapping
		want netip.Addr // HostIP after normalizing
		is   func(error) bool
	}{
		{"all addresses", PortMapping{Proto: "tcp", HostPort: 80, ContainerIP: c, ContainerPort: 80}, netip.Addr{}, nil},
		{"0.0.0.0 is all", PortMapping{Proto: "udp", HostIP: netip.IPv4Unspecified(), HostPort: 53, ContainerIP: c, ContainerPort: 53}, netip.Addr{}, nil},
		{"one address", PortMapping{Proto: "tcp", HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 80, ContainerIP: c, ContainerPort: 80}, netip.MustParseAddr("127.0.0.1"), nil},
		{"mapped v4", PortMapping{Proto: "tcp", HostIP: netip.MustParseAddr("::ffff:10.0.0.1"), HostPort: 80, ContainerIP: c, ContainerPort: 80}, netip.MustParseAddr("10.0.0.1"), nil},
		{"sctp", PortMapping{Proto: "sctp", HostPort: 80, ContainerIP: c, ContainerPort: 80}, netip.Addr{}, errdefs.IsInvalidArgument},
		{"host port 0", PortMapping{Proto: "tcp", ContainerIP: c, ContainerPort: 80}, netip.Addr{}, errdefs.IsInvalidArgument},
		{"container port 0", PortMapping{Proto: "tcp", HostPort: 80, ContainerIP: c}, netip.Addr{}, errdefs.IsInvalidArgument},
		{"no container", PortMapping{Proto: "tcp", HostPort: 80, ContainerPort: 80}, netip.Addr{}, errdefs.IsInvalidArgument},
		{"v6 host", PortMapping{Proto: "tcp", HostIP: netip.IPv6Loopback(), HostPort: 80, ContainerIP: c, ContainerPort: 80}, netip.Addr{}, errdefs.IsNotImplemented},
		{"v6 container", PortMapping{Proto: "tcp", HostPort: 80, ContainerIP: netip.MustParseAddr("fd00::2"), ContainerPort: 80}, netip.Addr{}, errdefs.IsNotImplemented},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.m.normalize()
			if tc.is == nil && err != nil || tc.is != nil && !tc.is(err) {
				t.Fatalf("normalize() = %v", err)
			}
			if err == nil && got.HostIP != tc.want {
				t.Fatalf("HostIP = %v, want %v", got.HostIP, tc.want)
			}
		})
	}
}

// The fake shares the bookkeeping of the nftables implementation, so these
// cases hold for both.
func TestFake(t *testing.T) {
	c1 := netip.MustParseAddr("172.30.0.2")
	tcp80 := PortMapping{Proto: "tcp", HostPort: 8080, ContainerIP: c1, ContainerPort: 80}
	front := Network{Name: "front", Bridge: "br0", Subnet: netip.MustParsePrefix("172.30.0.0/24")}

	f := NewFake()
	if err := f.AddNetwork(front); !errors.Is(err, errNotReady) {
		t.Fatalf("AddNetwork before Reset: %v", err)
	}
	must(t, f.Reset())
	must(t, f.AddNetwork(front))
	for _, n := range []Network{
		{Name: "front", Bridge: "br1", Subnet: front.Subnet},
		{Name: "other", Bridge: "br0", Subnet: front.Subnet},
	} {
		if err := f.AddNetwork(n); !errdefs.IsConflict(err) {
			t.Errorf("AddNetwork(%+v) = %v, want a conflict", n, err)
		}
	}

	udp := tcp80
	udp.Proto = "udp"
	local := tcp80
	local.HostIP = netip.MustParseAddr("127.0.0.1")
	must(t, f.AddPorts("c1", []PortMapping{tcp80, udp, local}))
	for _, tc := range []struct {
		name string
		ms   []PortMapping
	}{
		{"same port", []PortMapping{tcp80}},
		{"same port, 0.0.0.0", []PortMapping{{Proto: "tcp", HostIP: netip.IPv4Unspecified(), HostPort: 8080, ContainerIP: c1, ContainerPort: 81}}},
		{"twice in one call", []PortMapping{{Proto: "tcp", HostPort: 9, ContainerIP: c1, ContainerPort: 9}, {Proto: "tcp", HostPort: 9, ContainerIP: c1, ContainerPort: 10}}},
	} {
		if err := f.AddPorts("c2", tc.ms); !errdefs.IsConflict(err) {
			t.Errorf("%s: AddPorts = %v, want a conflict", tc.name, err)
		}
	}
	if got := f.Ports("c2"); len(got) != 0 {
		t.Errorf("failed AddPorts recorded %v", got)
	}
	want := []string{"*:8080/tcp c1", "*:8080/udp c1", "127.0.0.1:8080/tcp c1"}
	if got := f.Published(); !slices.Equal(got, want) {
		t.Errorf("Published() = %v, want %v", got, want)
	}

	boom := errors.New("boom")
	f.Fail = func(call string) error {
		if call == "RemovePorts c1" {
			return boom
		}
		return nil
	}
	if err := f.RemovePorts("c1"); !errors.Is(err, boom) {
		t.Fatalf("injected failure: %v", err)
	}
	if len(f.Ports("c1")) != 3 {
		t.Fatal("a failed RemovePorts changed the state")
	}
	f.Fail = nil
	must(t, f.RemovePorts("c1"))
	must(t, f.RemovePorts("c1"))
	must(t, f.AddPorts("c2", []PortMapping{tcp80}))
	must(t, f.RemoveNetwork("front"))
	must(t, f.RemoveNetwork("front"))
	if len(f.Networks()) != 0 {
		t.Errorf("Networks() = %v after RemoveNetwork", f.Networks())
	}
	must(t, f.Delete())
	if !f.Deleted() || f.Ready() {
		t.Error("Delete did not delete")
	}
	wantCalls := []string{"AddNetwork front", "Reset", "AddNetwork front", "AddNetwork front", "AddNetwork other",
		"AddPorts c1", "AddPorts c2", "AddPorts c2", "AddPorts c2", "RemovePorts c1", "RemovePorts c1", "RemovePorts c1",
		"AddPorts c2", "RemoveNetwork front", "RemoveNetwork front", "Delete"}
	if got := f.Calls(); !slices.Equal(got, wantCalls) {
		t.Errorf("Calls() = %v\nwant %v", got, wantCalls)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
