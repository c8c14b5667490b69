package fanout_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/fanout"
	"github.com/switchboard/switchboard/service"
)

// receiver counts what it is given.
type receiver struct {
	member service.Member

	mu     sync.Mutex
	events []*service.Event
}

func (r *receiver) Receive(e *service.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *receiver) Member() service.Member { return r.member }

func newReceiver(conn string) *receiver {
	return &receiver{member: service.Member{User: "u", ConnectionID: conn, Since: time.Now()}}
}

// hooks records the calls of its Hooks, as a broker's subscriptions.
type hooks struct {
	mu    sync.Mutex
	calls []string
	fail  error
	from  *service.Position // the broker's position, if First reads one
}

func (h *hooks) Hooks() fanout.Hooks {
	return fanout.Hooks{
		First: func(_ context.Context, channel string, pos service.Position) (service.Position, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.calls = append(h.calls, "first "+channel)
			if h.from != nil {
				pos = *h.from
			}
			return pos, h.fail
		},
		Last: func(channel string) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.calls = append(h.calls, "last "+channel)
		},
	}
}

func (h *hooks) got() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.calls)
}

// A broker hears of a channel's first local subscriber and of its last,
// once each, however many come and go in between, and whether the last
// leaves or the channel is removed.
func TestHooksFirstAndLast(t *testing.T) {
	var h hooks
	l := fanout.New("e0", nil, h.Hooks())
	ctx := context.Background()
	r1, r2 := newReceiver("c1"), newReceiver("c2")
	for _, r := range []*receiver{r1, r2} {
		if _, err := l.Subscribe(ctx, "a", r, false); err != nil {
			t.Fatal(err)
		}
	}
	l.Unsubscribe("a", r1)
	l.Unsubscribe("a", r2)
	if _, err := l.Subscribe(ctx, "a", r1, false); err != nil {
		t.Fatal(err)
	}
	l.Removed("a", service.Position{Epoch: "e1"})
	l.Removed("a", service.Position{Epoch: "e2"}) // nobody left to end
	want := []string{"first a", "last a", "first a", "last a"}
	if got := h.got(); !slices.Equal(got, want) {
		t.Errorf("hooks called %q, want %q", got, want)
	}
}

// When First fails, so does the subscription, and the channel stays
// without subscribers.
func TestHooksFirstFails(t *testing.T) {
	h := hooks{fail: errors.New("broker down")}
	l := fanout.New("e0", nil, h.Hooks())
	r := newReceiver("c1")
	if _, err := l.Subscribe(context.Background(), "a", r, false); !errors.Is(err, h.fail) {
		t.Fatalf("Subscribe: error %v, want %v", err, h.fail)
	}
	if members := l.Presence("a"); len(members) != 0 {
		t.Errorf("Presence after a refused subscription = %v", members)
	}
	if l.Unsubscribe("a", r) {
		t.Error("Unsubscribe of a refused subscription = true")
	}
	if infos, _ := l.Channels("", func(string) bool { return true }, 10); len(infos) != 0 {
		t.Errorf("Channels after a refused subscription = %v", infos)
	}
}

// A subscriber gets what is delivered after the position it was given,
// in order, and the position moves with each delivery.
func TestPublishedInOrder(t *testing.T) {
	l := fanout.New("e0", map[string]service.Position{"a": {Offset: 2, Epoch: "e0"}}, fanout.Hooks{})
	r := newReceiver("c1")
	pos, err := l.Subscribe(context.Background(), "a", r, false)
	if err != nil || pos != (service.Position{Offset: 2, Epoch: "e0"}) {
		t.Fatalf("Subscribe = %+v, %v", pos, err)
	}
	for o := uint64(3); o <= 5; o++ {
		l.Published(service.Position{Offset: o, Epoch: "e0"}, &service.Publication{Channel: "a", Offset: o})
	}
	var got []string
	for _, e := range r.events {
		got = append(got, fmt.Sprint(e.Publication.Offset))
	}
	if want := []string{"3", "4", "5"}; !slices.Equal(got, want) {
		t.Errorf("received %v, want %v", got, want)
	}
	if pos := l.Position("a"); pos != (service.Position{Offset: 5, Epoch: "e0"}) {
		t.Errorf("Position = %+v, want offset 5", pos)
	}
	if pos := l.Position("never"); pos != (service.Position{Epoch: "e0"}) {
		t.Errorf("Position of an unknown channel = %+v", pos)
	}
}

// A broker engine's First reads the channel's position from the broker:
// the first subscriber is given it, and so are later ones until a change
// is delivered.
func TestHooksFirstGivesThePosition(t *testing.T) {
	h := hooks{from: &service.Position{Offset: 7, Epoch: "b"}}
	l := fanout.New("e0", map[string]service.Position{"a": {Offset: 2, Epoch: "e0"}}, h.Hooks())
	for _, conn := range []string{"c1", "c2"} {
		if pos, err := l.Subscribe(context.Background(), "a", newReceiver(conn), false); err != nil || pos != *h.from {
			t.Errorf("%s: Subscribe = %+v, %v; want %+v", conn, pos, err, *h.from)
		}
	}
	l.Published(service.Position{Offset: 8, Epoch: "b"}, &service.Publication{Channel: "a", Offset: 8})
	if pos := l.Position("a"); pos != (service.Position{Offset: 8, Epoch: "b"}) {
		t.Errorf("Position = %+v, want offset 8 in b", pos)
	}
}

// Joins and leaves are reported in the order they happen, with their
// members, so that presence kept elsewhere follows: a subscribe, an
// unsubscribe, and the subscriptions that the engine ends by a removal
// or an interruption.
func TestHooksJoinedAndLeft(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	l := fanout.New("e0", nil, fanout.Hooks{
		First: func(_ context.Context, _ string, pos service.Position) (service.Position, error) { return pos, nil },
		Joined: func(channel string, m service.Member) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, "+"+channel+" "+m.ConnectionID)
		},
		Left: func(channel string, members []service.Member) {
			mu.Lock()
			defer mu.Unlock()
			var conns []string
			for _, m := range members {
				conns = append(conns, m.ConnectionID)
			}
			slices.Sort(conns)
			seen = append(seen, fmt.Sprint("-", channel, conns))
		},
	})
	ctx := context.Background()
	r1, r2, r3 := newReceiver("c1"), newReceiver("c2"), newReceiver("c3")
	for _, r := range []*receiver{r1, r2, r3} {
		if _, err := l.Subscribe(ctx, "a", r, false); err != nil {
			t.Fatal(err)
		}
	}
	l.Unsubscribe("a", r3)
	l.Removed("a", service.Position{Epoch: "e1"})
	if _, err := l.Subscribe(ctx, "b", r1, false); err != nil {
		t.Fatal(err)
	}
	l.Interrupt("b", service.ReasonInterrupted)
	l.Interrupt("b", service.ReasonInterrupted) // nobody left to end
	want := []string{"+a c1", "+a c2", "+a c3", "-a[c3]", "-a[c1 c2]", "+b c1", "-b[c1]"}
	if !slices.Equal(seen, want) {
		t.Errorf("hooks called with %q, want %q", seen, want)
	}
}
