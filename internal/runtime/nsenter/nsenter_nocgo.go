//go:build !linux || !cgo

package nsenter

// Enabled reports that the constructor is linked into this binary. Without
// cgo, creating containers that need setns (exec, joining namespaces by path,
// PID namespaces) is impossible; the runtime reports a clear error instead.
const Enabled = false
