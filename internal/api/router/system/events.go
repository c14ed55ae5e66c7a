package system

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/api/httputil"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/events"
)

// eventFilters are the filters GET /events accepts.
var eventFilters = []string{"config", "container", "daemon", "event", "image", "label", "network", "node", "plugin", "scope", "secret", "service", "type", "volume"}

// events streams the daemon's events as JSON lines: the past ones from
// since, then live ones until the client goes or until passes.
func (r *Router) events(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := req.ParseForm(); err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	since, err := eventTime(req.Form.Get("since"))
	if err != nil {
		return err
	}
	until, err := eventTime(req.Form.Get("until"))
	if err != nil {
		return err
	}
	f, err := httputil.ParseFilters(req.Form.Get("filters"))
	if err != nil {
		return err
	}
	if err := f.Validate(eventFilters...); err != nil {
		return err
	}
	past, sub := r.Events.Subscribe(since)
	defer sub.Close()

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	fw := httputil.NewFlushWriter(w)
	fw.Flush()
	enc := json.NewEncoder(fw)
	send := func(m events.Message) (bool, error) {
		if !until.IsZero() && m.TimeNano > until.UnixNano() {
			return false, nil
		}
		if matchEvent(f, m) {
			return true, enc.Encode(m)
		}
		return true, nil
	}
	for _, m := range past {
		if more, err := send(m); err != nil || !more {
			return nil
		}
	}
	var deadline <-chan time.Time
	if !until.IsZero() {
		d := time.Until(until)
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(d)
		defer t.Stop()
		deadline = t.C
	}
	for {
		select {
		case m, ok := <-sub.C:
			if !ok {
				return nil
			}
			if more, err := send(m); err != nil || !more {
				return nil
			}
		case <-deadline:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// matchEvent applies Docker's event filters.
func matchEvent(f httputil.Filters, m events.Message) bool {
	attrs := m.Actor.Attributes
	if f.Contains("type") && !f.ExactMatch("type", string(m.Type)) {
		return false
	}
	if f.Contains("event") && !f.ExactMatch("event", string(m.Action)) &&
		!(strings.HasPrefix(string(m.Action), "exec_") && f.ExactMatch("event", strings.SplitN(string(m.Action), ":", 2)[0])) {
		return false
	}
	if f.Contains("scope") && !f.ExactMatch("scope", m.Scope) {
		return false
	}
	if f.Contains("label") && !f.MatchKVList("label", attrs) {
		return false
	}
	matchObj := func(key string, t events.Type, alt ...string) bool {
		if !f.Contains(key) {
			return true
		}
		if m.Type != t {
			return false
		}
		for _, v := range f.Get(key) {
			if v == m.Actor.ID || strings.HasPrefix(m.Actor.ID, v) {
				return true
			}
			for _, a := range alt {
				if attrs[a] == v {
					return true
				}
			}
		}
		return false
	}
	if !matchObj("container", events.ContainerEventType, "name") {
		return false
	}
	if f.Contains("image") {
		img := attrs["image"]
		if m.Type == events.ImageEventType {
			img = m.Actor.ID
		}
		ok := false
		for _, v := range f.Get("image") {
			if v == img || v == attrs["name"] || strings.HasPrefix(img, v) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// eventTime parses since/until: Unix seconds with an optional fraction,
// an RFC 3339 time, or a duration meaning that long ago.
func eventTime(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), nil
	}
	if sec, frac, ok := strings.Cut(v, "."); ok || !strings.ContainsAny(v, "-:T") {
		s, err := strconv.ParseInt(sec, 10, 64)
		if err == nil {
			var ns int64
			if frac != "" {
				ns, _ = strconv.ParseInt((frac + "000000000")[:9], 10, 64)
			}
			return time.Unix(s, ns), nil
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	return time.Time{}, errdefs.ErrInvalidArgument.WithMessage("invalid timestamp: " + v)
}
