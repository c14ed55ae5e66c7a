package jsonfile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// ReadOptions selects the messages Read returns.
type ReadOptions struct {
	// Stdout and Stderr select the streams.
	Stdout, Stderr bool
	// Since and Until bound the messages' times, both inclusive; zero means
	// unbounded. Reading stops at the first message after Until, as Docker
	// does, and so does following once the clock passes Until.
	Since, Until time.Time
	// Tail is how many entries to start from, counted back from the end of
	// the file over both streams before Since and the streams are applied,
	// as Docker does; -1 means all.
	Tail int
	// Follow keeps reading entries as they are written.
	Follow bool
}

// Message is one log entry.
type Message struct {
	Stream string // "stdout" or "stderr"
	Line   []byte // the text as written, with its trailing newline unless Partial
	Time   time.Time
	// Partial is set for a piece of a longer line or an unfinished last
	// line: its text has no trailing newline.
	Partial bool
}

// pollInterval bounds how long following waits before it looks at the file,
// the context, stopFollow and Until again.
const pollInterval = 50 * time.Millisecond

// Read calls fn for each message of the log file at path, in order, and
// returns fn's first error. A missing file holds no messages. An
// unfinished last line (its writer mid-write) is not a message: Read without
// Follow leaves it out, and following waits for the rest of it. Lines that
// are not valid entries are skipped.
//
// With Follow, Read keeps waiting for new entries (woken by inotify, and at
// least every 50 ms) until ctx is done, Until passes, or stopFollow, when
// not nil, returns true; it then reads what is left in the file and
// returns nil. Whenever ctx is done, Read stops and returns ctx.Err().
func Read(ctx context.Context, path string, opts ReadOptions, stopFollow func() bool, fn func(Message) error) error {
	f, err := openLog(ctx, path, opts, stopFollow)
	if f == nil || err != nil {
		return err
	}
	defer f.Close()

	if opts.Tail >= 0 {
		off, err := tailOffset(f, opts.Tail)
		if err != nil {
			return fmt.Errorf("jsonfile: %w", err)
		}
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return fmt.Errorf("jsonfile: %w", err)
		}
	}
	r := &reader{f: f, opts: opts, fn: fn}
	var w *watcher
	if opts.Follow {
		// Watch before the first read, so that no write after it goes
		// unnoticed.
		w = newWatcher(path)
		defer w.close()
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := r.readAvailable(ctx); err != nil || r.done {
			return err
		}
		if !opts.Follow {
			return nil
		}
		if (stopFollow != nil && stopFollow()) || untilPassed(opts.Until) {
			// Entries may have been written between the read above and
			// the stop: drain them.
			return r.readAvailable(ctx)
		}
		w.wait(ctx, pollInterval)
	}
}

func untilPassed(until time.Time) bool {
	return !until.IsZero() && time.Now().After(until)
}

// openLog opens the log file. When it is missing, it returns nil without
// Follow, and with Follow waits for it to appear, returning nil if following
// ends first (with ctx.Err() if ctx is done).
func openLog(ctx context.Context, path string, opts ReadOptions, stopFollow func() bool) (*os.File, error) {
	for {
		f, err := os.Open(path)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("jsonfile: %w", err)
		}
		if !opts.Follow || (stopFollow != nil && stopFollow()) || untilPassed(opts.Until) {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pollInterval):
		}
	}
}

// tailBlock is how much tailOffset reads at a time, backwards.
const tailBlock = 64 * 1024

// tailOffset returns the offset of the first of the last n complete lines
// of f, reading backwards from the end in blocks. Bytes after the last
// newline (an unfinished line) are not counted.
func tailOffset(f *os.File, n int) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	end := st.Size()
	buf := make([]byte, tailBlock)
	// Count newlines from the end: the last complete line ends with the
	// first one found, and the line before the wanted ones with the n+1th.
	want := n + 1
	for end > 0 {
		start := max(0, end-tailBlock)
		b := buf[:end-start]
		if _, err := f.ReadAt(b, start); err != nil {
			return 0, err
		}
		for i := len(b); i > 0; {
			j := bytes.LastIndexByte(b[:i], '\n')
			if j < 0 {
				break
			}
			if want--; want == 0 {
				return start + int64(j) + 1, nil
			}
			i = j
		}
		end = start
	}
	return 0, nil
}

// reader reads entries forward from f, holding an unfinished last line
// until its rest arrives.
type reader struct {
	f    *os.File
	opts ReadOptions
	fn   func(Message) error
	buf  []byte // read but not yet consumed: the start of an unfinished line
	done bool   // an entry after Until was seen
}

// readChunk is the least free space reader keeps for each read.
const readChunk = 64 * 1024

// readAvailable reads and passes on every complete line up to the end of
// the file.
func (r *reader) readAvailable(ctx context.Context) error {
	for !r.done {
		if err := ctx.Err(); err != nil {
			return err
		}
		if cap(r.buf)-len(r.buf) < readChunk {
			nb := make([]byte, len(r.buf), 2*cap(r.buf)+readChunk)
			copy(nb, r.buf)
			r.buf = nb
		}
		n, err := r.f.Read(r.buf[len(r.buf):cap(r.buf)])
		r.buf = r.buf[:len(r.buf)+n]
		data := r.buf
		for !r.done {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				break
			}
			if err := r.line(data[:i]); err != nil {
				return err
			}
			data = data[i+1:]
		}
		r.buf = r.buf[:copy(r.buf, data)]
		if err == io.EOF || n == 0 {
			return nil
		}
		if err != nil {
			return fmt.Errorf("jsonfile: %w", err)
		}
	}
	return nil
}

type jsonEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// line decodes one line and passes it on if the options select it.
func (r *reader) line(b []byte) error {
	var e jsonEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil // not an entry (e.g. a write torn by a crash): skip it
	}
	if !r.opts.Until.IsZero() && e.Time.After(r.opts.Until) {
		r.done = true
		return nil
	}
	if !r.opts.Since.IsZero() && e.Time.Before(r.opts.Since) {
		return nil
	}
	switch {
	case e.Stream == "stdout" && r.opts.Stdout, e.Stream == "stderr" && r.opts.Stderr:
	default:
		return nil
	}
	n := len(e.Log)
	return r.fn(Message{
		Stream:  e.Stream,
		Line:    []byte(e.Log),
		Time:    e.Time,
		Partial: n == 0 || e.Log[n-1] != '\n',
	})
}

// watcher wakes a follower when the log file changes. A nil watcher (no
// inotify) just sleeps.
type watcher struct {
	fd int
}

func newWatcher(path string) *watcher {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil
	}
	const mask = unix.IN_MODIFY | unix.IN_ATTRIB | unix.IN_CLOSE_WRITE | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF
	if _, err := unix.InotifyAddWatch(fd, path, mask); err != nil {
		unix.Close(fd)
		return nil
	}
	return &watcher{fd: fd}
}

// wait returns after the file changes, d passes, or (without inotify) ctx
// is done.
func (w *watcher) wait(ctx context.Context, d time.Duration) {
	if w == nil {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
		return
	}
	fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
	if n, _ := unix.Poll(fds, int(d/time.Millisecond)); n > 0 {
		var events [4096]byte
		for {
			if n, err := unix.Read(w.fd, events[:]); n <= 0 || err != nil {
				break
			}
		}
	}
}

func (w *watcher) close() {
	if w != nil {
		unix.Close(w.fd)
	}
}
