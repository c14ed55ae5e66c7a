package seccomp

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// referenceVerdict evaluates a profile directly, without BPF, following the
// semantics documented for the package. The compiled programs must agree
// with it on every input.
func referenceVerdict(t *testing.T, s *specs.LinuxSeccomp, native *arch, d seccompData) uint32 {
	t.Helper()
	var abi *arch
	switch {
	case d.arch == auditArchX86_64 && d.nr >= x32SyscallBit:
		abi = archX32
	case d.arch == auditArchX86_64:
		abi = archX86_64
	case d.arch == auditArchI386:
		abi = archX86
	}
	if abi == nil || (abi != native && !slices.Contains(s.Architectures, abi.name)) {
		return retKillProcess
	}

	mustAction := func(a specs.LinuxSeccompAction, errnoRet *uint) uint32 {
		v, err := actionValue(a, errnoRet)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	def := mustAction(s.DefaultAction, s.DefaultErrnoRet)

	var (
		condAct   uint32
		condFound bool
	)
	for _, sc := range s.Syscalls {
		act := mustAction(sc.Action, sc.ErrnoRet)
		if act == def {
			continue
		}
		named := false
		for _, name := range sc.Names {
			if nr, ok := abi.table[name]; ok && nr == d.nr {
				named = true
			}
		}
		if !named {
			continue
		}
		// runc: one rule per condition when an argument repeats.
		alts := [][]specs.LinuxSeccompArg{sc.Args}
		seen := map[uint]bool{}
		for _, a := range sc.Args {
			if seen[a.Index] {
				alts = nil
				for _, a := range sc.Args {
					alts = append(alts, []specs.LinuxSeccompArg{a})
				}
				break
			}
			seen[a.Index] = true
		}
		for _, alt := range alts {
			trivial, holds := true, true
			for _, a := range alt {
				x, v, v2 := d.args[a.Index], a.Value, a.ValueTwo
				if abi.args32 {
					x, v, v2 = uint64(uint32(x)), uint64(uint32(v)), uint64(uint32(v2))
				}
				if a.Op != specs.OpMaskedEqual || v != 0 {
					trivial = false
				}
				var ok bool
				switch a.Op {
				case specs.OpEqualTo:
					ok = x == v
				case specs.OpNotEqual:
					ok = x != v
				case specs.OpLessThan:
					ok = x < v
				case specs.OpLessEqual:
					ok = x <= v
				case specs.OpGreaterThan:
					ok = x > v
				case specs.OpGreaterEqual:
					ok = x >= v
				case specs.OpMaskedEqual:
					ok = x&v == v2&v
				}
				holds = holds && ok
			}
			if trivial {
				// An unconditional rule overrides everything; the first
				// one wins.
				return act
			}
			if holds && !condFound {
				condAct, condFound = act, true
			}
		}
	}
	if condFound {
		return condAct
	}
	return def
}

var (
	modelNames  = []string{"getpid", "getppid", "read", "lseek", "clone", "socketcall", "rt_sigaction", "uselib", "no_such_syscall"}
	modelValues = []uint64{0, 1, 2, 5, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, 0xffff_ffff, 0x1_0000_0000, 0x1_0000_0005, 0xffff_ffff_0000_0000, 0xffff_ffff_ffff_ffff}
	modelOps    = []specs.LinuxSeccompOperator{specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpMaskedEqual}
	modelActs   = []specs.LinuxSeccompAction{specs.ActAllow, specs.ActErrno, specs.ActKill, specs.ActKillProcess, specs.ActTrap, specs.ActTrace, specs.ActLog}
)

func randomAction(r *rand.Rand) (specs.LinuxSeccompAction, *uint) {
	act := modelActs[r.IntN(len(modelActs))]
	if (act == specs.ActErrno || act == specs.ActTrace) && r.IntN(2) == 0 {
		return act, ptr(uint(r.IntN(4)))
	}
	return act, nil
}

// randomProfile builds a profile of nRules rules with minArgs to minArgs+3
// conditions each.
func randomProfile(r *rand.Rand, nRules, minArgs int) *specs.LinuxSeccomp {
	s := &specs.LinuxSeccomp{}
	s.DefaultAction, s.DefaultErrnoRet = randomAction(r)
	for _, a := range []specs.Arch{specs.ArchX86, specs.ArchX32, specs.ArchAARCH64, specs.ArchX86_64} {
		if r.IntN(2) == 0 {
			s.Architectures = append(s.Architectures, a)
		}
	}
	for range nRules {
		var sc specs.LinuxSyscall
		sc.Action, sc.ErrnoRet = randomAction(r)
		for range 1 + r.IntN(3) {
			sc.Names = append(sc.Names, modelNames[r.IntN(len(modelNames))])
		}
		for range minArgs + r.IntN(4) {
			sc.Args = append(sc.Args, specs.LinuxSeccompArg{
				Index:    uint(r.IntN(3)),
				Op:       modelOps[r.IntN(len(modelOps))],
				Value:    modelValues[r.IntN(len(modelValues))],
				ValueTwo: modelValues[r.IntN(len(modelValues))],
			})
		}
		s.Syscalls = append(s.Syscalls, sc)
	}
	return s
}

func randomInput(r *rand.Rand) seccompData {
	var d seccompData
	a := []*arch{archX86_64, archX86, archX32}[r.IntN(3)]
	d.arch = a.audit
	if r.IntN(10) == 0 {
		d.arch = auditArchAArch64
	}
	if nr, ok := a.table[modelNames[r.IntN(len(modelNames))]]; ok && r.IntN(8) != 0 {
		d.nr = nr + uint32(r.IntN(3)) - 1
	} else {
		d.nr = r.Uint32() >> r.IntN(32)
	}
	for i := range 3 {
		v := modelValues[r.IntN(len(modelValues))]
		d.args[i] = v + uint64(r.IntN(3)) - 1
	}
	return d
}

// TestMatchesReference runs random profiles in bpf.VM and compares every
// verdict with referenceVerdict. Large profiles force long jumps.
func TestMatchesReference(t *testing.T) {
	tests := []struct {
		name            string
		profiles, rules int
		minArgs         int
	}{
		{"small profiles", 400, 6, 0},
		{"large profiles", 20, 400, 0},
		{"large conditional profiles", 20, 300, 1},
	}
	r := rand.New(rand.NewPCG(0x5ecc0b, 1))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range tt.profiles {
				s := randomProfile(r, tt.rules, tt.minArgs)
				native := []*arch{archX86_64, archX86}[r.IntN(2)]
				raw, err := compile(s, native)
				if err != nil {
					t.Fatalf("profile %d: %v", i, err)
				}
				p := newProgram(t, raw)
				for range 200 {
					d := randomInput(r)
					got, want := p.run(t, d), referenceVerdict(t, s, native, d)
					if got != want {
						t.Fatalf("profile %d (native %s) %s on %v: verdict %#x, reference %#x\nprofile: %s",
							i, native.name, syscallName(d), d, got, want, describe(s))
					}
				}
			}
		})
	}
}

func syscallName(d seccompData) string {
	for _, a := range []*arch{archX86_64, archX86, archX32} {
		if a.audit != d.arch || (a == archX32) != (d.nr >= x32SyscallBit) {
			continue
		}
		for name, nr := range a.table {
			if nr == d.nr {
				return string(a.name) + ":" + name
			}
		}
	}
	return "?"
}

func describe(s *specs.LinuxSeccomp) string {
	out := fmt.Sprintf("default %s %v arches %v\n", s.DefaultAction, deref(s.DefaultErrnoRet), s.Architectures)
	for _, sc := range s.Syscalls {
		out += fmt.Sprintf("  %v %s %v %+v\n", sc.Names, sc.Action, deref(sc.ErrnoRet), sc.Args)
	}
	return out
}

func deref(p *uint) any {
	if p == nil {
		return nil
	}
	return *p
}
