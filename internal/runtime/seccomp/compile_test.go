package seccomp

import (
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

const (
	auditArchAArch64 uint32 = 0xc00000b7
	errnoEPERM              = 1
)

// check is one syscall and the verdict the filter must return for it.
type check struct {
	name string
	data seccompData
	want uint32
}

func compileFor(t *testing.T, s *specs.LinuxSeccomp, native *arch) *program {
	t.Helper()
	raw, err := compile(s, native)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return newProgram(t, raw)
}

func runChecks(t *testing.T, p *program, checks []check) {
	t.Helper()
	for _, c := range checks {
		if got := p.run(t, c.data); got != c.want {
			t.Errorf("%s %v: verdict %#x, want %#x", c.name, c.data, got, c.want)
		}
	}
}

func syscallRule(names []string, act specs.LinuxSeccompAction, errnoRet *uint, args ...specs.LinuxSeccompArg) specs.LinuxSyscall {
	return specs.LinuxSyscall{Names: names, Action: act, ErrnoRet: errnoRet, Args: args}
}

func arg(index uint, op specs.LinuxSeccompOperator, value uint64, valueTwo ...uint64) specs.LinuxSeccompArg {
	a := specs.LinuxSeccompArg{Index: index, Op: op, Value: value}
	if len(valueTwo) > 0 {
		a.ValueTwo = valueTwo[0]
	}
	return a
}

func TestDefaultAction(t *testing.T) {
	x := archX86_64
	getpid := sys(t, x, "getpid")
	tests := []struct {
		name     string
		act      specs.LinuxSeccompAction
		errnoRet *uint
		want     uint32
	}{
		{"allow", specs.ActAllow, nil, retAllow},
		{"errno without errnoRet is EPERM", specs.ActErrno, nil, retErrno | errnoEPERM},
		{"errno with errnoRet", specs.ActErrno, ptr(38), retErrno | 38},
		{"errno with errnoRet 0", specs.ActErrno, ptr(0), retErrno},
		{"kill", specs.ActKill, nil, retKillThread},
		{"kill thread", specs.ActKillThread, nil, retKillThread},
		{"kill process", specs.ActKillProcess, nil, retKillProcess},
		{"trap", specs.ActTrap, nil, retTrap},
		{"trace without errnoRet", specs.ActTrace, nil, retTrace | errnoEPERM},
		{"trace with errnoRet", specs.ActTrace, ptr(7), retTrace | 7},
		{"log", specs.ActLog, nil, retLog},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := compileFor(t, &specs.LinuxSeccomp{DefaultAction: tt.act, DefaultErrnoRet: tt.errnoRet}, x)
			runChecks(t, p, []check{
				{"getpid", getpid, tt.want},
				{"read", sys(t, x, "read", 3, 0xdead, 10), tt.want},
				{"highest x86_64 number", seccompData{nr: x32SyscallBit - 1, arch: auditArchX86_64}, tt.want},
				{"i386 without SCMP_ARCH_X86", sys(t, archX86, "getpid"), retKillProcess},
				{"x32 without SCMP_ARCH_X32", sys(t, archX32, "getpid"), retKillProcess},
				{"aarch64", seccompData{nr: 172, arch: auditArchAArch64}, retKillProcess},
			})
		})
	}
}

func TestRuleActions(t *testing.T) {
	x := archX86_64
	tests := []struct {
		name     string
		act      specs.LinuxSeccompAction
		errnoRet *uint
		want     uint32
	}{
		{"kill", specs.ActKill, nil, retKillThread},
		{"kill thread", specs.ActKillThread, nil, retKillThread},
		{"kill process", specs.ActKillProcess, nil, retKillProcess},
		{"trap", specs.ActTrap, nil, retTrap},
		{"errno without errnoRet is EPERM", specs.ActErrno, nil, retErrno | errnoEPERM},
		{"errno with errnoRet", specs.ActErrno, ptr(13), retErrno | 13},
		{"errno with the largest errnoRet", specs.ActErrno, ptr(0xffff), retErrno | 0xffff},
		{"trace without errnoRet", specs.ActTrace, nil, retTrace | errnoEPERM},
		{"trace with errnoRet", specs.ActTrace, ptr(42), retTrace | 42},
		{"log", specs.ActLog, nil, retLog},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := compileFor(t, &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Syscalls:      []specs.LinuxSyscall{syscallRule([]string{"getpid", "getppid"}, tt.act, tt.errnoRet)},
			}, x)
			runChecks(t, p, []check{
				{"getpid", sys(t, x, "getpid"), tt.want},
				{"getppid", sys(t, x, "getppid"), tt.want},
				{"gettid", sys(t, x, "gettid"), retAllow},
			})
		})
	}

	t.Run("allow with errno default", func(t *testing.T) {
		p := compileFor(t, &specs.LinuxSeccomp{
			DefaultAction: specs.ActErrno,
			Syscalls:      []specs.LinuxSyscall{syscallRule([]string{"getpid"}, specs.ActAllow, nil)},
		}, x)
		runChecks(t, p, []check{
			{"getpid", sys(t, x, "getpid"), retAllow},
			{"gettid", sys(t, x, "gettid"), retErrno | errnoEPERM},
		})
	})
}

