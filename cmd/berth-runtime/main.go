// Command berth-runtime is berth's OCI runtime with the OCI runtime command
// line (create, start, state, kill, delete, run, exec, ...).
package main

import (
	"os"

	"github.com/berth-dev/berth/internal/ocicli"
	"github.com/berth-dev/berth/internal/runtime"
	_ "github.com/berth-dev/berth/internal/runtime/nsenter" // namespace constructor for init
)

func main() {
	if runtime.IsInit() {
		runtime.Init()
	}
	os.Exit(ocicli.Main(os.Args[1:]))
}
