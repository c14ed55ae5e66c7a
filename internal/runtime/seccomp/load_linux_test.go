package seccomp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	mobyseccomp "github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// helperEnv selects a helper mode: the test binary, re-executed with this
// variable set, installs a filter in its own process, checks its effect,
// prints "ok" and exits.
const (
	helperEnv    = "BERTH_SECCOMP_TEST_HELPER"
	helperDirEnv = "BERTH_SECCOMP_TEST_DIR"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	os.Exit(m.Run())
}

func runHelper(mode string) int {
	// The filter applies to this thread (and, with TSYNC, to all others);
	// the thread is never released, it ends with the process.
	runtime.LockOSThread()
	helpers := map[string]func() error{
		"errno": helperErrno,
		"tsync": helperTsync,
		"moby":  helperMoby,
	}
	h, ok := helpers[mode]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", mode)
		return 2
	}
	if err := h(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ok")
	return 0
}

func setNoNewPrivs() error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("PR_SET_NO_NEW_PRIVS: %w", err)
	}
	return nil
}

// seccompMode returns the Seccomp field of a /proc status file.
func seccompMode(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Seccomp:\t"); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("%s has no Seccomp field", path)
}

func expectMode(path, want string) error {
	got, err := seccompMode(path)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%s: Seccomp is %q, want %q", path, got, want)
	}
	return nil
}

func expectErrno(what string, err, want error) error {
	if !errors.Is(err, want) {
		return fmt.Errorf("%s: got error %v, want %v", what, err, want)
	}
	return nil
}

// getcwdSize calls getcwd(2) with a 64-bit size argument.
func getcwdSize(size uint64) error {
	buf := make([]byte, 4096)
	_, _, errno := unix.Syscall(unix.SYS_GETCWD, uintptr(unsafe.Pointer(&buf[0])), uintptr(size), 0)
	runtime.KeepAlive(buf)
	if errno != 0 {
		return errno
	}
	return nil
}

// smallProfile allows everything except mkdir (EPERM by default errnoRet)
// and getcwd with a size above 32 bits (EXDEV), which exercises the high
// word of a 64-bit argument in the kernel.
func smallProfile() *specs.LinuxSeccomp {
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno},
			{Names: []string{"getcwd"}, Action: specs.ActErrno, ErrnoRet: ptr(uint(unix.EXDEV)), Args: []specs.LinuxSeccompArg{
				{Index: 1, Op: specs.OpGreaterThan, Value: 0xffff_ffff},
			}},
		},
	}
}

func helperErrno() error {
	dir := os.Getenv(helperDirEnv)
	if err := setNoNewPrivs(); err != nil {
		return err
	}
	if err := expectMode("/proc/thread-self/status", "0"); err != nil {
		return err
	}
	if err := Load(smallProfile()); err != nil {
		return fmt.Errorf("Load: %w", err)
	}
	if err := expectMode("/proc/thread-self/status", "2"); err != nil {
		return err
	}
	blocked := filepath.Join(dir, "blocked")
	if err := expectErrno("mkdirat", unix.Mkdirat(unix.AT_FDCWD, blocked, 0o755), unix.EPERM); err != nil {
		return err
	}
	if _, err := os.Lstat(blocked); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s exists after a blocked mkdirat (stat: %v)", blocked, err)
	}
	if err := getcwdSize(4096); err != nil {
		return fmt.Errorf("getcwd with a 32-bit size: %w", err)
	}
	if err := getcwdSize(0xffff_ffff); err != nil {
		return fmt.Errorf("getcwd with size 0xffffffff: %w", err)
	}
	return expectErrno("getcwd with a 64-bit size", getcwdSize(0x1_0000_1000), unix.EXDEV)
}

