package dns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

// newNetns makes a network namespace with lo up, bind-mounted on a file in
// the test's temporary directory, and removes it when the test ends.
func newNetns(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "netns")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer self.Close()
		errc <- func() error {
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("unshare: %w", err)
			}
			self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
			if err := unix.Mount(self, path, "", unix.MS_BIND, ""); err != nil {
				return fmt.Errorf("bind mount: %w", err)
			}
			lo, err := netlink.LinkByName("lo")
			if err != nil {
				return err
			}
			if err := netlink.LinkSetUp(lo); err != nil {
				return err
			}
			// A container's interface: glibc's getaddrinfo (AI_ADDRCONFIG)
			// asks for no address of a family the host has only on lo.
			eth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "eth1"}
			if err := netlink.LinkAdd(eth); err != nil {
				return fmt.Errorf("adding eth0: %w", err)
			}
			for _, a := range []string{"10.99.0.1/24", "fd00:99::1/64"} {
				addr, err := netlink.ParseAddr(a)
				if err != nil {
					return err
				}
				addr.Flags = unix.IFA_F_NODAD
				if err := netlink.AddrAdd(eth, addr); err != nil {
					return fmt.Errorf("adding %s: %w", a, err)
				}
			}
			if err := netlink.LinkSetUp(eth); err != nil {
				return err
			}
			peer, err := netlink.LinkByName("eth1")
			if err != nil {
				return err
			}
			return netlink.LinkSetUp(peer)
		}()
		// A thread that cannot go back stays locked and dies with this
		// goroutine.
		if unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
	}()
	err := <-errc
	// Runs after the unmount below: the namespace must be gone. (The
	// host-wide testutil.LeakCheck would also blame this test for other
	// packages' containers running at the same time.)
	t.Cleanup(func() {
		if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(mi), " "+path+" ") {
			t.Errorf("network namespace still mounted on %s", path)
		}
	})
	t.Cleanup(func() {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			t.Errorf("unmounting netns: %v", err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// inNetns runs a command in the network namespace at ns.
func inNetns(ctx context.Context, ns string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + ns}, args...)...)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func startInNetns(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestNetnsBusyboxNslookup(t *testing.T) {
	testutil.RequiresRoot(t)
	if _, err := exec.LookPath("busybox"); err != nil {
		t.Skip("no busybox")
	}
	ns := newNetns(t)
	up := startUpstream(t, "127.0.0.1") // in the host's namespace: unreachable from the container
	lookup, reverse := fakeNames()
	startInNetns(t, Config{NetnsPath: ns, Lookup: lookup, Reverse: reverse, Upstream: []string{up.addr}})

	tests := []struct {
		args []string
		want []string // lines the output must contain
		fail bool
	}{
		{[]string{"web"}, []string{"Name:\tweb", "Address: 10.99.0.2"}, false},
		{[]string{"-type=a", "db"}, []string{"Address: 10.99.0.3", "Address: 10.99.0.4"}, false},
		{[]string{"-type=aaaa", "db"}, []string{"Address: fd00:99::3"}, false},
		{[]string{"10.99.0.2"}, []string{"2.0.99.10.in-addr.arpa\tname = web.mynet"}, false},
		{[]string{"example.org"}, []string{"Address: 192.0.2.7"}, false},
		{[]string{"nope.example"}, []string{"NXDOMAIN"}, true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, "_"), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			out, err := inNetns(ctx, ns, append(append([]string{"busybox", "nslookup"}, tt.args...), "127.0.0.11")...)
			if (err != nil) != tt.fail {
				t.Errorf("err = %v, want failure %v\n%s", err, tt.fail, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestNetnsGlibc resolves through glibc's stub resolver (getent) in the
// container's namespace, with a resolv.conf of its own in a private mount
// namespace: search domains, forwarding, TCP (use-vc) and the retry over
// TCP after a truncated UDP answer.
func TestNetnsGlibc(t *testing.T) {
	testutil.RequiresRoot(t)
	ns := newNetns(t)
	up := startUpstream(t, "127.0.0.1")
	lookup, reverse := fakeNames()
	startInNetns(t, Config{NetnsPath: ns, Lookup: lookup, Reverse: reverse, Upstream: []string{up.addr}, Search: []string{"corp.example"}})

	udpConf := "nameserver 127.0.0.11\nsearch corp.example\noptions ndots:1 timeout:2 attempts:1\n"
	tcpConf := udpConf + "options use-vc\n"
	tests := []struct {
		name, conf string
		args       []string
		want       []string // sorted distinct addresses
	}{
		{"search domain", udpConf, []string{"ahostsv4", "web"}, []string{"10.99.0.2"}},
		{"alias", udpConf, []string{"ahostsv4", "DB"}, []string{"10.99.0.3", "10.99.0.4"}},
		{"v6", udpConf, []string{"ahostsv6", "db."}, []string{"fd00:99::3"}},
		{"forwarded", udpConf, []string{"ahostsv4", "example.org"}, []string{"192.0.2.7"}},
		{"tcp", tcpConf, []string{"ahostsv4", "db"}, []string{"10.99.0.3", "10.99.0.4"}},
		{"tcp forwarded", tcpConf, []string{"ahostsv4", "example.org."}, []string{"192.0.2.7"}},
		{"truncated then tcp", udpConf, []string{"ahostsv4", "many"}, nil},
		{"reverse", udpConf, []string{"hosts", "10.99.0.2"}, []string{"10.99.0.2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := filepath.Join(t.TempDir(), "resolv.conf")
			if err := os.WriteFile(conf, []byte(tt.conf), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			script := `mount --bind "$0" /etc/resolv.conf && exec getent "$@"`
			out, err := inNetns(ctx, ns, append([]string{"unshare", "--mount", "sh", "-c", script, conf}, tt.args...)...)
			if err != nil {
				t.Fatalf("getent %s: %v\n%s", strings.Join(tt.args, " "), err, out)
			}
			var addrs []string
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if f := strings.Fields(line); len(f) > 0 && !slices.Contains(addrs, f[0]) {
					addrs = append(addrs, f[0])
				}
			}
			slices.Sort(addrs)
			switch {
			case tt.name == "truncated then tcp":
				if len(addrs) != 100 {
					t.Errorf("%d addresses, want 100:\n%s", len(addrs), out)
				}
			case tt.name == "reverse":
				if !strings.Contains(out, "web.mynet") {
					t.Errorf("no name for 10.99.0.2:\n%s", out)
				}
			case !slices.Equal(addrs, tt.want):
				t.Errorf("addresses %q, want %q:\n%s", addrs, tt.want, out)
			}
		})
	}
}

// netnsOfThreads returns the distinct network namespaces of the process's
// threads.
func netnsOfThreads(t *testing.T) []string {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, task := range tasks {
		l, err := os.Readlink(filepath.Join("/proc/self/task", task.Name(), "ns/net"))
		if err != nil {
			continue // the thread has exited
		}
		if !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

// TestNetnsStartErrors checks the failures of Start, and that every thread
// of the process is back in the daemon's namespace after each of them.
func TestNetnsStartErrors(t *testing.T) {
	testutil.RequiresRoot(t)
	host, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	lookup, _ := fakeNames()
	busy := newNetns(t)
	startInNetns(t, Config{NetnsPath: busy, Lookup: lookup})
	notNetns := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notNetns, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		want error // nil: any error
	}{
		{"no lookup", Config{NetnsPath: busy}, nil},
		{"missing", Config{NetnsPath: filepath.Join(t.TempDir(), "none"), Lookup: lookup}, os.ErrNotExist},
		{"not a netns", Config{NetnsPath: notNetns, Lookup: lookup}, unix.EINVAL},
		{"in use", Config{NetnsPath: busy, Lookup: lookup}, unix.EADDRINUSE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Start(tt.cfg)
			if err == nil {
				s.Close()
				t.Fatalf("Start(%+v) succeeded", tt.cfg)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Start: %v, want %v", err, tt.want)
			}
			if got := netnsOfThreads(t); !slices.Equal(got, []string{host}) {
				t.Errorf("threads in namespaces %q, want only %q", got, host)
			}
		})
	}
}

// TestNetnsClose checks that Close releases the sockets (a new server can
// listen in the namespace), the goroutines and the namespace.
func TestNetnsClose(t *testing.T) {
	testutil.RequiresRoot(t)
	ns := newNetns(t)
	lookup, _ := fakeNames()
	before := runtime.NumGoroutine()
	for i := range 3 {
		s, err := Start(Config{NetnsPath: ns, Lookup: lookup})
		if err != nil {
			t.Fatalf("Start #%d: %v", i, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := inNetns(ctx, ns, "busybox", "nslookup", "web", "127.0.0.11")
		cancel()
		if err != nil || !strings.Contains(out, "10.99.0.2") {
			t.Errorf("nslookup: %v\n%s", err, out)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		waitGoroutines(t, before)
	}
	out, err := inNetns(context.Background(), ns, "ss", "-Hanu")
	if err == nil && strings.TrimSpace(out) != "" {
		t.Errorf("sockets left in the namespace:\n%s", out)
	}
	if err := unix.Unmount(ns, 0); err != nil {
		t.Fatalf("unmounting the namespace: %v", err)
	}
	if err := os.Remove(ns); err != nil {
		t.Fatal(err)
	}
}
