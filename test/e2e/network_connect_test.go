package e2e

import (
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ifAddr is the IPv4 address and prefix of a container's interface, ""
// when the interface does not exist.
func (c *dockerCLI) ifAddr(ctr, ifname string) string {
	c.t.Helper()
	out, _, code := c.run("exec", ctr, "ip", "-4", "-o", "addr", "show", "dev", ifname)
	if code != 0 {
		return ""
	}
	f := strings.Fields(out)
	for i, w := range f {
		if w == "inet" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}

// reaches tells whether ctr gets an answer to one ping of dest (a name or
// an address).
func (c *dockerCLI) reaches(ctr, dest string) bool {
	c.t.Helper()
	_, _, code := c.run("exec", ctr, "ping", "-c1", "-W2", dest)
	return code == 0
}

// networkEvents lists the network events since a time as "action network
// container" lines.
func (c *dockerCLI) networkEvents(since time.Time) []string {
	c.t.Helper()
	out := c.ok("events", "--since", strconv.FormatInt(since.Unix(), 10), "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--filter", "type=network", "--format", "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.type}} {{.Actor.Attributes.container}} {{.Actor.ID}}")
	return dcLines(out)
}

func TestDockerCLINetworkConnect(t *testing.T) {
	c := newDockerCLI(t)
	c.ok("network", "create", "--subnet", "10.81.0.0/24", "neta")
	netb := c.ok("network", "create", "--subnet", "10.82.0.0/24", "netb")
	c.ok("network", "create", "--subnet", "10.83.0.0/24", "netc")
	c.ok("run", "-d", "--name", "target", "--network", "netb", "--network-alias", "tgt", "busybox", "sleep", "300")
	c.ok("run", "-d", "--name", "other", "--network", "netc", "busybox", "sleep", "300")
	c.ok("run", "-d", "--name", "multi", "--network", "neta", "busybox", "sleep", "300")
	multiID := c.inspect("multi", "{{.Id}}")
	targetIP := c.inspect("target", "{{.NetworkSettings.Networks.netb.IPAddress}}")
	multiA := c.inspect("multi", "{{.NetworkSettings.Networks.neta.IPAddress}}")
	if c.reaches("multi", targetIP) {
		t.Fatal("multi reached target before it was connected to netb")
	}

	since := time.Now().Add(-time.Second)
	c.ok("network", "connect", "--ip", "10.82.0.77", "--alias", "mult", "--alias", "mlt", "netb", "multi")
	if got := c.ifAddr("multi", "eth1"); got != "10.82.0.77/24" {
		t.Errorf("eth1 after connect: %q", got)
	}
	if got := c.ifAddr("multi", "eth0"); got != multiA+"/24" {
		t.Errorf("eth0 after connect: %q, want %s/24", got, multiA)
	}
	// Names and addresses on both networks, through the embedded DNS.
	for _, dest := range []string{targetIP, "target", "tgt"} {
		if !c.reaches("multi", dest) {
			t.Errorf("multi does not reach %s on netb", dest)
		}
	}
	for _, dest := range []string{"multi", "mult", "mlt", "10.82.0.77"} {
		if !c.reaches("target", dest) {
			t.Errorf("target does not reach %s", dest)
		}
	}
	if out := c.ok("exec", "target", "nslookup", "multi"); !strings.Contains(out, "10.82.0.77") || strings.Contains(out, multiA) {
		t.Errorf("multi from netb should resolve to its netb address only: %s", out)
	}
	c.ok("run", "--rm", "--network", "neta", "busybox", "ping", "-c1", "-W2", "multi")
	// Isolation between networks multi is not on stays.
	otherIP := c.inspect("other", "{{.NetworkSettings.Networks.netc.IPAddress}}")
	if c.reaches("multi", otherIP) || c.reaches("target", multiA) || c.reaches("other", "10.82.0.77") {
		t.Error("traffic crossed to a network the container is not on")
	}
	if _, _, code := c.run("exec", "multi", "nslookup", "other"); code == 0 {
		t.Error("multi resolved a container of a network it is not on")
	}

	// Inspect: both networks; network inspect: multi under each.
	var ctr struct {
		NetworkSettings struct {
			Networks map[string]struct {
				IPAddress, Gateway, MacAddress, NetworkID, EndpointID string
				IPPrefixLen                                           int
				Aliases, DNSNames                                     []string
			}
		}
	}
	c.inspectJSON("container", "multi", &ctr)
	nets := ctr.NetworkSettings.Networks
	b := nets["netb"]
	if len(nets) != 2 || nets["neta"].IPAddress != multiA || b.IPAddress != "10.82.0.77" || b.Gateway != "10.82.0.1" ||
		b.IPPrefixLen != 24 || b.NetworkID != netb || !dcFullIDRe.MatchString(b.EndpointID) || b.EndpointID == nets["neta"].EndpointID ||
		!strings.HasPrefix(b.MacAddress, "02:42:0a:52:00:4d") || strings.Join(b.Aliases, ",") != "mult,mlt" {
		t.Errorf("inspect networks: %+v", nets)
	}
	if !strings.Contains(strings.Join(b.DNSNames, ","), "multi,mult,mlt,"+multiID[:12]) {
		t.Errorf("DNSNames %v", b.DNSNames)
	}
	for net, want := range map[string]string{"neta": multiA + "/24", "netb": "10.82.0.77/24"} {
		if got := c.ok("network", "inspect", "-f", "{{range $id, $e := .Containers}}{{if eq $e.Name \"multi\"}}{{$id}} {{$e.IPv4Address}}{{end}}{{end}}", net); got != multiID+" "+want {
			t.Errorf("network inspect %s: %q", net, got)
		}
	}
	if got := c.ok("ps", "--filter", "network=netb", "--format", "{{.Names}}"); !strings.Contains(got, "multi") || !strings.Contains(got, "target") {
		t.Errorf("ps --filter network=netb: %q", got)
	}
	evs := strings.Join(c.networkEvents(since), "\n")
	if !strings.Contains(evs, "connect netb bridge "+multiID+" "+netb) {
		t.Errorf("connect event missing: %q", evs)
	}

	// Errors, with dockerd's words and statuses.
	c.ok("run", "-d", "--name", "hostc", "--network", "host", "busybox", "sleep", "300")
	c.ok("run", "-d", "--name", "nonec", "--network", "none", "busybox", "sleep", "300")
	c.ok("run", "-d", "--name", "joiner", "--network", "container:multi", "busybox", "sleep", "300")
	c.ok("network", "create", "autonet")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"connect", "netb", "multi"}, "endpoint with name multi already exists in network netb"},
		{[]string{"connect", "host", "multi"}, "cannot connect container to host network - container must be created in host network mode"},
		{[]string{"connect", "none", "multi"}, "container cannot be connected to multiple networks with one of the networks in private (none) mode"},
		{[]string{"connect", "neta", "hostc"}, "container sharing network namespace with another container or host cannot be connected to any other network"},
		{[]string{"connect", "neta", "nonec"}, "container cannot be connected to multiple networks with one of the networks in private (none) mode"},
		{[]string{"connect", "neta", "joiner"}, "container sharing network namespace with another container or host cannot be connected to any other network"},
		{[]string{"connect", "nosuch", "multi"}, "network nosuch not found"},
		{[]string{"connect", "neta", "nosuch"}, "No such container: nosuch"},
		{[]string{"connect", "--ip", "10.99.0.5", "netc", "multi"}, "invalid endpoint settings:\nno configured subnet or ip-range contain the IP address 10.99.0.5"},
		{[]string{"connect", "--ip", "10.1.2.3", "autonet", "multi"}, "invalid endpoint settings:\nuser specified IP address is supported only when connecting to networks with user configured subnets"},
		{[]string{"connect", "--alias", "x", "bridge", "multi"}, "invalid endpoint settings:\nnetwork-scoped alias is supported only for containers in user defined networks"},
		{[]string{"connect", "--ip", "10.82.0.2", "netb", "other"}, "Address already in use"},
		{[]string{"disconnect", "netc", "multi"}, "container " + multiID + " is not connected to network netc"},
		{[]string{"disconnect", "host", "hostc"}, "cannot disconnect container from host network - container was created in host network mode"},
		{[]string{"disconnect", "nosuch", "multi"}, "network nosuch not found"},
		{[]string{"rm", "netb"}, "error while removing network: network netb has active endpoints"},
	} {
		errOut := c.fails(1, append([]string{"network"}, tc.args...)...)
		if !strings.Contains(errOut, "Error response from daemon: "+tc.want) {
			t.Errorf("network %s: %q, want %q", strings.Join(tc.args, " "), errOut, tc.want)
		}
	}
	// The failed connects left nothing: other is still on netc only.
	if got := c.inspect("other", "{{len .NetworkSettings.Networks}}"); got != "1" || c.ifAddr("other", "eth1") != "" {
		t.Errorf("a failed connect left an endpoint: %s networks", got)
	}
	// Statuses through the API.
	for _, tc := range []struct {
		path, body string
		status     int
	}{
		{"/networks/netb/connect", `{"Container":"multi"}`, 403},
		{"/networks/nosuch/connect", `{"Container":"multi"}`, 404},
		{"/networks/neta/connect", `{"Container":"nosuch"}`, 404},
		{"/networks/host/connect", `{"Container":"multi"}`, 400},
		{"/networks/netc/disconnect", `{"Container":"multi"}`, 500},
	} {
		if got := apiStatus(t, c, tc.path, tc.body); got != tc.status {
			t.Errorf("POST %s %s: %d, want %d", tc.path, tc.body, got, tc.status)
		}
	}

	// Disconnect: the interface, the address and the names go.
	since = time.Now().Add(-time.Second)
	c.ok("network", "disconnect", "netb", "multi")
	if got := c.ifAddr("multi", "eth1"); got != "" {
		t.Errorf("eth1 still there after disconnect: %q", got)
	}
	if c.reaches("multi", targetIP) || c.reaches("target", "10.82.0.77") {
		t.Error("still reachable across netb after disconnect")
	}
	if _, _, code := c.run("exec", "target", "nslookup", "mult"); code == 0 {
		t.Error("alias still resolves after disconnect")
	}
	if !c.reaches("multi", "10.81.0.1") {
		t.Error("multi lost its default route")
	}
	if got := c.inspect("multi", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}"); got != "neta" {
		t.Errorf("networks after disconnect: %q", got)
	}
	if got := c.ok("network", "inspect", "-f", "{{len .Containers}}", "netb"); got != "1" {
		t.Errorf("netb containers after disconnect: %s", got)
	}
	if evs := strings.Join(c.networkEvents(since), "\n"); !strings.Contains(evs, "disconnect netb bridge "+multiID+" "+netb) {
		t.Errorf("disconnect event missing: %q", evs)
	}
	// Its address is free again.
	c.ok("network", "connect", "--ip", "10.82.0.77", "netb", "other")
	c.ok("network", "disconnect", "netb", "other")

	// Disconnecting the first network moves the default route.
	c.ok("network", "connect", "netc", "multi")
	c.ok("network", "disconnect", "neta", "multi")
	if !c.reaches("multi", "10.83.0.1") || !c.reaches("multi", "other") {
		t.Error("multi, on netc only, does not reach netc")
	}
	out := c.ok("exec", "multi", "ip", "route", "show", "default")
	if !strings.Contains(out, "via 10.83.0.1") {
		t.Errorf("default route after the first network left: %q", out)
	}
	c.ok("rm", "-f", "joiner", "multi", "other", "hostc", "nonec")
	c.ok("network", "rm", "neta", "netc", "autonet")
}

