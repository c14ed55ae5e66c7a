package seccomp

import (
	"fmt"
	"runtime"

	"github.com/opencontainers/runtime-spec/specs-go"
)

//go:generate go run mksyscalls.go

// AUDIT_ARCH_* values found in seccomp_data.arch (linux/audit.h).
const (
	auditArchX86_64 uint32 = 0xc000003e
	auditArchI386   uint32 = 0x40000003
)

// x32SyscallBit marks x32 syscall numbers, which share AUDIT_ARCH_X86_64
// with the 64-bit ABI.
const x32SyscallBit uint32 = 0x40000000

// arch describes one seccomp architecture (ABI) the compiler supports.
type arch struct {
	name  specs.Arch
	audit uint32
	// table maps syscall names to the numbers seen in seccomp_data.nr.
	table map[string]uint32
	// args32 is set for ABIs whose arguments libseccomp compares on their
	// low 32 bits only.
	args32 bool
}

var (
	archX86_64 = &arch{name: specs.ArchX86_64, audit: auditArchX86_64, table: syscallsX86_64}
	archX86    = &arch{name: specs.ArchX86, audit: auditArchI386, table: syscallsI386, args32: true}
	archX32    = &arch{name: specs.ArchX32, audit: auditArchX86_64, table: syscallsX32, args32: true}
)

// supportedArches are the architectures with a syscall table, by OCI name.
var supportedArches = map[specs.Arch]*arch{
	specs.ArchX86_64: archX86_64,
	specs.ArchX86:    archX86,
	specs.ArchX32:    archX32,
}

// knownArches are the other architecture names of the runtime-spec. They are
// accepted in a profile and ignored: syscalls of those ABIs get the
// bad-architecture action.
var knownArches = map[specs.Arch]bool{
	specs.ArchARM:         true,
	specs.ArchAARCH64:     true,
	specs.ArchMIPS:        true,
	specs.ArchMIPS64:      true,
	specs.ArchMIPS64N32:   true,
	specs.ArchMIPSEL:      true,
	specs.ArchMIPSEL64:    true,
	specs.ArchMIPSEL64N32: true,
	specs.ArchPPC:         true,
	specs.ArchPPC64:       true,
	specs.ArchPPC64LE:     true,
	specs.ArchS390:        true,
	specs.ArchS390X:       true,
	specs.ArchPARISC:      true,
	specs.ArchPARISC64:    true,
	specs.ArchRISCV64:     true,
	specs.ArchLOONGARCH64: true,
	specs.ArchM68K:        true,
	specs.ArchSH:          true,
	specs.ArchSHEB:        true,
}

// nativeArch returns the architecture of the running binary.
func nativeArch() (*arch, error) {
	switch runtime.GOARCH {
	case "amd64":
		return archX86_64, nil
	case "386":
		return archX86, nil
	}
	return nil, fmt.Errorf("seccomp: native architecture %s is not supported", runtime.GOARCH)
}

// archSet is the set of ABIs a filter covers.
type archSet struct {
	x86_64, x86, x32 bool
}

// resolveArches returns the native architecture plus the supported entries
// of names. Names of the runtime-spec without a syscall table are ignored;
// names that are not architectures at all are an error.
func resolveArches(native *arch, names []specs.Arch) (archSet, error) {
	var set archSet
	set.add(native)
	for _, name := range names {
		a, ok := supportedArches[name]
		if !ok {
			if knownArches[name] {
				continue
			}
			return archSet{}, fmt.Errorf("unknown architecture %q", name)
		}
		set.add(a)
	}
	return set, nil
}

func (s *archSet) add(a *arch) {
	switch a {
	case archX86_64:
		s.x86_64 = true
	case archX86:
		s.x86 = true
	case archX32:
		s.x32 = true
	}
}
