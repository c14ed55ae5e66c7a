package seccomp

import (
	"errors"
	"fmt"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// Return values of a seccomp filter (SECCOMP_RET_* in linux/seccomp.h).
const (
	retKillProcess uint32 = 0x80000000
	retKillThread  uint32 = 0x00000000
	retTrap        uint32 = 0x00030000
	retErrno       uint32 = 0x00050000
	retUserNotif   uint32 = 0x7fc00000
	retTrace       uint32 = 0x7ff00000
	retLog         uint32 = 0x7ffc0000
	retAllow       uint32 = 0x7fff0000

	// retData masks the action-specific data of a return value.
	retData uint32 = 0x0000ffff
)

// defaultErrno is the errno (and trace message) used by SCMP_ACT_ERRNO and
// SCMP_ACT_TRACE when errnoRet is not set (EPERM, as runc does).
const defaultErrno = 1

// ErrNotifyUnsupported is returned for profiles that need a seccomp user
// notification listener (SCMP_ACT_NOTIFY or listenerPath).
var ErrNotifyUnsupported = errors.New("seccomp user notification (SCMP_ACT_NOTIFY, listenerPath) is not supported")

// actionValue converts an OCI action and its optional errnoRet into the value
// the filter returns.
func actionValue(act specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	var (
		ret      uint32
		withData bool
	)
	switch act {
	case specs.ActKill, specs.ActKillThread:
		ret = retKillThread
	case specs.ActKillProcess:
		ret = retKillProcess
	case specs.ActTrap:
		ret = retTrap
	case specs.ActErrno:
		ret, withData = retErrno, true
	case specs.ActTrace:
		ret, withData = retTrace, true
	case specs.ActAllow:
		ret = retAllow
	case specs.ActLog:
		ret = retLog
	case specs.ActNotify:
		return 0, fmt.Errorf("action %s: %w", act, ErrNotifyUnsupported)
	case "":
		return 0, errors.New("action is empty")
	default:
		return 0, fmt.Errorf("unknown action %q", act)
	}
	if !withData {
		if errnoRet != nil {
			return 0, fmt.Errorf("errnoRet is only valid with %s and %s, not %s", specs.ActErrno, specs.ActTrace, act)
		}
		return ret, nil
	}
	data := uint(defaultErrno)
	if errnoRet != nil {
		data = *errnoRet
	}
	if data > uint(retData) {
		return 0, fmt.Errorf("%s: errnoRet %d does not fit in 16 bits", act, data)
	}
	return ret | uint32(data), nil
}
