package shim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/logger/jsonfile"
	"github.com/berth-dev/berth/internal/runtime"
	"golang.org/x/sys/unix"
)

// shim is the monitor of one container.
type shim struct {
	cfg   Config
	ctr   *runtime.Container
	reap  *reaper
	log   *jsonfile.Writer
	logs  []io.Closer // the line writers of stdout and stderr
	out   *output     // the init's output
	stdin *stdin      // the init's stdin (nil without OpenStdin)
	tty   *os.File    // the init's pty master

	mu     sync.Mutex
	execs  map[string]*execProc
	status ExitStatus
	ready  chan struct{} // closed once the output is being copied
	exited chan struct{} // closed once status is final and the container deleted

	handlers sync.WaitGroup
}

// Main runs a shim. args are the command-line arguments after the word that
// selected it; the last one is the state directory. It returns the process'
// exit code: 0 once the container has exited and been cleaned up. The
// binary is also the runtime's container init: its main handles
// runtime.IsInit before dispatching to Main.
func Main(args []string) int {
	// A shim idles most of its life: keep its heap and threads small.
	debug.SetGCPercent(25)
	goruntime.GOMAXPROCS(2)
	// Descriptor 3 came without close-on-exec: keep it out of containers.
	unix.CloseOnExec(readyFd)
	ready := os.NewFile(readyFd, "ready")
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)))

	fail := func(err error) int {
		slog.Error("shim", "error", err)
		_ = writeLine(ready, reply{Error: err.Error()})
		return 1
	}
	if len(args) == 0 {
		return fail(errors.New("shim: state directory argument missing"))
	}
	stateDir := args[len(args)-1]
	var cfg Config
	data, err := os.ReadFile(filepath.Join(stateDir, configFile))
	if err != nil {
		return fail(err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fail(fmt.Errorf("%s: %w", configFile, err))
	}
	cfg.StateDir = stateDir
	// The shim outlives whoever started it; it is the one to end with the
	// container, never because of a signal.
	signal.Ignore(unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGPIPE,
		unix.SIGUSR1, unix.SIGUSR2, unix.SIGTTIN, unix.SIGTTOU, unix.SIGTSTP)
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fail(fmt.Errorf("shim: set child subreaper: %w", err))
	}

	s := &shim{cfg: cfg, execs: map[string]*execProc{}, ready: make(chan struct{}), exited: make(chan struct{}), reap: newReaper()}
	ln, err := s.setup()
	if err != nil {
		return fail(err)
	}
	if err := writeLine(ready, reply{Pid: s.ctr.Pid()}); err != nil {
		// Whoever started us gave up: do not leave a container behind.
		slog.Error("shim: report ready", "error", err)
		s.abort(ln)
		return 1
	}
	ready.Close()
	// Return the set-up's heap to the system once the container runs, not
	// on the path of the start request that the daemon sends right away.
	freeMem := time.AfterFunc(time.Second, debug.FreeOSMemory)
	defer freeMem.Stop()

	served := make(chan struct{})
	go func() {
		s.serve(ln)
		close(served)
	}()
	<-s.exited
	ln.Close()
	<-served
	_ = os.Remove(filepath.Join(stateDir, sockFile))
	_ = os.Remove(filepath.Join(stateDir, pidFile))
	s.waitHandlers(drainTimeout)
	return 0
}

