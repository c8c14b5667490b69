// Package enginetest is the contract of service.Engine as tests, written
// once and run against every engine: each engine's package calls Run with
// a function that opens it.
//
// Engines may deliver asynchronously: a receiver may get a publication,
// and Presence list a member, only after the call that caused it has
// returned. The tests therefore wait, with a bound, for what the contract
// says must come, and never assert at once what may still be on its way.
package enginetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/service"
)

// Options are the engine settings that the contract depends on; zero
// fields mean no limit, and no idempotency keys remembered.
type Options struct {
	MaxPublications   int
	MaxAge            time.Duration
	IdempotencyWindow time.Duration
}

// Opener opens an engine with opts over storage of its own, closed when t
// ends. It also returns the function that opens another engine over the
// same storage, as another node would: publications made through one
// reach the other's subscribers. An engine that only one process opens
// returns itself.
type Opener func(t *testing.T, opts Options) (e service.Engine, another func() service.Engine)

// wait bounds every wait for something asynchronous: generous, for a
// loaded machine, and never an expected duration.
const wait = 10 * time.Second

// Run runs the contract's tests as subtests of t.
func Run(t *testing.T, open Opener) {
	for _, tc := range []struct {
		name string
		test func(*testing.T, Opener)
	}{
		{"SubscribeAndReceive", testSubscribeAndReceive},
		{"ReceiveFromAnother", testReceiveFromAnother},
		{"JoinLeave", testJoinLeave},
		{"JoinLeaveFromAnother", testJoinLeaveFromAnother},
		{"Unsubscribe", testUnsubscribe},
		{"SubscribeTwice", testSubscribeTwice},
		{"Remove", testRemove},
		{"RemoveFromAnother", testRemoveFromAnother},
		{"RemoveThenSubscribe", testRemoveThenSubscribe},
		{"RemovedChannelKeepsEpoch", testRemovedChannelKeepsEpoch},
		{"PublishThenHistory", testPublishThenHistory},
		{"History", testHistory},
		{"HistoryMaxBytes", testHistoryMaxBytes},
		{"MaxPublications", testMaxPublications},
		{"MaxAge", testMaxAge},
		{"Idempotency", testIdempotency},
		{"IdempotencyWindow", testIdempotencyWindow},
		{"IdempotencyConcurrent", testIdempotencyConcurrent},
		{"IdempotencyWindowZero", testIdempotencyWindowZero},
		{"PublishConcurrentGapless", testPublishConcurrentGapless},
		{"Channels", testChannels},
		{"ChannelsSkipsRemoved", testChannelsSkipsRemoved},
		{"ChannelsWithoutSubscribers", testChannelsWithoutSubscribers},
		{"Presence", testPresence},
		{"PresenceFromAnother", testPresenceFromAnother},
		{"SubscribeWhileLastLeaves", testSubscribeWhileLastLeaves},
		{"FirstPublicationWhileLastLeaves", testFirstPublicationWhileLastLeaves},
		{"SubscribeWhilePublishing", testSubscribeWhilePublishing},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, open) })
	}
}

// Receiver records the events it is given, for these tests and an
// engine's own.
type Receiver struct {
	member service.Member

	mu      sync.Mutex
	events  []*service.Event
	changed chan struct{} // signalled after each event
}

// NewReceiver is a Receiver for user's connection conn, subscribed
// since now. Its member's time is whole milliseconds, as engines that
// keep presence elsewhere store it.
func NewReceiver(user, conn string) *Receiver {
	return NewReceiverSince(user, conn, time.Now())
}

// NewReceiverSince is NewReceiver subscribed since since.
func NewReceiverSince(user, conn string, since time.Time) *Receiver {
	return &Receiver{
		member:  service.Member{User: user, ConnectionID: conn, Since: time.UnixMilli(since.UnixMilli())},
		changed: make(chan struct{}, 1),
	}
}

func (r *Receiver) Receive(e *service.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *Receiver) Member() service.Member { return r.member }

func (r *Receiver) Events() []*service.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// Offsets returns the offsets of the publications r received.
func (r *Receiver) Offsets() []uint64 {
	var o []uint64
	for _, e := range r.Events() {
		if e.Kind == service.EventPublication {
			o = append(o, e.Publication.Offset)
		}
	}
	return o
}

