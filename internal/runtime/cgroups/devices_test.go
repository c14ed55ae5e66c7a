package cgroups

import (
	"fmt"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func i64(v int64) *int64 { return &v }

func rule(allow bool, typ string, major, minor *int64, access string) specs.LinuxDeviceCgroup {
	return specs.LinuxDeviceCgroup{Allow: allow, Type: typ, Major: major, Minor: minor, Access: access}
}

func TestBuildDevicePolicy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rules  []specs.LinuxDeviceCgroup
		want   devicePolicy
		writes [][2]string
	}{
		{
			name:   "no rules denies everything",
			want:   devicePolicy{},
			writes: [][2]string{{"devices.deny", "a"}},
		},
		{
			name: "docker default style",
			rules: []specs.LinuxDeviceCgroup{
				rule(false, "", nil, nil, "rwm"),
				rule(true, "c", i64(1), i64(3), "rwm"),
				rule(true, "c", i64(1), i64(5), "r"),
				rule(true, "c", nil, nil, "m"),
			},
			want: devicePolicy{exceptions: []devException{
				{'c', 1, 3, accAll}, {'c', 1, 5, accRead}, {'c', -1, -1, accMknod},
			}},
			writes: [][2]string{
				{"devices.deny", "a"},
				{"devices.allow", "c 1:3 rwm"},
				{"devices.allow", "c 1:5 r"},
				{"devices.allow", "c *:* m"},
			},
		},
		{
			name: "allow all then deny one",
			rules: []specs.LinuxDeviceCgroup{
				rule(true, "a", nil, nil, "rwm"),
				rule(false, "b", i64(8), nil, "w"),
			},
			want: devicePolicy{defaultAllow: true, exceptions: []devException{{'b', 8, -1, accWrite}}},
			writes: [][2]string{
				{"devices.allow", "a"},
				{"devices.deny", "b 8:* w"},
			},
		},
		{
			name: "later allow-all resets earlier rules",
			rules: []specs.LinuxDeviceCgroup{
				rule(true, "c", i64(1), i64(3), "rwm"),
				rule(true, "a", i64(-1), i64(-1), ""),
			},
			want:   devicePolicy{defaultAllow: true},
			writes: [][2]string{{"devices.allow", "a"}},
		},
		{
			name: "accesses for one device merge",
			rules: []specs.LinuxDeviceCgroup{
				rule(true, "c", i64(1), i64(3), "r"),
				rule(true, "c", i64(1), i64(3), "w"),
			},
			want: devicePolicy{exceptions: []devException{{'c', 1, 3, accRead | accWrite}}},
		},
		{
			name: "deny removes access from an exact exception",
			rules: []specs.LinuxDeviceCgroup{
				rule(true, "c", i64(1), i64(3), "rwm"),
				rule(true, "c", i64(1), i64(5), "rw"),
				rule(false, "c", i64(1), i64(3), "w"),
				rule(false, "c", i64(1), i64(5), "rw"),
			},
			want: devicePolicy{exceptions: []devException{{'c', 1, 3, accRead | accMknod}}},
		},
		{
			name: "type a with numbers covers char and block",
			rules: []specs.LinuxDeviceCgroup{
				rule(true, "a", i64(7), nil, "r"),
			},
			want: devicePolicy{exceptions: []devException{{'c', 7, -1, accRead}, {'b', 7, -1, accRead}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := buildDevicePolicy(tc.rules)
			if err != nil {
				t.Fatal(err)
			}
			if got.defaultAllow != tc.want.defaultAllow || len(got.exceptions) != len(tc.want.exceptions) ||
				(len(got.exceptions) > 0 && !reflect.DeepEqual(got.exceptions, tc.want.exceptions)) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if tc.writes != nil {
				if w := got.v1Writes(); !reflect.DeepEqual(w, tc.writes) {
					t.Errorf("v1 writes %q, want %q", w, tc.writes)
				}
			}
		})
	}
}

func TestBuildDevicePolicyRejects(t *testing.T) {
	for name, r := range map[string]specs.LinuxDeviceCgroup{
		"bad type":     rule(true, "x", nil, nil, "r"),
		"bad access":   rule(true, "c", nil, nil, "rx"),
		"bad major":    rule(true, "c", i64(-2), nil, "r"),
		"huge minor":   rule(true, "c", i64(1), i64(1<<32), "r"),
		"pipe type":    rule(true, "p", nil, nil, "r"),
		"unknown verb": rule(true, "c", i64(1), i64(3), "R"),
	} {
		if _, err := buildDevicePolicy([]specs.LinuxDeviceCgroup{r}); err == nil {
			t.Errorf("%s: accepted %+v", name, r)
		}
	}
}

func TestDevicePolicyAllows(t *testing.T) {
	allowList, err := buildDevicePolicy([]specs.LinuxDeviceCgroup{
		rule(false, "a", nil, nil, "rwm"),
		rule(true, "c", i64(1), i64(3), "rwm"),
		rule(true, "c", i64(1), i64(5), "r"),
		rule(true, "c", i64(136), nil, "rw"),
	})
	if err != nil {
		t.Fatal(err)
	}
	denyList, err := buildDevicePolicy([]specs.LinuxDeviceCgroup{
		rule(true, "a", nil, nil, "rwm"),
		rule(false, "c", i64(1), i64(5), "w"),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name         string
		p            devicePolicy
		typ          byte
		major, minor int64
		access       devAccess
		want         bool
	}{
		{"null read-write", allowList, 'c', 1, 3, accRead | accWrite, true},
		{"zero read", allowList, 'c', 1, 5, accRead, true},
		{"zero read-write needs w as well", allowList, 'c', 1, 5, accRead | accWrite, false},
		{"full not listed", allowList, 'c', 1, 7, accRead, false},
		{"pty by major wildcard", allowList, 'c', 136, 4, accWrite, true},
		{"pty mknod not allowed", allowList, 'c', 136, 4, accMknod, false},
		{"block device with same numbers", allowList, 'b', 1, 3, accRead, false},
		{"deny list: zero read", denyList, 'c', 1, 5, accRead, true},
		{"deny list: zero read-write", denyList, 'c', 1, 5, accRead | accWrite, false},
		{"deny list: other device", denyList, 'b', 8, 0, accAll, true},
	} {
		if got := tc.p.allows(tc.typ, tc.major, tc.minor, tc.access); got != tc.want {
			t.Errorf("%s: allows = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestDeviceFilterProgramShape(t *testing.T) {
	p := devicePolicy{exceptions: []devException{{'c', 1, 3, accAll}, {'c', -1, -1, accMknod}}}
	insts := deviceFilterProgram(p)
	// The last instructions return the default verdict, 0 for an allow list.
	last := insts[len(insts)-2]
	if last.Constant != 0 || last.Symbol() != "exception_2" {
		t.Errorf("fallback instruction %v (symbol %q)", last, last.Symbol())
	}
	for i := range p.exceptions {
		found := false
		for _, ins := range insts {
			if ins.Symbol() == fmt.Sprintf("exception_%d", i) {
				found = true
			}
		}
		if !found {
			t.Errorf("no block for exception %d", i)
		}
	}
	allow := deviceFilterProgram(devicePolicy{defaultAllow: true})
	if len(allow) != 8 || allow[len(allow)-2].Constant != 1 {
		t.Errorf("allow-all program: %v", allow)
	}
}