// setup creates the container with its stdio and starts listening.
func (s *shim) setup() (_ *net.UnixListener, retErr error) {
	cfg := s.cfg
	rt, err := runtime.New(cfg.RuntimeRoot)
	if err != nil {
		return nil, err
	}
	if cfg.InitPath != "" {
		rt.InitPath, rt.InitArgs = cfg.InitPath, cfg.InitArgs
	}
	spec, err := runtime.LoadSpec(cfg.Bundle)
	if err != nil {
		return nil, err
	}
	spec.Process.Terminal = cfg.Terminal

	var closers []io.Closer // closed on failure
	defer func() {
		if retErr != nil {
			for _, c := range closers {
				c.Close()
			}
		}
	}()
	if cfg.LogPath != "" {
		if s.log, err = jsonfile.NewWriter(cfg.LogPath); err != nil {
			return nil, err
		}
		closers = append(closers, s.log)
	}

	s.out = newOutput(!cfg.Terminal)
	pp, err := newPipes(cfg.OpenStdin && !cfg.Terminal, !cfg.Terminal, !cfg.Terminal)
	if err != nil {
		return nil, err
	}
	defer pp.closeTheirs()
	closers = append(closers, closerFunc(pp.closeOurs))
	if pp.stdin != nil {
		s.stdin = &stdin{f: pp.stdin, once: cfg.StdinOnce}
	}
	var master *os.File
	opts := runtime.CreateOpts{IO: pp.theirs, Console: func(m *os.File) { master = m }}

	s.reap.spawn(func() {
		s.ctr, err = rt.CreateFromSpec(context.Background(), cfg.ID, cfg.Bundle, spec, opts)
		if err == nil {
			s.reap.track(s.ctr.Pid(), s.initExited)
		}
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			s.deleteContainer()
		}
	}()
	if master != nil {
		if s.tty, err = pollable(master); err != nil {
			return nil, err
		}
		closers = append(closers, s.tty)
		if cfg.OpenStdin {
			s.stdin = &stdin{f: s.tty, tty: true, once: cfg.StdinOnce}
		}
	}

	old := unix.Umask(0o177) // the socket is the owner's only
	_ = os.Remove(filepath.Join(cfg.StateDir, sockFile))
	sock, release, err := sockAddr(cfg.StateDir)
	if err != nil {
		unix.Umask(old)
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	release()
	unix.Umask(old)
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(false)
	closers = append(closers, ln)
	if err := atomicfile.WriteFile(filepath.Join(cfg.StateDir, pidFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.Remove(sock)
		return nil, err
	}

	s.out.pumpAll(s.tty, pp, s.logWriter("stdout"), s.logWriter("stderr"))
	close(s.ready)
	return ln, nil
}

type closerFunc func()

func (f closerFunc) Close() error {
	f()
	return nil
}

// logWriter returns the log's line writer for stream, nil without a log.
func (s *shim) logWriter(stream string) io.Writer {
	if s.log == nil {
		return nil
	}
	w := jsonfile.NewLineWriter(s.log, stream)
	s.logs = append(s.logs, w)
	return w
}

// abort undoes setup when the shim cannot report it.
func (s *shim) abort(ln *net.UnixListener) {
	ln.Close()
	_ = os.Remove(filepath.Join(s.cfg.StateDir, sockFile))
	_ = os.Remove(filepath.Join(s.cfg.StateDir, pidFile))
	s.deleteContainer()
}

func (s *shim) deleteContainer() {
	s.reap.spawn(func() {
		if err := s.ctr.Delete(context.Background(), true); err != nil {
			slog.Error("shim: delete container", "id", s.cfg.ID, "error", err)
		}
	})
}

// initExited runs in the reaper once the container's init is a zombie.
func (s *shim) initExited() {
	st, err := s.ctr.Wait(context.Background())
	go s.finish(st, err)
}

// finish records the exit of the container and cleans up after it.
func (s *shim) finish(st runtime.ExitStatus, waitErr error) {
	<-s.ready
	s.out.drain(drainTimeout)
	for _, w := range s.logs {
		_ = w.Close()
	}
	if s.log != nil {
		_ = s.log.Close()
	}
	s.stdin.close()
	es := ExitStatus{ExitCode: st.Code, OOMKilled: st.OOMKilled, FinishedAt: time.Now().UTC()}
	if waitErr != nil {
		es.ExitCode, es.Error = 255, waitErr.Error()
	}
	data, _ := json.Marshal(es)
	if err := atomicfile.WriteFile(filepath.Join(s.cfg.StateDir, exitFile), data, 0o644); err != nil {
		slog.Error("shim: record exit status", "error", err)
	}
	s.deleteContainer()
	s.waitExecs(drainTimeout)

	s.mu.Lock()
	s.status = es
	close(s.exited)
	s.mu.Unlock()
	s.out.close()
}

// waitExecs gives exec'd processes (killed with the container) a moment to
// be collected, so that their waiters get a status.
func (s *shim) waitExecs(timeout time.Duration) {
	s.mu.Lock()
	var pending []chan struct{}
	for _, p := range s.execs {
		pending = append(pending, p.done)
	}
	s.mu.Unlock()
	deadline := time.After(timeout)
	for _, done := range pending {
		select {
		case <-done:
		case <-deadline:
			return
		}
	}
}

// waitHandlers lets the connections being served send their last answers.
func (s *shim) waitHandlers(timeout time.Duration) {
	done := make(chan struct{})
	go func() {
		s.handlers.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
	}
}

// serve accepts connections until the listener is closed.
func (s *shim) serve(ln *net.UnixListener) {
	for {
		conn, err := ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			slog.Error("shim: accept", "error", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s.handlers.Add(1)
		go func() {
			defer s.handlers.Done()
			defer conn.Close()
			s.handle(conn)
		}()
	}
}

// handle serves the one request of a connection.
func (s *shim) handle(conn *net.UnixConn) {
	br := bufio.NewReader(conn)
	var req request
	if err := readLine(br, &req); err != nil {
		_ = writeLine(conn, reply{Error: fmt.Sprintf("bad request: %v", err)})
		return
	}
	switch req.Op {
	case "state":
		_ = writeLine(conn, reply{Pid: s.ctr.Pid(), ShimPid: os.Getpid()})
	case "start":
		var err error
		s.reap.spawn(func() { err = s.ctr.Start(context.Background()) })
		answer(conn, reply{Pid: s.ctr.Pid()}, err)
	case "attach":
		s.stream(conn, br, s.out, s.stdin, req, reply{})
	case "resize":
		answer(conn, reply{}, s.resize(req))
	case "wait":
		select {
		case <-s.exited:
			_ = writeLine(conn, s.status)
		case <-clientGone(br):
		}
	case "exec":
		s.exec(conn, br, req)
	case "exec-wait":
		s.execWait(conn, br, req.ID)
	default:
		_ = writeLine(conn, reply{Error: fmt.Sprintf("unknown op %q", req.Op)})
	}
}

// answer sends ok, or err when not nil.
func answer(conn net.Conn, ok reply, err error) {
	if err != nil {
		ok = reply{Error: err.Error()}
	}
	_ = writeLine(conn, ok)
}

// clientGone is closed when the client sends anything more, or goes away,
// while it should be waiting for an answer.
func clientGone(r io.Reader) <-chan struct{} {
	gone := make(chan struct{})
	go func() {
		_, _ = r.Read(make([]byte, 1))
		close(gone)
	}()
	return gone
}

// attach streams the container's output to conn and conn to its stdin.

func (s *shim) resize(req request) error {
	tty := s.tty
	if req.Exec != "" {
		s.mu.Lock()
		p := s.execs[req.Exec]
		s.mu.Unlock()
		if p == nil {
			return fmt.Errorf("No such exec instance: %s", req.Exec)
		}
		tty = p.tty
	}
	if tty == nil {
		return errors.New("cannot resize: the process has no terminal")
	}
	return resize(tty, req.Height, req.Width)
}