func TestOperators(t *testing.T) {
	const match = retErrno | 5
	type input struct {
		arg  uint64
		want bool
	}
	tests := []struct {
		name   string
		arg    specs.LinuxSeccompArg
		arch   *arch
		inputs []input
	}{
		{"EQ 64-bit", arg(0, specs.OpEqualTo, 0x1_0000_0000), archX86_64, []input{
			{0x1_0000_0000, true}, {0, false}, {0x1_0000_0001, false}, {0x2_0000_0000, false}, {0xffff_ffff, false},
		}},
		{"EQ small", arg(0, specs.OpEqualTo, 7), archX86_64, []input{
			{7, true}, {6, false}, {0x1_0000_0007, false},
		}},
		{"NE 64-bit", arg(0, specs.OpNotEqual, 0x1_0000_0000), archX86_64, []input{
			{0x1_0000_0000, false}, {0, true}, {0x1_0000_0001, true}, {0x2_0000_0000, true},
		}},
		{"GT 64-bit", arg(0, specs.OpGreaterThan, 0x1_0000_0000), archX86_64, []input{
			{0xffff_ffff, false}, {0x1_0000_0000, false}, {0x1_0000_0001, true}, {0x2_0000_0000, true}, {0, false},
		}},
		{"GT small", arg(0, specs.OpGreaterThan, 5), archX86_64, []input{
			{5, false}, {6, true}, {0x1_0000_0000, true}, {0, false},
		}},
		{"GE 64-bit", arg(0, specs.OpGreaterEqual, 0x1_0000_0000), archX86_64, []input{
			{0xffff_ffff, false}, {0x1_0000_0000, true}, {0x1_0000_0001, true}, {0x3_0000_0000, true},
		}},
		{"GE small", arg(0, specs.OpGreaterEqual, 5), archX86_64, []input{
			{4, false}, {5, true}, {0x1_0000_0000, true},
		}},
		{"LT 64-bit", arg(0, specs.OpLessThan, 0x1_0000_0000), archX86_64, []input{
			{0, true}, {0xffff_ffff, true}, {0x1_0000_0000, false}, {0x1_0000_0001, false}, {0x2_0000_0000, false},
		}},
		{"LT small", arg(0, specs.OpLessThan, 5), archX86_64, []input{
			{4, true}, {5, false}, {0x1_0000_0004, false}, {0, true},
		}},
		{"LE 64-bit", arg(0, specs.OpLessEqual, 0x1_0000_0000), archX86_64, []input{
			{0xffff_ffff, true}, {0x1_0000_0000, true}, {0x1_0000_0001, false}, {0x2_0000_0000, false},
		}},
		{"LE small", arg(0, specs.OpLessEqual, 5), archX86_64, []input{
			{5, true}, {6, false}, {0x1_0000_0005, false},
		}},
		{"LT maximum", arg(0, specs.OpLessThan, 0xffff_ffff_ffff_ffff), archX86_64, []input{
			{0xffff_ffff_ffff_fffe, true}, {0xffff_ffff_ffff_ffff, false},
		}},
		{"MASKED_EQ low mask", arg(0, specs.OpMaskedEqual, 0xff00, 0x1200), archX86_64, []input{
			{0x12ab, true}, {0x1_0000_12ab, true}, {0x13ab, false}, {0, false},
		}},
		{"MASKED_EQ high mask", arg(0, specs.OpMaskedEqual, 0xffff_0000_0000_0000, 0xabcd_0000_0000_0000), archX86_64, []input{
			{0xabcd_0000_1234_5678, true}, {0xabce_0000_0000_0000, false}, {0x1234_5678, false},
		}},
		{"MASKED_EQ both halves", arg(0, specs.OpMaskedEqual, 0x1_0000_0001, 0x1_0000_0000), archX86_64, []input{
			{0x1_0000_0000, true}, {0x1_0000_0002, true}, {0x1_0000_0001, false}, {0, false}, {0xfe_0000_0000, false}, {0xff_0000_0000, true},
		}},
		{"MASKED_EQ operand outside the mask is masked", arg(0, specs.OpMaskedEqual, 0xf, 0x1f), archX86_64, []input{
			{0xf, true}, {0x1f, true}, {0x1e, false},
		}},
		{"MASKED_EQ zero mask always holds", arg(0, specs.OpMaskedEqual, 0, 5), archX86_64, []input{
			{0, true}, {5, true}, {0xffff_ffff_ffff_ffff, true},
		}},
		{"EQ on another argument", arg(5, specs.OpEqualTo, 0x8000_0000_0000_0001), archX86_64, []input{
			{0x8000_0000_0000_0001, true}, {1, false},
		}},
		{"i386 compares the low half only", arg(0, specs.OpEqualTo, 0x1_0000_0005), archX86, []input{
			{5, true}, {0x1_0000_0005, true}, {6, false},
		}},
		{"i386 GT ignores the high half of the operand", arg(0, specs.OpGreaterThan, 0x1_0000_0000), archX86, []input{
			{0, false}, {1, true},
		}},
		{"i386 MASKED_EQ with a high-only mask always holds", arg(0, specs.OpMaskedEqual, 0xf_0000_0000, 0x1_0000_0000), archX86, []input{
			{0, true}, {7, true},
		}},
		{"x32 compares the low half only", arg(1, specs.OpLessThan, 0x1_0000_0010), archX32, []input{
			{0xf, true}, {0x10, false}, {0x1_0000_000f, true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := compileFor(t, &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Architectures: []specs.Arch{specs.ArchX86, specs.ArchX32},
				Syscalls: []specs.LinuxSyscall{
					syscallRule([]string{"getpid"}, specs.ActErrno, ptr(5), tt.arg),
				},
			}, archX86_64)
			for _, in := range tt.inputs {
				var args [6]uint64
				args[tt.arg.Index] = in.arg
				d := sys(t, tt.arch, "getpid", args[:]...)
				want := retAllow
				if in.want {
					want = match
				}
				if got := p.run(t, d); got != want {
					t.Errorf("arg%d=%#x: verdict %#x, want %#x", tt.arg.Index, in.arg, got, want)
				}
			}
			// Other syscalls are not affected.
			if got := p.run(t, sys(t, tt.arch, "getppid")); got != retAllow {
				t.Errorf("getppid: verdict %#x, want allow", got)
			}
		})
	}
}

