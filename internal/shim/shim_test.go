package shim

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"golang.org/x/sys/unix"
)

func TestReadLine(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     string // the op read, or "" with wantErr
		wantErr  string
	}{
		{name: "one line", in: `{"op":"start"}` + "\n", want: "start"},
		{name: "bytes after the line stay", in: `{"op":"attach"}` + "\nstdin bytes", want: "attach"},
		{name: "end of file", in: "", wantErr: "EOF"},
		{name: "cut short", in: `{"op":"wa`, wantErr: "unexpected EOF"},
		{name: "not JSON", in: "hello\n", wantErr: "invalid character"},
		{name: "too long", in: `{"op":"` + strings.Repeat("x", maxRequest) + `"}` + "\n", wantErr: "request too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var req request
			err := readLine(bufio.NewReader(strings.NewReader(tc.in)), &req)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || req.Op != tc.want {
				t.Fatalf("got %q, %v; want %q", req.Op, err, tc.want)
			}
		})
	}
}

func TestReadExit(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadExit(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadExit before exit: %v", err)
	}
	when := time.Date(2026, 11, 27, 15, 4, 5, 123456789, time.UTC)
	data := `{"exitCode":7,"oomKilled":true,"finishedAt":"` + when.Format(time.RFC3339Nano) + `","error":""}`
	if err := os.WriteFile(filepath.Join(dir, exitFile), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := ReadExit(dir)
	if err != nil || st.ExitCode != 7 || !st.OOMKilled || !st.FinishedAt.Equal(when) {
		t.Fatalf("ReadExit = %+v, %v", st, err)
	}
}

// socketPair returns the two ends of a connected unix socket.
func socketPair(t *testing.T) (shimSide, clientSide net.Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) net.Conn {
		f := os.NewFile(uintptr(fd), "socket")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	return conn(fds[0]), conn(fds[1])
}

func TestOutputFramesAndSelectsStreams(t *testing.T) {
	for _, tc := range []struct {
		name           string
		framed         bool
		stdout, stderr bool
		wantOut        string
		wantErr        string
	}{
		{name: "both framed", framed: true, stdout: true, stderr: true, wantOut: "out1out2", wantErr: "err1"},
		{name: "stderr only", framed: true, stderr: true, wantErr: "err1"},
		{name: "stdout only", framed: true, stdout: true, wantOut: "out1out2"},
		{name: "raw (terminal)", framed: false, stdout: true, stderr: true, wantOut: "out1err1out2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOutput(tc.framed)
			mine, theirs := socketPair(t)
			sub := newSubscriber(mine, tc.framed, tc.stdout, tc.stderr)
			if !o.add(sub) {
				t.Fatal("add refused")
			}
			o.broadcast(stdcopy.Stdout, []byte("out1"))
			o.broadcast(stdcopy.Stderr, []byte("err1"))
			o.broadcast(stdcopy.Stdout, []byte("out2"))
			o.close()
			<-sub.gone
			mine.Close()
			var gotOut, gotErr bytes.Buffer
			if tc.framed {
				if _, err := stdcopy.StdCopy(&gotOut, &gotErr, theirs); err != nil {
					t.Fatal(err)
				}
			} else if _, err := io.Copy(&gotOut, theirs); err != nil {
				t.Fatal(err)
			}
			if gotOut.String() != tc.wantOut || gotErr.String() != tc.wantErr {
				t.Errorf("got %q / %q, want %q / %q", gotOut.String(), gotErr.String(), tc.wantOut, tc.wantErr)
			}
			if o.add(newSubscriber(mine, tc.framed, true, true)) {
				t.Error("add succeeded after the output ended")
			}
		})
	}
}

func TestOutputDropsFailingClient(t *testing.T) {
	o := newOutput(true)
	goneSide, goneClient := socketPair(t)
	okSide, okClient := socketPair(t)
	gone, ok := newSubscriber(goneSide, true, true, true), newSubscriber(okSide, true, true, true)
	o.add(gone)
	o.add(ok)
	goneClient.Close()
	goneSide.Close() // writes to it fail
	o.broadcast(stdcopy.Stdout, []byte("still here\n"))
	select {
	case <-gone.gone:
	default:
		t.Fatal("the failing client was kept")
	}
	o.close()
	okSide.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, io.Discard, okClient); err != nil || out.String() != "still here\n" {
		t.Errorf("the other client got %q, %v", out.String(), err)
	}
}

func TestDrainGivesUp(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close() // a stray holder: never closed during the drain
	o := newOutput(true)
	var log bytes.Buffer
	o.pump(r, stdcopy.Stdout, &log)
	w.Write([]byte("before the exit\n"))
	began := time.Now()
	o.drain(200 * time.Millisecond)
	if d := time.Since(began); d < 200*time.Millisecond || d > 5*time.Second {
		t.Errorf("drain took %v", d)
	}
	if log.String() != "before the exit\n" {
		t.Errorf("log got %q", log.String())
	}
}

