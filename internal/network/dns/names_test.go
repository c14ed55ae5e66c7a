package dns

import (
	"net/netip"
	"slices"
	"testing"
)

func TestCandidates(t *testing.T) {
	search := normalizeSearch([]string{"Corp.Example.", "", ".", "example", "corp.example"})
	if want := []string{"corp.example", "example"}; !slices.Equal(search, want) {
		t.Fatalf("normalizeSearch = %q, want %q", search, want)
	}
	tests := []struct {
		qname string
		want  []string
	}{
		{"web", []string{"web"}},
		{"web.", []string{"web"}},
		{"WeB.", []string{"web"}},
		{"web.corp.example.", []string{"web.corp.example", "web", "web.corp"}},
		{"WEB.CORP.EXAMPLE", []string{"web.corp.example", "web", "web.corp"}},
		{"web.example.", []string{"web.example", "web"}},
		// Both domains match: the longer one strips first.
		{"a.b.corp.example.", []string{"a.b.corp.example", "a.b", "a.b.corp"}},
		{"corp.example.", []string{"corp.example", "corp"}}, // corp.example strips to nothing
		{"xcorp.example.", []string{"xcorp.example", "xcorp"}},
		{"example.", []string{"example"}},
		{"web.mynet.", []string{"web.mynet"}},
		{".", nil},
		{"", nil},
	}
	for _, tt := range tests {
		if got := candidates(tt.qname, search); !slices.Equal(got, tt.want) {
			t.Errorf("candidates(%q) = %q, want %q", tt.qname, got, tt.want)
		}
	}
}

func TestReverseAddr(t *testing.T) {
	tests := []struct {
		name string
		want string // "" = not a reverse name
	}{
		{"2.0.99.10.in-addr.arpa.", "10.99.0.2"},
		{"2.0.99.10.IN-ADDR.ARPA", "10.99.0.2"},
		{"255.255.255.255.in-addr.arpa.", "255.255.255.255"},
		{"0.99.10.in-addr.arpa.", ""},
		{"1.2.0.99.10.in-addr.arpa.", ""},
		{"256.0.99.10.in-addr.arpa.", ""},
		{"02.0.99.10.in-addr.arpa.", ""},
		{"x.0.99.10.in-addr.arpa.", ""},
		{"b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa.", "4321:0:1:2:3:4:567:89ab"},
		{"B.A.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.IP6.ARPA", "4321:0:1:2:3:4:567:89ab"},
		{"a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa.", ""},
		{"g.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa.", ""},
		{"ba.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa.", ""},
		{"web.", ""},
		{"in-addr.arpa.", ""},
	}
	for _, tt := range tests {
		got, ok := reverseAddr(tt.name)
		if tt.want == "" {
			if ok {
				t.Errorf("reverseAddr(%q) = %v, want none", tt.name, got)
			}
			continue
		}
		if !ok || got != netip.MustParseAddr(tt.want) {
			t.Errorf("reverseAddr(%q) = %v, %v, want %s", tt.name, got, ok, tt.want)
		}
	}
}

func TestHostUpstreams(t *testing.T) {
	tests := []struct {
		conf string
		want []string
	}{
		{"", nil},
		{"nameserver 10.255.255.53\n", []string{"10.255.255.53:53"}},
		{"# generated\nsearch corp.example\nnameserver 127.0.0.53\noptions edns0 trust-ad\n", []string{"127.0.0.53:53"}},
		{"nameserver 1.1.1.1\nnameserver 8.8.8.8 # google\nnameserver 1.1.1.1\n", []string{"1.1.1.1:53", "8.8.8.8:53"}},
		{"nameserver ::1\nnameserver fe80::1%eth0\n", []string{"[::1]:53", "[fe80::1%eth0]:53"}},
		{"nameserver ::ffff:192.0.2.1\n", []string{"192.0.2.1:53"}},
		{"\tnameserver\t192.0.2.2\r\n", []string{"192.0.2.2:53"}},
		{"nameserver\nnameserver dns.example\nnameserver 300.1.1.1\n;nameserver 192.0.2.3\nnameservers 192.0.2.4\n", nil},
		{"#nameserver 192.0.2.3\nNAMESERVER 192.0.2.5\n", nil},
	}
	for _, tt := range tests {
		if got := HostUpstreams([]byte(tt.conf)); !slices.Equal(got, tt.want) {
			t.Errorf("HostUpstreams(%q) = %q, want %q", tt.conf, got, tt.want)
		}
	}
}

func TestUpstreamAddr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"192.0.2.1", "192.0.2.1:53"},
		{"192.0.2.1:5353", "192.0.2.1:5353"},
		{"::1", "[::1]:53"},
		{"[::1]", "[::1]:53"},
		{"[::1]:5353", "[::1]:5353"},
	}
	for _, tt := range tests {
		if got := upstreamAddr(tt.in); got != tt.want {
			t.Errorf("upstreamAddr(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
