package link

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/network/ipam"
	"github.com/berth-dev/berth/internal/testutil"
	"github.com/containerd/errdefs"
	"github.com/vishvananda/netlink"
)

// testName returns a unique interface name: "bt" and 8 hex digits.
func testName() string {
	b := make([]byte, 4)
	rand.Read(b)
	return "bt" + hex.EncodeToString(b)
}

// testBridge creates a bridge with a /24 the host does not route yet and
// deletes it when the test ends.
func testBridge(t *testing.T) (name string, gw netip.Prefix) {
	t.Helper()
	routes, err := HostRoutes()
	if err != nil {
		t.Fatal(err)
	}
	subnet, err := ipam.ChooseSubnet([]ipam.AddressPool{{Base: netip.MustParsePrefix("10.213.0.0/16"), Size: 24}}, nil, routes)
	if err != nil {
		t.Fatal(err)
	}
	name = testName()
	gw = netip.PrefixFrom(subnet.Addr().Next(), subnet.Bits())
	t.Cleanup(func() {
		if err := DeleteBridge(name); err != nil {
			t.Errorf("DeleteBridge: %v", err)
		}
	})
	if err := EnsureBridge(name, gw, 1500); err != nil {
		t.Fatal(err)
	}
	return name, gw
}

// testNetns creates a namespace in the test's temporary directory and
// deletes it when the test ends.
func testNetns(t *testing.T, dir, name string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	t.Cleanup(func() {
		if err := DeleteNetns(path); err != nil {
			t.Errorf("DeleteNetns: %v", err)
		}
	})
	if err := NewNetns(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// inNetns runs a command in the network namespace at path.
func inNetns(path string, args ...string) (string, error) {
	out, err := exec.Command("nsenter", append([]string{"--net=" + path}, args...)...).CombinedOutput()
	return string(out), err
}

func ping(t *testing.T, nsPath string, to netip.Addr) {
	t.Helper()
	if out, err := inNetns(nsPath, "/bin/busybox", "ping", "-c1", "-W1", to.String()); err != nil {
		t.Errorf("ping %s from %s: %v\n%s", to, filepath.Base(nsPath), err, out)
	}
}

// mountsUnder lists the mount points below dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			mounts = append(mounts, fields[4])
		}
	}
	return mounts
}

func veths(t *testing.T) []string {
	t.Helper()
	names, err := ListVeths("veth")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	return names
}

