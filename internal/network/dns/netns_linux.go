package dns

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// listenInNetns binds a UDP socket and a TCP listener to addr inside the
// network namespace at path. The sockets are created on a dedicated OS
// thread that enters the namespace and goes back to its own before it is
// released; if going back fails, the thread stays locked and dies with its
// goroutine, so no other goroutine ever runs in the container's namespace.
func listenInNetns(path, addr string) (*net.UDPConn, *net.TCPListener, error) {
	type result struct {
		udp *net.UDPConn
		tcp *net.TCPListener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		var r result
		r.udp, r.tcp, r.err = listenOnThread(path, addr)
		if !errors.Is(r.err, errRestore) {
			runtime.UnlockOSThread()
		}
		ch <- r
	}()
	r := <-ch
	return r.udp, r.tcp, r.err
}

var errRestore = errors.New("cannot return to the daemon's network namespace")

// listenOnThread does listenInNetns's work on a locked OS thread.
func listenOnThread(path, addr string) (udp *net.UDPConn, tcp *net.TCPListener, err error) {
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, nil, fmt.Errorf("dns: %w", err)
	}
	defer self.Close()
	target, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("dns: opening network namespace: %w", err)
	}
	defer target.Close()

	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, nil, fmt.Errorf("dns: entering network namespace %s: %w", path, err)
	}
	defer func() {
		if rerr := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); rerr != nil {
			if udp != nil {
				udp.Close()
			}
			if tcp != nil {
				tcp.Close()
			}
			udp, tcp = nil, nil
			err = fmt.Errorf("dns: %w: %w", errRestore, rerr)
		}
	}()

	ua, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("dns: %w", err)
	}
	udp, err = net.ListenUDP("udp4", ua)
	if err != nil {
		return nil, nil, fmt.Errorf("dns: listening in %s: %w", path, err)
	}
	tcp, err = net.ListenTCP("tcp4", (*net.TCPAddr)(ua))
	if err != nil {
		udp.Close()
		return nil, nil, fmt.Errorf("dns: listening in %s: %w", path, err)
	}
	return udp, tcp, nil
}