// WaitFor waits for cond to hold of r's events, failing t after a
// generous bound.
func (r *Receiver) WaitFor(t testing.TB, what string, cond func([]*service.Event) bool) {
	t.Helper()
	timeout := time.After(wait)
	for !cond(r.Events()) {
		select {
		case <-r.changed:
		case <-timeout:
			t.Fatalf("%s: timed out after %v waiting for %s; events: %s", r.member.ConnectionID, wait, what, Describe(r.Events()))
		}
	}
}

// WaitOffset waits for r to receive the publication at offset, or one
// after it.
func (r *Receiver) WaitOffset(t testing.TB, offset uint64) {
	t.Helper()
	r.WaitFor(t, fmt.Sprintf("offset %d", offset), func(es []*service.Event) bool {
		return slices.ContainsFunc(es, func(e *service.Event) bool {
			return e.Kind == service.EventPublication && e.Publication.Offset >= offset
		})
	})
}

// WaitEnded waits for r's subscription to be ended by the engine.
func (r *Receiver) WaitEnded(t testing.TB) {
	t.Helper()
	r.WaitFor(t, "the end of its subscription", func(es []*service.Event) bool {
		return len(es) > 0 && es[len(es)-1].Kind == service.EventUnsubscribed
	})
}

// Describe sums events up, one short phrase each, for messages.
func Describe(es []*service.Event) string {
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

// pub is a publication to channel, published now, with data n.
func pub(channel string, n int) service.Publication {
	return service.Publication{
		Channel:   channel,
		Data:      json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)),
		Publisher: "user" + fmt.Sprint(n),
		Time:      time.Now(),
	}
}

func mustPublish(t testing.TB, e service.Engine, p service.Publication, key string) service.Published {
	t.Helper()
	res, err := e.Publish(context.Background(), p, key)
	if err != nil {
		t.Fatalf("Publish to %s: %v", p.Channel, err)
	}
	return res
}

func mustSubscribe(t testing.TB, e service.Engine, channel string, r service.Receiver, joinLeave bool) service.Position {
	t.Helper()
	pos, err := e.Subscribe(context.Background(), channel, r, joinLeave)
	if err != nil {
		t.Fatalf("Subscribe to %s: %v", channel, err)
	}
	return pos
}

func mustRemove(t testing.TB, e service.Engine, channel string) service.Position {
	t.Helper()
	pos, err := e.Remove(context.Background(), channel)
	if err != nil {
		t.Fatalf("Remove %s: %v", channel, err)
	}
	return pos
}

// position is the channel's position, read with its history.
func position(t testing.TB, e service.Engine, channel string) service.Position {
	t.Helper()
	h, err := e.History(context.Background(), channel, service.HistoryQuery{})
	if err != nil {
		t.Fatalf("History of %s: %v", channel, err)
	}
	return h.Position
}

// readAll reads channel's whole history, oldest first.
func readAll(t testing.TB, e service.Engine, channel string) []service.Publication {
	t.Helper()
	h, err := e.History(context.Background(), channel, service.HistoryQuery{Limit: 1 << 20})
	if err != nil {
		t.Fatalf("History of %s: %v", channel, err)
	}
	return h.Publications
}

func offsets(pubs []service.Publication) []uint64 {
	o := []uint64{}
	for _, p := range pubs {
		o = append(o, p.Offset)
	}
	return o
}

// span returns the offsets from from to to.
func span(from, to uint64) []uint64 {
	o := []uint64{}
	for i := from; i <= to; i++ {
		o = append(o, i)
	}
	return o
}

func sameOffsets(got, want []uint64) bool {
	return len(got) == len(want) && (len(got) == 0 || slices.Equal(got, want))
}

// presence is the channel's presence, failing the test on an error.
func presence(t testing.TB, e service.Engine, channel string) []service.Member {
	t.Helper()
	members, err := e.Presence(context.Background(), channel)
	if err != nil {
		t.Fatalf("Presence of %s: %v", channel, err)
	}
	return members
}

// waitPresence waits for the channel's presence to be want, in order.
func waitPresence(t testing.TB, e service.Engine, channel string, want []service.Member) {
	t.Helper()
	var got []service.Member
	ok := waitUntil(func() bool {
		got = presence(t, e, channel)
		return slices.Equal(got, want)
	})
	if !ok {
		t.Fatalf("Presence of %s = %+v after %v, want %+v", channel, got, wait, want)
	}
}

// waitUntil polls cond until it holds or wait has passed, and reports
// whether it held: for a caller that says itself what went wrong.
func waitUntil(cond func() bool) bool {
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}
