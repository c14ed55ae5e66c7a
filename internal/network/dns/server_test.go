package dns

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// fakeNames is the Lookup and ReverseLookup of the tests: web, an alias db
// with two IPv4 addresses and one IPv6 address, v6only, and an alias many
// with more addresses than fit in a 512-byte answer.
func fakeNames() (Lookup, ReverseLookup) {
	names := map[string][]netip.Addr{
		"web":    {netip.MustParseAddr("10.99.0.2")},
		"db":     {netip.MustParseAddr("10.99.0.3"), netip.MustParseAddr("10.99.0.4"), netip.MustParseAddr("fd00:99::3")},
		"v6only": {netip.MustParseAddr("fd00:99::9")},
		"noaddr": nil,
	}
	for i := range 100 {
		names["many"] = append(names["many"], netip.AddrFrom4([4]byte{10, 98, byte(i / 250), byte(1 + i%250)}))
	}
	lookup := func(name string) ([]netip.Addr, bool) {
		a, ok := names[name]
		return a, ok
	}
	reverse := func(a netip.Addr) ([]string, bool) {
		switch a {
		case netip.MustParseAddr("10.99.0.2"):
			return []string{"web.mynet"}, true
		case netip.MustParseAddr("fd00:99::3"):
			return []string{"db1.mynet."}, true
		}
		return nil, false
	}
	return lookup, reverse
}

// upstream is a fake host resolver on a loopback address, UDP and TCP on
// the same port.
type upstream struct {
	addr    string
	queries atomic.Int32
}

// startUpstream runs a resolver that knows example.org (192.0.2.7),
// big.example.org (60 addresses), fail.example.org (SERVFAIL) and nothing
// else (NXDOMAIN). It is shut down when the test ends.
func startUpstream(t testing.TB, ip string) *upstream {
	t.Helper()
	u := &upstream{}
	h := mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
		u.queries.Add(1)
		m := new(mdns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		switch strings.ToLower(q.Name) {
		case "example.org.":
			if q.Qtype == mdns.TypeA {
				m.Answer = append(m.Answer, &mdns.A{Hdr: mdns.RR_Header{Name: q.Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 30}, A: net.IPv4(192, 0, 2, 7)})
			}
		case "big.example.org.":
			for i := range 60 {
				m.Answer = append(m.Answer, &mdns.A{Hdr: mdns.RR_Header{Name: q.Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 30}, A: net.IPv4(192, 0, 2, byte(i+1))})
			}
		case "fail.example.org.":
			m.Rcode = mdns.RcodeServerFailure
		default:
			m.Rcode = mdns.RcodeNameError
		}
		if _, udp := w.LocalAddr().(*net.UDPAddr); udp {
			m.Truncate(udpSize(r))
		}
		w.WriteMsg(m)
	})
	udp, tcp := listenPair(t, ip)
	u.addr = udp.LocalAddr().String()
	for _, srv := range []*mdns.Server{{PacketConn: udp, Handler: h}, {Listener: tcp, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	return u
}

// listenPair binds UDP and TCP to the same free port on ip.
func listenPair(t testing.TB, ip string) (*net.UDPConn, *net.TCPListener) {
	t.Helper()
	for range 20 {
		udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
		if err != nil {
			t.Fatal(err)
		}
		tcp, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.ParseIP(ip), Port: udp.LocalAddr().(*net.UDPAddr).Port})
		if err == nil {
			return udp, tcp
		}
		udp.Close()
	}
	t.Fatal("no free port for UDP and TCP")
	return nil, nil
}

