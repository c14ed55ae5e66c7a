package dns

import (
	"bufio"
	"bytes"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// candidates returns the names a query name may stand for, most specific
// first: the name in lower case without its trailing dot, then the same name
// with each matching search domain stripped (glibc and musl try "web.corp.example"
// before "web" when corp.example is a search domain). search must be
// normalized (lower case, no leading or trailing dot).
func candidates(qname string, search []string) []string {
	name := strings.ToLower(strings.TrimSuffix(qname, "."))
	if name == "" {
		return nil
	}
	out := []string{name}
	for _, d := range search {
		if short, ok := strings.CutSuffix(name, "."+d); ok && short != "" && !slices.Contains(out, short) {
			out = append(out, short)
		}
	}
	return out
}

// normalizeSearch lower-cases search domains and drops their dots at either
// end, empty entries and the root.
func normalizeSearch(search []string) []string {
	var out []string
	for _, d := range search {
		d = strings.ToLower(strings.Trim(d, "."))
		if d != "" && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// reverseAddr parses a reverse-lookup name (in-addr.arpa or ip6.arpa, any
// case, trailing dot optional) into the address it stands for.
func reverseAddr(qname string) (netip.Addr, bool) {
	name := strings.ToLower(strings.TrimSuffix(qname, "."))
	if rest, ok := strings.CutSuffix(name, ".in-addr.arpa"); ok {
		labels := strings.Split(rest, ".")
		if len(labels) != 4 {
			return netip.Addr{}, false
		}
		var b [4]byte
		for i, l := range labels {
			v, ok := decimalOctet(l)
			if !ok {
				return netip.Addr{}, false
			}
			b[3-i] = v
		}
		return netip.AddrFrom4(b), true
	}
	if rest, ok := strings.CutSuffix(name, ".ip6.arpa"); ok {
		labels := strings.Split(rest, ".")
		if len(labels) != 32 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i, l := range labels {
			if len(l) != 1 {
				return netip.Addr{}, false
			}
			v, ok := hexNibble(l[0])
			if !ok {
				return netip.Addr{}, false
			}
			pos := 31 - i // nibble index, most significant first
			if pos%2 == 0 {
				b[pos/2] |= v << 4
			} else {
				b[pos/2] |= v
			}
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}

func decimalOctet(s string) (byte, bool) {
	if s == "" || len(s) > 3 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	v := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return byte(v), v <= 255
}

func hexNibble(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// HostUpstreams returns the nameservers of a resolv.conf as "ip:53"
// ("[ip6]:53" for IPv6, zone kept), in file order and without duplicates.
// Lines that are not well-formed nameserver lines are ignored.
func HostUpstreams(resolvConf []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(resolvConf))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(f[1])
		if err != nil {
			continue
		}
		hp := netip.AddrPortFrom(a.Unmap(), 53).String()
		if !slices.Contains(out, hp) {
			out = append(out, hp)
		}
	}
	return out
}

// upstreamAddr adds port 53 to an upstream given without a port.
func upstreamAddr(s string) string {
	if _, _, err := net.SplitHostPort(s); err == nil {
		return s
	}
	return net.JoinHostPort(strings.Trim(s, "[]"), "53")
}
