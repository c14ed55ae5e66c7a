package cgroups

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// devAccess is a set of device permissions, with the bit values of the
// kernel's BPF_DEVCG_ACC_* constants.
type devAccess uint8

const (
	accMknod devAccess = 1 << iota
	accRead
	accWrite

	accAll = accMknod | accRead | accWrite
)

func parseAccess(s string) (devAccess, error) {
	if s == "" {
		// An omitted access means every access, as in crun.
		return accAll, nil
	}
	var a devAccess
	for _, c := range s {
		switch c {
		case 'r':
			a |= accRead
		case 'w':
			a |= accWrite
		case 'm':
			a |= accMknod
		default:
			return 0, fmt.Errorf("invalid device access %q", s)
		}
	}
	return a, nil
}

func (a devAccess) String() string {
	var b strings.Builder
	if a&accRead != 0 {
		b.WriteByte('r')
	}
	if a&accWrite != 0 {
		b.WriteByte('w')
	}
	if a&accMknod != 0 {
		b.WriteByte('m')
	}
	return b.String()
}

// wildcard is the major or minor number matching every device.
const wildcard = -1

// devException is an entry that departs from a devicePolicy's default.
type devException struct {
	typ          byte // 'c' or 'b'
	major, minor int64
	access       devAccess
}

// String renders the entry in the format of devices.allow and devices.deny.
func (e devException) String() string {
	num := func(n int64) string {
		if n == wildcard {
			return "*"
		}
		return strconv.FormatInt(n, 10)
	}
	return fmt.Sprintf("%c %s:%s %s", e.typ, num(e.major), num(e.minor), e.access)
}

func (e devException) matches(typ byte, major, minor int64) bool {
	return e.typ == typ &&
		(e.major == wildcard || e.major == major) &&
		(e.minor == wildcard || e.minor == minor)
}

// devicePolicy is the effective device access of a cgroup, in the form the
// v1 devices controller keeps it: a default (allow or deny everything) and
// exceptions to it. The same policy is compiled into the v2 eBPF program,
// so both versions enforce a rule list identically.
type devicePolicy struct {
	defaultAllow bool
	exceptions   []devException
}

// buildDevicePolicy evaluates an OCI device rule list in order, starting
// from "deny everything", the way the v1 kernel controller does when the
// rules are written one by one:
//
//   - a rule for every device ("a", no numbers, "rwm") resets the policy to
//     allow or deny all with no exceptions;
//   - a rule whose verdict differs from the default adds an exception,
//     merging its access into an exception for the same device;
//   - a rule whose verdict equals the default removes its access from an
//     exception for exactly the same device.
//
// An "a" rule with numbers or partial access stands for the same rule on
// both char and block devices, rather than the kernel's literal reading of
// "a" which ignores numbers and access and would widen such a rule to
// everything.
func buildDevicePolicy(rules []specs.LinuxDeviceCgroup) (devicePolicy, error) {
	var p devicePolicy
	for i, r := range rules {
		access, err := parseAccess(r.Access)
		if err != nil {
			return p, fmt.Errorf("device rule %d: %w", i, err)
		}
		major, minor := int64(wildcard), int64(wildcard)
		if r.Major != nil {
			major = *r.Major
		}
		if r.Minor != nil {
			minor = *r.Minor
		}
		for _, n := range []int64{major, minor} {
			if n < wildcard || n > math.MaxInt32 {
				return p, fmt.Errorf("device rule %d: invalid device number %d", i, n)
			}
		}
		var types []byte
		switch r.Type {
		case "", "a":
			if major == wildcard && minor == wildcard && access == accAll {
				p = devicePolicy{defaultAllow: r.Allow}
				continue
			}
			types = []byte{'c', 'b'}
		case "c", "b":
			types = []byte{r.Type[0]}
		default:
			return p, fmt.Errorf("device rule %d: invalid device type %q", i, r.Type)
		}
		for _, t := range types {
			p.apply(devException{typ: t, major: major, minor: minor, access: access}, r.Allow)
		}
	}
	return p, nil
}

func (p *devicePolicy) apply(e devException, allow bool) {
	for i := range p.exceptions {
		x := &p.exceptions[i]
		if x.typ != e.typ || x.major != e.major || x.minor != e.minor {
			continue
		}
		if allow != p.defaultAllow {
			x.access |= e.access
			return
		}
		x.access &^= e.access
		if x.access == 0 {
			p.exceptions = append(p.exceptions[:i], p.exceptions[i+1:]...)
		}
		return
	}
	if allow != p.defaultAllow {
		p.exceptions = append(p.exceptions, e)
	}
}

// allows reports whether the policy permits access to a device, with the
// matching semantics of the kernel: on an allow list the requested access
// must be covered by a single exception; on a deny list any overlap with an
// exception denies.
func (p devicePolicy) allows(typ byte, major, minor int64, access devAccess) bool {
	for _, e := range p.exceptions {
		if !e.matches(typ, major, minor) {
			continue
		}
		if p.defaultAllow {
			if access&e.access != 0 {
				return false
			}
		} else if access&e.access == access {
			return true
		}
	}
	return p.defaultAllow
}

// v1Writes returns the (file, value) writes that establish the policy in a
// v1 devices cgroup: first the default, then every exception.
func (p devicePolicy) v1Writes() [][2]string {
	defFile, exFile := "devices.deny", "devices.allow"
	if p.defaultAllow {
		defFile, exFile = "devices.allow", "devices.deny"
	}
	out := [][2]string{{defFile, "a"}}
	for _, e := range p.exceptions {
		out = append(out, [2]string{exFile, e.String()})
	}
	return out
}
