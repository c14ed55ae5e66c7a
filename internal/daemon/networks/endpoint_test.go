package networks

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

const (
	ctrA = "aaaaaaaaaaaa1111111111111111111111111111111111111111111111111111"
	ctrB = "bbbbbbbbbbbb2222222222222222222222222222222222222222222222222222"
	ctrC = "cccccccccccc3333333333333333333333333333333333333333333333333333"
)

func ep(container, netID, ifName string, addr string, gw string, route bool) *Endpoint {
	e := &Endpoint{ContainerID: container, NetworkID: netID, IfName: ifName, Addr: netip.MustParsePrefix(addr), DefaultRoute: route}
	if gw != "" {
		e.Gateway = netip.MustParseAddr(gw)
	}
	return e
}

func TestSandboxBookkeeping(t *testing.T) {
	for _, tc := range []struct {
		name      string
		endpoints []*Endpoint
		nextIf    string
		routed    string // network of the routed endpoint, "" none
		nextRoute string // network of the next route candidate
	}{
		{"empty", nil, "eth0", "", ""},
		{"one", []*Endpoint{ep(ctrA, "n1", "eth0", "10.0.0.2/24", "10.0.0.1", true)}, "eth1", "n1", "n1"},
		{"a gap is reused", []*Endpoint{
			ep(ctrA, "n1", "eth0", "10.0.0.2/24", "10.0.0.1", true),
			ep(ctrA, "n3", "eth2", "10.0.2.2/24", "10.0.2.1", false),
		}, "eth1", "n1", "n1"},
		{"internal first", []*Endpoint{
			ep(ctrA, "n1", "eth0", "10.0.0.2/24", "", false),
			ep(ctrA, "n2", "eth1", "10.0.1.2/24", "10.0.1.1", true),
		}, "eth2", "n2", "n2"},
		{"all internal", []*Endpoint{ep(ctrA, "n1", "eth0", "10.0.0.2/24", "", false)}, "eth1", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sb := &Sandbox{ContainerID: ctrA, Endpoints: tc.endpoints}
			if got := sb.nextIfName(); got != tc.nextIf {
				t.Errorf("nextIfName %q, want %q", got, tc.nextIf)
			}
			if got := sb.routed(); (got == nil) != (tc.routed == "") || got != nil && got.NetworkID != tc.routed {
				t.Errorf("routed %+v, want %q", got, tc.routed)
			}
			if got := sb.nextRoute(); (got == nil) != (tc.nextRoute == "") || got != nil && got.NetworkID != tc.nextRoute {
				t.Errorf("nextRoute %+v, want %q", got, tc.nextRoute)
			}
		})
	}
}

func TestSandboxRemoveAndSnapshot(t *testing.T) {
	sb := &Sandbox{ContainerID: ctrA, Endpoints: []*Endpoint{
		ep(ctrA, "n1", "eth0", "10.0.0.2/24", "10.0.0.1", true),
		ep(ctrA, "n2", "eth1", "10.0.1.2/24", "10.0.1.1", false),
	}}
	sb.Endpoints[1].Aliases = []string{"x"}
	snap := sb.snapshot()
	snap.Endpoints[1].Aliases[0] = "changed"
	snap.Endpoints[0].DefaultRoute = false
	if sb.Endpoints[1].Aliases[0] != "x" || !sb.Endpoints[0].DefaultRoute {
		t.Error("a snapshot shares state with the sandbox")
	}
	if got := sb.remove("nope"); got != nil {
		t.Errorf("removed %+v for an unknown network", got)
	}
	if got := sb.remove("n1"); got == nil || got.IfName != "eth0" || len(sb.Endpoints) != 1 {
		t.Fatalf("remove n1: %+v, left %d", got, len(sb.Endpoints))
	}
	if got := sb.nextIfName(); got != "eth0" {
		t.Errorf("after eth0 left: next %q", got)
	}
	if sb.Endpoint("n2") == nil || sb.Endpoint("n1") != nil {
		t.Error("Endpoint lookup after remove")
	}
	if sb.Resolves() {
		t.Error("a sandbox without user-defined endpoints resolves")
	}
	sb.Endpoints[0].UserDefined = true
	if !sb.Resolves() {
		t.Error("a sandbox with a user-defined endpoint does not resolve")
	}
}

