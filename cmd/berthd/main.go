// Command berthd is berth's daemon: the Docker Engine API on a unix socket.
// The same binary is the per-container monitor ("berthd shim DIR"), the
// container init of berth's runtime, and, started as berth-init, the
// reaper of `run --init` containers.
package main

import (
	"os"
	"path/filepath"
	goruntime "runtime"

	"github.com/berth-dev/berth/internal/daemon/command"
	"github.com/berth-dev/berth/internal/initreaper"
	"github.com/berth-dev/berth/internal/runtime"
	_ "github.com/berth-dev/berth/internal/runtime/nsenter" // namespace constructor for init
	"github.com/berth-dev/berth/internal/shim"
)

func init() {
	// The main goroutine keeps the main thread. A goroutine that changes
	// its thread's namespaces and cannot change them back exits with the
	// thread locked, so that the thread dies with it; the main thread
	// cannot die: the Go runtime parks it for good, still in that
	// namespace, which then never goes away (nor its veths).
	goruntime.LockOSThread()
}

func main() {
	// The runtime's own init re-exec comes first: it also runs under the
	// name berth-init.
	if runtime.IsInit() {
		runtime.Init()
	}
	if filepath.Base(os.Args[0]) == "berth-init" {
		os.Exit(initreaper.Main(os.Args[1:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "shim" {
		os.Exit(shim.Main(os.Args[2:]))
	}
	os.Exit(command.Main(os.Args[1:]))
}
