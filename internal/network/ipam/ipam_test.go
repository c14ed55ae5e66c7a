package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/errdefs"
)

func open(t *testing.T) (*Allocator, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ipam", "state.json")
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return a, path
}

func mustAdd(t *testing.T, a *Allocator, id, subnet, ipRange string) Pool {
	t.Helper()
	p := Pool{Subnet: netip.MustParsePrefix(subnet)}
	if ipRange != "" {
		p.IPRange = netip.MustParsePrefix(ipRange)
	}
	got, err := a.AddNetwork(id, p)
	if err != nil {
		t.Fatalf("AddNetwork(%s, %s): %v", id, subnet, err)
	}
	return got
}

func allocate(t *testing.T, a *Allocator, id, owner string) string {
	t.Helper()
	addr, err := a.Allocate(id, owner, netip.Addr{})
	if err != nil {
		t.Fatalf("Allocate(%s, %s): %v", id, owner, err)
	}
	return addr.String()
}

func TestAddNetwork(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pool    Pool
		want    Pool
		errText string
		errIs   error
	}{
		{name: "gateway filled", pool: Pool{Subnet: netip.MustParsePrefix("172.17.0.0/16")},
			want: Pool{Subnet: netip.MustParsePrefix("172.17.0.0/16"), Gateway: netip.MustParseAddr("172.17.0.1")}},
		{name: "gateway kept", pool: Pool{Subnet: netip.MustParsePrefix("10.0.0.0/24"), Gateway: netip.MustParseAddr("10.0.0.254")},
			want: Pool{Subnet: netip.MustParsePrefix("10.0.0.0/24"), Gateway: netip.MustParseAddr("10.0.0.254")}},
		{name: "ip range", pool: Pool{Subnet: netip.MustParsePrefix("10.0.0.0/16"), IPRange: netip.MustParsePrefix("10.0.5.0/24")},
			want: Pool{Subnet: netip.MustParsePrefix("10.0.0.0/16"), Gateway: netip.MustParseAddr("10.0.0.1"), IPRange: netip.MustParsePrefix("10.0.5.0/24")}},
		{name: "point to point", pool: Pool{Subnet: netip.MustParsePrefix("10.0.0.0/31")},
			want: Pool{Subnet: netip.MustParsePrefix("10.0.0.0/31"), Gateway: netip.MustParseAddr("10.0.0.0")}},
		{name: "mapped", pool: Pool{Subnet: netip.MustParsePrefix("::ffff:10.0.0.0/120")},
			want: Pool{Subnet: netip.MustParsePrefix("10.0.0.0/24"), Gateway: netip.MustParseAddr("10.0.0.1")}},
		{name: "ipv6", pool: Pool{Subnet: netip.MustParsePrefix("fd00:1::/64")},
			want: Pool{Subnet: netip.MustParsePrefix("fd00:1::/64"), Gateway: netip.MustParseAddr("fd00:1::1")}},
		{name: "no subnet", pool: Pool{}, errIs: errdefs.ErrInvalidArgument, errText: "invalid subnet"},
		{name: "host bits", pool: Pool{Subnet: netip.MustParsePrefix("10.0.0.1/24")}, errIs: errdefs.ErrInvalidArgument,
			errText: "invalid subnet 10.0.0.1/24: it should be 10.0.0.0/24"},
		{name: "range outside", pool: Pool{Subnet: netip.MustParsePrefix("10.0.0.0/24"), IPRange: netip.MustParsePrefix("10.0.1.0/25")},
			errIs: errdefs.ErrInvalidArgument, errText: "must be a subset of subnet"},
		{name: "range larger", pool: Pool{Subnet: netip.MustParsePrefix("10.0.0.0/24"), IPRange: netip.MustParsePrefix("10.0.0.0/16")},
			errIs: errdefs.ErrInvalidArgument, errText: "must be a subset of subnet"},
		{name: "gateway outside", pool: Pool{Subnet: netip.MustParsePrefix("10.0.0.0/24"), Gateway: netip.MustParseAddr("10.0.1.1")},
			errIs: errdefs.ErrInvalidArgument, errText: "does not belong to subnet"},
		{name: "overlap", pool: Pool{Subnet: netip.MustParsePrefix("192.168.0.0/16")}, errIs: errdefs.ErrPermissionDenied,
			errText: "invalid pool request: Pool overlaps with other one on this address space"},
		{name: "overlap inside", pool: Pool{Subnet: netip.MustParsePrefix("192.168.10.128/25")}, errIs: ErrPoolOverlap},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := open(t)
			mustAdd(t, a, "existing", "192.168.10.0/24", "")
			got, err := a.AddNetwork("n", tc.pool)
			if tc.errIs != nil {
				if !errors.Is(err, tc.errIs) || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("error %v; want %v containing %q", err, tc.errIs, tc.errText)
				}
				if _, ok := a.Networks()["n"]; ok {
					t.Error("a refused network was added")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("pool %+v; want %+v", got, tc.want)
			}
			if nets := a.Networks(); nets["n"] != tc.want || len(nets) != 2 {
				t.Errorf("Networks() = %v", nets)
			}
		})
	}
}