func TestDNSNames(t *testing.T) {
	for _, tc := range []struct {
		name, hostname string
		aliases        []string
		want           []string
	}{
		{"web", "aaaaaaaaaaaa", nil, []string{"web", "aaaaaaaaaaaa"}},
		{"web", "box", []string{"w", "web", "www"}, []string{"web", "w", "www", "aaaaaaaaaaaa", "box"}},
		{"web", "", []string{""}, []string{"web", "aaaaaaaaaaaa"}},
	} {
		if got := dnsNames(tc.name, tc.aliases, ctrA, tc.hostname); !slices.Equal(got, tc.want) {
			t.Errorf("dnsNames(%q, %q, %q) = %q, want %q", tc.name, tc.aliases, tc.hostname, got, tc.want)
		}
	}
	e := &Endpoint{ContainerID: ctrA, DNSNames: []string{"Web", "alias"}}
	for name, want := range map[string]bool{
		"web": true, "WEB": true, "alias": true, "aaaaaaaaaaaa": true, ctrA: true, "aaaaaaaaaaa": false, "other": false, "": false,
	} {
		if got := e.answersTo(name); got != want {
			t.Errorf("answersTo(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestRecords(t *testing.T) {
	r := records{dir: filepath.Join(t.TempDir(), "endpoints")}
	e0 := ep(ctrA, "n1", "eth0", "10.0.0.2/24", "10.0.0.1", true)
	e10 := ep(ctrA, "n3", "eth10", "10.0.2.2/24", "10.0.2.1", false)
	e2 := ep(ctrA, "n2", "eth2", "10.0.1.2/24", "10.0.1.1", false)
	for _, e := range []*Endpoint{e10, e0, e2, ep(ctrB, "n1", "eth0", "10.0.0.3/24", "10.0.0.1", true)} {
		if err := r.save(e); err != nil {
			t.Fatal(err)
		}
	}
	ifNames := func(eps []*Endpoint) (out []string) {
		for _, e := range eps {
			out = append(out, e.IfName)
		}
		return out
	}
	if got := ifNames(r.load(ctrA)); !slices.Equal(got, []string{"eth0", "eth2", "eth10"}) {
		t.Errorf("load order %q", got)
	}
	r.remove(ctrA, "n2")
	if got := ifNames(r.load(ctrA)); !slices.Equal(got, []string{"eth0", "eth10"}) {
		t.Errorf("after remove %q", got)
	}
	r.remove(ctrA, "n1")
	r.remove(ctrA, "n3")
	if _, err := os.Stat(r.containerDir(ctrA)); !os.IsNotExist(err) {
		t.Errorf("container directory left after its last endpoint: %v", err)
	}
	if got := r.containers(); !slices.Equal(got, []string{ctrB}) {
		t.Errorf("containers %q", got)
	}

	// A record of the one-network layout: read as eth0 with the default
	// route and its names; a broken record is skipped.
	legacy := `{"containerID":"` + ctrC + `","networkID":"n9","name":"old","aliases":["o"],"netnsPath":"/x","addr":"10.9.0.5/24","gateway":"10.9.0.1","mac":"02:42:0a:09:00:05","hostVeth":"veth1234567","userDefined":true}`
	if err := os.WriteFile(r.legacyPath(ctrC), []byte(legacy), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(r.containerDir(ctrC), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.path(ctrC, "broken"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	eps := r.load(ctrC)
	if len(eps) != 1 {
		t.Fatalf("legacy load: %d endpoints", len(eps))
	}
	if e := eps[0]; e.IfName != "eth0" || !e.DefaultRoute || e.HostVeth != "veth1234567" || !slices.Equal(e.DNSNames, []string{"old", "o", "cccccccccccc"}) {
		t.Errorf("legacy endpoint %+v", e)
	}
	if got := r.containers(); !slices.Equal(got, []string{ctrB, ctrC}) {
		t.Errorf("containers with a legacy record %q", got)
	}
	r.removeAll(ctrC)
	if got := r.containers(); !slices.Equal(got, []string{ctrB}) {
		t.Errorf("after removeAll: %q", got)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	r := records{dir: t.TempDir()}
	e := ep(ctrA, "n1", "eth1", "10.0.0.2/24", "10.0.0.1", true)
	e.ID, e.Name, e.Aliases, e.DNSNames, e.MAC, e.HostVeth, e.UserDefined = newID(), "web", []string{"w"}, []string{"web", "w"}, "02:42:0a:00:00:02", "vethabcdef0", true
	if err := r.save(e); err != nil {
		t.Fatal(err)
	}
	got := r.load(ctrA)
	a, _ := json.Marshal(got)
	b, _ := json.Marshal([]*Endpoint{e})
	if string(a) != string(b) {
		t.Errorf("round trip:\n got %s\nwant %s", a, b)
	}
}

func TestValidateEndpoint(t *testing.T) {
	user := &Network{Name: "front", Driver: "bridge", UserDefined: true}
	user.Pool.Subnet = netip.MustParsePrefix("10.7.0.0/24")
	ranged := *user
	ranged.Pool.IPRange = netip.MustParsePrefix("10.7.0.128/25")
	auto := *user
	auto.AutoSubnet = true
	bridge := &Network{Name: "bridge", Driver: "bridge"}
	bridge.Pool.Subnet = netip.MustParsePrefix("172.17.0.0/16")
	host := &Network{Name: "host", Driver: "host"}
	ip := netip.MustParseAddr
	for _, tc := range []struct {
		name string
		n    *Network
		req  EndpointRequest
		want string // "" valid
	}{
		{"nothing asked", bridge, EndpointRequest{}, ""},
		{"user network, ip and aliases", user, EndpointRequest{IPv4: ip("10.7.0.9"), Aliases: []string{"a"}}, ""},
		{"ip outside the subnet", user, EndpointRequest{IPv4: ip("10.8.0.9")}, "invalid endpoint settings:\nno configured subnet or ip-range contain the IP address 10.8.0.9"},
		{"ip in the range", &ranged, EndpointRequest{IPv4: ip("10.7.0.200")}, ""},
		{"ip outside the range", &ranged, EndpointRequest{IPv4: ip("10.7.0.9")}, "invalid endpoint settings:\nno configured subnet or ip-range contain the IP address 10.7.0.9"},
		{"subnet chosen by berth", &auto, EndpointRequest{IPv4: ip("10.7.0.9")}, "invalid endpoint settings:\nuser specified IP address is supported only when connecting to networks with user configured subnets"},
		{"ip on the default bridge", bridge, EndpointRequest{IPv4: ip("172.17.0.9")}, "invalid endpoint settings:\nuser specified IP address is supported on user defined networks only"},
		{"alias on the default bridge", bridge, EndpointRequest{Aliases: []string{"a"}}, "invalid endpoint settings:\nnetwork-scoped alias is supported only for containers in user defined networks"},
		{"both on the default bridge", bridge, EndpointRequest{IPv4: ip("172.17.0.9"), Aliases: []string{"a"}},
			"invalid endpoint settings:\n* user specified IP address is supported on user defined networks only\n* network-scoped alias is supported only for containers in user defined networks"},
		{"ip on host", host, EndpointRequest{IPv4: ip("10.0.0.1")}, "invalid endpoint settings:\nuser specified IP address is supported on user defined networks only"},
		{"unspecified", user, EndpointRequest{IPv4: ip("0.0.0.0")}, "invalid endpoint settings:\ninvalid IPv4 address: 0.0.0.0"},
		{"IPv6 as --ip", user, EndpointRequest{IPv4: ip("fd00::1")}, "invalid endpoint settings:\ninvalid IPv4 address: fd00::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateEndpoint(tc.n, tc.req)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !errdefs.IsInvalidArgument(err) || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q (invalid argument)", err, tc.want)
			}
		})
	}
}

// TestSearch checks the embedded DNS's view: names on the networks the
// asking container is on, the first network in interface order winning,
// never a network it is not on, never the default bridge.
func TestSearch(t *testing.T) {
	named := func(e *Endpoint, names ...string) *Endpoint {
		e.DNSNames, e.Name, e.UserDefined = names, names[0], e.NetworkID != "bridge"
		return e
	}
	s := &Service{
		networks: map[string]*Network{"na": {ID: "na", Name: "neta"}, "nb": {ID: "nb", Name: "netb"}, "nc": {ID: "nc", Name: "netc"}, "bridge": {ID: "bridge", Name: "bridge"}},
		sandboxes: map[string]*Sandbox{
			// multi: on netb (eth0) and neta (eth1), and the default bridge.
			ctrA: {ContainerID: ctrA, Endpoints: []*Endpoint{
				named(ep(ctrA, "nb", "eth0", "10.2.0.2/24", "10.2.0.1", true), "multi", "m"),
				named(ep(ctrA, "na", "eth1", "10.1.0.2/24", "10.1.0.1", false), "multi", "m"),
				named(ep(ctrA, "bridge", "eth2", "172.17.0.2/16", "172.17.0.1", false), "multi"),
			}},
			// web: on neta and netc; its name "db" alias on netc only.
			ctrB: {ContainerID: ctrB, Endpoints: []*Endpoint{
				named(ep(ctrB, "na", "eth0", "10.1.0.3/24", "10.1.0.1", true), "web"),
				named(ep(ctrB, "nc", "eth1", "10.3.0.3/24", "10.3.0.1", false), "web", "db"),
			}},
			// db: on netb.
			ctrC: {ContainerID: ctrC, Endpoints: []*Endpoint{
				named(ep(ctrC, "nb", "eth0", "10.2.0.4/24", "10.2.0.1", true), "db"),
				named(ep(ctrC, "bridge", "eth1", "172.17.0.4/16", "172.17.0.1", false), "db"),
			}},
		},
	}
	for _, tc := range []struct {
		from, name string
		want       []string
	}{
		{ctrA, "web", []string{"10.1.0.3"}},   // through neta (eth1)
		{ctrA, "db", []string{"10.2.0.4"}},    // netb first: web's db alias is on netc
		{ctrA, "multi", []string{"10.2.0.2"}}, // itself, on its first network
		{ctrB, "multi", []string{"10.1.0.2"}}, // web sees multi on neta
		{ctrB, "m", []string{"10.1.0.2"}},     // and its alias there
		{ctrB, "db", []string{"10.3.0.3"}},    // its own alias on netc, not db on netb
		{ctrC, "web", nil},                    // netb has no web; the bridge no names
		{ctrC, "multi", []string{"10.2.0.2"}}, //
		{ctrC, "cccccccccccc", []string{"10.2.0.4"}},
		{"unknown", "web", nil},
	} {
		found, _ := s.search(tc.from, func(e *Endpoint) bool { return e.answersTo(tc.name) })
		var got []string
		for _, e := range found {
			got = append(got, e.Addr.Addr().String())
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s asks %q: %q, want %q", tc.from[:1], tc.name, got, tc.want)
		}
	}
	if names, ok := s.reverse(ctrB, netip.MustParseAddr("10.1.0.2")); !ok || !slices.Equal(names, []string{"multi.neta"}) {
		t.Errorf("reverse 10.1.0.2 from web: %q", names)
	}
	if _, ok := s.reverse(ctrC, netip.MustParseAddr("10.1.0.2")); ok {
		t.Error("reverse of an address on a network the asker is not on")
	}
	if got := s.InUse("na"); !slices.Equal(got, []string{"multi", "web"}) {
		t.Errorf("InUse(neta) %q", got)
	}
}
