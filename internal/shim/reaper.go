package shim

import (
	"encoding/binary"
	"errors"
	"os"
	"os/signal"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// reaper collects the exit of every child of the shim. The shim is a child
// subreaper, so besides the container's init and exec'd processes (which
// the runtime's PID-namespace dance re-parents to it) it inherits orphans of
// containers without a PID namespace; those are reaped as they die.
//
// Each tracked process has a collect function, called from the reaper's
// goroutine once the process is a zombie (it calls the runtime's Wait,
// which then returns at once). Runtime calls that start processes and wait
// for them themselves (create, exec, hooks) run inside spawn: while any
// does, untracked zombies are left alone, since they may be theirs.
type reaper struct {
	mu      sync.Mutex
	tracked map[int]func()
	busy    sync.RWMutex
	kick    chan os.Signal
}

func newReaper() *reaper {
	r := &reaper{tracked: map[int]func(){}, kick: make(chan os.Signal, 1)}
	signal.Notify(r.kick, unix.SIGCHLD)
	go func() {
		for range r.kick {
			r.collect()
		}
	}()
	return r
}

// spawn runs fn, which may start and wait for children of its own.
func (r *reaper) spawn(fn func()) {
	r.busy.RLock()
	defer r.poke()
	defer r.busy.RUnlock()
	fn()
}

// track registers collect for pid; call it from inside spawn, before the
// process can be reaped as an orphan.
func (r *reaper) track(pid int, collect func()) {
	r.mu.Lock()
	r.tracked[pid] = collect
	r.mu.Unlock()
}

// poke makes the reaper look for zombies again.
func (r *reaper) poke() {
	select {
	case r.kick <- unix.SIGCHLD:
	default:
	}
}

// collect handles every child that has exited.
func (r *reaper) collect() {
	for {
		pid, err := waitable()
		if err != nil || pid == 0 {
			return
		}
		r.mu.Lock()
		fn := r.tracked[pid]
		delete(r.tracked, pid)
		r.mu.Unlock()
		if fn != nil {
			fn()
			continue
		}
		if !r.busy.TryLock() {
			return // maybe a runtime call's own child; poked when it is done
		}
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		r.busy.Unlock()
	}
}

// siginfoPidOffset is where si_pid is in a siginfo_t: after three ints, in
// a union aligned like a pointer.
const siginfoPidOffset = (12 + unsafe.Sizeof(uintptr(0)) - 1) &^ (unsafe.Sizeof(uintptr(0)) - 1)

// waitable returns a child that has exited without reaping it (0 if none).
func waitable() (int, error) {
	var si unix.Siginfo
	for {
		err := unix.Waitid(unix.P_ALL, 0, &si, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, err
		}
		break
	}
	if si.Signo != int32(unix.SIGCHLD) {
		return 0, nil
	}
	raw := (*[unsafe.Sizeof(si)]byte)(unsafe.Pointer(&si))
	return int(int32(binary.NativeEndian.Uint32(raw[siginfoPidOffset:]))), nil
}
