// Command berth is berth's command line client, compatible with the docker
// CLI: it talks the Docker Engine API to berthd or to any Docker daemon.
package main

import (
	"os"

	"github.com/berth-dev/berth/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
