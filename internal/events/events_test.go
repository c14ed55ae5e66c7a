package events

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
)

func TestBusHistoryAndLive(t *testing.T) {
	b := New()
	clock := time.Unix(1000, 0)
	b.now = func() time.Time { return clock }
	b.Publish(events.ContainerEventType, events.ActionCreate, "c1", map[string]string{"name": "a"})
	clock = clock.Add(time.Second)
	b.Publish(events.ContainerEventType, events.ActionStart, "c1", nil)

	past, sub := b.Subscribe(time.Unix(1001, 0))
	defer sub.Close()
	if len(past) != 1 || past[0].Action != events.ActionStart || past[0].Scope != "local" || past[0].Actor.Attributes == nil {
		t.Fatalf("past events %+v", past)
	}
	if none, s2 := b.Subscribe(time.Time{}); len(none) != 0 {
		t.Errorf("no since: %d past events", len(none))
	} else {
		s2.Close()
		s2.Close() // idempotent
	}
	b.Publish(events.ImageEventType, events.ActionTag, "sha256:x", nil)
	select {
	case m := <-sub.C:
		if m.Type != events.ImageEventType || m.TimeNano != clock.UnixNano() || m.Time != clock.Unix() {
			t.Errorf("live event %+v", m)
		}
	case <-time.After(time.Second):
		t.Fatal("no live event")
	}
}

func TestBusDropsSlowSubscriberAndBoundsHistory(t *testing.T) {
	b := New()
	_, slow := b.Subscribe(time.Time{})
	for i := 0; i < historySize+subscriberBuffer+10; i++ {
		b.Publish(events.ContainerEventType, events.ActionCreate, "c", nil)
	}
	n := 0
	for range slow.C {
		n++
	}
	if n != subscriberBuffer {
		t.Errorf("slow subscriber got %d events before being dropped, want %d", n, subscriberBuffer)
	}
	if len(b.history) != historySize {
		t.Errorf("history holds %d events, want %d", len(b.history), historySize)
	}
	slow.Close()
}
