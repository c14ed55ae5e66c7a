package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// ptyCLI is a docker CLI process on a pseudo terminal.
type ptyCLI struct {
	t      *testing.T
	args   string
	cmd    *exec.Cmd
	tty    *os.File
	mu     sync.Mutex
	out    bytes.Buffer
	done   chan struct{} // closed when the process has exited
	code   int
	cancel context.CancelFunc
}

// startPty runs docker args on a new 24x80 terminal.
func (c *dockerCLI) startPty(args ...string) *ptyCLI {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = c.d.Env()
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		cancel()
		c.t.Fatal(err)
	}
	p := &ptyCLI{t: c.t, args: strings.Join(args, " "), cmd: cmd, tty: tty, done: make(chan struct{}), cancel: cancel}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() {
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			p.code = ee.ExitCode()
		} else if err != nil {
			p.code = -1
		}
		close(p.done)
	}()
	c.t.Cleanup(func() {
		cancel()
		<-p.done
		tty.Close()
	})
	return p
}

// output is everything the terminal showed so far.
func (p *ptyCLI) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// expect waits until the output matches re and returns the submatches.
func (p *ptyCLI) expect(re string) []string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if m := rx.FindStringSubmatch(p.output()); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("docker %s: no %q in the terminal output %q", p.args, re, p.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// send types s on the terminal.
func (p *ptyCLI) send(s string) {
	p.t.Helper()
	if _, err := p.tty.Write([]byte(s)); err != nil {
		p.t.Fatalf("docker %s: typing %q: %v", p.args, s, err)
	}
}

// exitCode waits for the CLI to exit and returns its exit code.
func (p *ptyCLI) exitCode() int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(15 * time.Second):
		p.t.Fatalf("docker %s did not exit; terminal output %q", p.args, p.output())
		return -1
	}
}

// shellPrompt is busybox sh's prompt, possibly followed by a cursor position
// query or a clear to the end of the line.
// detach types the detach keys on p's terminal, and checks that the CLI
// exits 0 and leaves container running.
func (c *dockerCLI) detach(p *ptyCLI, container, keys string) {
	c.t.Helper()
	p.send(keys)
	if code := p.exitCode(); code != 0 {
		c.t.Errorf("detach with %q: CLI exit %d; terminal %q", keys, code, p.output())
	}
	if got := c.inspect(container, "{{.State.Status}}"); got != "running" {
		c.t.Fatalf("after detaching with %q %s is %s", keys, container, got)
	}
}

const shellPrompt = `# (\x1b\[(J|6n))?$`

// TestDockerPty drives interactive containers through a real terminal:
// run -it, detaching with ctrl-p ctrl-q or --detach-keys, attach, exec -it.
func TestDockerPty(t *testing.T) {
	c := newDockerCLI(t)

	// run -it: the shell's output and its exit code.
	p := c.startPty("run", "-it", "--name", "pty-once", "busybox", "sh")
	p.expect(shellPrompt)
	p.send("stty size; hostname; exit 3\r")
	if code := p.exitCode(); code != 3 {
		t.Errorf("run -it, exit 3: CLI exit %d; terminal %q", code, p.output())
	}
	id := c.inspect("pty-once", "{{.Id}}")
	if m := regexp.MustCompile(`\r\n24 80\r\n([0-9a-f]{12})\r\n`).FindStringSubmatch(p.output()); m == nil || m[1] != id[:12] {
		t.Errorf("hostname on the terminal %q, want %s", p.output(), id[:12])
	}
	if got := c.inspect("pty-once", "{{.State.Status}} {{.State.ExitCode}} {{.Config.Tty}} {{.Config.OpenStdin}}"); got != "exited 3 true true" {
		t.Errorf("after run -it: %q", got)
	}

	// ctrl-p ctrl-q detaches: the CLI exits 0, the shell goes on.
	p = c.startPty("run", "-it", "--name", "pty-keep", "busybox", "sh")
	p.expect(shellPrompt)
	p.send("V=kept; echo \"o\"\"ne\"\r")
	p.expect(`\r\none\r\n`)
	c.detach(p, "pty-keep", "\x10\x11")

	// attach: the same shell (the variable set before detaching is there).
	a := c.startPty("attach", "pty-keep")
	time.Sleep(300 * time.Millisecond)
	a.send("echo \"t\"\"wo-$V\"\r")
	a.expect(`\r\ntwo-kept\r\n`)

	// exec -it: a second shell on a terminal of its own.
	e := c.startPty("exec", "-it", "pty-keep", "sh")
	e.expect(shellPrompt)
	e.send("tty; stty size; echo \"in\"\"-exec\"; exit 5\r")
	e.expect(`\r\nin-exec\r\n`)
	if code := e.exitCode(); code != 5 {
		t.Errorf("exec -it, exit 5: CLI exit %d; terminal %q", code, e.output())
	}
	if m := regexp.MustCompile(`\r\n(/dev/pts/\d+)\r\n24 80\r\n`).FindStringSubmatch(e.output()); m == nil {
		t.Errorf("exec -it has no terminal: %q", e.output())
	}
	if got := c.inspect("pty-keep", "{{.State.Status}}"); got != "running" {
		t.Errorf("after exec -it the container is %s", got)
	}

	// exit in the attached shell ends the container.
	a.send("exit\r")
	if code := a.exitCode(); code != 0 {
		t.Errorf("attach, exit: CLI exit %d; terminal %q", code, a.output())
	}
	if got := c.inspect("pty-keep", "{{.State.Status}} {{.State.ExitCode}}"); got != "exited 0" {
		t.Errorf("after exit in the attached shell: %q", got)
	}

	// --detach-keys.
	p = c.startPty("run", "-it", "--detach-keys", "ctrl-x,x", "--name", "pty-keys", "busybox", "sh")
	p.expect(shellPrompt)
	p.send("\x10\x11") // the default keys are ordinary input now
	p.send("echo \"st\"\"ill\"\r")
	p.expect(`\r\nstill\r\n`)
	c.detach(p, "pty-keys", "\x18x")
}
