package system

import (
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/api/httputil"
	"github.com/moby/moby/api/types/events"
)

func TestMatchEvent(t *testing.T) {
	ctr := events.Message{Type: events.ContainerEventType, Action: events.ActionStart, Scope: "local",
		Actor: events.Actor{ID: "abcdef0123", Attributes: map[string]string{"name": "web", "image": "busybox", "tier": "front"}}}
	img := events.Message{Type: events.ImageEventType, Action: events.ActionTag, Scope: "local",
		Actor: events.Actor{ID: "sha256:1234", Attributes: map[string]string{"name": "busybox:latest"}}}
	exec := events.Message{Type: events.ContainerEventType, Action: "exec_start: sh -c true", Actor: events.Actor{ID: "abcdef0123", Attributes: map[string]string{}}}
	for _, tc := range []struct {
		filters string
		msg     events.Message
		want    bool
	}{
		{`{}`, ctr, true},
		{`{"type":{"container":true}}`, ctr, true},
		{`{"type":{"image":true}}`, ctr, false},
		{`{"event":{"start":true}}`, ctr, true},
		{`{"event":{"die":true}}`, ctr, false},
		{`{"event":{"exec_start":true}}`, exec, true},
		{`{"container":{"web":true}}`, ctr, true},
		{`{"container":{"abcd":true}}`, ctr, true},
		{`{"container":{"db":true}}`, ctr, false},
		{`{"container":{"web":true}}`, img, false},
		{`{"image":{"busybox":true}}`, ctr, true},
		{`{"image":{"busybox:latest":true}}`, img, true},
		{`{"label":{"tier=front":true}}`, ctr, true},
		{`{"label":{"tier=back":true}}`, ctr, false},
		{`{"scope":{"swarm":true}}`, ctr, false},
	} {
		f, err := httputil.ParseFilters(tc.filters)
		if err != nil {
			t.Fatal(err)
		}
		if got := matchEvent(f, tc.msg); got != tc.want {
			t.Errorf("%s on %s %s: %v, want %v", tc.filters, tc.msg.Type, tc.msg.Action, got, tc.want)
		}
	}
}

func TestEventTime(t *testing.T) {
	for in, want := range map[string]int64{"1700000000": 1700000000e9, "1700000000.5": 1700000000e9 + 5e8, "2023-11-14T22:13:20Z": 1700000000e9} {
		got, err := eventTime(in)
		if err != nil || got.UnixNano() != want {
			t.Errorf("eventTime(%q) = %v, %v", in, got.UnixNano(), err)
		}
	}
	if got, err := eventTime("10m"); err != nil || time.Since(got) < 9*time.Minute {
		t.Errorf("duration: %v %v", got, err)
	}
	if _, err := eventTime("tomorrow"); err == nil {
		t.Error("garbage accepted")
	}
}
