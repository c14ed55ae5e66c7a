package containers

import (
	"context"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"time"

	"github.com/berth-dev/berth/internal/api/httputil"
	"github.com/berth-dev/berth/internal/logger/jsonfile"
	"github.com/containerd/errdefs"
)

// logPath is where a container's json-file log lives, as in Docker:
// next to its configuration, named <id>-json.log.
func (s *Service) logPath(id string) string {
	return filepath.Join(s.store.Dir(id), id+"-json.log")
}

// logTimeFormat is Docker's timestamp for logs -t: RFC 3339 with always
// nine fractional digits, so the column keeps its width.
const logTimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// LogsOpts are the parameters of GET /containers/{id}/logs.
type LogsOpts struct {
	Stdout, Stderr bool
	Follow         bool
	Timestamps     bool
	Details        bool
	Since, Until   time.Time
	Tail           int // -1: all
}

// Logs validates a logs request and returns whether the container has a
// TTY (its output is then not multiplexed) and a function that writes the
// log to w.
func (s *Service) Logs(ctx context.Context, ref string, o LogsOpts) (tty bool, write func(w io.Writer) error, err error) {
	c, err := s.store.Get(ref)
	if err != nil {
		return false, nil, err
	}
	c.Lock()
	tty = c.Config.Tty
	driver := c.HostConfig.LogConfig.Type
	path := c.LogPath
	labels := c.Config.Labels
	c.Unlock()
	if driver == "none" {
		return false, nil, errdefs.ErrNotImplemented.WithMessage(`configured logging driver does not support reading`)
	}
	if !o.Stdout && !o.Stderr {
		return false, nil, errdefs.ErrInvalidArgument.WithMessage("Bad parameters: you must choose at least one stream")
	}
	stopped := func() bool {
		c.Lock()
		defer c.Unlock()
		return !c.State.Running
	}
	write = func(w io.Writer) error {
		out, errw := streams(w, tty)
		ro := jsonfile.ReadOptions{Stdout: o.Stdout, Stderr: o.Stderr, Since: o.Since, Until: o.Until, Tail: o.Tail, Follow: o.Follow}
		var details []byte
		if o.Details && len(labels) > 0 {
			details = detailsPrefix(labels)
		}
		return jsonfile.Read(ctx, path, ro, stopped, func(m jsonfile.Message) error {
			dst := out
			if m.Stream == "stderr" {
				dst = errw
			}
			var line []byte
			if o.Timestamps {
				line = m.Time.UTC().AppendFormat(line, logTimeFormat)
				line = append(line, ' ')
			}
			line = append(line, details...)
			line = append(line, m.Line...)
			_, err := dst.Write(line)
			if f, ok := w.(interface{ Flush() }); ok && o.Follow {
				f.Flush()
			}
			return err
		})
	}
	return tty, write, nil
}

// streams returns the writers for stdout and stderr: the same raw writer
// with a TTY, stdcopy-framed ones without.
func streams(w io.Writer, tty bool) (stdout, stderr io.Writer) {
	if tty {
		return w, w
	}
	return httputil.NewStdWriters(w)
}

// detailsPrefix is what --details prints before each line: the
// container's labels as k=v pairs, in a stable (sorted) order.
func detailsPrefix(labels map[string]string) []byte {
	var b []byte
	for i, k := range slices.Sorted(maps.Keys(labels)) {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, k+"="+labels[k]...)
	}
	return append(b, ' ')
}

// replayLogs writes the container's log so far (attach with logs=1).
func (s *Service) replayLogs(ctx context.Context, id string, tty, stdout, stderr bool, w io.Writer) error {
	if !stdout && !stderr {
		return nil
	}
	out, errw := streams(w, tty)
	ro := jsonfile.ReadOptions{Stdout: stdout, Stderr: stderr, Tail: -1}
	return jsonfile.Read(ctx, s.logPath(id), ro, func() bool { return true }, func(m jsonfile.Message) error {
		dst := out
		if m.Stream == "stderr" {
			dst = errw
		}
		_, err := dst.Write(m.Line)
		return err
	})
}