// startLoopback serves cfg on a loopback port of the host's namespace: the
// same server as Start without the container namespace.
func startLoopback(t testing.TB, cfg Config) (*Server, string) {
	t.Helper()
	udp, tcp := listenPair(t, "127.0.0.1")
	s, err := serve(cfg, udp, tcp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, udp.LocalAddr().String()
}

func query(t testing.TB, server, network, name string, qtype uint16, edns bool) *mdns.Msg {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	if edns {
		m.SetEdns0(4096, false)
	}
	c := &mdns.Client{Net: network, Timeout: 5 * time.Second}
	resp, _, err := c.Exchange(m, server)
	if err != nil {
		t.Fatalf("%s %s %s: %v", network, name, mdns.TypeToString[qtype], err)
	}
	return resp
}

// rdata returns the answer records' data, sorted.
func rdata(m *mdns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		out = append(out, strings.TrimPrefix(rr.String(), rr.Header().String()))
	}
	slices.Sort(out)
	return out
}

func TestAnswers(t *testing.T) {
	up := startUpstream(t, "127.0.0.1")
	lookup, reverse := fakeNames()
	_, addr := startLoopback(t, Config{Lookup: lookup, Reverse: reverse, Upstream: []string{up.addr}, Search: []string{"corp.example"}})

	many := make([]string, 100)
	for i := range many {
		many[i] = fmt.Sprintf("10.98.%d.%d", i/250, 1+i%250)
	}
	slices.Sort(many)
	tests := []struct {
		name    string
		qtype   uint16
		network string
		edns    bool
		rcode   int
		answers []string // sorted rdata; nil for none
		tc      bool
		ttl     uint32 // of every answer; 0 = not checked
	}{
		{"web.", mdns.TypeA, "udp", false, mdns.RcodeSuccess, []string{"10.99.0.2"}, false, TTL},
		{"WeB.", mdns.TypeA, "udp", false, mdns.RcodeSuccess, []string{"10.99.0.2"}, false, TTL},
		{"web.corp.example.", mdns.TypeA, "udp", false, mdns.RcodeSuccess, []string{"10.99.0.2"}, false, TTL},
		{"web.", mdns.TypeA, "tcp", false, mdns.RcodeSuccess, []string{"10.99.0.2"}, false, TTL},
		{"web.", mdns.TypeA, "udp", true, mdns.RcodeSuccess, []string{"10.99.0.2"}, false, TTL},
		{"db.", mdns.TypeA, "udp", false, mdns.RcodeSuccess, []string{"10.99.0.3", "10.99.0.4"}, false, TTL},
		{"db.", mdns.TypeAAAA, "udp", false, mdns.RcodeSuccess, []string{"fd00:99::3"}, false, TTL},
		{"web.", mdns.TypeAAAA, "udp", false, mdns.RcodeSuccess, nil, false, 0},
		{"v6only.", mdns.TypeA, "udp", false, mdns.RcodeSuccess, nil, false, 0},
		{"noaddr.", mdns.TypeA, "udp", false, mdns.RcodeSuccess, nil, false, 0},
		{"web.", mdns.TypeMX, "udp", false, mdns.RcodeSuccess, nil, false, 0},
		{"2.0.99.10.in-addr.arpa.", mdns.TypePTR, "udp", false, mdns.RcodeSuccess, []string{"web.mynet."}, false, TTL},
		{"3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.9.9.0.0.0.0.d.f.ip6.arpa.", mdns.TypePTR, "tcp", false, mdns.RcodeSuccess, []string{"db1.mynet."}, false, TTL},
		// Not ours: the upstream answers.
		{"3.3.3.10.in-addr.arpa.", mdns.TypePTR, "udp", false, mdns.RcodeNameError, nil, false, 0},
		{"example.org.", mdns.TypeA, "udp", false, mdns.RcodeSuccess, []string{"192.0.2.7"}, false, 30},
		{"EXAMPLE.ORG.", mdns.TypeA, "tcp", false, mdns.RcodeSuccess, []string{"192.0.2.7"}, false, 30},
		{"nope.example.", mdns.TypeA, "udp", false, mdns.RcodeNameError, nil, false, 0},
		{"fail.example.org.", mdns.TypeA, "udp", false, mdns.RcodeServerFailure, nil, false, 0},
		// Too big for 512 bytes: truncated over UDP, whole over TCP or with EDNS.
		{"many.", mdns.TypeA, "udp", false, mdns.RcodeSuccess, nil, true, 0},
		{"many.", mdns.TypeA, "tcp", false, mdns.RcodeSuccess, many, false, TTL},
		{"many.", mdns.TypeA, "udp", true, mdns.RcodeSuccess, many, false, TTL},
		{"big.example.org.", mdns.TypeA, "udp", false, mdns.RcodeSuccess, nil, true, 0},
		{"big.example.org.", mdns.TypeA, "tcp", false, mdns.RcodeSuccess, nil, false, 30},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s_%s_%s_edns=%v", tt.name, mdns.TypeToString[tt.qtype], tt.network, tt.edns), func(t *testing.T) {
			resp := query(t, addr, tt.network, tt.name, tt.qtype, tt.edns)
			if resp.Rcode != tt.rcode {
				t.Errorf("rcode %s, want %s", mdns.RcodeToString[resp.Rcode], mdns.RcodeToString[tt.rcode])
			}
			if resp.Truncated != tt.tc {
				t.Errorf("truncated %v, want %v", resp.Truncated, tt.tc)
			}
			if !resp.RecursionAvailable {
				t.Error("RA not set")
			}
			if tt.edns != (resp.IsEdns0() != nil) {
				t.Errorf("OPT in answer: %v, in query: %v", resp.IsEdns0() != nil, tt.edns)
			}
			if tt.tc {
				return
			}
			if tt.name == "big.example.org." {
				if len(resp.Answer) != 60 {
					t.Errorf("%d answers, want 60", len(resp.Answer))
				}
			} else if got := rdata(resp); !slices.Equal(got, tt.answers) {
				t.Errorf("answers %q, want %q", got, tt.answers)
			}
			for _, rr := range resp.Answer {
				if rr.Header().Name != tt.name {
					t.Errorf("owner %q, want %q", rr.Header().Name, tt.name)
				}
				if tt.ttl != 0 && rr.Header().Ttl != tt.ttl {
					t.Errorf("ttl %d, want %d", rr.Header().Ttl, tt.ttl)
				}
			}
		})
	}
}