// TestDockerCLINetworkConnectStopped connects and disconnects created and
// stopped containers: the change is kept and applied at start.
func TestDockerCLINetworkConnectStopped(t *testing.T) {
	c := newDockerCLI(t)
	c.ok("network", "create", "--subnet", "10.84.0.0/24", "neta")
	c.ok("network", "create", "--subnet", "10.85.0.0/24", "netb")
	c.ok("run", "-d", "--name", "peer", "--network", "netb", "busybox", "sleep", "300")
	id := c.ok("create", "--name", "late", "--network", "neta", "busybox", "sleep", "300")
	c.ok("network", "connect", "--ip", "10.85.0.88", "--alias", "lt", "netb", "late")
	// Connecting twice while stopped is a no-op, as in dockerd.
	c.ok("network", "connect", "netb", "late")
	if got := c.inspect("late", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}}/{{$v.Aliases}} {{end}}"); got != "neta=/[] netb=/[lt]" {
		t.Errorf("created container's networks: %q", got)
	}
	if got := c.inspect("late", "{{(index .NetworkSettings.Networks \"netb\").IPAMConfig.IPv4Address}}"); got != "10.85.0.88" {
		t.Errorf("IPAMConfig: %q", got)
	}
	since := time.Now().Add(-time.Second)
	c.ok("start", "late")
	if got := c.ifAddr("late", "eth0"); !strings.HasPrefix(got, "10.84.0.") {
		t.Errorf("eth0: %q", got)
	}
	if got := c.ifAddr("late", "eth1"); got != "10.85.0.88/24" {
		t.Errorf("eth1: %q", got)
	}
	if !c.reaches("late", "peer") || !c.reaches("peer", "lt") {
		t.Error("late and peer do not reach each other on netb")
	}
	c.ok("stop", "-t", "1", "late")
	// dockerd's events: a connect per network at start, a disconnect per
	// network at stop.
	var evs []string
	for _, e := range c.networkEvents(since) {
		if f := strings.Fields(e); len(f) == 5 && f[3] == id {
			evs = append(evs, f[0]+" "+f[1])
		}
	}
	if got := strings.Join(evs, ","); got != "connect neta,connect netb,disconnect neta,disconnect netb" {
		t.Errorf("network events of late's start and stop: %q", got)
	}
	c.ok("network", "disconnect", "netb", "late")
	if errOut := c.fails(1, "network", "disconnect", "netb", "late"); !strings.Contains(errOut, "container "+id+" is not connected to the network netb") {
		t.Errorf("second disconnect: %q", errOut)
	}
	c.ok("start", "late")
	if c.ifAddr("late", "eth1") != "" || c.reaches("late", "peer") {
		t.Error("late still on netb after a disconnect while stopped")
	}
	// A container created with two networks starts on both, its mode's first.
	c.ok("run", "-d", "--name", "both", "--network", "netb", "--network", "neta", "busybox", "sleep", "300")
	if a, b := c.ifAddr("both", "eth0"), c.ifAddr("both", "eth1"); !strings.HasPrefix(a, "10.85.0.") || !strings.HasPrefix(b, "10.84.0.") {
		t.Errorf("run with two networks: eth0 %q eth1 %q", a, b)
	}
	// The berth CLI's connect and disconnect, on a default-bridge
	// container: it gains the embedded DNS with its first user-defined
	// network, in resolv.conf rewritten under it.
	berth := berthCLIBinary(t)
	c.ok("run", "-d", "--name", "plain", "busybox", "sleep", "300")
	if out, errOut, code := c.d.Run(t, berth, "network", "connect", "--alias", "pl", "netb", "plain"); code != 0 || out != "" {
		t.Fatalf("berth network connect: %d %q %q", code, out, errOut)
	}
	if got := c.ok("exec", "plain", "cat", "/etc/resolv.conf"); !strings.Contains(got, "nameserver 127.0.0.11") {
		t.Errorf("resolv.conf after connecting to a user-defined network: %q", got)
	}
	if hosts := c.ok("exec", "plain", "cat", "/etc/hosts"); !strings.Contains(hosts, c.inspect("plain", "{{.NetworkSettings.Networks.netb.IPAddress}}")) {
		t.Errorf("hosts has no line for the new address: %q", hosts)
	}
	if !c.reaches("plain", "peer") || !c.reaches("peer", "pl") {
		t.Error("plain and peer do not reach each other by name")
	}
	if _, errOut, code := c.d.Run(t, berth, "network", "connect", "netb", "plain"); code != 1 || errOut != "Error response from daemon: endpoint with name plain already exists in network netb\n" {
		t.Errorf("berth network connect twice: %d %q", code, errOut)
	}
	if out, errOut, code := c.d.Run(t, berth, "network", "disconnect", "-f", "netb", "plain"); code != 0 || out != "" {
		t.Fatalf("berth network disconnect: %d %q %q", code, out, errOut)
	}
	if c.ifAddr("plain", "eth1") != "" || c.reaches("peer", "pl") {
		t.Error("plain still on netb after berth network disconnect")
	}
	c.ok("rm", "-f", "late", "peer", "both", "plain")
	c.ok("network", "rm", "neta", "netb")
}

