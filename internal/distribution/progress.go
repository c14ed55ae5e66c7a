package distribution

import (
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/moby/moby/api/types/jsonstream"
	"github.com/opencontainers/go-digest"
)

// progressInterval is how often a transfer reports its progress.
const progressInterval = 100 * time.Millisecond

// Progress writes Docker's JSON message stream: one message per line, as
// the docker CLI's jsonmessage renders it. It is safe for concurrent use.
type Progress struct {
	mu sync.Mutex
	w  io.Writer
}

// NewProgress writes messages to w; a nil w discards them.
func NewProgress(w io.Writer) *Progress {
	if w == nil {
		w = io.Discard
	}
	return &Progress{w: w}
}

func (p *Progress) write(m jsonstream.Message) {
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = p.w.Write(append(b, '\r', '\n'))
}

// Status writes {"status": status, "id": id}.
func (p *Progress) Status(id, status string) {
	p.write(jsonstream.Message{ID: id, Status: status})
}

// Update writes a progress bar message.
func (p *Progress) Update(id, action string, current, total int64, start time.Time) {
	p.write(jsonstream.Message{ID: id, Status: action, Progress: &jsonstream.Progress{Current: current, Total: total, Start: start.Unix()}})
}

// Aux writes an auxiliary message carrying v.
func (p *Progress) Aux(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	raw := json.RawMessage(b)
	p.write(jsonstream.Message{Aux: &raw})
}

// shortID is the 12-hex ID Docker shows for a blob.
func shortID(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		return e[:12]
	}
	return e
}

// progressReader reports the bytes read through it as action, at most
// every progressInterval and once at the end.
type progressReader struct {
	r       io.Reader
	p       *Progress
	id      string
	action  string
	current int64
	total   int64
	start   time.Time
	last    time.Time
}

func newProgressReader(r io.Reader, p *Progress, id, action string, current, total int64) *progressReader {
	return &progressReader{r: r, p: p, id: id, action: action, current: current, total: total, start: time.Now()}
}

func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	pr.current += int64(n)
	if now := time.Now(); now.Sub(pr.last) >= progressInterval || (err == io.EOF && pr.current > 0) {
		pr.last = now
		pr.p.Update(pr.id, pr.action, pr.current, pr.total, pr.start)
	}
	return n, err
}
