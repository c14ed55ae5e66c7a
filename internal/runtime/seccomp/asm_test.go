package seccomp

import (
	"strings"
	"testing"

	"golang.org/x/net/bpf"
)

// farProgram builds "A = nr; if A == 7 goto T else goto F" where the two
// targets (T returns 1, F returns 2) follow the jump in the order given by
// trueFirst, each behind gap filler instructions. Offsets from the jump: the
// first target is at gap1+1, the second at gap1+gap2+3 (+1 unless retTarget,
// when the targets are bare returns).
func farProgram(gap1, gap2 int, trueFirst, retTarget bool) *assembler {
	a := &assembler{}
	tl, fl := a.newLabel(), a.newLabel()
	a.loadWord(offNr)
	a.jumpIf(bpf.JumpEqual, 7, tl, fl)
	block := func(gap int, l label, v uint32) {
		for range gap {
			a.and(0xffffffff)
		}
		a.ret(0xdead)
		a.bind(l)
		if !retTarget {
			a.and(0xffffffff)
		}
		a.ret(v)
	}
	if trueFirst {
		block(gap1, tl, 1)
		block(gap2, fl, 2)
	} else {
		block(gap1, fl, 2)
		block(gap2, tl, 1)
	}
	return a
}

func TestAssemblerJumps(t *testing.T) {
	tests := []struct {
		name       string
		gap1, gap2 int
		trueFirst  bool
		retTarget  bool
		extra      int // instructions added as trampolines
	}{
		{name: "near", gap1: 10, gap2: 10, trueFirst: true},
		{name: "second target at the limit", gap1: 251, gap2: 0, trueFirst: true},
		{name: "false side just out of reach", gap1: 252, gap2: 0, trueFirst: true, extra: 1},
		{name: "true side just out of reach", gap1: 252, gap2: 0, trueFirst: false, extra: 1},
		{name: "both sides out of reach", gap1: 300, gap2: 0, trueFirst: true, extra: 2},
		{name: "far returns", gap1: 400, gap2: 10, trueFirst: false, retTarget: true, extra: 2},
		{name: "very far", gap1: 3000, gap2: 500, trueFirst: true, extra: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := farProgram(tt.gap1, tt.gap2, tt.trueFirst, tt.retTarget)
			raw, err := a.assemble()
			if err != nil {
				t.Fatal(err)
			}
			if got, want := len(raw), len(a.insns)+tt.extra; got != want {
				t.Errorf("program length %d, want %d", got, want)
			}
			p := newProgram(t, raw)
			if got := p.run(t, seccompData{nr: 7}); got != 1 {
				t.Errorf("nr 7: got %#x, want 1", got)
			}
			if got := p.run(t, seccompData{nr: 8}); got != 2 {
				t.Errorf("nr 8: got %#x, want 2", got)
			}
		})
	}
}

// A trampoline to a return is the return itself, not a jump.
func TestAssemblerTrampolineCopiesReturn(t *testing.T) {
	raw, err := farProgram(400, 0, true, true).assemble()
	if err != nil {
		t.Fatal(err)
	}
	insns, _ := bpf.Disassemble(raw)
	for i, want := range []bpf.Instruction{bpf.RetConstant{Val: 1}, bpf.RetConstant{Val: 2}} {
		if got := insns[2+i]; got != want {
			t.Errorf("trampoline %d is %v, want %v", i, got, want)
		}
	}
}

func TestAssemblerErrors(t *testing.T) {
	tests := []struct {
		name  string
		build func(a *assembler)
		want  string
	}{
		{"empty", func(a *assembler) {}, "empty"},
		{"no return at the end", func(a *assembler) { a.loadWord(0) }, "return"},
		{"unbound label", func(a *assembler) {
			a.jump(a.newLabel())
			a.ret(0)
		}, "unbound"},
		{"backward jump", func(a *assembler) {
			l := a.newLabel()
			a.bind(l)
			a.loadWord(0)
			a.jump(l)
			a.ret(0)
		}, "backward"},
		{"label past the end", func(a *assembler) {
			l := a.newLabel()
			a.jumpIf(bpf.JumpEqual, 0, l, labelNext)
			a.ret(0)
			a.bind(l)
		}, "past the end"},
		{"too long", func(a *assembler) {
			for range maxInsns {
				a.and(1)
			}
			a.ret(0)
		}, "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &assembler{}
			tt.build(a)
			_, err := a.assemble()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("assemble error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
