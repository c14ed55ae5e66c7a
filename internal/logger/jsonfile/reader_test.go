package jsonfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC)

// writeLog writes entries "<stream> <i>\n" at t0+i seconds; streams[i] is
// 'o' for stdout and 'e' for stderr, and 'p' writes a partial stdout entry.
func writeLog(t testing.TB, streams string) string {
	t.Helper()
	path, w := newLog(t)
	for i, c := range streams {
		stream, text := "stdout", fmt.Sprintf("stdout %d\n", i)
		switch c {
		case 'e':
			stream, text = "stderr", fmt.Sprintf("stderr %d\n", i)
		case 'p':
			text = fmt.Sprintf("partial %d", i)
		}
		if err := w.Write(stream, []byte(text), t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// readAll returns the messages of a Read as "line|stream|second[|partial]".
func readAll(t *testing.T, path string, opts ReadOptions) []string {
	t.Helper()
	var got []string
	err := Read(context.Background(), path, opts, nil, func(m Message) error {
		s := fmt.Sprintf("%s|%s|%d", strings.TrimSuffix(string(m.Line), "\n"), m.Stream, int(m.Time.Sub(t0)/time.Second))
		if m.Partial {
			s += "|partial"
		}
		got = append(got, s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestReadOptions(t *testing.T) {
	both := ReadOptions{Stdout: true, Stderr: true, Tail: -1}
	with := func(f func(*ReadOptions)) ReadOptions { o := both; f(&o); return o }
	sec := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	tests := []struct {
		name    string
		streams string
		opts    ReadOptions
		want    string
	}{
		{"all", "oeo", both, "stdout 0|stdout|0 stderr 1|stderr|1 stdout 2|stdout|2"},
		{"stdout only", "oeo", with(func(o *ReadOptions) { o.Stderr = false }), "stdout 0|stdout|0 stdout 2|stdout|2"},
		{"stderr only", "oeo", with(func(o *ReadOptions) { o.Stdout = false }), "stderr 1|stderr|1"},
		{"no stream", "oeo", with(func(o *ReadOptions) { o.Stdout, o.Stderr = false, false }), ""},
		{"tail 0", "oeo", with(func(o *ReadOptions) { o.Tail = 0 }), ""},
		{"tail 2", "oeoe", with(func(o *ReadOptions) { o.Tail = 2 }), "stdout 2|stdout|2 stderr 3|stderr|3"},
		{"tail more than all", "oe", with(func(o *ReadOptions) { o.Tail = 10 }), "stdout 0|stdout|0 stderr 1|stderr|1"},
		{"tail counts both streams", "ooooe", with(func(o *ReadOptions) { o.Tail = 2; o.Stderr = false }), "stdout 3|stdout|3"},
		{"since inclusive", "oooo", with(func(o *ReadOptions) { o.Since = sec(2) }), "stdout 2|stdout|2 stdout 3|stdout|3"},
		{"since between", "oooo", with(func(o *ReadOptions) { o.Since = sec(2).Add(-time.Nanosecond) }), "stdout 2|stdout|2 stdout 3|stdout|3"},
		{"until inclusive", "oooo", with(func(o *ReadOptions) { o.Until = sec(1) }), "stdout 0|stdout|0 stdout 1|stdout|1"},
		{"since and until", "oooo", with(func(o *ReadOptions) { o.Since, o.Until = sec(1), sec(2) }), "stdout 1|stdout|1 stdout 2|stdout|2"},
		{"since after tail", "oooo", with(func(o *ReadOptions) { o.Since, o.Tail = sec(1), 2 }), "stdout 2|stdout|2 stdout 3|stdout|3"},
		{"tail then since excludes all", "oooo", with(func(o *ReadOptions) { o.Since, o.Tail = sec(9), 2 }), ""},
		{"partials", "pooe", both, "partial 0|stdout|0|partial stdout 1|stdout|1 stdout 2|stdout|2 stderr 3|stderr|3"},
		{"empty file", "", both, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(readAll(t, writeLog(t, tt.streams), tt.opts), " ")
			if got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestReadSkipsTornAndInvalidLines(t *testing.T) {
	path := writeLog(t, "oo")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A line torn by a crash, then a good entry, then an unfinished one.
	if _, err := f.WriteString(`{"log":"torn` + "\n" + `{"log":"ok\n","stream":"stderr","time":"2026-11-27T15:00:05Z"}` + "\n" + `{"log":"unfin`); err != nil {
		t.Fatal(err)
	}
	all := ReadOptions{Stdout: true, Stderr: true, Tail: -1}
	if got, want := strings.Join(readAll(t, path, all), " "), "stdout 0|stdout|0 stdout 1|stdout|1 ok|stderr|5"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	all.Tail = 1
	if got, want := strings.Join(readAll(t, path, all), " "), "ok|stderr|5"; got != want {
		t.Errorf("tail 1: got %q, want %q", got, want)
	}
}

func TestReadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none")
	called := false
	fn := func(Message) error { called = true; return nil }
	if err := Read(context.Background(), path, ReadOptions{Stdout: true, Tail: -1}, nil, fn); err != nil {
		t.Fatal(err)
	}
	// Following waits for the file until told to stop.
	stop := func() bool { return true }
	if err := Read(context.Background(), path, ReadOptions{Stdout: true, Tail: -1, Follow: true}, stop, fn); err != nil {
		t.Fatal(err)
	}
	if called {
		t.Error("messages from a missing file")
	}
}

func TestReadFnError(t *testing.T) {
	path := writeLog(t, "ooo")
	boom := errors.New("boom")
	n := 0
	err := Read(context.Background(), path, ReadOptions{Stdout: true, Tail: -1}, nil, func(Message) error { n++; return boom })
	if !errors.Is(err, boom) || n != 1 {
		t.Errorf("Read = %v after %d calls, want boom after 1", err, n)
	}
}

func TestTailOffset(t *testing.T) {
	// Lines of varying length across several tail blocks.
	var sb strings.Builder
	var starts []int64
	for i := range 5000 {
		starts = append(starts, int64(sb.Len()))
		sb.WriteString(strings.Repeat("z", i%97))
		sb.WriteByte('\n')
	}
	content := sb.String()
	path := filepath.Join(t.TempDir(), "lines")
	if err := os.WriteFile(path, []byte(content+"unfinished"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, n := range []int{0, 1, 2, 100, 1500, 4999, 5000, 5001, 1 << 20} {
		got, err := tailOffset(f, n)
		if err != nil {
			t.Fatal(err)
		}
		want := int64(len(content))
		if n >= len(starts) {
			want = 0
		} else if n > 0 {
			want = starts[len(starts)-n]
		}
		if got != want {
			t.Errorf("tailOffset(%d) = %d, want %d", n, got, want)
		}
	}
}

// TestFollowConcurrentWriter follows a file while it is written, with some
// entries written in two halves to look like a writer caught mid-write, and
// checks that every line is seen once, in order, and that following ends
// once stopFollow says so.
func TestFollowConcurrentWriter(t *testing.T) {
	path, w := newLog(t)
	raw, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	// Some entries exist before the reader starts.
	lw := NewLineWriter(w, "stdout")
	const before, total = 100, 3000
	for i := range before {
		fmt.Fprintf(lw, "line %d\n", i)
	}

	var stopped atomic.Bool
	writeErr := make(chan error, 1)
	go func() {
		defer stopped.Store(true)
		for i := before; i < total; i++ {
			var err error
			switch {
			case i%100 == 0:
				// Torn: half now, the rest a little later.
				e := appendEntry(nil, "stdout", fmt.Appendf(nil, "line %d\n", i), time.Now())
				if _, err = raw.Write(e[:len(e)/2]); err == nil {
					time.Sleep(3 * time.Millisecond)
					_, err = raw.Write(e[len(e)/2:])
				}
			case i%7 == 0:
				// Split across writes of the line writer.
				if _, err = fmt.Fprintf(lw, "line "); err == nil {
					_, err = fmt.Fprintf(lw, "%d\n", i)
				}
			default:
				_, err = fmt.Fprintf(lw, "line %d\n", i)
			}
			if err != nil {
				writeErr <- err
				return
			}
			if i%500 == 0 {
				time.Sleep(20 * time.Millisecond)
			}
		}
		writeErr <- nil
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	next := 0
	err = Read(ctx, path, ReadOptions{Stdout: true, Tail: -1, Follow: true}, stopped.Load, func(m Message) error {
		if want := fmt.Sprintf("line %d\n", next); string(m.Line) != want {
			return fmt.Errorf("got %q, want %q", m.Line, want)
		}
		next++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
	if next != total {
		t.Errorf("saw %d lines, want %d", next, total)
	}
}

func TestFollowEnds(t *testing.T) {
	path := writeLog(t, "oo")
	opts := ReadOptions{Stdout: true, Tail: 1, Follow: true}
	t.Run("until passes", func(t *testing.T) {
		o := opts
		o.Until = time.Now().Add(150 * time.Millisecond)
		start := time.Now()
		n := 0
		if err := Read(context.Background(), path, o, nil, func(Message) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 150*time.Millisecond || d > 2*time.Second {
			t.Errorf("returned after %v, want soon after 150ms", d)
		}
		if n != 1 {
			t.Errorf("%d messages, want 1", n)
		}
	})
	t.Run("context done", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		err := Read(ctx, path, opts, func() bool { return false }, func(Message) error { return nil })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Read = %v, want deadline exceeded", err)
		}
	})
	t.Run("new line wakes follower quickly", func(t *testing.T) {
		w, err := NewWriter(path)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var latency time.Duration
		sent := make(chan time.Time, 1)
		go func() {
			time.Sleep(120 * time.Millisecond)
			sent <- time.Now()
			w.Write("stdout", []byte("new\n"), time.Now())
		}()
		err = Read(ctx, path, ReadOptions{Stdout: true, Tail: 0, Follow: true}, nil, func(m Message) error {
			latency = time.Since(<-sent)
			cancel()
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Read = %v", err)
		}
		t.Logf("follow latency %v", latency)
		if latency > 2*pollInterval {
			t.Errorf("follow latency %v", latency)
		}
	})
}

// bigLog writes a log of about size bytes of 80-byte lines.
func bigLog(tb testing.TB, size int) (string, int) {
	tb.Helper()
	path, w := newLog(tb)
	lw := NewLineWriter(w, "stdout")
	line := strings.Repeat("0123456789", 8)
	lines := 0
	for st, _ := os.Stat(path); st.Size() < int64(size); st, _ = os.Stat(path) {
		for range 1000 {
			fmt.Fprintf(lw, "%d %s\n", lines, line)
			lines++
		}
	}
	return path, lines
}

func TestTailBigFile(t *testing.T) {
	path, lines := bigLog(t, 10<<20)
	start := time.Now()
	got := readAll(t, path, ReadOptions{Stdout: true, Tail: 10})
	tailTime := time.Since(start)
	if len(got) != 10 || !strings.HasPrefix(got[9], fmt.Sprint(lines-1, " ")) {
		t.Fatalf("tail 10 = %q…", got[:min(len(got), 1)])
	}
	start = time.Now()
	if n := len(readAll(t, path, ReadOptions{Stdout: true, Tail: -1})); n != lines {
		t.Fatalf("read %d lines, want %d", n, lines)
	}
	t.Logf("10 MB, %d lines: tail 10 in %v, whole file in %v", lines, tailTime, time.Since(start))
}

func BenchmarkTail10Of10MB(b *testing.B) {
	path, _ := bigLog(b, 10<<20)
	for b.Loop() {
		err := Read(context.Background(), path, ReadOptions{Stdout: true, Tail: 10}, nil, func(Message) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadAll10MB(b *testing.B) {
	path, _ := bigLog(b, 10<<20)
	st, _ := os.Stat(path)
	b.SetBytes(st.Size())
	for b.Loop() {
		err := Read(context.Background(), path, ReadOptions{Stdout: true, Tail: -1}, nil, func(Message) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
	}
}
