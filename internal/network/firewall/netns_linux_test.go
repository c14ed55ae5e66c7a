package firewall

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// The root tests build a whole "host" inside a private network namespace:
// bridges, a dummy interface with the host's own address, container
// namespaces on veths, and an "outside" namespace routed through the host.
// Nothing in the real host's namespace changes, closing the namespaces
// removes every interface, and the firewall table lives inside the private
// host, so parallel tests and other engineers' rules cannot collide.

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, nf_tables)")
	}
}

// newNS returns a new, empty network namespace, closed at test end.
func newNS(t *testing.T) netns.NsHandle {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	if err := netns.Set(orig); err != nil {
		// The thread stays locked and in the wrong namespace: it dies
		// with the goroutine instead of serving others.
		ns.Close()
		t.Fatal(err)
	}
	runtime.UnlockOSThread()
	t.Cleanup(func() { ns.Close() })
	h := nsHandle(t, ns)
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	return ns
}

// in runs fn on a thread inside ns. Sockets opened by fn stay in ns.
func in(t *testing.T, ns netns.NsHandle, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic(err) // leave the thread locked; it is not reusable
		}
		runtime.UnlockOSThread()
	}()
	fn()
}

func nsHandle(t *testing.T, ns netns.NsHandle) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

func addAddr(t *testing.T, h *netlink.Handle, l netlink.Link, cidr string) {
	t.Helper()
	a, err := netlink.ParseAddr(cidr)
	must(t, err)
	must(t, h.AddrAdd(l, a))
}

func sysctl(t *testing.T, ns netns.NsHandle, key, val string) {
	t.Helper()
	in(t, ns, func() {
		must(t, os.WriteFile(filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/")), []byte(val), 0o644))
	})
}

func readSysctl(t *testing.T, ns netns.NsHandle, key string) string {
	t.Helper()
	v := readSysctlMaybe(ns, key)
	if v == "" {
		t.Fatalf("cannot read %s", key)
	}
	return v
}

// readSysctlMaybe returns a sysctl's value in ns, or "" if it is absent.
func readSysctlMaybe(ns netns.NsHandle, key string) string {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return ""
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		return ""
	}
	b, _ := os.ReadFile(filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/")))
	if err := netns.Set(orig); err != nil {
		panic(err)
	}
	runtime.UnlockOSThread()
	return strings.TrimSpace(string(b))
}

// host is the private host namespace with its interfaces.
type host struct {
	t  *testing.T
	ns netns.NsHandle
	h  *netlink.Handle
	n  int // interface counter
}

func newHost(t *testing.T) *host {
	ns := newNS(t)
	return &host{t: t, ns: ns, h: nsHandle(t, ns)}
}

// bridge creates a bridge with gateway address gw (CIDR) and route_localnet.
func (hs *host) bridge(name, gw string) {
	t := hs.t
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
	must(t, hs.h.LinkAdd(br))
	addAddr(t, hs.h, br, gw)
	must(t, hs.h.LinkSetUp(br))
	in(t, hs.ns, func() { must(t, EnableRouteLocalnet(name)) })
}

// nic gives the host an address of its own on an interface like a NIC's
// (a veth whose peer stays unused: the dummy driver may be absent).
func (hs *host) nic(cidr string) {
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "nic0"}, PeerName: "nic0p"}
	must(hs.t, hs.h.LinkAdd(v))
	addAddr(hs.t, hs.h, v, cidr)
	p, err := hs.h.LinkByName("nic0p")
	must(hs.t, err)
	must(hs.t, hs.h.LinkSetUp(p))
	must(hs.t, hs.h.LinkSetUp(v))
}

// attach creates a namespace linked to the host by a veth: its end is eth0
// with address cidr and a default route via gw; the host's end is put in
// bridge master, or given hostCIDR when master is empty.
func (hs *host) attach(master, cidr, gw, hostCIDR string) netns.NsHandle {
	t := hs.t
	ns := newNS(t)
	hs.n++
	name := fmt.Sprintf("veth%d", hs.n)
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(ns))}
	must(t, hs.h.LinkAdd(v))
	l, err := hs.h.LinkByName(name)
	must(t, err)
	if master != "" {
		br, err := hs.h.LinkByName(master)
		must(t, err)
		must(t, hs.h.LinkSetMaster(l, br))
		// As the bridge driver must: with br_netfilter, a container's
		// hairpin to its own published port leaves by the port it came in.
		must(t, hs.h.LinkSetHairpin(l, true))
	} else {
		addAddr(t, hs.h, l, hostCIDR)
	}
	must(t, hs.h.LinkSetUp(l))
	ch := nsHandle(t, ns)
	eth, err := ch.LinkByName("eth0")
	must(t, err)
	addAddr(t, ch, eth, cidr)
	must(t, ch.LinkSetUp(eth))
	if gw != "" {
		must(t, ch.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: net.ParseIP(gw)}))
	}
	return ns
}

// serve starts TCP and UDP servers on port in ns that answer each client
// with "<tag> <client address>".
func serve(t *testing.T, ns netns.NsHandle, port int, tag string) {
	t.Helper()
	var ln net.Listener
	var pc net.PacketConn
	in(t, ns, func() {
		var err error
		ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", port))
		must(t, err)
		pc, err = net.ListenPacket("udp4", fmt.Sprintf(":%d", port))
		must(t, err)
	})
	t.Cleanup(func() { ln.Close(); pc.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s %s\n", tag, c.RemoteAddr())
			c.Close()
		}
	}()
	go func() {
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(fmt.Sprintf("%s %s\n", tag, from)), from)
		}
	}()
}

const dialTimeout = 400 * time.Millisecond

// ask connects from ns to addr over proto and returns the server's line,
// or "" with the error when there is no answer.
func ask(t *testing.T, ns netns.NsHandle, proto, addr string) (string, error) {
	t.Helper()
	var c net.Conn
	var err error
	in(t, ns, func() { c, err = net.DialTimeout(proto+"4", addr, dialTimeout) })
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(dialTimeout))
	if proto == "udp" {
		if _, err := c.Write([]byte("ping")); err != nil {
			return "", err
		}
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

// answer returns the tag and the client's IP the server saw.
func answer(t *testing.T, ns netns.NsHandle, proto, addr string) (tag string, client netip.Addr, err error) {
	t.Helper()
	line, err := ask(t, ns, proto, addr)
	if err != nil {
		return "", netip.Addr{}, err
	}
	f := strings.Fields(line)
	if len(f) != 2 {
		t.Fatalf("%s %s: bad answer %q", proto, addr, line)
	}
	ap, perr := netip.ParseAddrPort(f[1])
	if perr != nil {
		t.Fatalf("%s %s: bad answer %q", proto, addr, line)
	}
	return f[0], ap.Addr(), nil
}

// nftDump returns `nft list table` inside ns, for failure messages; empty
// when the nft binary is absent.
func nftDump(ns netns.NsHandle, table string) string {
	if _, err := exec.LookPath("nft"); err != nil {
		return ""
	}
	path := fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(ns))
	out, _ := exec.Command("nsenter", "--net="+path, "nft", "list", "table", "inet", table).CombinedOutput()
	return string(out)
}

func uniqueTable(t *testing.T) string {
	b := make([]byte, 4)
	rand.Read(b)
	return "berth_test_" + hex.EncodeToString(b)
}