// TestDockerCLINetworkConnectRestart keeps a container's second network
// across a daemon restart and a kill -9: interfaces, addresses, names.
func TestDockerCLINetworkConnectRestart(t *testing.T) {
	c := newDockerCLI(t)
	c.ok("network", "create", "--subnet", "10.86.0.0/24", "neta")
	c.ok("network", "create", "--subnet", "10.87.0.0/24", "netb")
	c.ok("run", "-d", "--name", "pa", "--network", "neta", "busybox", "sleep", "300")
	c.ok("run", "-d", "--name", "pb", "--network", "netb", "busybox", "sleep", "300")
	c.ok("run", "-d", "--name", "multi", "--network", "neta", "-p", "18099:80", "busybox", "sleep", "300")
	c.ok("network", "connect", "--alias", "mb", "netb", "multi")
	bIP := c.inspect("multi", "{{.NetworkSettings.Networks.netb.IPAddress}}")
	before := c.inspect("multi", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}},{{$v.EndpointID}} {{end}}")
	check := func(when string) {
		t.Helper()
		if got := c.inspect("multi", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}},{{$v.EndpointID}} {{end}}"); got != before {
			t.Errorf("%s: networks %q, want %q", when, got, before)
		}
		if a, b := c.ifAddr("multi", "eth0"), c.ifAddr("multi", "eth1"); !strings.HasPrefix(a, "10.86.0.") || !strings.HasPrefix(b, "10.87.0.") {
			t.Errorf("%s: eth0 %q eth1 %q", when, a, b)
		}
		for _, dest := range []string{"pa", "pb"} {
			if !c.reaches("multi", dest) {
				t.Errorf("%s: multi does not reach %s", when, dest)
			}
		}
		if !c.reaches("pb", "mb") || !c.reaches("pa", "multi") {
			t.Errorf("%s: multi's names do not resolve on its networks", when)
		}
		if got := c.ok("port", "multi"); got != "80/tcp -> 0.0.0.0:18099" {
			t.Errorf("%s: port %q", when, got)
		}
	}
	check("before")
	c.d.Restart()
	check("after a restart")
	c.d.Kill9()
	c.d.Start()
	check("after kill -9")
	// Disconnect after the crash, and the address is free again.
	c.ok("network", "disconnect", "netb", "multi")
	c.ok("run", "--rm", "--network", "netb", "--ip", bIP, "busybox", "true")
	c.ok("rm", "-f", "pa", "pb", "multi")
	c.ok("network", "rm", "neta", "netb")
}

