package network_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/cli"
	"github.com/berth-dev/berth/internal/cli/clitest"
	"github.com/moby/moby/api/types/network"
)

const netID = "5eb45b53fffbaa41e47964dba0d09b6fc0d40a3df2cda560a658df751805a78e"

type result struct {
	out, err string
	code     int
}

func run(t *testing.T, s *clitest.Server, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), append([]string{"-H", s.Host}, args...),
		io.NopCloser(strings.NewReader(stdin)), &out, &errb)
	return result{out.String(), errb.String(), code}
}

func TestCreate(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want network.CreateRequest
	}{
		{"defaults", []string{"x"}, network.CreateRequest{
			Name: "x", Driver: "bridge", IPAM: &network.IPAM{Driver: "default", Config: []network.IPAMConfig{}, Options: map[string]string{}},
			Options: map[string]string{}, Labels: map[string]string{},
		}},
		{"all flags", []string{"-d", "macvlan", "--subnet", "10.1.0.0/16", "--gateway", "10.1.0.1", "--ip-range", "10.1.2.0/24",
			"--subnet", "10.2.0.0/24", "--internal", "--attachable", "--label", "a=b", "--label", "c", "-o", "mtu=1400", "--ipv6=false", "y"},
			network.CreateRequest{
				Name: "y", Driver: "macvlan", Internal: true, Attachable: true, EnableIPv6: new(bool),
				IPAM: &network.IPAM{Driver: "default", Options: map[string]string{}, Config: []network.IPAMConfig{
					{Subnet: netip.MustParsePrefix("10.1.0.0/16"), IPRange: netip.MustParsePrefix("10.1.2.0/24"), Gateway: netip.MustParseAddr("10.1.0.1")},
					{Subnet: netip.MustParsePrefix("10.2.0.0/24")},
				}},
				Options: map[string]string{"mtu": "1400"}, Labels: map[string]string{"a": "b", "c": ""},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := clitest.New(t)
			s.JSON("POST /networks/create", http.StatusCreated, network.CreateResponse{ID: netID})
			r := run(t, s, "", append([]string{"network", "create"}, tc.args...)...)
			if r.code != 0 || r.out != netID+"\n" || r.err != "" {
				t.Fatalf("got %+v", r)
			}
			req, _ := s.Find("POST", "/networks/create")
			var got network.CreateRequest
			if err := json.Unmarshal(req.Body, &got); err != nil {
				t.Fatal(err)
			}
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(tc.want)
			if !bytes.Equal(gotJSON, wantJSON) {
				t.Errorf("request\n got %s\nwant %s", gotJSON, wantJSON)
			}
		})
	}
}

func TestCreateErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
		code int
	}{
		{[]string{"--gateway", "10.0.0.1", "x"}, "every ip-range or gateway must have a corresponding subnet\n", 1},
		{[]string{"--subnet", "10.0.0.0/24", "--gateway", "10.1.0.1", "x"}, "no matching subnet for gateway 10.1.0.1\n", 1},
		{[]string{"--subnet", "10.0.0.0/24", "--ip-range", "10.0.0.5", "x"}, "invalid CIDR address: 10.0.0.5\n", 1},
		{[]string{"--subnet", "foo", "x"}, "invalid subnet: invalid CIDR address: foo\n", 1},
		{[]string{"--subnet", "10.0.0.0/16", "--subnet", "10.0.1.0/24", "x"}, "multiple overlapping subnet configuration is not supported\n", 1},
		{[]string{"--subnet", "10.0.0.0/24", "--subnet", "10.1.0.0/24", "--gateway", "10.0.0.1", "--gateway", "10.0.0.2", "x"},
			"cannot configure multiple gateways (10.0.0.2, 10.0.0.1) for the same subnet (10.0.0.0/24)\n", 1},
		{[]string{"x", "y"}, "berth: 'berth network create' requires 1 argument\n\nUsage:  berth network create [OPTIONS] NETWORK\n\nRun 'berth network create --help' for more information\n", 1},
		{[]string{"--label", "a b", "x"}, "invalid argument \"a b\" for \"--label\" flag: label 'a b' contains whitespaces\n\nUsage:  berth network create [OPTIONS] NETWORK\n\nRun 'berth network create --help' for more information\n", 125},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			s := clitest.New(t)
			s.Error("POST /networks/create", http.StatusInternalServerError, "unexpected")
			r := run(t, s, "", append([]string{"network", "create"}, tc.args...)...)
			if r.code != tc.code || r.err != tc.err || r.out != "" {
				t.Errorf("got %+v", r)
			}
			if _, sent := s.Find("POST", "/networks/create"); sent {
				t.Error("request sent")
			}
		})
	}
}

