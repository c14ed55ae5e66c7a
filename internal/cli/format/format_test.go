package format

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/moby/moby/api/types/container"
)

type row struct{ id, name string }

func (r row) ID() string                   { return r.id }
func (r row) Name() string                 { return r.name }
func (r row) Label(k string) string        { return k + "!" }
func (r row) MarshalJSON() ([]byte, error) { return MarshalMethods(r) }

func TestWrite(t *testing.T) {
	rows := []row{{"abc", "first"}, {"defghi", "second"}}
	header := Header{"ID": "ID", "Name": "NAME"}
	for _, tc := range []struct {
		format Format
		want   string
	}{
		{"table {{.ID}}\t{{.Name}}", "ID        NAME\nabc       first\ndefghi    second\n"},
		{"table {{.Name}}\t{{.ID}}", "NAME      ID\nfirst     abc\nsecond    defghi\n"},
		{"{{.ID}}:{{.Name}}", "abc:first\ndefghi:second\n"},
		{"json", `{"ID":"abc","Name":"first"}` + "\n" + `{"ID":"defghi","Name":"second"}` + "\n"},
		{`table {{.Name}}\t{{.Label "com.example.my-label"}}`, "NAME      my label\nfirst     com.example.my-label!\nsecond    com.example.my-label!\n"},
		{"{{upper .Name}} {{truncate .ID 2}}", "FIRST ab\nSECOND de\n"},
	} {
		var b bytes.Buffer
		if err := Write(&b, tc.format, header, rows); err != nil {
			t.Fatalf("%q: %v", tc.format, err)
		}
		if b.String() != tc.want {
			t.Errorf("%q: got %q, want %q", tc.format, b.String(), tc.want)
		}
	}
	var b bytes.Buffer
	if err := Write(&b, "table {{.ID}}", header, []row{}); err != nil || b.String() != "ID\n" {
		t.Errorf("empty table: %q %v", b.String(), err)
	}
	if err := Write(&b, "{{.ID", header, rows); err == nil {
		t.Error("bad template accepted")
	}
}

func TestDisplay(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{TruncateID("sha256:0123456789abcdef0123"), "0123456789ab"},
		{TruncateID("short"), "short"},
		{Ellipsis("nginx -g 'daemon off;'", 20), "nginx -g 'daemon of…"},
		{Ellipsis("short", 20), "short"},
		{Ellipsis("ünïcödé-string", 5), "ünïc…"},
		{Size(1234), "1.23kB"},
		{Size(4_261_550), "4.26MB"},
		{Size(0), "0B"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestPorts(t *testing.T) {
	any4 := netip.MustParseAddr("0.0.0.0")
	for _, tc := range []struct {
		ports []container.PortSummary
		want  string
	}{
		{nil, ""},
		{[]container.PortSummary{{PrivatePort: 80, Type: "tcp"}}, "80/tcp"},
		{[]container.PortSummary{{PrivatePort: 81, Type: "tcp"}, {PrivatePort: 80, Type: "tcp"}, {PrivatePort: 82, Type: "tcp"}}, "80-82/tcp"},
		{[]container.PortSummary{{IP: any4, PrivatePort: 80, PublicPort: 8080, Type: "tcp"}}, "0.0.0.0:8080->80/tcp"},
		{[]container.PortSummary{{IP: any4, PrivatePort: 80, PublicPort: 80, Type: "tcp"}, {IP: any4, PrivatePort: 81, PublicPort: 81, Type: "tcp"}}, "0.0.0.0:80-81->80-81/tcp"},
		{[]container.PortSummary{{IP: netip.MustParseAddr("::"), PrivatePort: 53, PublicPort: 5353, Type: "udp"}, {PrivatePort: 53, Type: "tcp"}}, "53/tcp, [::]:5353->53/udp"},
	} {
		if got := Ports(tc.ports); got != tc.want {
			t.Errorf("%v: got %q, want %q", tc.ports, got, tc.want)
		}
	}
}
