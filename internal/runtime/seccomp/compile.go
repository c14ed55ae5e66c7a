package seccomp

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
)

// Offsets in struct seccomp_data. All supported ABIs are little-endian, so
// the low word of a 64-bit argument comes first.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

func argLo(index uint) uint32 { return offArgs + 8*uint32(index) }
func argHi(index uint) uint32 { return offArgs + 8*uint32(index) + 4 }

// Compile returns the seccomp filter for the given profile.
//
// The filter covers the native architecture plus every architecture of
// s.Architectures that has a syscall table here (SCMP_ARCH_X86_64,
// SCMP_ARCH_X86, SCMP_ARCH_X32); other runtime-spec architectures are
// ignored, and syscalls of any architecture outside the filter get
// SECCOMP_RET_KILL_PROCESS. See the package documentation for the rule
// semantics.
func Compile(s *specs.LinuxSeccomp) ([]bpf.RawInstruction, error) {
	native, err := nativeArch()
	if err != nil {
		return nil, err
	}
	return compile(s, native)
}

// compile is Compile with an explicit native architecture.
func compile(s *specs.LinuxSeccomp, native *arch) ([]bpf.RawInstruction, error) {
	p, err := parseProfile(s)
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	set, err := resolveArches(native, s.Architectures)
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}

	c := &compiler{p: p}
	type section struct {
		audit uint32
		entry label
		emit  func()
	}
	var sections []section
	if set.x86_64 || set.x32 {
		sections = append(sections, section{audit: auditArchX86_64, emit: func() { c.x86_64Section(set) }})
	}
	if set.x86 {
		sec := section{audit: auditArchI386, emit: func() {
			c.asm.loadWord(offNr)
			c.dispatch(archX86, c.newRetPool(), 0)
		}}
		if native == archX86 {
			sections = append([]section{sec}, sections...)
		} else {
			sections = append(sections, sec)
		}
	}

	c.asm.loadWord(offArch)
	for i := range sections {
		sections[i].entry = c.asm.newLabel()
		c.asm.jumpIf(bpf.JumpEqual, sections[i].audit, sections[i].entry, labelNext)
	}
	c.asm.ret(retKillProcess)
	for _, sec := range sections {
		c.asm.bind(sec.entry)
		sec.emit()
	}

	prog, err := c.asm.assemble()
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	return prog, nil
}

type compiler struct {
	p   *profile
	asm assembler
}

// x86_64Section emits the code for AUDIT_ARCH_X86_64, which carries both
// the 64-bit ABI and, with X32_SYSCALL_BIT set in the syscall number, x32.
func (c *compiler) x86_64Section(set archSet) {
	c.asm.loadWord(offNr)
	switch {
	case set.x86_64 && set.x32:
		x32 := c.asm.newLabel()
		c.asm.jumpIf(bpf.JumpGreaterOrEqual, x32SyscallBit, x32, labelNext)
		c.dispatch(archX86_64, c.newRetPool(), 0)
		c.asm.bind(x32)
		c.dispatch(archX32, c.newRetPool(), x32SyscallBit)
	case set.x86_64:
		pool := c.newRetPool()
		c.asm.jumpIf(bpf.JumpGreaterOrEqual, x32SyscallBit, pool.get(retKillProcess), labelNext)
		c.dispatch(archX86_64, pool, 0)
	default:
		pool := c.newRetPool()
		c.asm.jumpIf(bpf.JumpGreaterOrEqual, x32SyscallBit, labelNext, pool.get(retKillProcess))
		c.dispatch(archX32, pool, x32SyscallBit)
	}
}

// condRule is a conditional rule of one syscall on one architecture.
type condRule struct {
	act   uint32
	conds []cond
}

// syscallRules collects the rules of one syscall on one architecture.
type syscallRules struct {
	uncond    bool
	uncondAct uint32
	rules     []condRule
}

// rulesFor resolves the profile's rules for architecture a, keyed by
// syscall number.
func (c *compiler) rulesFor(a *arch) map[uint32]*syscallRules {
	out := make(map[uint32]*syscallRules)
	for _, r := range c.p.rules {
		for _, name := range r.names {
			nr, ok := a.table[name]
			if !ok {
				continue
			}
			sr := out[nr]
			if sr == nil {
				sr = &syscallRules{}
				out[nr] = sr
			}
			for _, alt := range r.alts {
				if sr.uncond {
					break
				}
				conds, always := normalize(alt, a.args32)
				if always {
					sr.uncond, sr.uncondAct, sr.rules = true, r.act, nil
					break
				}
				cr := condRule{act: r.act, conds: conds}
				if !slices.ContainsFunc(sr.rules, cr.equal) {
					sr.rules = append(sr.rules, cr)
				}
			}
		}
	}
	return out
}