var listed = []network.Summary{
	{Network: network.Network{Name: "net10", ID: strings.Repeat("c", 64), Driver: "bridge", Scope: "local", Labels: map[string]string{"b": "2", "a": "1"}}},
	{Network: network.Network{Name: "bridge", ID: strings.Repeat("a", 64), Driver: "bridge", Scope: "local", EnableIPv4: true}},
	{Network: network.Network{Name: "net9", ID: strings.Repeat("b", 64), Driver: "null", Scope: "local", Internal: true}},
}

func TestList(t *testing.T) {
	a, b, c := strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("c", 64)
	for _, tc := range []struct {
		name string
		args []string
		out  string
	}{
		{"table", nil, "NETWORK ID     NAME      DRIVER    SCOPE\n" +
			"aaaaaaaaaaaa   bridge    bridge    local\nbbbbbbbbbbbb   net9      null      local\ncccccccccccc   net10     bridge    local\n"},
		{"quiet", []string{"-q"}, "aaaaaaaaaaaa\nbbbbbbbbbbbb\ncccccccccccc\n"},
		{"quiet no-trunc", []string{"-q", "--no-trunc"}, a + "\n" + b + "\n" + c + "\n"},
		{"format wins over quiet", []string{"-q", "--format", "{{.Name}}"}, "bridge\nnet9\nnet10\n"},
		{"custom table", []string{"--format", "table {{.Name}}\t{{.Labels}}\t{{.Internal}}"},
			"NAME      LABELS    INTERNAL\nbridge              false\nnet9                true\nnet10     a=1,b=2   false\n"},
		{"label", []string{"--format", "{{.Name}}={{.Label \"a\"}}"}, "bridge=\nnet9=\nnet10=1\n"},
		{"json", []string{"--format", "json", "-f", "name=bridge"}, `{"CreatedAt":"0001-01-01 00:00:00 +0000 UTC","Driver":"bridge","ID":"aaaaaaaaaaaa","IPv4":"true","IPv6":"false","Internal":"false","Labels":"","Name":"bridge","Scope":"local"}` + "\n" +
			`{"CreatedAt":"0001-01-01 00:00:00 +0000 UTC","Driver":"null","ID":"bbbbbbbbbbbb","IPv4":"false","IPv6":"false","Internal":"true","Labels":"","Name":"net9","Scope":"local"}` + "\n" +
			`{"CreatedAt":"0001-01-01 00:00:00 +0000 UTC","Driver":"bridge","ID":"cccccccccccc","IPv4":"false","IPv6":"false","Internal":"false","Labels":"a=1,b=2","Name":"net10","Scope":"local"}` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := clitest.New(t)
			s.JSON("GET /networks", http.StatusOK, listed)
			r := run(t, s, "", append([]string{"network", "ls"}, tc.args...)...)
			if r.code != 0 || r.err != "" || r.out != tc.out {
				t.Errorf("got code %d stderr %q stdout\n%s\nwant\n%s", r.code, r.err, r.out, tc.out)
			}
			if tc.name == "json" {
				req, _ := s.Find("GET", "/networks")
				if got := req.Query.Get("filters"); got != `{"name":{"bridge":true}}` {
					t.Errorf("filters %s", got)
				}
			}
		})
	}
}

