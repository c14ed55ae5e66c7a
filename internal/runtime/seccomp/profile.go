package seccomp

import (
	"errors"
	"fmt"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// maxArgs is the number of syscall arguments in seccomp_data.
const maxArgs = 6

// cond is one argument comparison of a rule.
type cond struct {
	index    uint
	op       specs.LinuxSeccompOperator
	value    uint64
	valueTwo uint64
}

// rule is a validated syscall rule. Each entry of alts is a set of ANDed
// conditions; the rule matches when any entry matches. An empty entry
// matches unconditionally.
type rule struct {
	names []string
	act   uint32
	alts  [][]cond
}

// profile is a validated linux.seccomp section.
type profile struct {
	defaultAct uint32
	rules      []rule
}

// parseProfile validates s and converts it to the compiler's model.
func parseProfile(s *specs.LinuxSeccomp) (*profile, error) {
	if s == nil {
		return nil, errors.New("no seccomp profile")
	}
	def, err := actionValue(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("defaultAction: %w", err)
	}
	p := &profile{defaultAct: def}
	for i, sc := range s.Syscalls {
		r, err := parseRule(sc)
		if err != nil {
			return nil, fmt.Errorf("syscalls[%d]: %w", i, err)
		}
		// A rule that does what the default action does is redundant;
		// runc skips it (libseccomp would refuse it).
		if r.act == def {
			continue
		}
		p.rules = append(p.rules, r)
	}
	return p, nil
}

func parseRule(sc specs.LinuxSyscall) (rule, error) {
	act, err := actionValue(sc.Action, sc.ErrnoRet)
	if err != nil {
		return rule{}, err
	}
	if len(sc.Names) == 0 {
		return rule{}, errors.New("no syscall names")
	}
	for _, name := range sc.Names {
		if name == "" {
			return rule{}, errors.New("empty syscall name")
		}
	}
	conds := make([]cond, 0, len(sc.Args))
	var perIndex [maxArgs]int
	repeated := false
	for _, arg := range sc.Args {
		if arg.Index >= maxArgs {
			return rule{}, fmt.Errorf("argument index %d out of range (0-%d)", arg.Index, maxArgs-1)
		}
		switch arg.Op {
		case specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
			specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual:
		default:
			return rule{}, fmt.Errorf("argument %d: unknown operator %q", arg.Index, arg.Op)
		}
		perIndex[arg.Index]++
		if perIndex[arg.Index] > 1 {
			repeated = true
		}
		conds = append(conds, cond{index: arg.Index, op: arg.Op, value: arg.Value, valueTwo: arg.ValueTwo})
	}

	r := rule{names: sc.Names, act: act}
	switch {
	case len(conds) == 0:
		r.alts = [][]cond{nil}
	case repeated:
		// runc adds each condition of a rule that tests one argument
		// more than once as a rule of its own, which ORs them.
		for _, c := range conds {
			r.alts = append(r.alts, []cond{c})
		}
	default:
		r.alts = [][]cond{conds}
	}
	return r, nil
}
