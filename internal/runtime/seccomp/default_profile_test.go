package seccomp

import (
	"runtime"
	"slices"
	"testing"

	mobyseccomp "github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// dockerDefaultCaps is Docker's default capability set.
var dockerDefaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// mobyDefaultProfile returns moby's default profile for a container with
// Docker's default capabilities plus extra.
func mobyDefaultProfile(t testing.TB, extra ...string) *specs.LinuxSeccomp {
	t.Helper()
	if runtime.GOARCH != "amd64" {
		t.Skipf("moby's profile is generated for the host architecture; verdicts are written for amd64, not %s", runtime.GOARCH)
	}
	spec := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{
		Bounding: append(slices.Clone(dockerDefaultCaps), extra...),
	}}}
	s, err := mobyseccomp.GetDefaultProfile(spec)
	if err != nil {
		t.Fatalf("GetDefaultProfile: %v", err)
	}
	return s
}

// allowsUnconditionally reports whether s has a rule allowing name without
// conditions.
func allowsUnconditionally(s *specs.LinuxSeccomp, name string) bool {
	for _, sc := range s.Syscalls {
		if sc.Action == specs.ActAllow && len(sc.Args) == 0 && slices.Contains(sc.Names, name) {
			return true
		}
	}
	return false
}

// Constants from the kernel UAPI, spelled out so the verdicts do not
// depend on the constants the profile itself is built from.
const (
	cloneNewNS     = 0x00020000
	cloneNewUser   = 0x10000000
	cloneNewNet    = 0x40000000
	sigchld        = 17
	threadFlags    = 0x003d0f00 // CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID
	afUnix         = 1
	afInet         = 2
	afInet6        = 10
	afNetlink      = 16
	afPacket       = 17
	afAlg          = 38
	afVsock        = 40
	errnoENOSYS    = 38
	personaLinux32 = 0x0008
)

func TestMobyDefaultProfile(t *testing.T) {
	eperm, enosys := retErrno|errnoEPERM, retErrno|errnoENOSYS
	x, i386, x32 := archX86_64, archX86, archX32

	s := mobyDefaultProfile(t)
	ptraceVerdict := eperm
	if allowsUnconditionally(s, "ptrace") { // moby allows ptrace on kernels >= 4.8
		ptraceVerdict = retAllow
	}
	raw, err := Compile(s)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	t.Logf("default profile: %d rules, %d instructions", len(s.Syscalls), len(raw))
	if len(raw) >= maxInsns {
		t.Fatalf("program has %d instructions, kernel limit is %d", len(raw), maxInsns)
	}
	p := newProgram(t, raw)
	runChecks(t, p, []check{
		{"read", sys(t, x, "read", 0, 0x7f00_0000_1000, 4096), retAllow},
		{"write", sys(t, x, "write", 1, 0x7f00_0000_1000, 10), retAllow},
		{"execve", sys(t, x, "execve"), retAllow},
		{"getpid", sys(t, x, "getpid"), retAllow},
		{"clone for a thread", sys(t, x, "clone", threadFlags), retAllow},
		{"clone for fork", sys(t, x, "clone", sigchld), retAllow},
		{"clone with high bits", sys(t, x, "clone", 0x1_0000_0000|sigchld), retAllow},
		{"clone CLONE_NEWUSER", sys(t, x, "clone", cloneNewUser|sigchld), eperm},
		{"clone CLONE_NEWNS", sys(t, x, "clone", cloneNewNS), eperm},
		{"clone CLONE_NEWNET with thread flags", sys(t, x, "clone", cloneNewNet|threadFlags), eperm},
		{"clone3", sys(t, x, "clone3"), enosys},
		{"unshare", sys(t, x, "unshare", cloneNewNS), eperm},
		{"mount", sys(t, x, "mount"), eperm},
		{"kexec_load", sys(t, x, "kexec_load"), eperm},
		{"reboot", sys(t, x, "reboot"), eperm},
		{"keyctl", sys(t, x, "keyctl"), eperm},
		{"setns", sys(t, x, "setns"), eperm},
		{"ptrace", sys(t, x, "ptrace"), ptraceVerdict},
		{"personality(0)", sys(t, x, "personality", 0), retAllow},
		{"personality(PER_LINUX32)", sys(t, x, "personality", personaLinux32), retAllow},
		{"personality(0xffffffff)", sys(t, x, "personality", 0xffff_ffff), retAllow},
		{"personality(0x1234)", sys(t, x, "personality", 0x1234), eperm},
		{"personality(1<<32)", sys(t, x, "personality", 0x1_0000_0000), eperm},
		{"socket(AF_UNIX)", sys(t, x, "socket", afUnix, 1, 0), retAllow},
		{"socket(AF_INET)", sys(t, x, "socket", afInet, 1, 0), retAllow},
		{"socket(AF_INET6)", sys(t, x, "socket", afInet6, 2, 0), retAllow},
		{"socket(AF_NETLINK)", sys(t, x, "socket", afNetlink, 3, 0), retAllow},
		{"socket(AF_PACKET)", sys(t, x, "socket", afPacket, 3, 0), retAllow},
		{"socket(AF_ALG)", sys(t, x, "socket", afAlg, 5, 0), eperm},
		{"socket(AF_VSOCK)", sys(t, x, "socket", afVsock, 1, 0), eperm},
		{"socket(AF_UNIX | 1<<32)", sys(t, x, "socket", 0x1_0000_0000|afUnix, 1, 0), eperm},
		{"unknown syscall number", seccompData{nr: 1000, arch: auditArchX86_64}, eperm},

		{"i386 execve", sys(t, i386, "execve"), retAllow},
		{"i386 socketcall", sys(t, i386, "socketcall", 1), retAllow},
		{"i386 socket(AF_UNIX)", sys(t, i386, "socket", afUnix, 1, 0), retAllow},
		{"i386 socket(AF_VSOCK)", sys(t, i386, "socket", afVsock, 1, 0), eperm},
		{"i386 clone for fork", sys(t, i386, "clone", sigchld), retAllow},
		{"i386 clone CLONE_NEWUSER", sys(t, i386, "clone", cloneNewUser), eperm},
		{"i386 umount", sys(t, i386, "umount"), eperm},
		{"i386 unshare", sys(t, i386, "unshare"), eperm},

		{"x32 read", sys(t, x32, "read"), retAllow},
		{"x32 execve", sys(t, x32, "execve"), retAllow},
		{"x32 clone CLONE_NEWUSER", sys(t, x32, "clone", cloneNewUser), eperm},
		{"x32 unshare", sys(t, x32, "unshare"), eperm},

		{"aarch64", seccompData{nr: 63, arch: auditArchAArch64}, retKillProcess},
	})
}

