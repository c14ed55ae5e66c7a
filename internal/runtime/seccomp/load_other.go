//go:build !linux

package seccomp

import (
	"errors"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// Load is only available on Linux.
func Load(*specs.LinuxSeccomp) error {
	return errors.New("seccomp: filters can only be installed on Linux")
}
