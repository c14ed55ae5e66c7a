// Package events is berthd's event bus: the services publish what happens
// to containers and images, GET /events streams it, with a bounded history
// for `since` queries.
package events

import (
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
)

// historySize is how many past events the bus keeps for since queries.
const historySize = 1024

// subscriberBuffer is how many events a slow subscriber may lag behind
// before it is dropped.
const subscriberBuffer = 256

// Bus fans events out to subscribers.
type Bus struct {
	mu      sync.Mutex
	history []events.Message
	subs    map[*Subscription]struct{}
	now     func() time.Time
}

// New returns an empty bus.
func New() *Bus {
	return &Bus{subs: map[*Subscription]struct{}{}, now: time.Now}
}

// Subscription receives the events published after it was made.
type Subscription struct {
	C    chan events.Message
	bus  *Bus
	once sync.Once
}

// Close ends the subscription; C is closed.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.bus.mu.Lock()
		delete(s.bus.subs, s)
		s.bus.mu.Unlock()
		close(s.C)
	})
}

// Publish records an event of type t about the object id.
func (b *Bus) Publish(t events.Type, action events.Action, id string, attrs map[string]string) {
	now := b.now()
	if attrs == nil {
		attrs = map[string]string{}
	}
	m := events.Message{
		Type: t, Action: action, Actor: events.Actor{ID: id, Attributes: attrs},
		Scope: "local", Time: now.Unix(), TimeNano: now.UnixNano(),
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.history = append(b.history, m)
	if len(b.history) > historySize {
		b.history = append(b.history[:0], b.history[len(b.history)-historySize:]...)
	}
	for s := range b.subs {
		select {
		case s.C <- m:
		default:
			// A subscriber that cannot keep up loses its stream rather
			// than blocking the daemon.
			delete(b.subs, s)
			s.once.Do(func() { close(s.C) })
		}
	}
}

// Subscribe returns the past events at or after since (none when since is
// zero) and a subscription for the events to come.
func (b *Bus) Subscribe(since time.Time) ([]events.Message, *Subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var past []events.Message
	if !since.IsZero() {
		for _, m := range b.history {
			if m.TimeNano >= since.UnixNano() {
				past = append(past, m)
			}
		}
	}
	s := &Subscription{C: make(chan events.Message, subscriberBuffer), bus: b}
	b.subs[s] = struct{}{}
	return past, s
}