func TestMobyDefaultProfileWithCapabilities(t *testing.T) {
	x := archX86_64
	tests := []struct {
		caps   []string
		checks []check
	}{
		{[]string{"CAP_SYS_ADMIN"}, []check{
			{"unshare", sys(t, x, "unshare", cloneNewNS), retAllow},
			{"mount", sys(t, x, "mount"), retAllow},
			{"setns", sys(t, x, "setns"), retAllow},
			{"clone CLONE_NEWUSER", sys(t, x, "clone", cloneNewUser), retAllow},
			{"clone3", sys(t, x, "clone3"), retAllow},
			{"reboot", sys(t, x, "reboot"), retErrno | errnoEPERM},
		}},
		{[]string{"CAP_SYS_PTRACE"}, []check{
			{"ptrace", sys(t, x, "ptrace"), retAllow},
			{"process_vm_readv", sys(t, x, "process_vm_readv"), retAllow},
			{"unshare", sys(t, x, "unshare"), retErrno | errnoEPERM},
		}},
		{[]string{"CAP_SYS_BOOT"}, []check{
			{"reboot", sys(t, x, "reboot"), retAllow},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.caps[0], func(t *testing.T) {
			runChecks(t, compileFor(t, mobyDefaultProfile(t, tt.caps...), x), tt.checks)
		})
	}
}

// TestMobyDefaultProfileMatchesReference checks the compiled default
// profile against the reference evaluator on every syscall of every ABI.
func TestMobyDefaultProfileMatchesReference(t *testing.T) {
	s := mobyDefaultProfile(t)
	p := compileFor(t, s, archX86_64)
	argSets := [][]uint64{
		{0}, {afUnix, 1}, {afVsock}, {cloneNewUser}, {sigchld}, {0xffff_ffff}, {0x1_0000_0001},
	}
	for _, a := range []*arch{archX86_64, archX86, archX32} {
		for name := range a.table {
			for _, args := range argSets {
				d := sys(t, a, name, args...)
				if got, want := p.run(t, d), referenceVerdict(t, s, archX86_64, d); got != want {
					t.Errorf("%s %s%#x: verdict %#x, reference %#x", a.name, name, args, got, want)
				}
			}
		}
	}
}

func BenchmarkCompileDefaultProfile(b *testing.B) {
	s := mobyDefaultProfile(b)
	for b.Loop() {
		if _, err := Compile(s); err != nil {
			b.Fatal(err)
		}
	}
}
