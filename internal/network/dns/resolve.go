package dns

import (
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	mdns "github.com/miekg/dns"
)

// ServeDNS answers one query; it implements miekg's Handler.
func (s *Server) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	_, tcp := w.LocalAddr().(*net.TCPAddr)
	resp := s.answer(s.ctx, req, tcp)
	if resp == nil {
		return
	}
	resp.Compress = true
	if tcp {
		resp.Truncate(mdns.MaxMsgSize)
	} else {
		resp.Truncate(udpSize(req))
	}
	_ = w.WriteMsg(resp)
}

// udpSize is the largest UDP answer the client of req accepts.
func udpSize(req *mdns.Msg) int {
	if opt := req.IsEdns0(); opt != nil && opt.UDPSize() > mdns.MinMsgSize {
		return int(opt.UDPSize())
	}
	return mdns.MinMsgSize
}

// answer returns the reply to req: from Lookup or Reverse when the name is
// ours, from the upstream resolvers otherwise.
func (s *Server) answer(ctx context.Context, req *mdns.Msg, tcp bool) *mdns.Msg {
	if req.Opcode != mdns.OpcodeQuery {
		return reply(req, mdns.RcodeNotImplemented)
	}
	if len(req.Question) != 1 {
		return reply(req, mdns.RcodeFormatError)
	}
	q := req.Question[0]
	if q.Qclass == mdns.ClassINET {
		if q.Qtype == mdns.TypePTR && s.reverse != nil {
			if addr, ok := reverseAddr(q.Name); ok {
				if names, ok := s.reverse(addr); ok && len(names) > 0 {
					resp := reply(req, mdns.RcodeSuccess)
					for _, n := range names {
						resp.Answer = append(resp.Answer, &mdns.PTR{Hdr: header(q, mdns.TypePTR), Ptr: mdns.Fqdn(n)})
					}
					return resp
				}
			}
		}
		for _, name := range candidates(q.Name, s.search) {
			if addrs, ok := s.lookup(name); ok {
				return local(req, addrs)
			}
		}
	}
	return s.forward(ctx, req, tcp)
}

// local answers a query for one of our names with the addresses of the
// query's family. A name that is ours but has no address of that family,
// or a query of another type, gets an empty NOERROR answer: the name exists.
func local(req *mdns.Msg, addrs []netip.Addr) *mdns.Msg {
	q := req.Question[0]
	resp := reply(req, mdns.RcodeSuccess)
	for _, a := range addrs {
		a = a.Unmap()
		switch {
		case q.Qtype == mdns.TypeA && a.Is4():
			resp.Answer = append(resp.Answer, &mdns.A{Hdr: header(q, mdns.TypeA), A: a.AsSlice()})
		case q.Qtype == mdns.TypeAAAA && a.Is6():
			resp.Answer = append(resp.Answer, &mdns.AAAA{Hdr: header(q, mdns.TypeAAAA), AAAA: a.AsSlice()})
		}
	}
	// Spread the load over the containers behind an alias, as Docker does.
	rand.Shuffle(len(resp.Answer), func(i, j int) { resp.Answer[i], resp.Answer[j] = resp.Answer[j], resp.Answer[i] })
	return resp
}

func header(q mdns.Question, rrtype uint16) mdns.RR_Header {
	return mdns.RR_Header{Name: q.Name, Rrtype: rrtype, Class: mdns.ClassINET, Ttl: TTL}
}

// reply is an answer to req with rcode and no records; it carries an OPT
// record when req does (RFC 6891).
func reply(req *mdns.Msg, rcode int) *mdns.Msg {
	resp := new(mdns.Msg)
	resp.SetRcode(req, rcode)
	resp.RecursionAvailable = true
	if req.IsEdns0() != nil {
		resp.SetEdns0(udpReadSize, false)
	}
	return resp
}

// forward asks the upstream resolvers in turn, over the protocol the query
// came in on, and returns the first answer that is neither SERVFAIL nor
// REFUSED; SERVFAIL when there is none. The sockets are made by the serving
// goroutine, in the daemon's network namespace.
func (s *Server) forward(ctx context.Context, req *mdns.Msg, tcp bool) *mdns.Msg {
	select {
	case s.fwd <- struct{}{}:
		defer func() { <-s.fwd }()
	default:
		return reply(req, mdns.RcodeServerFailure)
	}
	c := &mdns.Client{Net: "udp", Timeout: s.timeout, UDPSize: mdns.DefaultMsgSize}
	if tcp {
		c.Net = "tcp"
	}
	for _, up := range s.upstream {
		if ctx.Err() != nil {
			break
		}
		resp, err := exchange(ctx, c, req, up, s.timeout)
		if err != nil || resp.Rcode == mdns.RcodeServerFailure || resp.Rcode == mdns.RcodeRefused {
			continue
		}
		resp.Id = req.Id
		resp.RecursionAvailable = true // we recurse for the client, whatever the upstream says
		return resp
	}
	return reply(req, mdns.RcodeServerFailure)
}

// exchange sends req to one upstream and waits at most timeout for its
// answer; cancelling ctx aborts the wait.
func exchange(ctx context.Context, c *mdns.Client, req *mdns.Msg, upstream string, timeout time.Duration) (*mdns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := c.DialContext(ctx, upstream)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	resp, _, err := c.ExchangeWithConnContext(ctx, req, conn)
	return resp, err
}
