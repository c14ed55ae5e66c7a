// Package signals parses signal names the way Docker accepts them (kill
// -s, stop signals, STOPSIGNAL, the OCI runtime's kill).
package signals

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// Parse accepts a signal number (1-64) or a name with or without "SIG",
// in any case, including the real-time signals RTMIN, RTMIN+n, RTMAX-n
// and RTMAX. Errors read as dockerd's and are errdefs.ErrInvalidArgument.
func Parse(raw string) (unix.Signal, error) {
	if n, err := strconv.Atoi(raw); err == nil {
		if n <= 0 || n > 64 {
			return 0, invalid(raw)
		}
		return unix.Signal(n), nil
	}
	name := strings.TrimPrefix(strings.ToUpper(raw), "SIG")
	if sig := unix.SignalNum("SIG" + name); sig != 0 {
		return sig, nil
	}
	// Real-time signals: RTMIN, RTMIN+1..15, RTMAX-14..1, RTMAX.
	for _, rt := range []struct {
		label, op  string
		base, sign int
	}{{"RTMIN", "+", 34, 1}, {"RTMAX", "-", 64, -1}} {
		if name == rt.label {
			return unix.Signal(rt.base), nil
		}
		if rest, ok := strings.CutPrefix(name, rt.label+rt.op); ok {
			if n, err := strconv.Atoi(rest); err == nil && n >= 1 && n <= 15 {
				return unix.Signal(rt.base + rt.sign*n), nil
			}
		}
	}
	return 0, invalid(raw)
}

func invalid(raw string) error {
	return fmt.Errorf("Invalid signal: %s: %w", raw, errdefs.ErrInvalidArgument) //nolint:staticcheck // dockerd's wording
}
