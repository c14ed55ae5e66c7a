// Package seccomp compiles the OCI runtime-spec linux.seccomp section into a
// classic BPF seccomp program and installs it, in pure Go (no libseccomp).
//
// # Program shape
//
// The generated program first dispatches on seccomp_data.arch. Every
// architecture of the filter (the native one plus the supported entries of
// Architectures: SCMP_ARCH_X86_64, SCMP_ARCH_X86, SCMP_ARCH_X32) gets its own
// section; any other architecture gets SECCOMP_RET_KILL_PROCESS. Inside a
// section the syscall number is looked up with a balanced binary search over
// ranges of syscall numbers that share the same verdict, so lookups cost
// O(log n) comparisons. Each range ends in a body: either a single return, or
// the argument checks of the conditional rules of that syscall followed by the
// fallback return.
//
// Classic BPF can only jump forward and conditional jumps reach at most 255
// instructions. The assembler lays the program out with symbolic labels and
// routes any conditional jump that does not reach through a trampoline placed
// right after it (a copy of the target when the target is a return, an
// unconditional "ja" otherwise), iterating until the layout is stable.
//
// # Semantics
//
// The semantics follow what runc produces through libseccomp:
//
//   - Rules whose action (including its errno/trace data) equals the default
//     action are dropped.
//   - SCMP_ACT_ERRNO and SCMP_ACT_TRACE without errnoRet use EPERM, both for
//     rules and for the default action; errnoRet on any other action is an
//     error, as the runtime-spec requires.
//   - Syscall names unknown on an architecture are skipped for that
//     architecture.
//   - The conditions of a rule are ANDed, unless two of them test the same
//     argument index: then runc adds every condition of the rule as a
//     separate rule, so they are ORed (libseccomp cannot express two
//     comparisons of one argument in a single rule).
//   - A syscall with an unconditional rule always gets that rule's action:
//     libseccomp discards the argument chains of a syscall as soon as an
//     unconditional rule exists for it, whatever the order of the rules. When
//     several unconditional rules name the same syscall the first one wins.
//   - The conditional rules of a syscall are tried in profile order and the
//     first one whose conditions all hold decides; when none matches, the
//     default action applies. Order only matters when rules with different
//     actions match the same call. libseccomp has no notion of rule order: it
//     merges the chains into a decision tree sorted by argument index,
//     operator and value, keeps the shorter chain when one is a prefix of
//     another, and refuses some conflicting combinations outright, so for
//     such overlaps its verdict may differ from (or it may reject) what is
//     compiled here. Real profiles, moby's default among them, give the
//     overlapping conditional rules of a syscall a single action.
//   - On 64-bit ABIs (x86_64) an argument is compared as a 64-bit value,
//     high word first. On 32-bit ABIs (i386 and x32, which libseccomp treats
//     as a 32-bit ABI) only the low 32 bits of the argument and of the
//     operands are compared.
//   - SCMP_CMP_MASKED_EQ is (arg & value) == valueTwo; like libseccomp the
//     operand is masked too, and a 32-bit half whose mask is zero is not
//     tested.
//   - On x86_64, a syscall number at or above X32_SYSCALL_BIT (0x40000000)
//     belongs to the x32 ABI, as in libseccomp: it is filtered with the x32
//     table when SCMP_ARCH_X32 is part of the filter and gets the
//     bad-architecture action otherwise.
//   - The bad-architecture action is SECCOMP_RET_KILL_PROCESS. libseccomp
//     defaults to SCMP_ACT_KILL (kill the thread); killing the whole process
//     avoids leaving a process behind with one thread silently gone.
//
// Architecture names that are not runtime-spec architectures are rejected,
// as runc rejects the names libseccomp does not know.
//
// Not supported: SCMP_ACT_NOTIFY and listenerPath; the socketcall(2) /
// ipc(2) demultiplexing that libseccomp performs on i386 (rules on socket(2)
// and friends apply to the direct syscalls only); and runc's rewrite that
// makes syscalls newer than any the profile names fail with ENOSYS instead
// of the default action.
package seccomp
