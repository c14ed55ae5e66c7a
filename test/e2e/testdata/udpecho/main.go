// Command udpecho answers every UDP datagram on :9099 with "echo:" and the
// datagram, for the published-port tests (busybox has no UDP server).
package main

import (
	"log"
	"net"
)

func main() {
	c, err := net.ListenPacket("udp", ":9099")
	if err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 2048)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			log.Fatal(err)
		}
		c.WriteTo(append([]byte("echo:"), buf[:n]...), from)
	}
}