func TestStdinCopy(t *testing.T) {
	for _, tc := range []struct {
		name       string
		once, tty  bool
		wantClosed bool
	}{
		{name: "stdin once closes", once: true, wantClosed: true},
		{name: "kept open for the next attach"},
		{name: "terminal kept open", once: true, tty: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			in := &stdin{f: w, once: tc.once, tty: tc.tty}
			defer in.close()
			in.copyFrom(strings.NewReader("data"))
			buf := make([]byte, 16)
			n, _ := r.Read(buf)
			if string(buf[:n]) != "data" {
				t.Fatalf("read %q", buf[:n])
			}
			r.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			_, err = r.Read(buf)
			if closed := errors.Is(err, io.EOF); closed != tc.wantClosed {
				t.Errorf("after the client's EOF, read gives %v; want closed %v", err, tc.wantClosed)
			}
		})
	}
}

func TestReaper(t *testing.T) {
	r := newReaper()
	defer signal.Stop(r.kick)
	start := func(args ...string) int {
		t.Helper()
		pid, err := syscall.ForkExec(args[0], args, &syscall.ProcAttr{})
		if err != nil {
			t.Fatal(err)
		}
		return pid
	}
	exists := func(pid int) bool { return unix.Kill(pid, 0) == nil }

	// A tracked child is handed to its collect function, which reaps it.
	collected := make(chan int, 1)
	var tracked int
	r.spawn(func() {
		tracked = start("/bin/sh", "-c", "exit 3")
		r.track(tracked, func() {
			var ws unix.WaitStatus
			unix.Wait4(tracked, &ws, 0, nil)
			collected <- ws.ExitStatus()
		})
	})
	select {
	case code := <-collected:
		if code != 3 {
			t.Errorf("collected exit code %d, want 3", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tracked child never collected")
	}

	// While a runtime call is under way, an untracked zombie may be its
	// own: it is left alone, and reaped once the call is done.
	var orphan int
	release := make(chan struct{})
	held := make(chan struct{})
	go r.spawn(func() {
		orphan = start("/bin/true")
		close(held)
		<-release
	})
	<-held
	time.Sleep(300 * time.Millisecond)
	if !exists(orphan) {
		t.Fatal("an untracked zombie was reaped during a runtime call")
	}
	close(release)
	for deadline := time.Now().Add(10 * time.Second); exists(orphan); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("untracked zombie never reaped")
		}
	}
}

func TestClientErrorsAndWaitFallback(t *testing.T) {
	dir := t.TempDir()
	c := &Client{stateDir: dir, conns: map[*conn]struct{}{}}
	ctx := context.Background()

	// No shim and no status.
	if _, err := c.Wait(ctx); err == nil {
		t.Error("Wait without a shim succeeded")
	}
	// A fake shim answering each op with a canned line.
	ln, err := net.Listen("unix", filepath.Join(dir, sockFile))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	answers := map[string]string{
		"start":     `{"error":"cannot start container \"x\": it is running, not created"}`,
		"wait":      `{"exitCode":255,"oomKilled":false,"finishedAt":"2026-11-27T15:04:05Z","error":"wait: no child processes"}`,
		"exec-wait": `{"exitCode":3}`,
		"resize":    "",
	}
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			var req request
			if readLine(bufio.NewReader(nc), &req) == nil && answers[req.Op] != "" {
				io.WriteString(nc, answers[req.Op]+"\n")
			}
			nc.Close()
		}
	}()
	if err := c.Start(ctx); err == nil || err.Error() != `cannot start container "x": it is running, not created` {
		t.Errorf("Start error not verbatim: %v", err)
	}
	if st, err := c.Wait(ctx); err != nil || st.ExitCode != 255 || st.Error != "wait: no child processes" {
		t.Errorf("Wait = %+v, %v: the status' error is not a call error", st, err)
	}
	if code, err := c.ExecWait(ctx, "e"); err != nil || code != 3 {
		t.Errorf("ExecWait = %d, %v", code, err)
	}
	if err := c.Resize(ctx, "", 1, 1); err == nil || !strings.Contains(err.Error(), "closed the connection during resize") {
		t.Errorf("Resize with no answer: %v", err)
	}

	// The shim is gone and left its status: Wait reads it.
	ln.Close()
	os.Remove(filepath.Join(dir, sockFile))
	os.WriteFile(filepath.Join(dir, exitFile), []byte(`{"exitCode":7,"oomKilled":false,"finishedAt":"2026-11-27T15:04:05Z","error":""}`), 0o644)
	if st, err := c.Wait(ctx); err != nil || st.ExitCode != 7 {
		t.Errorf("Wait from exit.json = %+v, %v", st, err)
	}
	c.Close()
	if err := c.Start(ctx); err == nil {
		t.Error("a closed client still calls")
	}
}