// TestLocalNamesNotForwarded checks that answers for our names never leak
// to the upstream.
func TestLocalNamesNotForwarded(t *testing.T) {
	up := startUpstream(t, "127.0.0.1")
	lookup, reverse := fakeNames()
	_, addr := startLoopback(t, Config{Lookup: lookup, Reverse: reverse, Upstream: []string{up.addr}})
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"web.", mdns.TypeA}, {"web.", mdns.TypeAAAA}, {"db.", mdns.TypeTXT}, {"2.0.99.10.in-addr.arpa.", mdns.TypePTR}} {
		query(t, addr, "udp", q.name, q.qtype, false)
	}
	if n := up.queries.Load(); n != 0 {
		t.Fatalf("upstream got %d queries for local names", n)
	}
	query(t, addr, "udp", "example.org.", mdns.TypeA, false)
	if n := up.queries.Load(); n != 1 {
		t.Fatalf("upstream got %d queries, want 1", n)
	}
}

// deadUpstream returns a loopback address where nothing listens.
func deadUpstream(t testing.TB) string {
	udp, tcp := listenPair(t, "127.0.0.1")
	addr := udp.LocalAddr().String()
	udp.Close()
	tcp.Close()
	return addr
}

// blackHole returns a loopback UDP address that reads queries and never
// answers.
func blackHole(t testing.TB) string {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.LocalAddr().String()
}

