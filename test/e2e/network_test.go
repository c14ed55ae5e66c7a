package e2e

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hostAddr is one of the host's own non-loopback IPv4 addresses.
func hostAddr(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.To4() == nil || ipn.IP.IsLoopback() || strings.HasPrefix(ipn.IP.String(), "172.") {
			continue
		}
		return ipn.IP.String()
	}
	t.Skip("no non-loopback IPv4 address on the host")
	return ""
}

// httpGet fetches url, retrying for a few seconds while the server starts.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := client.Get(url)
		if err != nil {
			last = err
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(b)
	}
	t.Fatalf("GET %s: %v", url, last)
	return ""
}

func TestDockerCLIBridgeNetworking(t *testing.T) {
	c := newDockerCLI(t)

	// Two containers on the default bridge reach each other by address,
	// not by name.
	c.ok("run", "-d", "--name", "web", "-p", "18081:80", "busybox", "sh", "-c", "mkdir -p /www && echo hello-bridge > /www/index.html && httpd -f -p 80 -h /www")
	ip := c.inspect("web", "{{.NetworkSettings.Networks.bridge.IPAddress}}")
	if !strings.HasPrefix(ip, "172.") {
		t.Fatalf("bridge address %q", ip)
	}
	// The pre-1.52 top-level fields the docker CLI 28 still reads.
	if got := c.inspect("web", "{{.NetworkSettings.IPAddress}}/{{.NetworkSettings.IPPrefixLen}}"); got != ip+"/16" {
		t.Errorf("NetworkSettings.IPAddress: %q, want %s/16", got, ip)
	}
	if mac := c.inspect("web", "{{.NetworkSettings.Networks.bridge.MacAddress}}"); !strings.HasPrefix(mac, "02:42:") {
		t.Errorf("MAC %q", mac)
	}
	c.ok("run", "--rm", "busybox", "ping", "-c1", "-W2", ip)
	if out, _, code := c.run("run", "--rm", "busybox", "ping", "-c1", "-W1", "web"); code == 0 {
		t.Errorf("name resolved on the default bridge: %s", out)
	}

	// The published port, from 127.0.0.1 and the host's own address.
	if got := httpGet(t, "http://127.0.0.1:18081/"); got != "hello-bridge\n" {
		t.Errorf("via 127.0.0.1: %q", got)
	}
	if got := httpGet(t, "http://"+hostAddr(t)+":18081/"); got != "hello-bridge\n" {
		t.Errorf("via the host address: %q", got)
	}
	// From a container, through the host's address (hairpin).
	if out := c.ok("run", "--rm", "busybox", "sh", "-c", "echo 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 "+hostAddr(t)+" 18081"); !strings.Contains(out, "hello-bridge") {
		t.Errorf("from a container through the host: %q", out)
	}
	// --network container:web shares web's namespace: its httpd is on
	// the joiner's localhost.
	if out := c.ok("run", "--rm", "--network", "container:web", "busybox", "sh", "-c", "echo 'GET / HTTP/1.0\r\n\r\n' | nc 127.0.0.1 80"); !strings.Contains(out, "hello-bridge") {
		t.Errorf("container:web: %q", out)
	}
	if errOut := c.fails(125, "run", "--rm", "--network", "container:nosuch", "busybox", "true"); strings.Contains(errOut, "Unable to find image") || !strings.Contains(errOut, "No such container: nosuch") {
		t.Errorf("container:nosuch: %q", errOut)
	}
	if got := c.ok("port", "web"); got != "80/tcp -> 0.0.0.0:18081" {
		t.Errorf("port: %q", got)
	}
	if got := c.ok("ps", "--filter", "name=web", "--format", "{{.Ports}}"); got != "0.0.0.0:18081->80/tcp" {
		t.Errorf("ps Ports: %q", got)
	}
	// The port is taken: Docker's error, and no container left running.
	errOut := c.fails(125, "run", "-d", "--name", "web2", "-p", "18081:80", "busybox", "sleep", "30")
	if !strings.Contains(errOut, "port is already allocated") {
		t.Errorf("duplicate port: %q", errOut)
	}
	if st := c.inspect("web2", "{{.State.Running}}"); st != "false" {
		t.Errorf("web2 running after a failed publish")
	}

	// -P: a random port that `port` reports, and it answers.
	c.ok("run", "-d", "--name", "pub", "-P", "--expose", "80", "busybox", "sh", "-c", "mkdir -p /www && echo hello-P > /www/index.html && httpd -f -p 80 -h /www")
	hp := c.ok("port", "pub", "80")
	if !strings.HasPrefix(hp, "0.0.0.0:") {
		t.Fatalf("port pub 80: %q", hp)
	}
	if got := httpGet(t, "http://127.0.0.1:"+strings.TrimPrefix(hp, "0.0.0.0:")+"/"); got != "hello-P\n" {
		t.Errorf("-P port: %q", got)
	}

	// UDP, with a static echo server (busybox has no UDP server).
	echo := filepath.Join(t.TempDir(), "udpecho")
	build := exec.Command("go", "build", "-o", echo, "./testdata/udpecho")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOTOOLCHAIN=local")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building udpecho: %v\n%s", err, out)
	}
	c.ok("run", "-d", "--name", "udp", "-p", "127.0.0.1:19099:9099/udp", "-v", echo+":/udpecho:ro", "busybox", "/udpecho")
	c.waitFor("a UDP answer through the published port", func() bool {
		conn, err := net.Dial("udp", "127.0.0.1:19099")
		if err != nil {
			return false
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(300 * time.Millisecond))
		conn.Write([]byte("ping"))
		buf := make([]byte, 64)
		n, err := conn.Read(buf)
		return err == nil && string(buf[:n]) == "echo:ping"
	})
}

