package httputil

import (
	"encoding/json"
	"io"
	"time"

	"github.com/moby/moby/api/types/jsonstream"
)

// ProgressInterval is the least time between two progress messages.
const ProgressInterval = 100 * time.Millisecond

// ProgressReader reports, at most every ProgressInterval and at the end,
// how much of R was read, as JSON progress messages ({"status": Action,
// "id": ID, "progressDetail": {...}}) written to Out.
type ProgressReader struct {
	R      io.Reader
	Out    io.Writer
	ID     string
	Action string
	// Total is the expected size; 0 when unknown.
	Total int64
	Start time.Time

	current int64
	last    time.Time
}

func (p *ProgressReader) Read(b []byte) (int, error) {
	n, err := p.R.Read(b)
	p.current += int64(n)
	if now := time.Now(); err != nil || now.Sub(p.last) >= ProgressInterval {
		p.last = now
		msg, _ := json.Marshal(jsonstream.Message{
			ID: p.ID, Status: p.Action,
			Progress: &jsonstream.Progress{Current: p.current, Total: p.total(), Start: p.Start.Unix()},
		})
		_, _ = p.Out.Write(append(msg, '\r', '\n'))
	}
	return n, err
}

// total is the size to show: Total, or what was read when that is more;
// 0 (no bar, only the count) when the size is unknown.
func (p *ProgressReader) total() int64 {
	if p.Total <= 0 {
		return 0
	}
	return max(p.Total, p.current)
}