func TestAddNetworkTwice(t *testing.T) {
	a, _ := open(t)
	mustAdd(t, a, "n", "10.0.0.0/24", "")
	if _, err := a.AddNetwork("n", Pool{Subnet: netip.MustParsePrefix("10.9.0.0/24")}); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("second AddNetwork: %v", err)
	}
	if err := a.RemoveNetwork("n"); err != nil {
		t.Fatal(err)
	}
	if err := a.RemoveNetwork("n"); !errdefs.IsNotFound(err) {
		t.Fatalf("removing an absent network: %v", err)
	}
	// The subnet is free again.
	mustAdd(t, a, "m", "10.0.0.0/24", "")
}

func TestAllocateNextFit(t *testing.T) {
	a, _ := open(t)
	// 10.0.0.0/29: .0 network, .1 gateway, .7 broadcast; .2 to .6 free.
	mustAdd(t, a, "n", "10.0.0.0/29", "")
	steps := []struct {
		op   string // "a" allocate for owner, "r" release addr
		arg  string
		want string // address, or error text
	}{
		{"a", "c1", "10.0.0.2"},
		{"a", "c2", "10.0.0.3"},
		{"a", "c3", "10.0.0.4"},
		{"r", "10.0.0.3", ""},
		{"a", "c4", "10.0.0.5"}, // next fit: .3 is not reused right away
		{"a", "c5", "10.0.0.6"},
		{"a", "c6", "10.0.0.3"}, // wrapped round past .7, .0, .1, .2
		{"a", "c7", "no available IPv4 addresses on this network's address pools: n"},
		{"r", "10.0.0.5", ""},
		{"r", "10.0.0.5", ""}, // releasing a free address is fine
		{"a", "c8", "10.0.0.5"},
	}
	for i, s := range steps {
		switch s.op {
		case "a":
			addr, err := a.Allocate("n", s.arg, netip.Addr{})
			got := addr.String()
			if err != nil {
				got = err.Error()
				var na *NoAvailableError
				if !errors.As(err, &na) {
					t.Errorf("step %d: error %T, want *NoAvailableError", i, err)
				}
			}
			if got != s.want {
				t.Fatalf("step %d: Allocate(%s) = %s; want %s", i, s.arg, got, s.want)
			}
		case "r":
			if err := a.Release("n", netip.MustParseAddr(s.arg)); err != nil {
				t.Fatalf("step %d: Release(%s): %v", i, s.arg, err)
			}
		}
	}
	want := map[netip.Addr]string{}
	for owner, addr := range map[string]string{"c1": "10.0.0.2", "c3": "10.0.0.4", "c5": "10.0.0.6", "c6": "10.0.0.3", "c8": "10.0.0.5"} {
		want[netip.MustParseAddr(addr)] = owner
	}
	if got := a.Owners("n"); !reflect.DeepEqual(got, want) {
		t.Errorf("Owners = %v; want %v", got, want)
	}
}