func TestDockerCLIUserNetworks(t *testing.T) {
	c := newDockerCLI(t)
	c.ok("network", "create", "--subnet", "10.77.0.0/24", "front")
	c.ok("network", "create", "back")
	c.ok("network", "create", "--internal", "sealed")
	if out := c.ok("network", "ls", "--format", "{{.Name}}"); out != "back\nbridge\nfront\nhost\nnone\nsealed" {
		t.Errorf("network ls: %q", out)
	}

	// Names and aliases resolve on a user-defined network.
	c.ok("run", "-d", "--name", "db", "--network", "front", "--network-alias", "database", "--ip", "10.77.0.50", "busybox", "sleep", "300")
	if out := c.ok("run", "--rm", "--network", "front", "busybox", "ping", "-c1", "-W2", "database"); !strings.Contains(out, "10.77.0.50") {
		t.Errorf("alias: %q", out)
	}
	c.ok("run", "--rm", "--network", "front", "busybox", "ping", "-c1", "-W2", "db")

	// --ip survives a restart.
	c.ok("restart", "-t", "1", "db")
	if got := c.inspect("db", "{{.NetworkSettings.Networks.front.IPAddress}}"); got != "10.77.0.50" {
		t.Errorf("address after restart: %q", got)
	}

	// Isolation: back cannot reach front.
	if _, _, code := c.run("run", "--rm", "--network", "back", "busybox", "ping", "-c1", "-W1", "10.77.0.50"); code == 0 {
		t.Error("a container on another network reached db")
	}
	// An internal network has no way out, not even to the host.
	host := hostAddr(t)
	c.ok("run", "--rm", "--network", "back", "busybox", "ping", "-c1", "-W2", host)
	if _, _, code := c.run("run", "--rm", "--network", "sealed", "busybox", "ping", "-c1", "-W1", host); code == 0 {
		t.Error("a container on an internal network reached the host")
	}

	// A network in use cannot be removed.
	if errOut := c.fails(1, "network", "rm", "front"); !strings.Contains(errOut, "has active endpoints") {
		t.Errorf("network rm in use: %q", errOut)
	}
	c.ok("rm", "-f", "db")
	c.ok("network", "rm", "front", "back")
	if out := c.ok("network", "prune", "-f"); !strings.Contains(out, "sealed") {
		t.Errorf("network prune: %q", out)
	}
}
