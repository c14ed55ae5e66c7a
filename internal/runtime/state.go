package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/berth-dev/berth/internal/atomicfile"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Files in a container's state directory (<root>/<id>/).
const (
	stateFile  = "state.json"
	configFile = "config.json" // the spec as it was at create time
	fifoFile   = "exec.fifo"   // exists from create until start
)

// record is what the runtime persists about a container between commands.
type record struct {
	ID          string            `json:"id"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Pid         int               `json:"pid"`
	PidStart    uint64            `json:"pidStart"` // start time of Pid, guards against PID reuse
	Created     time.Time         `json:"created"`
	CgroupPaths map[string]string `json:"cgroupPaths,omitempty"`
	CgroupV2    bool              `json:"cgroupV2,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func writeJSONAtomic(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, 0o600)
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// procStartTime returns field 22 of /proc/<pid>/stat (start time in clock
// ticks since boot) and whether the process is a zombie or dead.
func procStartTime(pid int) (start uint64, zombie bool, err error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false, err
	}
	// The command name is in parentheses and may contain spaces.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, false, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(data[i+1:]))
	// fields[0] is the state (field 3), so field 22 is fields[19].
	if len(fields) < 20 {
		return 0, false, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	start, err = strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, false, err
	}
	return start, fields[0] == "Z" || fields[0] == "X", nil
}

// alive reports whether the recorded init process still runs (not reaped, not
// a zombie, and not a different process that reused the PID).
func (r *record) alive() bool {
	if r.Pid <= 0 {
		return false
	}
	start, zombie, err := procStartTime(r.Pid)
	return err == nil && !zombie && start == r.PidStart
}

// ErrNotExist is returned for a container ID the runtime does not know.
var ErrNotExist = errors.New("container does not exist")

// ErrExist is returned by Create for an ID already in use.
var ErrExist = errors.New("container with the given ID already exists")

// validID accepts the IDs runc accepts: letters, digits and _+-. , no path
// separators, not "." or "..".
func validID(id string) error {
	if id == "" || id == "." || id == ".." || len(id) > 1024 {
		return fmt.Errorf("invalid container ID %q", id)
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.ContainsRune("_+-.", c):
		default:
			return fmt.Errorf("invalid container ID %q: only [a-zA-Z0-9_+.-] allowed", id)
		}
	}
	return nil
}

// stateOf is the OCI state of a container with the given status.
func stateOf(r *record, status specs.ContainerState) *specs.State {
	s := &specs.State{
		Version:     specs.Version,
		ID:          r.ID,
		Status:      status,
		Bundle:      r.Bundle,
		Annotations: r.Annotations,
	}
	if status != specs.StateStopped {
		s.Pid = r.Pid
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// reap collects the exit status of a dead init process when the caller is its
// parent, so that no zombie stays behind; otherwise it does nothing. The
// init of a PID namespace is a zombie for a moment before its parent can
// collect it (the kernel first tears the namespace down), so a parent polls
// briefly.
func reap(ctx context.Context, r *record) {
	if r.Pid <= 0 {
		return
	}
	for delay := 50 * time.Microsecond; ; delay = min(2*delay, 5*time.Millisecond) {
		start, zombie, err := procStartTime(r.Pid)
		if err != nil || !zombie || start != r.PidStart {
			return
		}
		var ws unix.WaitStatus
		if pid, err := unix.Wait4(r.Pid, &ws, unix.WNOHANG, nil); pid != 0 || err != nil {
			return // collected, or not our child
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}