func TestArgumentCombinations(t *testing.T) {
	x := archX86_64
	const errno = retErrno | 9
	tests := []struct {
		name   string
		args   []specs.LinuxSeccompArg
		checks map[[3]uint64]bool // args 0-2 -> rule matches
	}{
		{
			name: "different arguments are ANDed",
			args: []specs.LinuxSeccompArg{arg(0, specs.OpEqualTo, 1), arg(1, specs.OpEqualTo, 2), arg(2, specs.OpGreaterThan, 0x1_0000_0000)},
			checks: map[[3]uint64]bool{
				{1, 2, 0x1_0000_0001}: true,
				{1, 2, 0x1_0000_0000}: false,
				{1, 3, 0x2_0000_0000}: false,
				{0, 2, 0x2_0000_0000}: false,
			},
		},
		{
			name: "conditions on one argument are ORed",
			args: []specs.LinuxSeccompArg{arg(0, specs.OpEqualTo, 1), arg(0, specs.OpEqualTo, 2)},
			checks: map[[3]uint64]bool{
				{1, 0, 0}: true,
				{2, 0, 0}: true,
				{3, 0, 0}: false,
			},
		},
		{
			name: "a repeated argument splits every condition of the rule",
			args: []specs.LinuxSeccompArg{arg(0, specs.OpGreaterEqual, 10), arg(0, specs.OpLessEqual, 20), arg(1, specs.OpEqualTo, 9)},
			checks: map[[3]uint64]bool{
				{15, 0, 0}: true, // both range ends hold
				{5, 0, 0}:  true, // only LE 20 holds
				{25, 0, 0}: true, // only GE 10 holds
				{25, 9, 0}: true,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := compileFor(t, &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Syscalls:      []specs.LinuxSyscall{syscallRule([]string{"lseek"}, specs.ActErrno, ptr(9), tt.args...)},
			}, x)
			for in, match := range tt.checks {
				want := retAllow
				if match {
					want = errno
				}
				if got := p.run(t, sys(t, x, "lseek", in[:]...)); got != want {
					t.Errorf("lseek%#x: verdict %#x, want %#x", in, got, want)
				}
			}
		})
	}
}

