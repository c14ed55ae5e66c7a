// Package dns is berth's embedded DNS server: one per container on a
// user-defined network, listening on 127.0.0.11:53 (UDP and TCP) inside the
// container's network namespace. It answers the names of the containers the
// container shares a network with (names, aliases, short IDs) and reverse
// lookups of their addresses, and forwards everything else to the host's
// resolvers from the daemon's own namespace, so that resolvers on the host's
// loopback work.
//
// The sockets are made inside the container's namespace and then served by
// ordinary goroutines: two per server while idle (the UDP read loop and the
// TCP accept loop), plus one per query in flight.
package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
)

// Lookup answers names for one container: the names of containers on the
// networks it shares, their aliases and short IDs; ok=false means "not
// ours: forward". The name is in lower case, without a trailing dot.
// ok=true with no addresses means the name is ours but has no address.
// It is called from many goroutines at once.
type Lookup func(name string) (addrs []netip.Addr, ok bool)

// ReverseLookup answers reverse lookups for one container: the names of a
// container address on the networks it shares (Docker answers
// "name.network"); ok=false means "not ours: forward". It is called from
// many goroutines at once.
type ReverseLookup func(addr netip.Addr) (names []string, ok bool)

// Config configures one embedded DNS server.
type Config struct {
	NetnsPath string        // the container's network namespace (bind-mounted netns file)
	Lookup    Lookup        // required
	Reverse   ReverseLookup // optional: PTR queries are forwarded without it
	Upstream  []string      // host resolvers "ip:port" (port 53 when omitted), tried in order
	Search    []string      // optional search domains, stripped from query names
	Timeout   time.Duration // per upstream attempt; DefaultTimeout when zero
}

const (
	// ListenAddr is where the server listens inside the container.
	ListenAddr = "127.0.0.11:53"
	// DefaultTimeout bounds one attempt at one upstream resolver.
	DefaultTimeout = 3 * time.Second
	// TTL of the records the server answers itself (Docker's).
	TTL = 600
	// maxForwards bounds the queries one server forwards at a time.
	maxForwards = 64
	// udpReadSize is the largest query read over UDP.
	udpReadSize = 1232
)

// Server is a running embedded DNS server.
type Server struct {
	lookup   Lookup
	reverse  ReverseLookup
	upstream []string
	search   []string
	timeout  time.Duration

	ctx    context.Context // cancelled by Close: aborts forwarded queries
	cancel context.CancelFunc
	fwd    chan struct{} // semaphore for forwarded queries

	udp, tcp  *mdns.Server
	served    chan error // one value per serving goroutine when it ends
	closeOnce sync.Once
	closeErr  error
}

// Start listens on 127.0.0.11:53, UDP and TCP, inside cfg.NetnsPath and
// serves until Close.
func Start(cfg Config) (*Server, error) {
	if cfg.Lookup == nil {
		return nil, errors.New("dns: no Lookup")
	}
	udp, tcp, err := listenInNetns(cfg.NetnsPath, ListenAddr)
	if err != nil {
		return nil, err
	}
	return serve(cfg, udp, tcp)
}

// serve serves cfg on sockets that are already bound.
func serve(cfg Config, udp net.PacketConn, tcp net.Listener) (*Server, error) {
	s := &Server{
		lookup:  cfg.Lookup,
		reverse: cfg.Reverse,
		search:  normalizeSearch(cfg.Search),
		timeout: cfg.Timeout,
		fwd:     make(chan struct{}, maxForwards),
		served:  make(chan error, 2),
	}
	for _, u := range cfg.Upstream {
		s.upstream = append(s.upstream, upstreamAddr(u))
	}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())

	started := make(chan struct{}, 2)
	notify := func() { started <- struct{}{} }
	s.udp = &mdns.Server{
		PacketConn: udp, Handler: s, UDPSize: udpReadSize, NotifyStartedFunc: notify,
		// The UDP loop would otherwise wake up every two seconds.
		DecorateReader: func(r mdns.Reader) mdns.Reader { return idleReader{r} },
	}
	s.tcp = &mdns.Server{Listener: tcp, Handler: s, NotifyStartedFunc: notify}
	for _, srv := range []*mdns.Server{s.udp, s.tcp} {
		go func() { s.served <- srv.ActivateAndServe() }()
	}
	// Each loop either reports that it started or ends with an error;
	// either way it sends exactly one value on s.served when it ends.
	var err error
	ended := 0
	for range 2 {
		select {
		case <-started:
		case err = <-s.served:
			ended++
		}
	}
	if ended == 0 {
		return s, nil
	}
	if err == nil {
		err = errors.New("stopped before serving")
	}
	// Closing the sockets ends the loop that may still run.
	s.cancel()
	udp.Close()
	tcp.Close()
	for ; ended < 2; ended++ {
		<-s.served
	}
	return nil, fmt.Errorf("dns: serving: %w", err)
}

// Close stops the server: it closes the sockets, aborts forwarded queries
// and returns once every goroutine of the server has ended. Later calls
// return the first call's result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		var errs []error
		for _, srv := range []*mdns.Server{s.udp, s.tcp} {
			// An error here means the loop already ended; its result
			// comes through s.served.
			_ = srv.Shutdown()
		}
		for range 2 {
			if err := <-s.served; err != nil {
				errs = append(errs, err)
			}
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// idleReader reads UDP queries without the two-second read deadline miekg
// uses by default: Shutdown unblocks the read by itself.
type idleReader struct{ mdns.Reader }

func (r idleReader) ReadUDP(c *net.UDPConn, _ time.Duration) ([]byte, *mdns.SessionUDP, error) {
	return r.Reader.ReadUDP(c, 24*time.Hour)
}