func TestAttachPing(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.LeakCheck(t)
	dir := t.TempDir()
	bridge, gw := testBridge(t)
	vethsBefore := veths(t)

	nsA, nsB := testNetns(t, dir, "a"), testNetns(t, dir, "b")
	addrA := netip.PrefixFrom(gw.Addr().Next(), gw.Bits())
	addrB := netip.PrefixFrom(addrA.Addr().Next(), gw.Bits())
	hostA, err := Attach(nsA, Endpoint{Bridge: bridge, IfName: "eth0", Addr: addrA, Gateway: gw.Addr(), MTU: 1400})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Detach(hostA) })
	macB := net.HardwareAddr{0x02, 0x42, 0xbe, 0xef, 0x00, 0x01}
	hostB, err := Attach(nsB, Endpoint{Bridge: bridge, IfName: "eth1", Addr: addrB, Gateway: gw.Addr(), MAC: macB})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Detach(hostB) })

	// The host ends: named like Docker's, ports of the bridge, hairpin, up.
	br, err := netlink.LinkByName(bridge)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{hostA, hostB} {
		l, err := netlink.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(name) != 11 || !strings.HasPrefix(name, "veth") {
			t.Errorf("host veth name %q", name)
		}
		if l.Attrs().MasterIndex != br.Attrs().Index || l.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("%s: master %d (bridge %d), flags %v", name, l.Attrs().MasterIndex, br.Attrs().Index, l.Attrs().Flags)
		}
		if p, err := netlink.LinkGetProtinfo(l); err != nil || !p.Hairpin {
			t.Errorf("%s: hairpin off (%v, %v)", name, p, err)
		}
	}
	if got := veths(t); len(got) != len(vethsBefore)+2 || !slices.Contains(got, hostA) || !slices.Contains(got, hostB) {
		t.Errorf("ListVeths = %v; before %v", got, vethsBefore)
	}

	// The namespace ends: name, address, MAC, MTU, up, default route.
	for _, c := range []struct {
		ns, ifName string
		addr       netip.Prefix
		mac        string
		mtu        int
	}{
		{nsA, "eth0", addrA, MACFromIP(addrA.Addr()).String(), 1400},
		{nsB, "eth1", addrB, macB.String(), 1500},
	} {
		h, err := handleAt(c.ns)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		l, err := h.LinkByName(c.ifName)
		if err != nil {
			t.Fatalf("%s in %s: %v", c.ifName, c.ns, err)
		}
		if l.Attrs().HardwareAddr.String() != c.mac || l.Attrs().MTU != c.mtu || l.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("%s: mac %s mtu %d flags %v; want %s %d up", c.ifName, l.Attrs().HardwareAddr, l.Attrs().MTU, l.Attrs().Flags, c.mac, c.mtu)
		}
		addrs, _ := h.AddrList(l, netlink.FAMILY_V4)
		if len(addrs) != 1 || addrs[0].IPNet.String() != c.addr.String() {
			t.Errorf("%s addresses %v; want %s", c.ifName, addrs, c.addr)
		}
		routes, _ := h.RouteList(nil, netlink.FAMILY_V4)
		var dflt []string
		for _, r := range routes {
			if ones, _ := r.Dst.Mask.Size(); r.Dst == nil || ones == 0 {
				dflt = append(dflt, r.Gw.String())
			}
		}
		if len(dflt) != 1 || dflt[0] != gw.Addr().String() {
			t.Errorf("default routes %v; want via %s", dflt, gw.Addr())
		}
		lo, err := h.LinkByName("lo")
		if err != nil || lo.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("lo: %v, %v", lo, err)
		}
	}

	ping(t, nsA, addrB.Addr())
	ping(t, nsB, addrA.Addr())
	ping(t, nsA, gw.Addr())
	ping(t, nsA, netip.MustParseAddr("127.0.0.1"))

	for _, h := range []string{hostA, hostB} {
		if err := Detach(h); err != nil {
			t.Fatal(err)
		}
		if err := Detach(h); err != nil {
			t.Errorf("second Detach: %v", err)
		}
	}
	if got := veths(t); !slices.Equal(got, vethsBefore) {
		t.Errorf("veths after Detach %v; before %v", got, vethsBefore)
	}
	h, err := handleAt(nsA)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.LinkByName("eth0"); err == nil {
		t.Error("eth0 still in the namespace after Detach")
	}
	h.Close()

	for _, ns := range []string{nsA, nsB} {
		if err := DeleteNetns(ns); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(ns); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %v", ns, err)
		}
	}
	if m := mountsUnder(t, dir); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
	if err := DeleteBridge(bridge); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(bridge); err == nil {
		t.Error("bridge still there")
	}
}

func TestAttachInternal(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.LeakCheck(t)
	bridge, gw := testBridge(t)
	ns := testNetns(t, t.TempDir(), "c")
	addr := netip.PrefixFrom(gw.Addr().Next(), gw.Bits())
	host, err := Attach(ns, Endpoint{Bridge: bridge, IfName: "eth0", Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Detach(host) })
	out, err := inNetns(ns, "ip", "-4", "route", "show")
	if err != nil {
		t.Fatal(err, out)
	}
	if strings.Contains(out, "default") || !strings.Contains(out, addr.Masked().String()) {
		t.Errorf("routes of an internal endpoint:\n%s", out)
	}
	ping(t, ns, gw.Addr())
}

