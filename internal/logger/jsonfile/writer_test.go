package jsonfile

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// entry is one decoded line of a log file, decoded with encoding/json so the
// tests do not trust the package's own reader.
type entry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

func readEntries(t *testing.T, path string) []entry {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []entry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Fatalf("file does not end with a newline")
	}
	return out
}

// newLog creates a Writer on a new file, closed when the test ends.
func newLog(tb testing.TB) (string, *Writer) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "c-json.log")
	w, err := NewWriter(path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { w.Close() })
	return path, w
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	tests := []string{
		"",
		"hello world\n",
		"quote \" backslash \\ slash /",
		"<script>&amp;</script>",
		"\x00\x01\x07\b\f\n\r\t\x1b\x1f\x7f",
		"héllo wörld ✓ 日本語 🐳",
		"\u2028 and \u2029",
		"\xff\xfe invalid \xc3 utf8 \xed\xa0\x80 surrogate",
		"trailing partial rune \xe2\x9c",
		strings.Repeat("a", 100) + "\x80",
	}
	for _, s := range tests {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendString(nil, []byte(s)); !bytes.Equal(got, want) {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add([]byte("a\x00<\u2028\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		want, _ := json.Marshal(string(b))
		if got := appendString(nil, b); !bytes.Equal(got, want) {
			t.Fatalf("appendString(%q) = %s, want %s", b, got, want)
		}
	})
}

func TestWriterEntryFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := NewWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 11, 27, 16, 4, 5, 123456789, time.FixedZone("X", 3600))
	if err := w.Write("stdout", []byte("hi <there>\n"), ts); err != nil {
		t.Fatal(err)
	}
	if err := w.Write("stderr", []byte("no newline"), ts.Add(-123456789)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write("stdout", []byte("x"), ts); err == nil {
		t.Error("Write after Close succeeded")
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The second entry's earlier time is raised to the first's: the file
	// stays in time order.
	want := `{"log":"hi \u003cthere\u003e\n","stream":"stdout","time":"2026-11-27T15:04:05.123456789Z"}` + "\n" +
		`{"log":"no newline","stream":"stderr","time":"2026-11-27T15:04:05.123456789Z"}` + "\n"
	if string(got) != want {
		t.Errorf("file:\n%s\nwant:\n%s", got, want)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&^0o640 != 0 {
		t.Errorf("mode %v, want at most 0640", st.Mode().Perm())
	}
	// Reopening appends.
	w, err = NewWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Write("stdout", []byte("again\n"), ts); err != nil {
		t.Fatal(err)
	}
	if n := len(readEntries(t, path)); n != 3 {
		t.Errorf("%d entries after reopening, want 3", n)
	}
}

func TestLineWriter(t *testing.T) {
	long := strings.Repeat("x", MaxLine)
	tests := []struct {
		name   string
		writes []string
		want   []string // entries' "log"
	}{
		{"one line", []string{"a\n"}, []string{"a\n"}},
		{"several lines in one write", []string{"a\nb\n\nc\n"}, []string{"a\n", "b\n", "\n", "c\n"}},
		{"line across writes", []string{"he", "ll", "o\nwor", "ld\n"}, []string{"hello\n", "world\n"}},
		{"remainder flushed on close", []string{"a\nrest"}, []string{"a\n", "rest"}},
		{"longest whole line", []string{long[1:] + "\n"}, []string{long[1:] + "\n"}},
		{"line of MaxLine bytes before newline", []string{long + "\n"}, []string{long, "\n"}},
		{"long line split", []string{long + long + "tail\n"}, []string{long, long, "tail\n"}},
		{"long line in small writes", splitEvery(long+"ab\n", 1000), []string{long, "ab\n"}},
		{"buffered start then long write", []string{"abc", long}, []string{"abc" + long[3:], "xxx"}},
		{"nothing", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, w := newLog(t)
			lw := NewLineWriter(w, "stderr")
			for _, s := range tt.writes {
				if n, err := lw.Write([]byte(s)); err != nil || n != len(s) {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if err := lw.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := lw.Write([]byte("x")); err == nil {
				t.Error("Write after Close succeeded")
			}
			var got []string
			for _, e := range readEntries(t, path) {
				if e.Stream != "stderr" {
					t.Errorf("stream %q", e.Stream)
				}
				got = append(got, e.Log)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("entries %q, want %q", abbrev(got), abbrev(tt.want))
			}
		})
	}
}

func splitEvery(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}

func abbrev(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		if len(s) > 20 {
			s = fmt.Sprintf("%s…(%d bytes)", s[:10], len(s))
		}
		out[i] = s
	}
	return out
}

// TestWriterConcurrent checks that entries written at the same time by many
// goroutines, through two Writers on the same file, are never interleaved.
func TestWriterConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	var ws [2]*Writer
	for i := range ws {
		w, err := NewWriter(path)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		ws[i] = w
	}
	const goroutines, lines = 8, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lw := NewLineWriter(ws[g%2], "stdout")
			defer lw.Close()
			for i := range lines {
				// Vary sizes, up to a few KiB, to make torn writes likely if
				// an entry took more than one write.
				line := fmt.Sprintf("g%d l%d %s\n", g, i, strings.Repeat("y", (i*37)%5000))
				if _, err := lw.Write([]byte(line)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	next := make([]int, goroutines)
	for _, e := range readEntries(t, path) {
		var g, i int
		if _, err := fmt.Sscanf(e.Log, "g%d l%d ", &g, &i); err != nil {
			t.Fatalf("entry %q: %v", e.Log, err)
		}
		if i != next[g] {
			t.Fatalf("goroutine %d: line %d, want %d", g, i, next[g])
		}
		next[g]++
	}
	for g, n := range next {
		if n != lines {
			t.Errorf("goroutine %d: %d lines, want %d", g, n, lines)
		}
	}
}

func BenchmarkWriter(b *testing.B) {
	for _, bc := range []struct {
		name string
		line string
	}{
		{"ascii80", strings.Repeat("log line text ", 5) + "0123456789\n"},
		{"escapes80", strings.Repeat("<a href=\"x\">\t", 6) + "é\n"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			_, w := newLog(b)
			p := []byte(bc.line)
			now := time.Now()
			b.SetBytes(int64(len(p)))
			b.ReportAllocs()
			for b.Loop() {
				if err := w.Write("stdout", p, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendEntry(b *testing.B) {
	p := []byte(strings.Repeat("log line text ", 5) + "0123456789\n")
	now := time.Now()
	buf := make([]byte, 0, 512)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		buf = appendEntry(buf[:0], "stdout", p, now)
	}
}
