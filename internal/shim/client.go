package shim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/berth-dev/berth/internal/atomicfile"
)

// Spawn says how to start a shim process: Exe with Args, to which New
// appends the state directory (berthd: /proc/self/exe with ["shim"]).
type Spawn struct {
	Exe  string
	Args []string
}

// Client is the daemon's handle on a shim. Each call uses a connection of
// its own; Close ends the connections still open, never the shim.
type Client struct {
	stateDir string
	pid      int
	shimPid  int

	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool
}

// Stream is the byte stream of an attach or exec: Read returns output
// (stdcopy-framed without a terminal), Write sends stdin, CloseWrite is
// stdin EOF.
type Stream interface {
	io.ReadWriteCloser
	CloseWrite() error
}

// New starts the shim of a container and returns once the container is
// created (not started), or with the shim's error, verbatim.
func New(ctx context.Context, cfg Config, sp Spawn) (*Client, error) {
	if cfg.ID == "" || cfg.Bundle == "" || cfg.StateDir == "" {
		return nil, errors.New("shim: ID, Bundle and StateDir are required")
	}
	dir, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	cfg.StateDir = dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// A restarted container starts without the previous run's status.
	if err := os.Remove(filepath.Join(dir, exitFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, configFile), data, 0o600); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(dir, logFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer readyR.Close()
	cmd := exec.Command(sp.Exe, append(append([]string(nil), sp.Args...), dir)...)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{readyW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	readyW.Close()
	if err != nil {
		return nil, fmt.Errorf("start shim: %w", err)
	}
	// The shim runs as long as its container; collect it whenever it ends.
	go func() { _ = cmd.Wait() }()

	// Giving up closes the pipe: the shim, unable to report, removes the
	// container and exits.
	stop := context.AfterFunc(ctx, func() { readyR.Close() })
	defer stop()
	var r reply
	if err := readLine(bufio.NewReader(readyR), &r); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("shim exited without reporting%s", logTail(filepath.Join(dir, logFile)))
	}
	if r.Error != "" {
		return nil, errors.New(r.Error)
	}
	return &Client{stateDir: dir, pid: r.Pid, shimPid: cmd.Process.Pid, conns: map[*conn]struct{}{}}, nil
}

// logTail returns ": " and the last line of a shim's log, if any.
func logTail(path string) string {
	data, _ := os.ReadFile(path)
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return ""
	}
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[i+1:]
	}
	return ": " + string(data)
}

// Connect returns a client for the running shim of stateDir (after a
// daemon restart). It fails when the shim is gone; ReadExit then tells how
// the container ended.
func Connect(stateDir string) (*Client, error) {
	dir, err := filepath.Abs(stateDir)
	if err != nil {
		return nil, err
	}
	c := &Client{stateDir: dir, conns: map[*conn]struct{}{}}
	var r reply
	conn, err := c.call(context.Background(), request{Op: "state"}, &r)
	if err != nil {
		return nil, fmt.Errorf("shim of %s is not running: %w", dir, err)
	}
	c.release(conn)
	c.pid, c.shimPid = r.Pid, r.ShimPid
	return c, nil
}

// Pid is the PID of the container's init process.
func (c *Client) Pid() int { return c.pid }

// ShimPid is the PID of the shim process.
func (c *Client) ShimPid() int { return c.shimPid }

// Close ends every connection of this client (streams and pending waits
// included). The shim and the container keep running.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for cn := range c.conns {
		cn.UnixConn.Close()
	}
	c.conns = nil
	return nil
}

// Start lets the container's program run.
func (c *Client) Start(ctx context.Context) error {
	conn, err := c.call(ctx, request{Op: "start"}, &reply{})
	c.release(conn)
	return err
}

// Attach connects to the container's stdio.
func (c *Client) Attach(ctx context.Context, stdin, stdout, stderr bool) (Stream, error) {
	conn, err := c.call(ctx, request{Op: "attach", Stdin: stdin, Stdout: stdout, Stderr: stderr}, &reply{})
	if err != nil {
		c.release(conn)
		return nil, err
	}
	return conn, nil
}

// Resize sets the terminal size of the container (execID empty) or of an
// exec'd process.
func (c *Client) Resize(ctx context.Context, execID string, h, w uint) error {
	conn, err := c.call(ctx, request{Op: "resize", Exec: execID, Height: h, Width: w}, &reply{})
	c.release(conn)
	return err
}

// Wait returns once the container has exited and been cleaned up. When
// the shim is already gone, the status comes from exit.json.
func (c *Client) Wait(ctx context.Context) (ExitStatus, error) {
	var st ExitStatus
	conn, err := c.call(ctx, request{Op: "wait"}, &st)
	c.release(conn)
	if err == nil {
		return st, nil
	}
	if ctx.Err() != nil {
		return ExitStatus{}, ctx.Err()
	}
	if saved, rerr := ReadExit(c.stateDir); rerr == nil {
		return *saved, nil
	}
	return ExitStatus{}, err
}

// Exec starts a process in the container and connects to its stdio.
func (c *Client) Exec(ctx context.Context, o ExecOpts) (Stream, int, error) {
	var r reply
	conn, err := c.call(ctx, request{Op: "exec", ID: o.ID, Process: o.Process, Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr}, &r)
	if err != nil {
		c.release(conn)
		return nil, 0, err
	}
	return conn, r.Pid, nil
}

// ExecWait returns the exit code of an exec'd process once it has exited.
func (c *Client) ExecWait(ctx context.Context, execID string) (int, error) {
	var r reply
	conn, err := c.call(ctx, request{Op: "exec-wait", ID: execID}, &r)
	c.release(conn)
	if err != nil {
		return 0, err
	}
	if r.ExitCode == nil {
		return 0, errors.New("shim: exec-wait answered without an exit code")
	}
	return *r.ExitCode, nil
}

// conn is a connection to the shim; after the reply it is a Stream.
type conn struct {
	*net.UnixConn
	c  *Client
	br *bufio.Reader
}

func (s *conn) Read(p []byte) (int, error) { return s.br.Read(p) }

func (s *conn) Close() error {
	s.c.release(s)
	return nil
}

// call sends req and decodes the reply into resp; a reply with an error
// becomes that error. ctx bounds the call, not the stream that follows.
func (c *Client) call(ctx context.Context, req request, resp any) (*conn, error) {
	var d net.Dialer
	addr, release, err := sockAddr(c.stateDir)
	if err != nil {
		return nil, err
	}
	nc, err := d.DialContext(ctx, "unix", addr)
	release()
	if err != nil {
		return nil, err
	}
	cn := &conn{UnixConn: nc.(*net.UnixConn), c: c, br: bufio.NewReader(nc)}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		nc.Close()
		return nil, errors.New("shim client is closed")
	}
	c.conns[cn] = struct{}{}
	c.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	if err := writeLine(nc, req); err != nil {
		return cn, ctxErr(ctx, err)
	}
	var raw json.RawMessage
	if err := readLine(cn.br, &raw); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("shim closed the connection during %s", req.Op)
		}
		return cn, ctxErr(ctx, err)
	}
	var e reply
	if err := json.Unmarshal(raw, &e); err == nil && e.Error != "" && req.Op != "wait" {
		return cn, errors.New(e.Error)
	}
	if err := json.Unmarshal(raw, resp); err != nil {
		return cn, fmt.Errorf("shim reply: %w", err)
	}
	return cn, nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// release closes conn and forgets it.
func (c *Client) release(cn *conn) {
	if cn == nil {
		return
	}
	cn.UnixConn.Close()
	c.mu.Lock()
	delete(c.conns, cn)
	c.mu.Unlock()
}
