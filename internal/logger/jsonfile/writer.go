// Package jsonfile writes and reads container logs in Docker's json-file
// format: one JSON object per line,
//
//	{"log":"text\n","stream":"stdout","time":"2026-11-27T15:04:05.123456789Z"}
//
// where "log" keeps the line's trailing newline and "time" is RFC 3339 with
// nanoseconds in UTC. A line longer than MaxLine bytes is stored as several
// partial entries whose "log" has no trailing newline, as Docker does.
package jsonfile

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
	"unicode/utf8"
)

// MaxLine is the most bytes of a line, newline included, that one entry
// holds; longer lines are split into partial entries (Docker's 16 KiB).
const MaxLine = 16 * 1024

// Writer appends log entries to a json-file log. It is safe for concurrent
// use: each entry reaches the file with a single write(2) on a file opened
// with O_APPEND, so concurrent writers, even in other processes, never
// interleave entries. Within one Writer, entries reach the file in the
// order of their times (a time earlier than the last one written is raised
// to it), so that readers may stop at the first entry past --until. It
// does not sync the file.
type Writer struct {
	f    *os.File
	path string

	mu   sync.Mutex
	last time.Time
}

// NewWriter opens path for appending, creating it with mode 0640 if needed.
func NewWriter(path string) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("jsonfile: %w", err)
	}
	return &Writer{f: f, path: path}, nil
}

// bufPool holds encoding buffers.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// maxPooled keeps buffers of huge entries out of the pool.
const maxPooled = 256 * 1024

// Write appends one entry holding p as is (no splitting, no newline added)
// for stream ("stdout" or "stderr") at time t.
func (w *Writer) Write(stream string, p []byte, t time.Time) error {
	bp := bufPool.Get().(*[]byte)
	w.mu.Lock()
	if t.Before(w.last) {
		t = w.last
	}
	w.last = t
	buf := appendEntry((*bp)[:0], stream, p, t)
	_, err := w.f.Write(buf)
	w.mu.Unlock()
	if cap(buf) <= maxPooled {
		*bp = buf
		bufPool.Put(bp)
	}
	if err != nil {
		return fmt.Errorf("jsonfile: writing %s: %w", w.path, err)
	}
	return nil
}

// Close closes the file. Writes after Close fail.
func (w *Writer) Close() error {
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("jsonfile: %w", err)
	}
	return nil
}

// appendEntry appends the JSON line for one entry to buf.
func appendEntry(buf []byte, stream string, p []byte, t time.Time) []byte {
	buf = append(buf, `{"log":`...)
	buf = appendString(buf, p)
	buf = append(buf, `,"stream":`...)
	buf = appendString(buf, []byte(stream))
	buf = append(buf, `,"time":"`...)
	buf = t.UTC().AppendFormat(buf, time.RFC3339Nano)
	return append(buf, "\"}\n"...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string exactly as encoding/json encodes
// it: HTML-sensitive characters, U+2028 and U+2029 escaped, and each byte of
// invalid UTF-8 replaced by \ufffd.
func appendString(buf []byte, s []byte) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if htmlSafe[b] {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch b {
			case '\\', '"':
				buf = append(buf, '\\', b)
			case '\b':
				buf = append(buf, '\\', 'b')
			case '\f':
				buf = append(buf, '\\', 'f')
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

// htmlSafe reports the ASCII bytes that encoding/json writes unescaped.
var htmlSafe = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = true
	}
	for _, b := range `"\<>&` {
		t[b] = false
	}
	return t
}()

// NewLineWriter returns a writer that turns the byte stream written to it
// into entries of w for stream, one per line with its '\n' kept. A line of
// more than MaxLine bytes is split into partial entries of MaxLine bytes
// without a newline. Each entry is stamped with the time it is complete.
// Close writes what remains after the last newline as a partial entry; it
// does not close w, which stdout and stderr usually share. The returned
// writer is safe for concurrent use.
func NewLineWriter(w *Writer, stream string) io.WriteCloser {
	return &lineWriter{w: w, stream: stream}
}

type lineWriter struct {
	mu     sync.Mutex
	w      *Writer
	stream string
	buf    []byte // the start of an unfinished line, shorter than MaxLine
	closed bool
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, fmt.Errorf("jsonfile: write to closed %s line writer", l.stream)
	}
	n := len(p)
	for len(p) > 0 {
		room := MaxLine - len(l.buf)
		var chunk []byte
		if i := bytes.IndexByte(p[:min(len(p), room)], '\n'); i >= 0 {
			chunk = p[:i+1]
		} else if len(p) >= room {
			chunk = p[:room]
		} else {
			l.buf = append(l.buf, p...)
			break
		}
		entry := chunk
		if len(l.buf) > 0 {
			l.buf = append(l.buf, chunk...)
			entry = l.buf
		}
		if err := l.w.Write(l.stream, entry, time.Now()); err != nil {
			return n - len(p), err
		}
		l.buf = l.buf[:0]
		p = p[len(chunk):]
	}
	return n, nil
}

func (l *lineWriter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if len(l.buf) == 0 {
		return nil
	}
	err := l.w.Write(l.stream, l.buf, time.Now())
	l.buf = nil
	return err
}