func TestRulePriority(t *testing.T) {
	x := archX86_64
	cond := arg(0, specs.OpEqualTo, 1)
	tests := []struct {
		name   string
		def    specs.LinuxSeccompAction
		rules  []specs.LinuxSyscall
		checks []check
	}{
		{
			name: "unconditional rule after a conditional one wins",
			def:  specs.ActAllow,
			rules: []specs.LinuxSyscall{
				syscallRule([]string{"getpid"}, specs.ActErrno, ptr(5), cond),
				syscallRule([]string{"getpid"}, specs.ActErrno, ptr(6)),
			},
			checks: []check{
				{"getpid(1)", sys(t, x, "getpid", 1), retErrno | 6},
				{"getpid(0)", sys(t, x, "getpid", 0), retErrno | 6},
			},
		},
		{
			name: "unconditional rule before a conditional one wins",
			def:  specs.ActAllow,
			rules: []specs.LinuxSyscall{
				syscallRule([]string{"getpid"}, specs.ActErrno, ptr(6)),
				syscallRule([]string{"getpid"}, specs.ActErrno, ptr(5), cond),
			},
			checks: []check{
				{"getpid(1)", sys(t, x, "getpid", 1), retErrno | 6},
			},
		},
		{
			name: "first unconditional rule wins",
			def:  specs.ActAllow,
			rules: []specs.LinuxSyscall{
				syscallRule([]string{"getpid"}, specs.ActTrap, nil),
				syscallRule([]string{"getpid", "getppid"}, specs.ActLog, nil),
			},
			checks: []check{
				{"getpid", sys(t, x, "getpid"), retTrap},
				{"getppid", sys(t, x, "getppid"), retLog},
			},
		},
		{
			name: "conditional rules apply in profile order",
			def:  specs.ActAllow,
			rules: []specs.LinuxSyscall{
				syscallRule([]string{"getpid"}, specs.ActErrno, ptr(5), arg(0, specs.OpEqualTo, 1)),
				syscallRule([]string{"getpid"}, specs.ActErrno, ptr(6), arg(0, specs.OpLessThan, 10)),
			},
			checks: []check{
				{"getpid(1)", sys(t, x, "getpid", 1), retErrno | 5},
				{"getpid(2)", sys(t, x, "getpid", 2), retErrno | 6},
				{"getpid(10)", sys(t, x, "getpid", 10), retAllow},
			},
		},
		{
			name: "a rule whose conditions always hold is unconditional",
			def:  specs.ActAllow,
			rules: []specs.LinuxSyscall{
				syscallRule([]string{"getpid"}, specs.ActErrno, ptr(5), cond),
				syscallRule([]string{"getpid"}, specs.ActErrno, ptr(6), arg(1, specs.OpMaskedEqual, 0, 0)),
			},
			checks: []check{
				{"getpid(1)", sys(t, x, "getpid", 1), retErrno | 6},
			},
		},
		{
			name: "rules with the default action are dropped",
			def:  specs.ActErrno,
			rules: []specs.LinuxSyscall{
				syscallRule([]string{"getpid"}, specs.ActErrno, nil, cond),
				syscallRule([]string{"getpid"}, specs.ActErrno, ptr(errnoEPERM), arg(0, specs.OpEqualTo, 2)),
				syscallRule([]string{"getpid"}, specs.ActAllow, nil, arg(0, specs.OpLessThan, 100)),
			},
			checks: []check{
				{"getpid(1)", sys(t, x, "getpid", 1), retAllow},
				{"getpid(2)", sys(t, x, "getpid", 2), retAllow},
				{"getpid(100)", sys(t, x, "getpid", 100), retErrno | errnoEPERM},
			},
		},
		{
			name: "an errno rule with another errno than the default is kept",
			def:  specs.ActErrno,
			rules: []specs.LinuxSyscall{
				syscallRule([]string{"clone3"}, specs.ActErrno, ptr(38)),
			},
			checks: []check{
				{"clone3", sys(t, x, "clone3"), retErrno | 38},
				{"clone", sys(t, x, "clone"), retErrno | errnoEPERM},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := compileFor(t, &specs.LinuxSeccomp{DefaultAction: tt.def, Syscalls: tt.rules}, x)
			runChecks(t, p, tt.checks)
		})
	}
}