func helperTsync() error {
	if err := setNoNewPrivs(); err != nil {
		return err
	}
	// Make sure the process has other threads before the filter goes in.
	started := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	go func() {
		runtime.LockOSThread()
		close(started)
		<-release
	}()
	<-started

	s := smallProfile()
	s.Flags = []specs.LinuxSeccompFlag{flagTsync, specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow}
	if err := Load(s); err != nil {
		return fmt.Errorf("Load: %w", err)
	}
	tasks, err := filepath.Glob("/proc/self/task/*/status")
	if err != nil {
		return err
	}
	if len(tasks) < 2 {
		return fmt.Errorf("expected several threads, found %d", len(tasks))
	}
	for _, status := range append(tasks, "/proc/self/status") {
		if err := expectMode(status, "2"); err != nil {
			return err
		}
	}
	// Another thread is filtered too.
	errc := make(chan error)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		errc <- expectErrno("getcwd on another thread", getcwdSize(0x1_0000_1000), unix.EXDEV)
	}()
	return <-errc
}

func helperMoby() error {
	spec := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: dockerDefaultCaps}}}
	s, err := mobyseccomp.GetDefaultProfile(spec)
	if err != nil {
		return err
	}
	if err := setNoNewPrivs(); err != nil {
		return err
	}
	if err := Load(s); err != nil {
		return fmt.Errorf("Load: %w", err)
	}
	if err := expectMode("/proc/thread-self/status", "2"); err != nil {
		return err
	}
	if err := expectErrno("unshare(CLONE_NEWNS)", unix.Unshare(unix.CLONE_NEWNS), unix.EPERM); err != nil {
		return err
	}
	_, _, errno := unix.Syscall(unix.SYS_CLONE3, 0, 0, 0)
	if err := expectErrno("clone3", errno, unix.ENOSYS); err != nil {
		return err
	}
	_, err = unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM, 0)
	if err := expectErrno("socket(AF_VSOCK)", err, unix.EPERM); err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		return fmt.Errorf("socket(AF_UNIX): %w", err)
	}
	unix.Close(fd)
	fmt.Printf("pid=%d\n", unix.Getpid())
	return nil
}

// runHelperProcess re-executes the test binary in helper mode and returns
// its standard output. The helper exits on its own; it is killed if it
// outlives the timeout, and always waited for.
func runHelperProcess(t *testing.T, mode string) (stdout string, pid int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperDirEnv+"="+t.TempDir())
	cmd.WaitDelay = 5 * time.Second
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		t.Fatalf("helper %q: %v\nstdout:\n%s\nstderr:\n%s", mode, err, out.String(), errOut.String())
	}
	if !strings.HasSuffix(out.String(), "ok\n") {
		t.Fatalf("helper %q did not report success\nstdout:\n%s\nstderr:\n%s", mode, out.String(), errOut.String())
	}
	return out.String(), cmd.Process.Pid
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if runtime.GOARCH != "amd64" {
		t.Skipf("kernel tests are written for amd64, not %s", runtime.GOARCH)
	}
}

func TestLoadSmallProfile(t *testing.T) {
	requireRoot(t)
	runHelperProcess(t, "errno")
}

func TestLoadTsyncFlags(t *testing.T) {
	requireRoot(t)
	runHelperProcess(t, "tsync")
}

func TestLoadMobyDefaultProfile(t *testing.T) {
	requireRoot(t)
	out, pid := runHelperProcess(t, "moby")
	if want := "pid=" + strconv.Itoa(pid) + "\n"; !strings.Contains(out, want) {
		t.Errorf("helper output %q does not contain %q (getpid under the filter)", out, want)
	}
}