func TestAllocateIPRange(t *testing.T) {
	a, _ := open(t)
	mustAdd(t, a, "n", "10.1.0.0/24", "10.1.0.252/30")
	var got []string
	for _, owner := range []string{"a", "b", "c"} {
		got = append(got, allocate(t, a, "n", owner))
	}
	// .255 is the subnet's broadcast address.
	if want := []string{"10.1.0.252", "10.1.0.253", "10.1.0.254"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("allocated %v; want %v", got, want)
	}
	if _, err := a.Allocate("n", "d", netip.Addr{}); err == nil {
		t.Fatal("allocated past the end of the ip range")
	}
	// An address asked for may be outside the range, as in Docker.
	if addr, err := a.Allocate("n", "d", netip.MustParseAddr("10.1.0.9")); err != nil || addr.String() != "10.1.0.9" {
		t.Fatalf("Allocate(10.1.0.9) = %v, %v", addr, err)
	}
}

func TestAllocateRequested(t *testing.T) {
	for _, tc := range []struct {
		want    string
		errIs   error
		errText string
	}{
		{want: "172.20.3.4"},
		{want: "::ffff:172.20.3.5"},
		{want: "172.20.0.2", errIs: ErrAddressInUse, errText: "Address already in use"},
		{want: "172.20.0.1", errIs: errdefs.ErrPermissionDenied, errText: "Address already in use"}, // gateway
		{want: "172.20.0.0", errIs: ErrAddressInUse},                                                // network
		{want: "172.20.255.255", errIs: ErrAddressInUse},                                            // broadcast
		{want: "172.21.0.2", errIs: errdefs.ErrInvalidArgument,
			errText: "invalid address 172.21.0.2: It does not belong to any of this network's subnets"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			a, _ := open(t)
			mustAdd(t, a, "n", "172.20.0.0/16", "")
			if got := allocate(t, a, "n", "first"); got != "172.20.0.2" {
				t.Fatalf("first address %s", got)
			}
			want := netip.MustParseAddr(tc.want)
			got, err := a.Allocate("n", "c", want)
			if tc.errIs != nil {
				if !errors.Is(err, tc.errIs) || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("error %v; want %v with %q", err, tc.errIs, tc.errText)
				}
				if len(a.Owners("n")) != 1 {
					t.Errorf("owners after a refusal: %v", a.Owners("n"))
				}
				return
			}
			if err != nil || got != want.Unmap() {
				t.Fatalf("Allocate = %v, %v", got, err)
			}
			if a.Owners("n")[want.Unmap()] != "c" {
				t.Errorf("owners %v", a.Owners("n"))
			}
			// An address asked for does not move the next-fit cursor.
			if next := allocate(t, a, "n", "next"); next != "172.20.0.3" {
				t.Errorf("next address %s", next)
			}
		})
	}
}

func TestAllocateErrors(t *testing.T) {
	a, _ := open(t)
	mustAdd(t, a, "n", "10.0.0.0/24", "")
	if _, err := a.Allocate("missing", "c", netip.Addr{}); !errdefs.IsNotFound(err) {
		t.Errorf("unknown network: %v", err)
	}
	if _, err := a.Allocate("n", "", netip.Addr{}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("no owner: %v", err)
	}
	if err := a.Release("missing", netip.MustParseAddr("10.0.0.2")); !errdefs.IsNotFound(err) {
		t.Errorf("release in unknown network: %v", err)
	}
	if a.Owners("missing") != nil {
		t.Error("owners of an unknown network")
	}
}

func TestPointToPoint(t *testing.T) {
	a, _ := open(t)
	p := mustAdd(t, a, "n", "10.0.0.0/31", "")
	// The gateway takes 10.0.0.0; 10.0.0.1 is the only address left.
	if got := allocate(t, a, "n", "c"); got != "10.0.0.1" || p.Gateway.String() != "10.0.0.0" {
		t.Fatalf("got %s with gateway %s", got, p.Gateway)
	}
	if _, err := a.Allocate("n", "d", netip.Addr{}); err == nil {
		t.Fatal("a /31 gave three addresses")
	}
}