func TestUpstreamFailures(t *testing.T) {
	good := startUpstream(t, "127.0.0.1")
	failing := startUpstream(t, "127.0.0.1")
	dead := deadUpstream(t)
	hole := blackHole(t)
	lookup, _ := fakeNames()
	tests := []struct {
		name     string
		upstream []string
		qname    string
		network  string
		rcode    int
		answers  []string
		within   time.Duration
		atLeast  time.Duration
	}{
		{"none", nil, "example.org.", "udp", mdns.RcodeServerFailure, nil, time.Second, 0},
		{"dead udp", []string{dead}, "example.org.", "udp", mdns.RcodeServerFailure, nil, time.Second, 0},
		{"dead tcp", []string{dead}, "example.org.", "tcp", mdns.RcodeServerFailure, nil, time.Second, 0},
		{"dead then good", []string{dead, good.addr}, "example.org.", "udp", mdns.RcodeSuccess, []string{"192.0.2.7"}, time.Second, 0},
		{"servfail then good", []string{failing.addr, good.addr}, "fail.example.org.", "udp", mdns.RcodeServerFailure, nil, time.Second, 0},
		{"silent then good", []string{hole, good.addr}, "example.org.", "udp", mdns.RcodeSuccess, []string{"192.0.2.7"}, 2 * time.Second, 300 * time.Millisecond},
		{"silent", []string{hole}, "example.org.", "udp", mdns.RcodeServerFailure, nil, 2 * time.Second, 300 * time.Millisecond},
		{"no port", []string{"127.0.0.1"}, "example.org.", "udp", mdns.RcodeServerFailure, nil, time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, addr := startLoopback(t, Config{Lookup: lookup, Upstream: tt.upstream, Timeout: 300 * time.Millisecond})
			start := time.Now()
			resp := query(t, addr, tt.network, tt.qname, mdns.TypeA, false)
			took := time.Since(start)
			if resp.Rcode != tt.rcode {
				t.Errorf("rcode %s, want %s", mdns.RcodeToString[resp.Rcode], mdns.RcodeToString[tt.rcode])
			}
			if got := rdata(resp); !slices.Equal(got, tt.answers) {
				t.Errorf("answers %q, want %q", got, tt.answers)
			}
			if took > tt.within || took < tt.atLeast {
				t.Errorf("answered in %v, want between %v and %v", took, tt.atLeast, tt.within)
			}
		})
	}
	// A SERVFAIL upstream is skipped for the next one.
	_, addr := startLoopback(t, Config{Lookup: lookup, Upstream: []string{failing.addr, good.addr}})
	before := good.queries.Load()
	query(t, addr, "udp", "fail.example.org.", mdns.TypeA, false)
	if good.queries.Load() != before+1 {
		t.Error("the second upstream was not asked after a SERVFAIL")
	}
}

func TestBadQueries(t *testing.T) {
	lookup, _ := fakeNames()
	_, addr := startLoopback(t, Config{Lookup: lookup})
	c := &mdns.Client{Timeout: 2 * time.Second}

	m := new(mdns.Msg)
	m.SetQuestion("web.", mdns.TypeA)
	m.Opcode = mdns.OpcodeNotify
	resp, _, err := c.Exchange(m, addr)
	if err != nil || resp.Rcode != mdns.RcodeNotImplemented {
		t.Errorf("NOTIFY: %v %v, want NOTIMP", resp, err)
	}
	m = new(mdns.Msg)
	m.SetQuestion("web.", mdns.TypeA)
	m.Question = append(m.Question, m.Question[0])
	resp, _, err = c.Exchange(m, addr)
	if err != nil || resp.Rcode != mdns.RcodeFormatError {
		t.Errorf("two questions: %v %v, want FORMERR", resp, err)
	}
	// Still serving.
	if resp := query(t, addr, "udp", "web.", mdns.TypeA, false); len(resp.Answer) != 1 {
		t.Errorf("after bad queries: %v", resp)
	}
}