func TestInspect(t *testing.T) {
	s := clitest.New(t)
	s.JSON("GET /networks/x", http.StatusOK, network.Inspect{Network: network.Network{Name: "x", ID: netID, Driver: "bridge"}})
	s.Error("GET /networks/nope", http.StatusNotFound, "network nope not found")
	r := run(t, s, "", "network", "inspect", "-f", "{{.Name}} {{.Driver}}", "x", "nope", "x")
	if r.code != 1 || r.out != "x bridge\nx bridge\n" || r.err != "Error response from daemon: network nope not found\n" {
		t.Errorf("got %+v", r)
	}
	r = run(t, s, "", "network", "inspect", "-v", "x")
	if r.code != 0 || !strings.HasPrefix(r.out, "[\n    {\n        \"Name\": \"x\",\n") {
		t.Errorf("got %+v", r)
	}
	if req, _ := s.Find("GET", "/networks/x"); req.Query.Get("verbose") != "" {
		t.Errorf("first inspect verbose: %v", req.Query)
	}
	if reqs := s.Requests(); reqs[len(reqs)-1].Query.Get("verbose") != "true" {
		t.Errorf("-v not sent: %v", reqs[len(reqs)-1].Query)
	}
}

func TestRemove(t *testing.T) {
	for _, tc := range []struct {
		args          []string
		out, err      string
		code, removed int
	}{
		{[]string{"rm", "a", "b"}, "a\nb\n", "", 0, 2},
		{[]string{"remove", "a", "nope", "bridge", "b"}, "a\nb\n",
			"Error response from daemon: network nope not found\nError response from daemon: bridge is a pre-defined network and cannot be removed\nexit status 1\n", 1, 2},
		{[]string{"rm", "-f", "nope", "a"}, "a\n", "", 0, 1},
		{[]string{"rm", "-f", "bridge"}, "", "Error response from daemon: bridge is a pre-defined network and cannot be removed\nexit status 1\n", 1, 0},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			s := clitest.New(t)
			s.Handle("DELETE /networks/{id}", func(w http.ResponseWriter, r *http.Request) {
				switch id := r.PathValue("id"); id {
				case "nope":
					clitest.WriteJSON(w, http.StatusNotFound, map[string]string{"message": "network nope not found"})
				case "bridge":
					clitest.WriteJSON(w, http.StatusForbidden, map[string]string{"message": "bridge is a pre-defined network and cannot be removed"})
				default:
					w.WriteHeader(http.StatusNoContent)
				}
			})
			r := run(t, s, "", append([]string{"network"}, tc.args...)...)
			if r.code != tc.code || r.out != tc.out || r.err != tc.err {
				t.Errorf("got %+v", r)
			}
			if n := len(s.Requests()); n != len(tc.args)-1-strings.Count(strings.Join(tc.args, " "), "-f") {
				t.Errorf("%d requests", n)
			}
		})
	}
}