// The errors below are all detected before anything is installed.
func TestLoadRejects(t *testing.T) {
	allow := specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
	tests := []struct {
		name string
		edit func(s *specs.LinuxSeccomp)
		is   error
		want string
	}{
		{name: "listener path", edit: func(s *specs.LinuxSeccomp) { s.ListenerPath = "/run/agent.sock" }, is: ErrNotifyUnsupported},
		{name: "notify action", edit: func(s *specs.LinuxSeccomp) {
			s.Syscalls = []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: specs.ActNotify}}
		}, is: ErrNotifyUnsupported},
		{name: "wait killable recv flag", edit: func(s *specs.LinuxSeccomp) {
			s.Flags = []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv}
		}, is: ErrNotifyUnsupported},
		{name: "unknown flag", edit: func(s *specs.LinuxSeccomp) {
			s.Flags = []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_BOGUS"}
		}, want: "unknown seccomp flag"},
		{name: "invalid profile", edit: func(s *specs.LinuxSeccomp) { s.DefaultAction = "" }, want: "defaultAction"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := allow
			tt.edit(&s)
			err := Load(&s)
			switch {
			case err == nil:
				t.Fatal("Load succeeded")
			case tt.is != nil && !errors.Is(err, tt.is):
				t.Fatalf("error %v is not %v", err, tt.is)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
	if err := Load(nil); err == nil {
		t.Error("Load(nil) succeeded")
	}
}

func TestFilterFlags(t *testing.T) {
	tests := []struct {
		flags []specs.LinuxSeccompFlag
		want  uintptr
	}{
		{nil, 0},
		{[]specs.LinuxSeccompFlag{flagTsync}, unix.SECCOMP_FILTER_FLAG_TSYNC},
		{[]specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog}, unix.SECCOMP_FILTER_FLAG_LOG},
		{[]specs.LinuxSeccompFlag{specs.LinuxSeccompFlagSpecAllow}, unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW},
		{[]specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, flagTsync, specs.LinuxSeccompFlagSpecAllow}, 0x7},
	}
	for _, tt := range tests {
		got, err := filterFlags(tt.flags)
		if err != nil || got != tt.want {
			t.Errorf("filterFlags(%v) = %#x, %v; want %#x", tt.flags, got, err, tt.want)
		}
	}
}

// The constants of this package are written out by hand; they must agree
// with the kernel UAPI values published in x/sys/unix.
func TestConstantsMatchUAPI(t *testing.T) {
	pairs := []struct {
		name      string
		got, want uint64
	}{
		{"SECCOMP_RET_KILL_PROCESS", uint64(retKillProcess), unix.SECCOMP_RET_KILL_PROCESS},
		{"SECCOMP_RET_KILL_THREAD", uint64(retKillThread), unix.SECCOMP_RET_KILL_THREAD},
		{"SECCOMP_RET_TRAP", uint64(retTrap), unix.SECCOMP_RET_TRAP},
		{"SECCOMP_RET_ERRNO", uint64(retErrno), unix.SECCOMP_RET_ERRNO},
		{"SECCOMP_RET_USER_NOTIF", uint64(retUserNotif), unix.SECCOMP_RET_USER_NOTIF},
		{"SECCOMP_RET_TRACE", uint64(retTrace), unix.SECCOMP_RET_TRACE},
		{"SECCOMP_RET_LOG", uint64(retLog), unix.SECCOMP_RET_LOG},
		{"SECCOMP_RET_ALLOW", uint64(retAllow), unix.SECCOMP_RET_ALLOW},
		{"SECCOMP_RET_DATA", uint64(retData), unix.SECCOMP_RET_DATA},
		{"AUDIT_ARCH_X86_64", uint64(auditArchX86_64), unix.AUDIT_ARCH_X86_64},
		{"AUDIT_ARCH_I386", uint64(auditArchI386), unix.AUDIT_ARCH_I386},
		{"AUDIT_ARCH_AARCH64", uint64(auditArchAArch64), unix.AUDIT_ARCH_AARCH64},
		{"EPERM", errnoEPERM, uint64(unix.EPERM)},
		{"ENOSYS", errnoENOSYS, uint64(unix.ENOSYS)},
		{"CLONE_NEWNS", cloneNewNS, unix.CLONE_NEWNS},
		{"CLONE_NEWUSER", cloneNewUser, unix.CLONE_NEWUSER},
		{"CLONE_NEWNET", cloneNewNet, unix.CLONE_NEWNET},
		{"AF_VSOCK", afVsock, unix.AF_VSOCK},
		{"AF_ALG", afAlg, unix.AF_ALG},
		{"AF_PACKET", afPacket, unix.AF_PACKET},
		{"thread clone flags", threadFlags, unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND |
			unix.CLONE_THREAD | unix.CLONE_SYSVSEM | unix.CLONE_SETTLS | unix.CLONE_PARENT_SETTID | unix.CLONE_CHILD_CLEARTID},
	}
	for _, p := range pairs {
		if p.got != p.want {
			t.Errorf("%s = %#x, UAPI has %#x", p.name, p.got, p.want)
		}
	}
}