func TestAttachFailures(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.LeakCheck(t)
	dir := t.TempDir()
	bridge, gw := testBridge(t)
	ns := testNetns(t, dir, "d")
	addr := netip.PrefixFrom(gw.Addr().Next(), gw.Bits())
	ok := Endpoint{Bridge: bridge, IfName: "eth0", Addr: addr, Gateway: gw.Addr()}
	host, err := Attach(ns, ok)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Detach(host) })
	before := veths(t)

	notBridge := ok
	notBridge.Bridge = host
	noGwRoute := ok
	noGwRoute.IfName = "eth1"
	noGwRoute.Gateway = netip.MustParseAddr("192.0.2.1") // not on the link: the route fails
	for _, tc := range []struct {
		name  string
		ns    string
		ep    Endpoint
		errIs error
	}{
		{"missing netns", filepath.Join(dir, "missing"), ok, os.ErrNotExist},
		{"not a netns", filepath.Join(dir, "plain"), ok, nil},
		{"missing bridge", ns, Endpoint{Bridge: testName(), IfName: "eth1", Addr: addr}, nil},
		{"not a bridge", ns, Endpoint{Bridge: host, IfName: "eth1", Addr: addr}, errdefs.ErrInvalidArgument},
		{"name taken", ns, ok, errdefs.ErrAlreadyExists},
		{"unroutable gateway", ns, noGwRoute, nil},
		{"no address", ns, Endpoint{Bridge: bridge, IfName: "eth1"}, errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "not a netns" {
				if err := os.WriteFile(tc.ns, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			name, err := Attach(tc.ns, tc.ep)
			if err == nil {
				Detach(name)
				t.Fatal("Attach succeeded")
			}
			if tc.errIs != nil && !errors.Is(err, tc.errIs) {
				t.Errorf("error %v; want %v", err, tc.errIs)
			}
			if got := veths(t); !slices.Equal(got, before) {
				t.Errorf("veths after a failed Attach %v; before %v", got, before)
			}
			if out, _ := inNetns(ns, "ip", "-o", "link", "show"); strings.Contains(out, "eth1") {
				t.Errorf("eth1 left in the namespace:\n%s", out)
			}
		})
	}
	if err := Detach(bridge); !errdefs.IsInvalidArgument(err) {
		t.Errorf("Detach of a bridge: %v", err)
	}
	if err := Detach(testName()); err != nil {
		t.Errorf("Detach of an absent link: %v", err)
	}
}

func TestEnsureBridge(t *testing.T) {
	testutil.RequiresRoot(t)
	name, gw := testBridge(t)
	check := func(step string, wantAddr netip.Prefix, wantMTU int) netlink.Link {
		t.Helper()
		l, err := netlink.LinkByName(name)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		addrs, _ := netlink.AddrList(l, netlink.FAMILY_V4)
		if len(addrs) != 1 || addrs[0].IPNet.String() != wantAddr.String() {
			t.Errorf("%s: addresses %v; want %s", step, addrs, wantAddr)
		}
		if l.Attrs().MTU != wantMTU || l.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("%s: mtu %d flags %v", step, l.Attrs().MTU, l.Attrs().Flags)
		}
		return l
	}
	first := check("created", gw, 1500)
	if mac := first.Attrs().HardwareAddr; len(mac) != 6 || mac[0]&0x02 == 0 {
		t.Errorf("bridge MAC %s", mac)
	}
	if err := EnsureBridge(name, gw, 1500); err != nil {
		t.Fatal(err)
	}
	again := check("again", gw, 1500)
	if again.Attrs().Index != first.Attrs().Index || again.Attrs().HardwareAddr.String() != first.Attrs().HardwareAddr.String() {
		t.Error("second EnsureBridge recreated the bridge")
	}

	// Drift: down, a stray address, another MTU; then a new gateway.
	if err := netlink.LinkSetDown(again); err != nil {
		t.Fatal(err)
	}
	stray := netip.PrefixFrom(gw.Addr().Next().Next(), 32)
	if err := netlink.AddrAdd(again, &netlink.Addr{IPNet: ipNet(stray)}); err != nil {
		t.Fatal(err)
	}
	if err := EnsureBridge(name, gw, 1400); err != nil {
		t.Fatal(err)
	}
	check("reconciled", gw, 1400)
	moved := netip.PrefixFrom(gw.Addr().Next(), 25)
	if err := EnsureBridge(name, moved, 0); err != nil {
		t.Fatal(err)
	}
	check("new gateway", moved, 1400)

	if err := EnsureBridge(name, netip.Prefix{}, 0); !errdefs.IsInvalidArgument(err) {
		t.Errorf("no gateway: %v", err)
	}
	// A link of another kind by that name is not taken over.
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: testName()}, PeerName: testName()}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	defer netlink.LinkDel(veth)
	if err := EnsureBridge(veth.Name, gw, 0); !errdefs.IsConflict(err) {
		t.Errorf("EnsureBridge on a veth: %v", err)
	}
	if err := DeleteBridge(veth.Name); !errdefs.IsConflict(err) {
		t.Errorf("DeleteBridge on a veth: %v", err)
	}
	if err := DeleteBridge(name); err != nil {
		t.Fatal(err)
	}
	if err := DeleteBridge(name); err != nil {
		t.Errorf("second DeleteBridge: %v", err)
	}
}