func (r condRule) equal(o condRule) bool {
	return r.act == o.act && slices.Equal(r.conds, o.conds)
}

// normalize adapts the conditions of one rule to an ABI: on 32-bit ABIs the
// operands keep their low 32 bits; masked comparisons drop the bits outside
// the mask from the operand; comparisons that always hold are removed.
// always reports that no condition is left.
func normalize(conds []cond, args32 bool) (out []cond, always bool) {
	if len(conds) == 0 {
		return nil, true
	}
	out = make([]cond, 0, len(conds))
	for _, cd := range conds {
		if args32 {
			cd.value &= math.MaxUint32
			cd.valueTwo &= math.MaxUint32
		}
		if cd.op == specs.OpMaskedEqual {
			cd.valueTwo &= cd.value
			if cd.value == 0 {
				continue
			}
		}
		out = append(out, cd)
	}
	return out, len(out) == 0
}

// body is the code a range of syscall numbers jumps to.
type body struct {
	entry label
	// rules are the conditional rules, tried in order; fallback is returned
	// when none matches (or right away when there are none).
	rules    []condRule
	fallback uint32
}

// span is a range of syscall numbers, from lo to the next span's lo, that
// share a body.
type span struct {
	lo uint32
	b  *body
}

// retPool shares one return instruction per value among the jumps of a
// dispatch tree.
type retPool struct {
	asm    *assembler
	labels map[uint32]label
	order  []uint32
}

func (c *compiler) newRetPool() *retPool {
	return &retPool{asm: &c.asm, labels: make(map[uint32]label)}
}

func (p *retPool) get(v uint32) label {
	if l, ok := p.labels[v]; ok {
		return l
	}
	l := p.asm.newLabel()
	p.labels[v] = l
	p.order = append(p.order, v)
	return l
}

func (p *retPool) emit() {
	for _, v := range p.order {
		p.asm.bind(p.labels[v])
		p.asm.ret(v)
	}
}

// dispatch emits the syscall lookup for architecture a, with the syscall
// number in A and known to be at least base: a binary search over spans,
// then the shared returns, then the bodies with argument checks.
func (c *compiler) dispatch(a *arch, pool *retPool, base uint32) {
	table := c.rulesFor(a)
	nrs := make([]uint32, 0, len(table))
	for nr := range table {
		nrs = append(nrs, nr)
	}
	slices.Sort(nrs)

	def := &body{entry: pool.get(c.p.defaultAct), fallback: c.p.defaultAct}
	plain := map[uint32]*body{c.p.defaultAct: def}
	shared := make(map[string]*body)
	var condBodies []*body
	bodyOf := func(sr *syscallRules) *body {
		if sr.uncond || len(sr.rules) == 0 {
			v := c.p.defaultAct
			if sr.uncond {
				v = sr.uncondAct
			}
			b := plain[v]
			if b == nil {
				b = &body{entry: pool.get(v), fallback: v}
				plain[v] = b
			}
			return b
		}
		key := bodyKey(sr.rules)
		b := shared[key]
		if b == nil {
			b = &body{entry: c.asm.newLabel(), rules: sr.rules, fallback: c.p.defaultAct}
			shared[key] = b
			condBodies = append(condBodies, b)
		}
		return b
	}

	var spans []span
	add := func(lo uint32, b *body) {
		if len(spans) > 0 && spans[len(spans)-1].b == b {
			return
		}
		spans = append(spans, span{lo: lo, b: b})
	}
	next := uint64(base)
	for _, nr := range nrs {
		if uint64(nr) > next {
			add(uint32(next), def)
		}
		add(nr, bodyOf(table[nr]))
		next = uint64(nr) + 1
	}
	if next <= math.MaxUint32 {
		add(uint32(next), def)
	}

	if len(spans) == 1 {
		c.asm.jump(spans[0].b.entry)
	} else {
		c.searchTree(spans)
	}
	pool.emit()
	for _, b := range condBodies {
		c.emitBody(b, a.args32)
	}
}

// searchTree emits a balanced binary search over spans (at least two).
// Each node compares the syscall number with the first number of the upper
// half; the lower half follows the node directly.
func (c *compiler) searchTree(spans []span) {
	mid := len(spans) / 2
	lower, upper := spans[:mid], spans[mid:]
	lowerEntry, upperEntry := lower[0].b.entry, upper[0].b.entry
	if len(lower) > 1 {
		lowerEntry = c.asm.newLabel()
	}
	if len(upper) > 1 {
		upperEntry = c.asm.newLabel()
	}
	c.asm.jumpIf(bpf.JumpGreaterOrEqual, upper[0].lo, upperEntry, lowerEntry)
	if len(lower) > 1 {
		c.asm.bind(lowerEntry)
		c.searchTree(lower)
	}
	if len(upper) > 1 {
		c.asm.bind(upperEntry)
		c.searchTree(upper)
	}
}

