package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
)

// Program is a compiled filter with its load flags. The runtime compiles a
// profile once in its own process and hands the Program to the container's
// init, which only installs it: the init then neither decodes the profile
// nor compiles it on its critical path.
type Program struct {
	// Insns is the sock_filter array, 8 bytes per instruction: code
	// (uint16), jt, jf (uint8), k (uint32), little endian.
	Insns []byte `json:"insns"`
	// Flags are the SECCOMP_FILTER_FLAG_* bits.
	Flags uintptr `json:"flags,omitempty"`
}

// Prepare checks s and compiles it into a Program.
func Prepare(s *specs.LinuxSeccomp) (*Program, error) {
	if s == nil {
		return nil, errors.New("seccomp: no seccomp profile")
	}
	if s.ListenerPath != "" {
		return nil, fmt.Errorf("seccomp: listenerPath %q: %w", s.ListenerPath, ErrNotifyUnsupported)
	}
	flags, err := filterFlags(s.Flags)
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	prog, err := Compile(s)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, 8*len(prog))
	for _, in := range prog {
		b = binary.LittleEndian.AppendUint16(b, in.Op)
		b = append(b, in.Jt, in.Jf)
		b = binary.LittleEndian.AppendUint32(b, in.K)
	}
	return &Program{Insns: b, Flags: flags}, nil
}

// instructions decodes Insns.
func (p *Program) instructions() ([]bpf.RawInstruction, error) {
	if len(p.Insns)%8 != 0 {
		return nil, fmt.Errorf("seccomp: program of %d bytes is not a whole number of instructions", len(p.Insns))
	}
	prog := make([]bpf.RawInstruction, len(p.Insns)/8)
	for i := range prog {
		b := p.Insns[8*i:]
		prog[i] = bpf.RawInstruction{
			Op: binary.LittleEndian.Uint16(b), Jt: b[2], Jf: b[3], K: binary.LittleEndian.Uint32(b[4:]),
		}
	}
	return prog, nil
}

// Load installs the program for the calling thread; see the package's Load
// for the conditions (locked thread, no_new_privs or CAP_SYS_ADMIN).
func (p *Program) Load() error {
	prog, err := p.instructions()
	if err != nil {
		return err
	}
	return install(prog, p.Flags)
}