func TestNetnsLifecycle(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.LeakCheck(t)
	dir := t.TempDir()
	path := testNetns(t, filepath.Join(dir, "sub"), "n")
	if !isNetns(path) {
		t.Fatal("not a network namespace")
	}
	if err := NewNetns(path); !errdefs.IsAlreadyExists(err) {
		t.Errorf("second NewNetns: %v", err)
	}
	// Our own namespace is another one.
	self, _ := os.Readlink("/proc/self/ns/net")
	out, err := inNetns(path, "readlink", "/proc/self/ns/net")
	if err != nil || strings.TrimSpace(out) == self {
		t.Errorf("namespace %q (%v); the test's is %s", out, err, self)
	}
	if err := DeleteNetns(path); err != nil {
		t.Fatal(err)
	}
	if err := DeleteNetns(path); err != nil {
		t.Errorf("second DeleteNetns: %v", err)
	}
	// A crash can leave the empty file without the mount; it is reused.
	if err := os.WriteFile(path, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := NewNetns(path); err != nil {
		t.Fatalf("NewNetns over a leftover file: %v", err)
	}
	if m := mountsUnder(t, dir); len(m) != 1 {
		t.Errorf("mounts %v", m)
	}
}

func TestHostRoutes(t *testing.T) {
	testutil.RequiresRoot(t)
	_, gw := testBridge(t)
	routes, err := HostRoutes()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(routes, gw.Masked()) {
		t.Errorf("routes %v lack the bridge's %s", routes, gw.Masked())
	}
	for _, r := range routes {
		if r.Bits() == 0 {
			t.Errorf("default route %s listed", r)
		}
	}
}

func TestEnableForwarding(t *testing.T) {
	testutil.RequiresRoot(t)
	name, _ := testBridge(t)
	orig, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	// Forwarding is left as it was: switching it off here would cut
	// whatever else on the host routes through it. route_localnet starts
	// at 0 on the new bridge, so the check below can fail.
	t.Cleanup(func() { os.WriteFile("/proc/sys/net/ipv4/ip_forward", orig, 0o644) })
	if err := EnableForwarding(name); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"net/ipv4/ip_forward", "net/ipv4/conf/" + name + "/route_localnet", "net/ipv4/conf/" + name + "/forwarding"} {
		if v, _ := os.ReadFile("/proc/sys/" + key); strings.TrimSpace(string(v)) != "1" {
			t.Errorf("%s = %q", key, v)
		}
	}
	if err := EnableForwarding(testName()); err == nil {
		t.Error("EnableForwarding on a missing bridge succeeded")
	}
}

// TestAttachDetachTime measures one container's network plumbing.
func TestAttachDetachTime(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.LeakCheck(t)
	bridge, gw := testBridge(t)
	ns := testNetns(t, t.TempDir(), "t")
	ep := Endpoint{Bridge: bridge, IfName: "eth0", Addr: netip.PrefixFrom(gw.Addr().Next(), gw.Bits()), Gateway: gw.Addr()}
	var attach, total []time.Duration
	for range 20 {
		start := time.Now()
		host, err := Attach(ns, ep)
		if err != nil {
			t.Fatal(err)
		}
		mid := time.Now()
		if err := Detach(host); err != nil {
			t.Fatal(err)
		}
		attach, total = append(attach, mid.Sub(start)), append(total, time.Since(start))
	}
	median := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	t.Logf("median of 20: Attach %v, Attach+Detach %v", median(attach), median(total))
}

// Making namespaces leaves no thread of the process in them: a thread
// parked in one (the Go runtime cannot end the main thread) would keep the
// namespace, and the veths in it, alive after it was deleted.
func TestNewNetnsLeavesNoThreadInside(t *testing.T) {
	testutil.RequiresRoot(t)
	own, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for i := range 20 {
		p := filepath.Join(dir, "ns", strings.Repeat("x", i+1))
		if err := NewNetns(p); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { DeleteNetns(p) })
	}
	tasks, _ := filepath.Glob("/proc/self/task/*/ns/net")
	for _, task := range tasks {
		if ns, err := os.Readlink(task); err == nil && ns != own {
			t.Errorf("%s is in %s, not in the process's %s", filepath.Dir(filepath.Dir(task)), ns, own)
		}
	}
}