// waitGoroutines waits for the number of goroutines to come down to n.
func waitGoroutines(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, want %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCloseAbortsForwarding checks that Close ends a query waiting for a
// silent upstream at once and leaves no goroutine behind.
func TestCloseAbortsForwarding(t *testing.T) {
	hole := blackHole(t)
	lookup, _ := fakeNames()
	before := runtime.NumGoroutine()
	udp, tcp := listenPair(t, "127.0.0.1")
	s, err := serve(Config{Lookup: lookup, Upstream: []string{hole}, Timeout: time.Minute}, udp, tcp)
	if err != nil {
		t.Fatal(err)
	}
	if n := runtime.NumGoroutine() - before; n != 2 {
		t.Errorf("%d goroutines per idle server, want 2", n)
	}
	// A TCP connection left open and a query in flight.
	idle, err := net.Dial("tcp", tcp.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	m := new(mdns.Msg)
	m.SetQuestion("example.org.", mdns.TypeA)
	done := make(chan error, 1)
	go func() {
		c := &mdns.Client{Timeout: 10 * time.Second}
		_, _, err := c.Exchange(m, udp.LocalAddr().String())
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)

	start := time.Now()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close took %v", took)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	<-done // the client gets SERVFAIL or times out; either way it ends
	waitGoroutines(t, before)
	// The port is free again.
	again, err := net.ListenUDP("udp", udp.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatalf("UDP port still bound after Close: %v", err)
	}
	again.Close()
}

// TestFootprint measures what an idle server costs the daemon: goroutines
// and Go memory (heap and stacks) per server, over many servers.
func TestFootprint(t *testing.T) {
	const n = 200
	lookup, reverse := fakeNames()
	measure := func() (goroutines int, bytes uint64) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), ms.HeapAlloc + ms.StackInuse
	}
	g0, b0 := measure()
	servers := make([]*Server, 0, n)
	defer func() {
		for _, s := range servers {
			s.Close()
		}
	}()
	for range n {
		udp, tcp := listenPair(t, "127.0.0.1")
		s, err := serve(Config{Lookup: lookup, Reverse: reverse, Upstream: []string{"127.0.0.1:53"}, Search: []string{"corp.example"}}, udp, tcp)
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, s)
	}
	// Serve one query each so that lazily made state counts too.
	for _, s := range servers {
		addr := s.udp.PacketConn.LocalAddr().String()
		if resp := query(t, addr, "udp", "web.", mdns.TypeA, false); len(resp.Answer) != 1 {
			t.Fatalf("no answer from %s", addr)
		}
	}
	time.Sleep(100 * time.Millisecond) // let the query goroutines end
	g1, b1 := measure()
	perG := float64(g1-g0) / n
	perB := float64(int64(b1)-int64(b0)) / n
	t.Logf("per idle server: %.2f goroutines, %.0f bytes of Go heap and stack", perG, perB)
	if perG != 2 {
		t.Errorf("%.2f goroutines per server, want 2", perG)
	}
	if perB > 32<<10 {
		t.Errorf("%.0f bytes per server, want at most 32 KiB", perB)
	}
}

// TestForwardLimit checks that a server with maxForwards queries waiting
// for upstreams answers the next one SERVFAIL at once instead of piling up
// goroutines.
func TestForwardLimit(t *testing.T) {
	hole := blackHole(t)
	lookup, _ := fakeNames()
	s, addr := startLoopback(t, Config{Lookup: lookup, Upstream: []string{hole}, Timeout: 5 * time.Second})
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range maxForwards {
		m := new(mdns.Msg)
		m.SetQuestion(fmt.Sprintf("q%d.example.org.", i), mdns.TypeA)
		b, _ := m.Pack()
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for len(s.fwd) < maxForwards {
		if time.Now().After(deadline) {
			t.Fatalf("%d forwards in flight, want %d", len(s.fwd), maxForwards)
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	if resp := query(t, addr, "udp", "example.org.", mdns.TypeA, false); resp.Rcode != mdns.RcodeServerFailure {
		t.Errorf("rcode %s, want SERVFAIL", mdns.RcodeToString[resp.Rcode])
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("answered in %v", took)
	}
	// Local names still answer.
	if resp := query(t, addr, "udp", "web.", mdns.TypeA, false); len(resp.Answer) != 1 {
		t.Errorf("web: %v", resp)
	}
}