func TestIPv6(t *testing.T) {
	a, _ := open(t)
	mustAdd(t, a, "n", "fd00:1::/64", "")
	if got := allocate(t, a, "n", "c"); got != "fd00:1::2" {
		t.Fatalf("first IPv6 address %s", got)
	}
	mustAdd(t, a, "small", "fd00:2::/126", "")
	// ::0 subnet-router anycast and ::1 gateway are reserved; no broadcast.
	for _, want := range []string{"fd00:2::2", "fd00:2::3"} {
		if got := allocate(t, a, "small", "c"); got != want {
			t.Fatalf("got %s; want %s", got, want)
		}
	}
	_, err := a.Allocate("small", "c", netip.Addr{})
	if err == nil || err.Error() != "no available IPv6 addresses on this network's address pools: small" {
		t.Fatalf("exhausted IPv6 pool: %v", err)
	}
}

func TestReleaseOwner(t *testing.T) {
	a, path := open(t)
	mustAdd(t, a, "n1", "10.0.1.0/24", "")
	mustAdd(t, a, "n2", "10.0.2.0/24", "")
	allocate(t, a, "n1", "c1")
	allocate(t, a, "n2", "c1")
	allocate(t, a, "n2", "c2")
	if err := a.ReleaseOwner("c1"); err != nil {
		t.Fatal(err)
	}
	if err := a.ReleaseOwner("nobody"); err != nil {
		t.Fatal(err)
	}
	if n := len(a.Owners("n1")); n != 0 {
		t.Errorf("n1 still has %d addresses", n)
	}
	if got := a.Owners("n2"); len(got) != 1 || got[netip.MustParseAddr("10.0.2.3")] != "c2" {
		t.Errorf("n2 owners %v", got)
	}
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Owners("n2"); len(got) != 1 || len(b.Owners("n1")) != 0 {
		t.Errorf("after reopen: n1 %v, n2 %v", b.Owners("n1"), got)
	}
}

func TestReopen(t *testing.T) {
	a, path := open(t)
	mustAdd(t, a, "n", "10.0.0.0/24", "10.0.0.0/28")
	mustAdd(t, a, "m", "10.0.1.0/24", "")
	for _, owner := range []string{"c1", "c2", "c3"} {
		allocate(t, a, "n", owner)
	}
	if err := a.Release("n", netip.MustParseAddr("10.0.0.4")); err != nil {
		t.Fatal(err)
	}
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.Networks(), b.Networks()) {
		t.Errorf("networks %v; before reopen %v", b.Networks(), a.Networks())
	}
	if !reflect.DeepEqual(a.Owners("n"), b.Owners("n")) {
		t.Errorf("owners %v; before reopen %v", b.Owners("n"), a.Owners("n"))
	}
	// The next-fit cursor survives: .4 was released last and is skipped.
	if got := allocate(t, b, "n", "c4"); got != "10.0.0.5" {
		t.Errorf("after reopen got %s; want 10.0.0.5", got)
	}
	if _, err := b.AddNetwork("x", Pool{Subnet: netip.MustParsePrefix("10.0.0.0/16")}); !errors.Is(err, ErrPoolOverlap) {
		t.Errorf("overlap after reopen: %v", err)
	}
}