// apiStatus posts body to path on the daemon and returns the status.
func apiStatus(t *testing.T, c *dockerCLI, path, body string) int {
	t.Helper()
	resp, err := c.d.HTTPClient().Post("http://berthd/v1.50"+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var msg struct{ Message string }
	_ = json.NewDecoder(resp.Body).Decode(&msg)
	return resp.StatusCode
}

// dockerPyConnect drives connect and disconnect through docker-py's
// Network.connect/disconnect and reads the result back as docker-py does.
const dockerPyConnect = `
import docker
c = docker.from_env()
a = c.networks.create("pya", ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet="10.89.0.0/24")]))
b = c.networks.create("pyb", ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet="10.90.0.0/24")]))
peer = c.containers.run("busybox", "sleep 300", name="pypeer", network="pyb", detach=True)
ctr = c.containers.run("busybox", "sleep 300", name="pyctr", network="pya", detach=True)
b.connect(ctr, ipv4_address="10.90.0.50", aliases=["pyalias"])
ctr.reload()
nets = ctr.attrs["NetworkSettings"]["Networks"]
assert sorted(nets) == ["pya", "pyb"], nets
assert nets["pyb"]["IPAddress"] == "10.90.0.50", nets["pyb"]
assert "pyalias" in nets["pyb"]["Aliases"], nets["pyb"]
b.reload()
assert sorted(x.name for x in b.containers) == ["pyctr", "pypeer"], b.containers
code, out = peer.exec_run("ping -c1 -W2 pyalias")
assert code == 0, out
try:
    b.connect(ctr)
    raise SystemExit("second connect accepted")
except docker.errors.APIError as e:
    assert e.status_code == 403 and "already exists in network pyb" in str(e), e
b.disconnect(ctr)
ctr.reload()
assert sorted(ctr.attrs["NetworkSettings"]["Networks"]) == ["pya"], ctr.attrs["NetworkSettings"]["Networks"]
try:
    b.disconnect(ctr)
    raise SystemExit("second disconnect accepted")
except docker.errors.APIError as e:
    assert e.status_code == 500 and "is not connected to network pyb" in str(e), e
for x in (ctr, peer):
    x.remove(force=True)
a.remove()
b.remove()
print("docker-py connect ok")
`

func TestDockerPyNetworkConnect(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	if out, err := exec.Command(py, "-c", "import docker").CombinedOutput(); err != nil {
		t.Skipf("docker-py not installed: %s", out)
	}
	c := newDockerCLI(t)
	out, errOut, code := c.d.Run(t, py, "-c", dockerPyConnect)
	if code != 0 || !strings.Contains(out, "docker-py connect ok") {
		t.Fatalf("docker-py: exit %d\n%s%s", code, out, errOut)
	}
}