func TestArchitectures(t *testing.T) {
	rules := []specs.LinuxSyscall{
		syscallRule([]string{"getpid", "socketcall", "rt_sigaction", "uselib", "no_such_syscall"}, specs.ActErrno, ptr(3)),
	}
	const hit = retErrno | 3
	tests := []struct {
		name   string
		native *arch
		arches []specs.Arch
		checks []check
	}{
		{
			name:   "x86_64 alone",
			native: archX86_64,
			checks: []check{
				{"getpid", sys(t, archX86_64, "getpid"), hit},
				{"uselib", sys(t, archX86_64, "uselib"), hit},
				{"gettid", sys(t, archX86_64, "gettid"), retAllow},
				{"x32 getpid", sys(t, archX32, "getpid"), retKillProcess},
				{"x32 bit alone", seccompData{nr: x32SyscallBit, arch: auditArchX86_64}, retKillProcess},
				{"largest number", seccompData{nr: 0xffff_ffff, arch: auditArchX86_64}, retKillProcess},
				{"i386", sys(t, archX86, "getpid"), retKillProcess},
			},
		},
		{
			name:   "x86_64 with x86 and x32",
			native: archX86_64,
			arches: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32, specs.ArchAARCH64},
			checks: []check{
				{"getpid", sys(t, archX86_64, "getpid"), hit},
				{"x32 getpid", sys(t, archX32, "getpid"), hit},
				{"x32 rt_sigaction (512)", sys(t, archX32, "rt_sigaction"), hit},
				{"x32 rt_sigaction with the x86_64 number", seccompData{nr: x32SyscallBit | 13, arch: auditArchX86_64}, retAllow},
				{"x32 gettid", sys(t, archX32, "gettid"), retAllow},
				{"x32 largest number", seccompData{nr: 0xffff_ffff, arch: auditArchX86_64}, retAllow},
				{"i386 getpid", sys(t, archX86, "getpid"), hit},
				{"i386 socketcall", sys(t, archX86, "socketcall"), hit},
				{"i386 gettid", sys(t, archX86, "gettid"), retAllow},
				{"aarch64 is listed but unsupported", seccompData{nr: 172, arch: auditArchAArch64}, retKillProcess},
			},
		},
		{
			name:   "x32 without x86_64 on an i386 host",
			native: archX86,
			arches: []specs.Arch{specs.ArchX32},
			checks: []check{
				{"i386 getpid", sys(t, archX86, "getpid"), hit},
				{"x32 getpid", sys(t, archX32, "getpid"), hit},
				{"x32 gettid", sys(t, archX32, "gettid"), retAllow},
				{"x86_64 getpid", sys(t, archX86_64, "getpid"), retKillProcess},
			},
		},
		{
			name:   "i386 host",
			native: archX86,
			checks: []check{
				{"i386 getpid", sys(t, archX86, "getpid"), hit},
				{"x86_64 getpid", sys(t, archX86_64, "getpid"), retKillProcess},
				{"x32 getpid", sys(t, archX32, "getpid"), retKillProcess},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := compileFor(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: tt.arches, Syscalls: rules}, tt.native)
			runChecks(t, p, tt.checks)
		})
	}
}