func TestCorruptState(t *testing.T) {
	for _, tc := range []struct {
		name, data string
	}{
		{"truncated", `{"version":1,"networks":{"n":{"subnet":"10.0.0.0/24","gateway":"10.0.0.1","addresses":{"10.0`},
		{"empty", ``},
		{"garbage", "\x00\x00\x00"},
		{"bad address", `{"version":1,"networks":{"n":{"subnet":"10.0.0.0/24","gateway":"10.0.0.1","addresses":{"10.0.9.2":"c"}}}}`},
		{"no subnet", `{"version":1,"networks":{"n":{"gateway":"10.0.0.1"}}}`},
		{"version", `{"version":7,"networks":{}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			if err := os.WriteFile(path, []byte(tc.data), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := Open(path); err == nil {
				t.Fatal("Open accepted a corrupt state file; it would hand out addresses in use")
			}
			// Nothing was overwritten.
			if data, _ := os.ReadFile(path); string(data) != tc.data {
				t.Errorf("state file changed to %q", data)
			}
		})
	}
}

// TestInterruptedWrite: a crash while the state is being written leaves a
// partial temporary file beside the state; the state itself is whole.
func TestInterruptedWrite(t *testing.T) {
	a, path := open(t)
	mustAdd(t, a, "n", "10.0.0.0/24", "")
	allocate(t, a, "n", "c1")
	partial := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".123456")
	if err := os.WriteFile(partial, []byte(`{"version":1,"netw`), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Owners("n"); got[netip.MustParseAddr("10.0.0.2")] != "c1" {
		t.Errorf("owners %v", got)
	}
}

// TestFailedWrite: a change whose state cannot be written fails and leaves
// both memory and disk as they were.
func TestFailedWrite(t *testing.T) {
	a, path := open(t)
	mustAdd(t, a, "n", "10.0.0.0/24", "")
	mustAdd(t, a, "m", "10.0.1.0/24", "")
	allocate(t, a, "n", "c1")
	allocate(t, a, "m", "c1")
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	nets, owners := a.Networks(), a.Owners("n")
	a.write = func(string, []byte, os.FileMode) error { return errors.New("disk full") }
	for name, op := range map[string]func() error{
		"add": func() error {
			_, err := a.AddNetwork("x", Pool{Subnet: netip.MustParsePrefix("10.0.9.0/24")})
			return err
		},
		"remove":    func() error { return a.RemoveNetwork("n") },
		"allocate":  func() error { _, err := a.Allocate("n", "c2", netip.Addr{}); return err },
		"requested": func() error { _, err := a.Allocate("n", "c2", netip.MustParseAddr("10.0.0.77")); return err },
		"release":   func() error { return a.Release("n", netip.MustParseAddr("10.0.0.2")) },
		"owner":     func() error { return a.ReleaseOwner("c1") },
	} {
		if err := op(); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("%s: error %v", name, err)
		}
		if !reflect.DeepEqual(a.Networks(), nets) || !reflect.DeepEqual(a.Owners("n"), owners) || len(a.Owners("m")) != 1 {
			t.Errorf("%s: memory changed: %v %v %v", name, a.Networks(), a.Owners("n"), a.Owners("m"))
		}
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Error("state file changed")
	}
	// The cursor was restored too: the next address is .3, not .4.
	a.write = func(p string, d []byte, m os.FileMode) error { return os.WriteFile(p, d, m) }
	if got := allocate(t, a, "n", "c2"); got != "10.0.0.3" {
		t.Errorf("after failures got %s", got)
	}
}

func TestOpenMissingDir(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a", "b", "state.json")
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	mustAdd(t, a, "n", "10.0.0.0/24", "")
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	// A path whose parent is a file cannot be opened.
	if _, err := Open(filepath.Join(path, "x", "state.json")); err == nil {
		t.Error("Open below a file succeeded")
	}
}

func TestConcurrentAllocate(t *testing.T) {
	a, path := open(t)
	mustAdd(t, a, "n", "10.0.0.0/24", "")
	const n = 50
	addrs := make(chan netip.Addr, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			addr, err := a.Allocate("n", fmt.Sprint("c", i), netip.Addr{})
			if err != nil {
				t.Error(err)
			}
			addrs <- addr
		})
	}
	wg.Wait()
	close(addrs)
	seen := map[netip.Addr]bool{}
	for addr := range addrs {
		if seen[addr] {
			t.Errorf("%s handed out twice", addr)
		}
		seen[addr] = true
	}
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(b.Owners("n")); got != n {
		t.Errorf("%d allocations on disk; want %d", got, n)
	}
}
