package runtime

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestRunHookGetsStateOnStdin(t *testing.T) {
	out := filepath.Join(t.TempDir(), "state")
	h := specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + out + "; echo $FOO >> " + out}, Env: []string{"FOO=bar"}}
	st := &specs.State{Version: specs.Version, ID: "c1", Status: specs.StateCreated, Pid: 42, Bundle: "/b"}
	if err := runHook(context.Background(), h, st); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	var got specs.State
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("hook stdin is not the state JSON: %q", data)
	}
	rest, _ := io.ReadAll(dec.Buffered())
	if got.ID != "c1" || got.Pid != 42 || got.Status != specs.StateCreated {
		t.Errorf("state = %+v", got)
	}
	if strings.TrimSpace(string(rest)) != "bar" {
		t.Errorf("hook env not applied: %q", rest)
	}
}

func TestRunHookFailureAndTimeout(t *testing.T) {
	st := &specs.State{ID: "c1"}
	if err := runHook(context.Background(), specs.Hook{Path: "/bin/false"}, st); err == nil {
		t.Error("failing hook reported success")
	}
	one := 1
	err := runHook(context.Background(), specs.Hook{Path: "/bin/sleep", Args: []string{"sleep", "5"}, Timeout: &one}, st)
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("err = %v, want a timeout", err)
	}
	zero := 0
	if err := runHook(context.Background(), specs.Hook{Path: "/bin/true", Timeout: &zero}, st); err == nil {
		t.Error("zero timeout accepted")
	}
}
