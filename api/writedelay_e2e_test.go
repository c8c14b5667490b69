package api_test

import (
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/rpc"
	"github.com/switchboard/switchboard/server"
	"github.com/switchboard/switchboard/service"
)

// TestWriteDelayKeepsEveryDeliveryOnceInOrder publishes while subscribers
// get their notifications through the write delay, which gathers what
// reaches a client within it into one write: each still gets every
// publication once, in offset order, after its subscribe reply, and the
// publisher's replies are not held back by it.
func TestWriteDelayKeepsEveryDeliveryOnceInOrder(t *testing.T) {
	ta := servertest.Start(t, server.Config{Limits: rpc.Limits{WriteDelay: 20 * time.Millisecond}})
	subTok := ta.Token("bob", service.Permissions{Subscribe: []string{">"}}, time.Hour)
	pub := ta.HubClient(ta.Token("alice", service.Permissions{Publish: []string{">"}}, time.Hour))
	const subscribers, publications = 20, 300
	subs := make([]*servertest.Client, subscribers)
	for i := range subs {
		subs[i] = ta.HubClient(subTok)
		if s := subs[i].Subscribe(map[string]any{"channel": "delayed"}); s.Offset != 0 {
			t.Fatalf("subscriber %d subscribed at %d", i, s.Offset)
		}
	}
	for i := 1; i <= publications; i++ {
		if p := pub.Publish("delayed", map[string]int{"n": i}); p.Offset != uint64(i) {
			t.Fatalf("publication %d got offset %d", i, p.Offset)
		}
	}
	for i, s := range subs {
		for want := uint64(1); want <= publications; want++ {
			if n := s.NextPublication(); n.Offset != want || n.Channel != "delayed" {
				t.Fatalf("subscriber %d: notification %+v, want offset %d", i, n, want)
			}
		}
	}
	// A late subscriber recovers through the same delayed writer.
	late := ta.HubClient(subTok)
	s := late.Subscribe(map[string]any{"channel": "delayed", "since": map[string]any{"offset": publications - 5, "epoch": pub.Publish("delayed", 0).Epoch}})
	if !s.Recovered || len(s.Publications) != 6 {
		t.Fatalf("late subscriber: %+v", s)
	}
	if p := pub.Publish("delayed", 1); p.Offset != publications+2 {
		t.Fatalf("publish after the late subscribe: offset %d", p.Offset)
	}
	if n := late.NextPublication(); n.Offset != publications+2 {
		t.Fatalf("late subscriber's first notification: offset %d, want %d", n.Offset, publications+2)
	}
}

// A reply never waits for the write delay, even behind a notification
// that does: with a delay of an hour, a subscriber's call is answered,
// and the notification queued before its reply goes out with it.
func TestRepliesDoNotWaitForTheWriteDelay(t *testing.T) {
	ta := servertest.Start(t, server.Config{Limits: rpc.Limits{WriteDelay: time.Hour}})
	sub := ta.HubClient(ta.Token("bob", service.Permissions{Subscribe: []string{">"}}, time.Hour))
	pub := ta.HubClient(ta.Token("alice", service.Permissions{Publish: []string{">"}}, time.Hour))
	sub.Subscribe(map[string]any{"channel": "held"})
	if p := pub.Publish("held", 1); p.Offset != 1 {
		t.Fatalf("publish: offset %d", p.Offset)
	}
	if r := sub.Call("serverPing", nil); r.Error != nil {
		t.Fatalf("serverPing behind a delayed notification: %+v", r.Error)
	}
	if n := sub.NextPublication(); n.Offset != 1 {
		t.Fatalf("the notification: offset %d, want 1", n.Offset)
	}
	// A call run off the read loop queues its reply the other way.
	pub.Publish("held", 2)
	if r := sub.Call("channelHistory", map[string]any{"channel": "held"}); r.Error != nil {
		t.Fatalf("channelHistory behind a delayed notification: %+v", r.Error)
	}
	if n := sub.NextPublication(); n.Offset != 2 {
		t.Fatalf("the second notification: offset %d, want 2", n.Offset)
	}
}
