package embedded_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/embedded"
	"github.com/switchboard/switchboard/service"
	"github.com/switchboard/switchboard/sqlite"
)

// receiver records the events it is given.
type receiver struct {
	member service.Member

	mu      sync.Mutex
	events  []*service.Event
	changed chan struct{} // signalled after each event
}

func newReceiver(user, conn string) *receiver {
	return &receiver{
		member:  service.Member{User: user, ConnectionID: conn, Since: time.Now()},
		changed: make(chan struct{}, 1),
	}
}

func (r *receiver) Receive(e *service.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *receiver) Member() service.Member { return r.member }

func (r *receiver) Events() []*service.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// offsets returns the offsets of the publications r received.
func (r *receiver) offsets() []uint64 {
	var o []uint64
	for _, e := range r.Events() {
		if e.Kind == service.EventPublication {
			o = append(o, e.Publication.Offset)
		}
	}
	return o
}

// waitFor waits up to 5 seconds for cond to hold of r's events.
func (r *receiver) waitFor(t *testing.T, what string, cond func([]*service.Event) bool) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for !cond(r.Events()) {
		select {
		case <-r.changed:
		case <-timeout:
			t.Fatalf("%s: timed out waiting for %s; events: %s", r.member.ConnectionID, what, describe(r.Events()))
		}
	}
}

// waitOffset waits for r to receive the publication at offset.
func (r *receiver) waitOffset(t *testing.T, offset uint64) {
	t.Helper()
	r.waitFor(t, fmt.Sprintf("offset %d", offset), func(es []*service.Event) bool {
		return slices.ContainsFunc(es, func(e *service.Event) bool {
			return e.Kind == service.EventPublication && e.Publication.Offset >= offset
		})
	})
}

func describe(es []*service.Event) string {
	var s []string
	for _, e := range es {
		switch e.Kind {
		case service.EventPublication:
			s = append(s, fmt.Sprintf("pub %s %d", e.Channel, e.Publication.Offset))
		case service.EventJoin:
			s = append(s, fmt.Sprintf("join %s %s", e.Channel, e.Member.ConnectionID))
		case service.EventLeave:
			s = append(s, fmt.Sprintf("leave %s %s", e.Channel, e.Member.ConnectionID))
		case service.EventUnsubscribed:
			s = append(s, fmt.Sprintf("unsubscribed %s %s", e.Channel, e.Reason))
		default:
			s = append(s, fmt.Sprintf("kind %d", e.Kind))
		}
	}
	return fmt.Sprint(s)
}

type fixture struct {
	store  *sqlite.Store
	engine *embedded.Engine
	path   string
}

func newFixture(t *testing.T, opts sqlite.Options) *fixture {
	t.Helper()
	f := &fixture{path: filepath.Join(t.TempDir(), "history.db")}
	f.open(t, opts)
	return f
}

func (f *fixture) open(t *testing.T, opts sqlite.Options) {
	t.Helper()
	store, err := sqlite.Open(f.path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f.store, f.engine = store, embedded.New(store)
}

// closeStore closes the store, which waits until every committed change
// has been fanned out.
func (f *fixture) closeStore(t *testing.T) {
	t.Helper()
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) publish(t *testing.T, channel string, n int) service.Published {
	t.Helper()
	res, err := f.engine.Publish(context.Background(), service.Publication{
		Channel:   channel,
		Data:      json.RawMessage(fmt.Sprint(n)),
		Publisher: "p",
		Time:      time.Now(),
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (f *fixture) subscribe(t *testing.T, channel string, r service.Receiver, joinLeave bool) service.Position {
	t.Helper()
	pos, err := f.engine.Subscribe(context.Background(), channel, r, joinLeave)
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

func span(from, to uint64) []uint64 {
	var o []uint64
	for i := from; i <= to; i++ {
		o = append(o, i)
	}
	return o
}
