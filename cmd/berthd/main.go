// Command berthd is berth's daemon: the Docker Engine API on a unix socket.
package main

import (
	"os"

	"github.com/berth-dev/berth/internal/daemon/command"
)

func main() {
	os.Exit(command.Main(os.Args[1:]))
}