// emitBody emits the argument checks of a syscall: each rule jumps to the
// next one as soon as a condition fails and returns its action otherwise.
func (c *compiler) emitBody(b *body, args32 bool) {
	c.asm.bind(b.entry)
	for _, r := range b.rules {
		nextRule := c.asm.newLabel()
		for _, cd := range r.conds {
			c.emitCond(cd, args32, nextRule)
		}
		c.asm.ret(r.act)
		c.asm.bind(nextRule)
	}
	c.asm.ret(b.fallback)
}

// emitCond emits code that falls through when cd holds and jumps to fail
// otherwise.
func (c *compiler) emitCond(cd cond, args32 bool, fail label) {
	pass := c.asm.newLabel()
	defer c.asm.bind(pass)

	lo, hi := uint32(cd.value), uint32(cd.value>>32)
	lo2, hi2 := uint32(cd.valueTwo), uint32(cd.valueTwo>>32)

	if cd.op == specs.OpMaskedEqual {
		// Each half is tested on its own; a half with an empty mask
		// always matches.
		if !args32 && hi != 0 {
			c.asm.loadWord(argHi(cd.index))
			c.maskedEq(hi, hi2, labelNext, fail)
		}
		if lo != 0 {
			c.asm.loadWord(argLo(cd.index))
			c.maskedEq(lo, lo2, pass, fail)
		}
		return
	}

	if args32 {
		c.asm.loadWord(argLo(cd.index))
		c.cmp32(cd.op, lo, pass, fail)
		return
	}

	// 64-bit comparison: the high words decide unless they are equal.
	c.asm.loadWord(argHi(cd.index))
	switch cd.op {
	case specs.OpEqualTo:
		c.asm.jumpIf(bpf.JumpEqual, hi, labelNext, fail)
	case specs.OpNotEqual:
		c.asm.jumpIf(bpf.JumpEqual, hi, labelNext, pass)
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		c.asm.jumpIf(bpf.JumpGreaterThan, hi, pass, labelNext)
		if hi != 0 { // with hi == 0, "not greater" already means equal
			c.asm.jumpIf(bpf.JumpEqual, hi, labelNext, fail)
		}
	case specs.OpLessThan, specs.OpLessEqual:
		if hi != 0 { // with hi == 0, the high word cannot be less
			c.asm.jumpIf(bpf.JumpGreaterOrEqual, hi, labelNext, pass)
		}
		c.asm.jumpIf(bpf.JumpEqual, hi, labelNext, fail)
	}
	c.asm.loadWord(argLo(cd.index))
	c.cmp32(cd.op, lo, pass, fail)
}

// cmp32 jumps to pass when A <op> v holds and to fail otherwise.
func (c *compiler) cmp32(op specs.LinuxSeccompOperator, v uint32, pass, fail label) {
	switch op {
	case specs.OpEqualTo:
		c.asm.jumpIf(bpf.JumpEqual, v, pass, fail)
	case specs.OpNotEqual:
		c.asm.jumpIf(bpf.JumpEqual, v, fail, pass)
	case specs.OpGreaterThan:
		c.asm.jumpIf(bpf.JumpGreaterThan, v, pass, fail)
	case specs.OpGreaterEqual:
		c.asm.jumpIf(bpf.JumpGreaterOrEqual, v, pass, fail)
	case specs.OpLessThan:
		c.asm.jumpIf(bpf.JumpGreaterOrEqual, v, fail, pass)
	case specs.OpLessEqual:
		c.asm.jumpIf(bpf.JumpGreaterThan, v, fail, pass)
	default:
		panic(fmt.Sprintf("seccomp: unexpected operator %q", op))
	}
}

// maskedEq jumps to pass when (A & mask) == v and to fail otherwise.
func (c *compiler) maskedEq(mask, v uint32, pass, fail label) {
	if mask != math.MaxUint32 {
		c.asm.and(mask)
	}
	c.asm.jumpIf(bpf.JumpEqual, v, pass, fail)
}

// bodyKey identifies the conditional rules of a syscall, so that syscalls
// with identical checks share one body.
func bodyKey(rules []condRule) string {
	b := make([]byte, 0, 32*len(rules))
	for _, r := range rules {
		b = strconv.AppendUint(b, uint64(r.act), 16)
		for _, cd := range r.conds {
			b = append(b, ',')
			b = strconv.AppendUint(b, uint64(cd.index), 10)
			b = append(b, cd.op...)
			b = strconv.AppendUint(b, cd.value, 16)
			b = append(b, ':')
			b = strconv.AppendUint(b, cd.valueTwo, 16)
		}
		b = append(b, ';')
	}
	return string(b)
}
