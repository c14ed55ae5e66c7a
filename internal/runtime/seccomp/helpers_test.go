package seccomp

import (
	"encoding/binary"
	"fmt"
	"testing"

	"golang.org/x/net/bpf"
)

// seccompData is struct seccomp_data as a filter sees it.
type seccompData struct {
	nr   uint32
	arch uint32
	ip   uint64
	args [6]uint64
}

// bytes encodes d for bpf.VM. The kernel reads seccomp_data with host-order
// 32-bit loads, and on the little-endian x86 ABIs the low word of a 64-bit
// field comes first. bpf.VM, written for packets, loads words in network
// order; storing each word big-endian at its little-endian position makes
// the VM's loads see what the kernel's loads see.
func (d seccompData) bytes() []byte {
	b := make([]byte, 64)
	put := func(off int, v uint32) { binary.BigEndian.PutUint32(b[off:], v) }
	put(0, d.nr)
	put(4, d.arch)
	put(8, uint32(d.ip))
	put(12, uint32(d.ip>>32))
	for i, a := range d.args {
		put(16+8*i, uint32(a))
		put(20+8*i, uint32(a>>32))
	}
	return b
}

func (d seccompData) String() string {
	return fmt.Sprintf("{nr:%#x arch:%#x args:%#x}", d.nr, d.arch, d.args)
}

// sys builds seccomp_data for a syscall name on an architecture.
func sys(t testing.TB, a *arch, name string, args ...uint64) seccompData {
	t.Helper()
	nr, ok := a.table[name]
	if !ok {
		t.Fatalf("syscall %s is not in the %s table", name, a.name)
	}
	d := seccompData{nr: nr, arch: a.audit, ip: 0x7fff_1234_5678}
	copy(d.args[:], args)
	return d
}

// program is a compiled filter ready to run in bpf.VM.
type program struct {
	raw []bpf.RawInstruction
	vm  *bpf.VM
}

func newProgram(t testing.TB, raw []bpf.RawInstruction) *program {
	t.Helper()
	checkKernelRules(t, raw)
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatalf("program does not disassemble completely")
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatalf("bpf.NewVM: %v", err)
	}
	return &program{raw: raw, vm: vm}
}

func (p *program) run(t testing.TB, d seccompData) uint32 {
	t.Helper()
	n, err := p.vm.Run(d.bytes())
	if err != nil {
		t.Fatalf("running filter on %v: %v", d, err)
	}
	return uint32(n)
}

// Classic BPF opcode fields (linux/bpf_common.h).
const (
	bpfLD   = 0x00
	bpfALU  = 0x04
	bpfJMP  = 0x05
	bpfRET  = 0x06
	bpfW    = 0x00
	bpfABS  = 0x20
	bpfK    = 0x00
	bpfAND  = 0x50
	bpfJA   = 0x00
	bpfJEQ  = 0x10
	bpfJGT  = 0x20
	bpfJGE  = 0x30
	bpfJSET = 0x40
)

// checkKernelRules fails the test when prog uses an instruction that the
// kernel's seccomp_check_filter rejects, or a jump that leaves the program.
func checkKernelRules(t testing.TB, prog []bpf.RawInstruction) {
	t.Helper()
	if len(prog) == 0 || len(prog) > maxInsns {
		t.Fatalf("program length %d outside 1..%d", len(prog), maxInsns)
	}
	for i, ins := range prog {
		left := len(prog) - i - 1
		switch ins.Op {
		case bpfLD | bpfW | bpfABS:
			if ins.K >= 64 || ins.K%4 != 0 {
				t.Fatalf("insn %d: load at offset %d outside seccomp_data or unaligned", i, ins.K)
			}
		case bpfALU | bpfAND | bpfK, bpfRET | bpfK:
		case bpfJMP | bpfJA:
			if int(ins.K) >= left {
				t.Fatalf("insn %d: ja %d leaves the program", i, ins.K)
			}
		case bpfJMP | bpfJEQ | bpfK, bpfJMP | bpfJGT | bpfK, bpfJMP | bpfJGE | bpfK, bpfJMP | bpfJSET | bpfK:
			if int(ins.Jt) >= left || int(ins.Jf) >= left {
				t.Fatalf("insn %d: jump (%d, %d) leaves the program", i, ins.Jt, ins.Jf)
			}
		default:
			t.Fatalf("insn %d: opcode %#x not accepted by seccomp", i, ins.Op)
		}
	}
	if last := prog[len(prog)-1]; last.Op != bpfRET|bpfK {
		t.Fatalf("program ends with opcode %#x, not a return", last.Op)
	}
}

func ptr(v uint) *uint { return &v }
