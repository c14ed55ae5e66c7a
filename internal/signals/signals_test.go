package signals

import (
	"testing"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want unix.Signal
		ok   bool
	}{
		{"9", unix.SIGKILL, true}, {"KILL", unix.SIGKILL, true}, {"kill", unix.SIGKILL, true}, {"sigterm", unix.SIGTERM, true},
		{"SIGTERM", unix.SIGTERM, true}, {"SIGUSR1", unix.SIGUSR1, true}, {"USR1", unix.SIGUSR1, true},
		{"RTMIN", 34, true}, {"SIGRTMIN+3", 37, true}, {"RTMAX-1", 63, true}, {"RTMAX", 64, true},
		{"0", 0, false}, {"65", 0, false}, {"99", 0, false}, {"RTMIN+16", 0, false}, {"NOPE", 0, false}, {"SIGNOPE", 0, false}, {"", 0, false},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("Parse(%q) = %v, %v", tt.in, got, err)
		}
		if err != nil && !errdefs.IsInvalidArgument(err) {
			t.Errorf("Parse(%q): error %v is not an invalid argument", tt.in, err)
		}
	}
	if _, err := Parse("NOPE"); err == nil || err.Error() != "Invalid signal: NOPE: invalid argument" {
		t.Errorf("error text: %v", err)
	}
}
