package seccomp

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

func TestProgramRoundTrip(t *testing.T) {
	s := &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{specs.ArchX86_64},
		Flags:         []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write", "exit_group"}, Action: specs.ActAllow},
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 8, Op: specs.OpEqualTo}}},
		},
	}
	want, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Prepare(s)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back Program
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	got, err := back.instructions()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("program changed through JSON: %d vs %d instructions", len(got), len(want))
	}
	if back.Flags == 0 {
		t.Error("SECCOMP_FILTER_FLAG_LOG lost")
	}
	if _, err := (&Program{Insns: []byte{1, 2, 3}}).instructions(); err == nil {
		t.Error("a truncated program was accepted")
	}
	if _, err := Prepare(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/x"}); err == nil {
		t.Error("a listener path was accepted")
	}
}
