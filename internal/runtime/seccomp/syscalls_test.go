package seccomp

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestSyscallTables(t *testing.T) {
	tests := []struct {
		arch *arch
		name string
		nr   uint32
		ok   bool
	}{
		{archX86_64, "read", 0, true},
		{archX86_64, "getcwd", 79, true},
		{archX86_64, "execve", 59, true},
		{archX86_64, "mkdirat", 258, true},
		{archX86_64, "clone3", 435, true},
		{archX86_64, "quotactl_fd", 443, true},
		{archX86_64, "listns", 470, true},
		{archX86_64, "_sysctl", 156, true},
		{archX86_64, "socketcall", 0, false},
		{archX86_64, "umount", 0, false},
		{archX86, "read", 3, true},
		{archX86, "execve", 11, true},
		{archX86, "umount", 22, true},
		{archX86, "socketcall", 102, true},
		{archX86, "clone", 120, true},
		{archX86, "_llseek", 140, true},
		{archX86, "socket", 359, true},
		{archX86, "clone3", 435, true},
		{archX86, "newfstatat", 0, false},
		{archX32, "read", x32SyscallBit | 0, true},
		{archX32, "clone3", x32SyscallBit | 435, true},
		{archX32, "rt_sigaction", x32SyscallBit | 512, true},
		{archX32, "execve", x32SyscallBit | 520, true},
		{archX32, "setsockopt", x32SyscallBit | 541, true},
		{archX32, "pwritev2", x32SyscallBit | 547, true},
		{archX32, "uselib", 0, false},
		{archX32, "_sysctl", 0, false},
		{archX32, "set_thread_area", 0, false},
	}
	for _, tt := range tests {
		nr, ok := tt.arch.table[tt.name]
		if ok != tt.ok || nr != tt.nr {
			t.Errorf("%s %s = %#x, %v; want %#x, %v", tt.arch.name, tt.name, nr, ok, tt.nr, tt.ok)
		}
	}

	for name, nr := range syscallsX32 {
		if nr&x32SyscallBit == 0 || nr&^x32SyscallBit >= 548 {
			t.Errorf("x32 %s has number %#x outside the x32 range", name, nr)
		}
		if n64, ok := syscallsX86_64[name]; !ok {
			t.Errorf("x32 %s does not exist on x86_64", name)
		} else if nr&^x32SyscallBit < 512 && nr&^x32SyscallBit != n64 {
			t.Errorf("x32 %s = %#x, x86_64 has %d", name, nr, n64)
		}
	}
	if n := len(syscallsX86_64) - len(syscallsX32); n != 11 {
		t.Errorf("x86_64 has %d syscalls without an x32 counterpart, want 11", n)
	}
}

// TestGeneratedTablesUpToDate regenerates the tables and compares them with
// the checked-in file.
func TestGeneratedTablesUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the generator")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not found")
	}
	out := filepath.Join(t.TempDir(), "zsyscalls.go")
	cmd := exec.Command(goTool, "run", "mksyscalls.go", "-o", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run mksyscalls.go: %v\n%s", err, msg)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("zsyscalls.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("zsyscalls.go is stale: run go generate")
	}
}