func TestPrune(t *testing.T) {
	const prompt = "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] "
	const deleted = "Deleted Networks:\nx\ny\n\n"
	for _, tc := range []struct {
		name, stdin string
		args        []string
		out         string
		pruned      bool
	}{
		{"yes", "y\n", nil, prompt + deleted, true},
		{"upper Y", " Y \n", nil, prompt + deleted, true},
		{"no", "n\n", nil, prompt, false},
		{"yes word", "yes\n", nil, prompt, false},
		{"eof", "", nil, prompt, false},
		{"force", "", []string{"-f", "--filter", "label=a"}, deleted, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := clitest.New(t)
			s.JSON("POST /networks/prune", http.StatusOK, network.PruneReport{NetworksDeleted: []string{"x", "y"}})
			r := run(t, s, tc.stdin, append([]string{"network", "prune"}, tc.args...)...)
			if r.code != 0 || r.err != "" || r.out != tc.out {
				t.Errorf("got %+v", r)
			}
			req, sent := s.Find("POST", "/networks/prune")
			if sent != tc.pruned {
				t.Fatalf("prune sent %v", sent)
			}
			if tc.name == "force" && req.Query.Get("filters") != `{"label":{"a":true}}` {
				t.Errorf("filters %q", req.Query.Get("filters"))
			}
		})
	}
	s := clitest.New(t)
	s.JSON("POST /networks/prune", http.StatusOK, network.PruneReport{})
	if r := run(t, s, "", "network", "prune", "-f"); r.code != 0 || r.out != "" || r.err != "" {
		t.Errorf("nothing pruned: %+v", r)
	}
}

func TestConnectDisconnect(t *testing.T) {
	s := clitest.New(t)
	s.Handle("POST /networks/{id}/connect", func(w http.ResponseWriter, r *http.Request) {})
	s.Handle("POST /networks/{id}/disconnect", func(w http.ResponseWriter, r *http.Request) {})
	r := run(t, s, "", "network", "connect", "--ip", "10.0.0.5", "--alias", "a,b", "--alias", "c", "--driver-opt", "k=v", "x", "ctr")
	if r.code != 0 || r.out != "" || r.err != "" {
		t.Errorf("connect: %+v", r)
	}
	req, _ := s.Find("POST", "/networks/x/connect")
	var body network.ConnectRequest
	if err := json.Unmarshal(req.Body, &body); err != nil {
		t.Fatal(err)
	}
	ep := body.EndpointConfig
	if body.Container != "ctr" || ep == nil || ep.IPAMConfig.IPv4Address.String() != "10.0.0.5" ||
		strings.Join(ep.Aliases, ",") != "a,b,c" || ep.DriverOpts["k"] != "v" {
		t.Errorf("connect body %s", req.Body)
	}
	r = run(t, s, "", "network", "disconnect", "-f", "x", "ctr")
	if r.code != 0 || r.out != "" || r.err != "" {
		t.Errorf("disconnect: %+v", r)
	}
	req, _ = s.Find("POST", "/networks/x/disconnect")
	var dis network.DisconnectRequest
	if err := json.Unmarshal(req.Body, &dis); err != nil || dis.Container != "ctr" || !dis.Force {
		t.Errorf("disconnect body %s", req.Body)
	}
}

func TestConnectDisconnectErrors(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		path   string
		status int
		msg    string
	}{
		{[]string{"connect", "x", "ctr"}, "POST /networks/{id}/connect", http.StatusForbidden, "endpoint with name ctr already exists in network x"},
		{[]string{"connect", "nosuch", "ctr"}, "POST /networks/{id}/connect", http.StatusNotFound, "network nosuch not found"},
		{[]string{"disconnect", "x", "ctr"}, "POST /networks/{id}/disconnect", http.StatusInternalServerError, "container 0123 is not connected to network x"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			s := clitest.New(t)
			s.Error(tc.path, tc.status, tc.msg)
			r := run(t, s, "", append([]string{"network"}, tc.args...)...)
			if r.code != 1 || r.out != "" || r.err != "Error response from daemon: "+tc.msg+"\n" {
				t.Errorf("got %+v", r)
			}
		})
	}
	s := clitest.New(t)
	if r := run(t, s, "", "network", "connect", "--ip", "10.0.0", "x", "ctr"); r.code == 0 || !strings.Contains(r.err, "invalid IP address: 10.0.0") || len(s.Requests()) > 0 {
		t.Errorf("bad --ip: %+v", r)
	}
	if r := run(t, s, "", "network", "connect", "x"); r.code == 0 || !strings.Contains(r.err, "requires 2 arguments") {
		t.Errorf("one argument: %+v", r)
	}
}
