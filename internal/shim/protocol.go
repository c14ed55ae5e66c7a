package shim

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Files in a shim's state directory.
const (
	configFile = "shim.json"
	logFile    = "shim.log"
	sockFile   = "shim.sock"
	pidFile    = "shim.pid"
	exitFile   = "exit.json"
)

// readyFd is the descriptor on which a new shim reports readiness.
const readyFd = 3

// drainTimeout bounds how long output is read after a process has exited:
// a stray process holding the pipes or the pty must not hold up the exit.
const drainTimeout = 2 * time.Second

// maxRequest bounds a request line.
const maxRequest = 1 << 20

// Config is what a shim runs; New stores it as shim.json.
type Config struct {
	ID          string `json:"id"`
	Bundle      string `json:"bundle"`
	RuntimeRoot string `json:"runtimeRoot"`
	StateDir    string `json:"stateDir"`
	// LogPath is the container's json-file log; empty for none.
	LogPath string `json:"logPath,omitempty"`
	// Terminal gives the container a pty (it overrides process.terminal
	// of the bundle's config.json).
	Terminal  bool `json:"terminal,omitempty"`
	OpenStdin bool `json:"openStdin,omitempty"`
	StdinOnce bool `json:"stdinOnce,omitempty"`
	// InitPath and InitArgs are what the runtime re-executes as the
	// container's init; empty for the runtime's defaults.
	InitPath string   `json:"initPath,omitempty"`
	InitArgs []string `json:"initArgs,omitempty"`
}

// ExitStatus is how a container ended, as recorded in exit.json.
type ExitStatus struct {
	ExitCode   int       `json:"exitCode"`
	OOMKilled  bool      `json:"oomKilled"`
	FinishedAt time.Time `json:"finishedAt"`
	// Error says why the status could not be collected (ExitCode is then
	// 255); empty normally.
	Error string `json:"error"`
}

// ExecOpts describes a process to run in the container.
type ExecOpts struct {
	ID                    string
	Process               *specs.Process
	Stdin, Stdout, Stderr bool
}

// request is the one JSON line a client sends.
type request struct {
	Op      string         `json:"op"`
	ID      string         `json:"id,omitempty"`
	Process *specs.Process `json:"process,omitempty"`
	Stdin   bool           `json:"stdin,omitempty"`
	Stdout  bool           `json:"stdout,omitempty"`
	Stderr  bool           `json:"stderr,omitempty"`
	Height  uint           `json:"height,omitempty"`
	Width   uint           `json:"width,omitempty"`
	Exec    string         `json:"exec,omitempty"`
}

// reply is the shim's answer to every op but wait, which answers with an
// ExitStatus.
type reply struct {
	Error    string `json:"error,omitempty"`
	Pid      int    `json:"pid,omitempty"`
	ShimPid  int    `json:"shimPid,omitempty"`
	ExitCode *int   `json:"exitCode,omitempty"`
}

// writeLine sends v as one JSON line.
func writeLine(w io.Writer, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(data, '\n'))
	return err
}

// readLine reads one JSON line into v; a line longer than maxRequest is an
// error.
func readLine(r *bufio.Reader, v any) error {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxRequest {
			return errors.New("request too long")
		}
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) && len(line) > 0 {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return json.Unmarshal(line, v)
}

// frame appends Docker's stdcopy header for a payload of n bytes of stream.
func frame(dst []byte, stream stdcopy.StdType, n int) []byte {
	var hdr [8]byte
	hdr[0] = byte(stream)
	binary.BigEndian.PutUint32(hdr[4:], uint32(n))
	return append(dst, hdr[:]...)
}

// ReadExit returns the exit status recorded in stateDir, or an error
// matching fs.ErrNotExist while the container has not exited.
func ReadExit(stateDir string) (*ExitStatus, error) {
	data, err := os.ReadFile(filepath.Join(stateDir, exitFile))
	if err != nil {
		return nil, err
	}
	var st ExitStatus
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", exitFile, err)
	}
	return &st, nil
}

// maxSockPath is the longest path a unix socket address can hold.
const maxSockPath = 107

// sockAddr returns an address for the socket in stateDir. A state
// directory deeper than a unix socket address can name is reached
// through a descriptor of the directory (/proc/self/fd/N/shim.sock);
// release closes it once the socket is bound or connected.
func sockAddr(stateDir string) (addr string, release func(), err error) {
	p := filepath.Join(stateDir, sockFile)
	if len(p) <= maxSockPath {
		return p, func() {}, nil
	}
	fd, err := unix.Open(stateDir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, &os.PathError{Op: "open", Path: stateDir, Err: err}
	}
	return fmt.Sprintf("/proc/self/fd/%d/%s", fd, sockFile), func() { unix.Close(fd) }, nil
}
