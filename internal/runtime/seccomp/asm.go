package seccomp

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// maxInsns is BPF_MAXINSNS, the longest program the kernel accepts.
const maxInsns = 4096

// maxCondJump is the furthest a conditional jump reaches (jt/jf are uint8).
const maxCondJump = 255

// label names a position in the program. Labels are bound to the instruction
// emitted right after the bind call.
type label int32

// labelNext designates the instruction that follows a jump.
const labelNext label = -1

type asmInsn struct {
	// fixed is the instruction when it is not a jump.
	fixed bpf.Instruction

	jump   bool
	always bool         // unconditional jump to jt
	cond   bpf.JumpTest // one of JumpEqual, JumpGreaterThan, JumpGreaterOrEqual
	k      uint32
	jt, jf label
}

// assembler builds a classic BPF program whose jumps name labels instead of
// offsets, and resolves them, inserting trampolines for conditional jumps
// that do not reach their target. All jumps must go forward.
type assembler struct {
	insns  []asmInsn
	labels []int // instruction index of each label, -1 while unbound
}

func (a *assembler) newLabel() label {
	a.labels = append(a.labels, -1)
	return label(len(a.labels) - 1)
}

// bind attaches l to the next instruction to be emitted.
func (a *assembler) bind(l label) {
	a.labels[l] = len(a.insns)
}

func (a *assembler) emit(ins bpf.Instruction) {
	a.insns = append(a.insns, asmInsn{fixed: ins})
}

// loadWord loads the 32-bit word at offset off of seccomp_data into A.
func (a *assembler) loadWord(off uint32) {
	a.emit(bpf.LoadAbsolute{Off: off, Size: 4})
}

func (a *assembler) and(mask uint32) {
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: mask})
}

func (a *assembler) ret(v uint32) {
	a.emit(bpf.RetConstant{Val: v})
}

// jumpIf emits "if A <cond> k goto jt else goto jf". Only the conditions the
// kernel encodes natively are accepted, so the true/false targets are never
// swapped behind the caller's back.
func (a *assembler) jumpIf(cond bpf.JumpTest, k uint32, jt, jf label) {
	switch cond {
	case bpf.JumpEqual, bpf.JumpGreaterThan, bpf.JumpGreaterOrEqual:
	default:
		panic(fmt.Sprintf("seccomp: unsupported jump condition %v", cond))
	}
	a.insns = append(a.insns, asmInsn{jump: true, cond: cond, k: k, jt: jt, jf: jf})
}

// jump emits an unconditional jump.
func (a *assembler) jump(target label) {
	a.insns = append(a.insns, asmInsn{jump: true, always: true, jt: target})
}

// target returns the instruction index a jump at index i reaches through l.
func (a *assembler) target(i int, l label) (int, error) {
	t := i + 1
	if l != labelNext {
		if int(l) < 0 || int(l) >= len(a.labels) {
			return 0, fmt.Errorf("instruction %d: invalid label %d", i, l)
		}
		t = a.labels[l]
	}
	switch {
	case t < 0:
		return 0, fmt.Errorf("instruction %d: jump to unbound label %d", i, l)
	case t <= i:
		return 0, fmt.Errorf("instruction %d: backward jump to %d", i, t)
	case t >= len(a.insns):
		return 0, fmt.Errorf("instruction %d: jump past the end of the program", i)
	}
	return t, nil
}

// assemble resolves the labels and returns the program.
func (a *assembler) assemble() ([]bpf.RawInstruction, error) {
	n := len(a.insns)
	if n == 0 {
		return nil, fmt.Errorf("empty program")
	}
	switch a.insns[n-1].fixed.(type) {
	case bpf.RetConstant, bpf.RetA:
	default:
		return nil, fmt.Errorf("program does not end with a return")
	}

	tt := make([]int, n)
	tf := make([]int, n)
	for i, ins := range a.insns {
		if !ins.jump {
			continue
		}
		var err error
		if tt[i], err = a.target(i, ins.jt); err != nil {
			return nil, err
		}
		if ins.always {
			continue
		}
		if tf[i], err = a.target(i, ins.jf); err != nil {
			return nil, err
		}
	}

	// Lay out the program: pos[i] is where instruction i lands once the
	// trampolines of the jumps before it are inserted. A conditional jump is
	// marked far on a side whose target is out of reach; marks only ever
	// lengthen the program, so the loop ends.
	farT := make([]bool, n)
	farF := make([]bool, n)
	pos := make([]int, n+1)
	for {
		for i := range a.insns {
			size := 1
			if farT[i] {
				size++
			}
			if farF[i] {
				size++
			}
			pos[i+1] = pos[i] + size
		}
		changed := false
		for i, ins := range a.insns {
			if !ins.jump || ins.always {
				continue
			}
			base := pos[i] + 1
			if !farT[i] && pos[tt[i]]-base > maxCondJump {
				farT[i], changed = true, true
			}
			if !farF[i] && pos[tf[i]]-base > maxCondJump {
				farF[i], changed = true, true
			}
		}
		if !changed {
			break
		}
	}
	if pos[n] > maxInsns {
		return nil, fmt.Errorf("program has %d instructions, more than the kernel limit of %d", pos[n], maxInsns)
	}

	out := make([]bpf.Instruction, 0, pos[n])
	trampoline := func(t int) bpf.Instruction {
		if r, ok := a.insns[t].fixed.(bpf.RetConstant); ok {
			return r
		}
		return bpf.Jump{Skip: uint32(pos[t] - (len(out) + 1))}
	}
	for i, ins := range a.insns {
		switch {
		case !ins.jump:
			out = append(out, ins.fixed)
		case ins.always:
			out = append(out, bpf.Jump{Skip: uint32(pos[tt[i]] - (pos[i] + 1))})
		default:
			base := pos[i] + 1
			j := bpf.JumpIf{Cond: ins.cond, Val: ins.k}
			next := 0
			if farT[i] {
				next++
			} else {
				j.SkipTrue = uint8(pos[tt[i]] - base)
			}
			if farF[i] {
				j.SkipFalse = uint8(next)
			} else {
				j.SkipFalse = uint8(pos[tf[i]] - base)
			}
			out = append(out, j)
			if farT[i] {
				out = append(out, trampoline(tt[i]))
			}
			if farF[i] {
				out = append(out, trampoline(tf[i]))
			}
		}
	}
	raw, err := bpf.Assemble(out)
	if err != nil {
		return nil, fmt.Errorf("assembling program: %w", err)
	}
	return raw, nil
}