func TestCompileErrors(t *testing.T) {
	allow := specs.ActAllow
	tests := []struct {
		name    string
		profile *specs.LinuxSeccomp
		want    string
		is      error
	}{
		{name: "nil profile", profile: nil, want: "no seccomp profile"},
		{name: "no default action", profile: &specs.LinuxSeccomp{}, want: "defaultAction: action is empty"},
		{name: "unknown default action", profile: &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_NOPE"}, want: "unknown action"},
		{name: "notify default", profile: &specs.LinuxSeccomp{DefaultAction: specs.ActNotify}, is: ErrNotifyUnsupported},
		{name: "defaultErrnoRet with allow", profile: &specs.LinuxSeccomp{DefaultAction: allow, DefaultErrnoRet: ptr(1)}, want: "errnoRet is only valid"},
		{name: "notify rule", profile: &specs.LinuxSeccomp{DefaultAction: allow, Syscalls: []specs.LinuxSyscall{
			syscallRule([]string{"getpid"}, specs.ActNotify, nil),
		}}, is: ErrNotifyUnsupported},
		{name: "errnoRet with kill", profile: &specs.LinuxSeccomp{DefaultAction: allow, Syscalls: []specs.LinuxSyscall{
			syscallRule([]string{"getpid"}, specs.ActKillProcess, ptr(1)),
		}}, want: "syscalls[0]: errnoRet is only valid"},
		{name: "errnoRet too large", profile: &specs.LinuxSeccomp{DefaultAction: allow, Syscalls: []specs.LinuxSyscall{
			syscallRule([]string{"getpid"}, specs.ActErrno, ptr(0x10000)),
		}}, want: "16 bits"},
		{name: "no names", profile: &specs.LinuxSeccomp{DefaultAction: allow, Syscalls: []specs.LinuxSyscall{
			syscallRule(nil, specs.ActErrno, nil),
		}}, want: "no syscall names"},
		{name: "empty name", profile: &specs.LinuxSeccomp{DefaultAction: allow, Syscalls: []specs.LinuxSyscall{
			syscallRule([]string{"getpid", ""}, specs.ActErrno, nil),
		}}, want: "empty syscall name"},
		{name: "argument index", profile: &specs.LinuxSeccomp{DefaultAction: allow, Syscalls: []specs.LinuxSyscall{
			syscallRule([]string{"getpid"}, specs.ActErrno, nil, arg(6, specs.OpEqualTo, 1)),
		}}, want: "argument index 6"},
		{name: "unknown operator", profile: &specs.LinuxSeccomp{DefaultAction: allow, Syscalls: []specs.LinuxSyscall{
			syscallRule([]string{"getpid"}, specs.ActErrno, nil, arg(0, "SCMP_CMP_XX", 1)),
		}}, want: "unknown operator"},
		{name: "invalid rule with the default action", profile: &specs.LinuxSeccomp{DefaultAction: allow, Syscalls: []specs.LinuxSyscall{
			syscallRule([]string{"getpid"}, allow, nil, arg(0, "SCMP_CMP_XX", 1)),
		}}, want: "unknown operator"},
		{name: "unknown architecture", profile: &specs.LinuxSeccomp{DefaultAction: allow, Architectures: []specs.Arch{"SCMP_ARCH_Z80"}}, want: "unknown architecture"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := compile(tt.profile, archX86_64)
			switch {
			case err == nil:
				t.Fatal("compile succeeded")
			case tt.is != nil && !errors.Is(err, tt.is):
				t.Fatalf("error %v is not %v", err, tt.is)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

// Syscalls that share a verdict collapse into ranges, so a profile that
// lists every syscall stays small and each lookup takes few comparisons.
func TestWholeTableProfile(t *testing.T) {
	var names []string
	for name := range syscallsX86_64 {
		names = append(names, name)
	}
	p := compileFor(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{specs.ArchX86, specs.ArchX32},
		Syscalls:      []specs.LinuxSyscall{syscallRule(names, specs.ActAllow, nil)},
	}, archX86_64)
	if len(p.raw) > 200 {
		t.Errorf("program has %d instructions, want at most 200", len(p.raw))
	}
	for name := range syscallsX86_64 {
		if got := p.run(t, sys(t, archX86_64, name)); got != retAllow {
			t.Errorf("x86_64 %s: verdict %#x, want allow", name, got)
		}
	}
	for name, nr := range syscallsX32 {
		want := retAllow
		if _, ok := syscallsX86_64[name]; !ok {
			want = retErrno | errnoEPERM
		}
		if got := p.run(t, seccompData{nr: nr, arch: auditArchX86_64}); got != want {
			t.Errorf("x32 %s: verdict %#x, want %#x", name, got, want)
		}
	}
	for name, nr := range syscallsI386 {
		want := retErrno | errnoEPERM
		if _, ok := syscallsX86_64[name]; ok {
			want = retAllow
		}
		if got := p.run(t, seccompData{nr: nr, arch: auditArchI386}); got != want {
			t.Errorf("i386 %s: verdict %#x, want %#x", name, got, want)
		}
	}
	for _, nr := range []uint32{472, 1000, x32SyscallBit - 1} {
		if got := p.run(t, seccompData{nr: nr, arch: auditArchX86_64}); got != retErrno|errnoEPERM {
			t.Errorf("x86_64 unknown number %d: verdict %#x, want EPERM", nr, got)
		}
	}
}
