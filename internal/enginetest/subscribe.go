package enginetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/service"
)

func testSubscribeAndReceive(t *testing.T, open Opener) {
	e, _ := open(t, Options{})

	// A channel never published is at offset 0, in the epoch its first
	// publication gets.
	first := NewReceiver("u1", "c1")
	start := mustSubscribe(t, e, "a", first, false)
	if start.Offset != 0 || start.Epoch == "" {
		t.Fatalf("Subscribe to a new channel = %+v, want offset 0 in some epoch", start)
	}
	for i := 1; i <= 3; i++ {
		if res := mustPublish(t, e, pub("a", i), ""); res.Position != (service.Position{Offset: uint64(i), Epoch: start.Epoch}) || res.Duplicate {
			t.Fatalf("Publish = %+v, want offset %d in %q", res, i, start.Epoch)
		}
	}
	first.WaitOffset(t, 3)

	second := NewReceiver("u2", "c2")
	if pos := mustSubscribe(t, e, "a", second, false); pos != (service.Position{Offset: 3, Epoch: start.Epoch}) {
		t.Fatalf("Subscribe = %+v, want offset 3 in %q", pos, start.Epoch)
	}
	other := NewReceiver("u3", "c3")
	mustSubscribe(t, e, "b", other, false)
	for i := 4; i <= 5; i++ {
		mustPublish(t, e, pub("a", i), "")
	}
	mustPublish(t, e, pub("b", 1), "")
	first.WaitOffset(t, 5)
	second.WaitOffset(t, 5)
	other.WaitOffset(t, 1)

	if got := first.Offsets(); !slices.Equal(got, span(1, 5)) {
		t.Errorf("first receiver got %v, want 1 to 5", got)
	}
	if got := second.Offsets(); !slices.Equal(got, span(4, 5)) {
		t.Errorf("second receiver got %v, want 4 to 5", got)
	}
	if got := other.Offsets(); !slices.Equal(got, []uint64{1}) {
		t.Errorf("receiver of another channel got %v, want [1]", got)
	}
	for _, ev := range second.Events() {
		p := ev.Publication
		want := pub("a", int(p.Offset))
		if ev.Kind != service.EventPublication || ev.Channel != "a" || p.Channel != "a" || string(p.Data) != string(want.Data) || p.Publisher != want.Publisher {
			t.Errorf("second receiver got %+v with %+v", ev, p)
		}
	}
	// One event goes to every receiver.
	if first.Events()[4] != second.Events()[1] {
		t.Error("receivers got different events for one publication")
	}
}

// A subscriber on one node receives, in order, what is published on
// another, from the position it was given.
func testReceiveFromAnother(t *testing.T, open Opener) {
	a, another := open(t, Options{})
	b := another()
	mustPublish(t, a, pub("a", 1), "")
	r := NewReceiver("u", "c")
	pos := mustSubscribe(t, b, "a", r, false)
	if pos.Offset != 1 {
		t.Fatalf("Subscribe after one publication = %+v, want offset 1", pos)
	}
	const n = 50
	for i := 2; i <= n; i++ {
		if res := mustPublish(t, a, pub("a", i), ""); res.Position != (service.Position{Offset: uint64(i), Epoch: pos.Epoch}) {
			t.Fatalf("Publish = %+v, want offset %d in %q", res, i, pos.Epoch)
		}
	}
	r.WaitOffset(t, n)
	if got := r.Offsets(); !slices.Equal(got, span(2, n)) {
		t.Errorf("receiver got %v, want 2 to %d once each", got, n)
	}
}

func testJoinLeave(t *testing.T, open Opener) {
	e, _ := open(t, Options{})
	listener := NewReceiver("u1", "c1")
	quiet := NewReceiver("u2", "c2")
	joiner := NewReceiver("u3", "c3")
	elsewhere := NewReceiver("u4", "c4")
	mustSubscribe(t, e, "a", listener, true)
	mustSubscribe(t, e, "a", quiet, false)
	mustSubscribe(t, e, "b", elsewhere, true)
	mustSubscribe(t, e, "a", joiner, true)
	if !e.Unsubscribe("a", quiet) {
		t.Error("Unsubscribe = false for a subscribed receiver")
	}
	if !e.Unsubscribe("a", joiner) {
		t.Error("Unsubscribe = false for a subscribed receiver")
	}

	// A node's own subscribers are told of its joins and leaves as they
	// happen.
	want := []string{"join a c2", "join a c3", "leave a c2", "leave a c3"}
	if got := Describe(listener.Events()); got != fmt.Sprint(want) {
		t.Errorf("listener got %s, want %v", got, want)
	}
	for _, ev := range listener.Events() {
		var m service.Member
		switch ev.Member.ConnectionID {
		case "c2":
			m = quiet.member
		case "c3":
			m = joiner.member
		}
		if *ev.Member != m {
			t.Errorf("event %s: member %+v, want %+v", Describe([]*service.Event{ev}), *ev.Member, m)
		}
	}
	if want := []string{"leave a c2"}; Describe(joiner.Events()) != fmt.Sprint(want) {
		t.Errorf("joiner got %s, want %v: not its own join or leave", Describe(joiner.Events()), want)
	}
	if es := quiet.Events(); len(es) != 0 {
		t.Errorf("a receiver that did not ask for joins and leaves got %s", Describe(es))
	}
	if es := elsewhere.Events(); len(es) != 0 {
		t.Errorf("a receiver of another channel got %s", Describe(es))
	}
}

// Joins and leaves on one node reach the listeners on another, once
// each.
func testJoinLeaveFromAnother(t *testing.T, open Opener) {
	a, another := open(t, Options{})
	b := another()
	listener := NewReceiver("u1", "c1")
	mustSubscribe(t, a, "a", listener, true)
	joiner := NewReceiver("u2", "c2")
	mustSubscribe(t, b, "a", joiner, false)
	listener.WaitFor(t, "the join", func(es []*service.Event) bool { return len(es) >= 1 })
	if !b.Unsubscribe("a", joiner) {
		t.Error("Unsubscribe = false for a subscribed receiver")
	}
	listener.WaitFor(t, "the leave", func(es []*service.Event) bool { return len(es) >= 2 })
	// A publication after them is the mark that nothing more of them is
	// on its way.
	mustPublish(t, b, pub("a", 1), "")
	listener.WaitOffset(t, 1)
	if got, want := Describe(listener.Events()), "[join a c2 leave a c2 pub a 1]"; got != want {
		t.Errorf("listener got %s, want %s", got, want)
	}
	for _, ev := range listener.Events()[:2] {
		if *ev.Member != joiner.member {
			t.Errorf("event %s: member %+v, want %+v", Describe([]*service.Event{ev}), *ev.Member, joiner.member)
		}
	}
}

func testUnsubscribe(t *testing.T, open Opener) {
	e, _ := open(t, Options{})
	r := NewReceiver("u1", "c1")
	other := NewReceiver("u2", "c2")
	if e.Unsubscribe("a", r) {
		t.Error("Unsubscribe from a channel nobody subscribed to = true")
	}
	mustSubscribe(t, e, "a", other, false)
	if e.Unsubscribe("a", r) {
		t.Error("Unsubscribe of a receiver not subscribed = true")
	}
	mustSubscribe(t, e, "a", r, false)
	if !e.Unsubscribe("a", r) {
		t.Error("Unsubscribe = false")
	}
	if e.Unsubscribe("a", r) {
		t.Error("second Unsubscribe = true")
	}
	// Unsubscribed, r receives nothing more; other does, and whatever
	// went to other would have gone to r with it.
	mustPublish(t, e, pub("a", 1), "")
	other.WaitOffset(t, 1)
	if es := r.Events(); len(es) != 0 {
		t.Errorf("an unsubscribed receiver got %s", Describe(es))
	}
	if got := other.Offsets(); !slices.Equal(got, []uint64{1}) {
		t.Errorf("the subscribed receiver got %v", got)
	}
}

func testSubscribeTwice(t *testing.T, open Opener) {
	e, _ := open(t, Options{})
	r := NewReceiver("u1", "c1")
	mustSubscribe(t, e, "a", r, true)
	if _, err := e.Subscribe(context.Background(), "a", r, false); service.ErrorCode(err) != service.ECONFLICT {
		t.Fatalf("second Subscribe: error %v, want %q", err, service.ECONFLICT)
	}
	// The first subscription stands, once.
	waitPresence(t, e, "a", []service.Member{r.member})
	// The same receiver may subscribe to another channel.
	mustSubscribe(t, e, "b", r, false)
	mustPublish(t, e, pub("a", 1), "")
	mustPublish(t, e, pub("b", 1), "")
	r.WaitFor(t, "both publications", func(es []*service.Event) bool { return len(es) >= 2 })
	got := Describe(r.Events())
	if got != "[pub a 1 pub b 1]" && got != "[pub b 1 pub a 1]" {
		t.Errorf("receiver got %s, want a's and b's publication once each", got)
	}
}

func testRemove(t *testing.T, open Opener) {
	e, _ := open(t, Options{})
	r1 := NewReceiver("u1", "c1")
	r2 := NewReceiver("u2", "c2")
	other := NewReceiver("u3", "c3")
	old := mustSubscribe(t, e, "a", r1, true)
	mustSubscribe(t, e, "a", r2, false)
	mustSubscribe(t, e, "b", other, false)
	mustPublish(t, e, pub("a", 1), "")
	mustPublish(t, e, pub("a", 2), "")
	mustPublish(t, e, pub("b", 1), "")
	r1.WaitOffset(t, 2)
	r2.WaitOffset(t, 2)

	pos := mustRemove(t, e, "a")
	if pos.Offset != 0 || pos.Epoch == old.Epoch || pos.Epoch == "" {
		t.Fatalf("Remove = %+v; the channel's epoch was %q", pos, old.Epoch)
	}
	r1.WaitEnded(t)
	r2.WaitEnded(t)
	for _, r := range []*Receiver{r1, r2} {
		es := r.Events()
		want := "[pub a 1 pub a 2 unsubscribed a removed]"
		if r == r1 {
			want = "[join a c2 pub a 1 pub a 2 unsubscribed a removed]"
		}
		if Describe(es) != want {
			t.Errorf("%s got %s, want %s", r.member.ConnectionID, Describe(es), want)
		}
		if ev := es[len(es)-1]; ev.Reason != service.ReasonRemoved || ev.Channel != "a" {
			t.Errorf("%s got %+v", r.member.ConnectionID, ev)
		}
	}
	waitPresence(t, e, "a", []service.Member{})
	if e.Unsubscribe("a", r1) {
		t.Error("Unsubscribe after Remove = true")
	}
	hist, err := e.History(context.Background(), "a", service.HistoryQuery{Limit: 10})
	if err != nil || len(hist.Publications) != 0 || hist.Position != pos {
		t.Errorf("History after Remove = %+v, %v; want nothing at %+v", hist, err, pos)
	}

	// The channel starts again, in the new epoch.
	r3 := NewReceiver("u4", "c4")
	if got := mustSubscribe(t, e, "a", r3, false); got != pos {
		t.Errorf("Subscribe after Remove = %+v, want %+v", got, pos)
	}
	if res := mustPublish(t, e, pub("a", 3), ""); res.Position != (service.Position{Offset: 1, Epoch: pos.Epoch}) {
		t.Errorf("Publish after Remove = %+v, want offset 1 in %q", res, pos.Epoch)
	}
	mustPublish(t, e, pub("b", 2), "")
	r3.WaitOffset(t, 1)
	other.WaitOffset(t, 2)
	if got := r3.Offsets(); !slices.Equal(got, []uint64{1}) {
		t.Errorf("new subscriber got %v, want [1]", got)
	}
	if n := len(r1.Events()); n != 4 {
		t.Errorf("removed subscriber got %s", Describe(r1.Events()))
	}
	if got := Describe(other.Events()); got != "[pub b 1 pub b 2]" {
		t.Errorf("subscriber of another channel got %s", got)
	}
}

// A removal made on one node ends the subscriptions on another.
func testRemoveFromAnother(t *testing.T, open Opener) {
	a, another := open(t, Options{})
	b := another()
	r := NewReceiver("u", "c")
	mustSubscribe(t, b, "a", r, false)
	mustPublish(t, a, pub("a", 1), "")
	r.WaitOffset(t, 1)
	pos := mustRemove(t, a, "a")
	r.WaitEnded(t)
	if got, want := Describe(r.Events()), "[pub a 1 unsubscribed a removed]"; got != want {
		t.Errorf("subscriber on the other node got %s, want %s", got, want)
	}
	late := NewReceiver("u", "late")
	if got := mustSubscribe(t, b, "a", late, false); got != pos {
		t.Errorf("Subscribe on the other node after Remove = %+v, want %+v", got, pos)
	}
	mustPublish(t, a, pub("a", 2), "")
	late.WaitOffset(t, 1)
	if got := Describe(late.Events()); got != "[pub a 1]" {
		t.Errorf("subscriber after the removal got %s, want [pub a 1]", got)
	}
}

func testRemoveThenSubscribe(t *testing.T, open Opener) {
	// Once Remove has returned, the channel is in its new epoch: a
	// subscription made then starts there, and is not ended by the
	// removal it followed.
	e, _ := open(t, Options{})
	var mu sync.Mutex
	var stale []string
	late := map[string]*Receiver{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				channel := fmt.Sprint("ch", g, ".", i)
				// Subscribers make fan-out take a while, as it does in
				// production, and so widen the window.
				for j := range 50 {
					mustSubscribe(t, e, channel, NewReceiver("u", fmt.Sprint(j)), false)
				}
				mustPublish(t, e, pub(channel, 1), "")
				pos, err := e.Remove(context.Background(), channel)
				if err != nil {
					t.Error(err)
					return
				}
				r := NewReceiver("u", channel)
				got := mustSubscribe(t, e, channel, r, false)
				mustPublish(t, e, pub(channel, 2), "")
				mu.Lock()
				late[channel] = r
				if got != pos {
					stale = append(stale, fmt.Sprintf("%s: Remove returned %+v, then Subscribe %+v", channel, pos, got))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(stale) > 0 {
		t.Errorf("of 400 subscriptions made right after Remove returned, %d got the position from before the removal (and are then ended by it): %v",
			len(stale), stale[:min(len(stale), 3)])
	}
	// Each gets the new epoch's first publication, and is not ended by
	// anything of the old one still on its way.
	var wrong []string
	for channel, r := range late {
		want := fmt.Sprintf("[pub %s 1]", channel)
		if !waitUntil(func() bool { return len(r.Events()) > 0 }) || Describe(r.Events()) != want {
			wrong = append(wrong, Describe(r.Events()))
		}
	}
	if len(wrong) > 0 {
		t.Errorf("of %d subscriptions made right after Remove returned, %d did not get just the publication that followed: %v",
			len(late), len(wrong), wrong[:min(len(wrong), 3)])
	}
}

func testRemovedChannelKeepsEpoch(t *testing.T, open Opener) {
	// A removed channel is at offset 0, but in a new epoch, whether or
	// not anyone subscribes between.
	e, _ := open(t, Options{})
	r := NewReceiver("u", "c")
	mustSubscribe(t, e, "a", r, false)
	mustPublish(t, e, pub("a", 1), "")
	r.WaitOffset(t, 1)
	pos := mustRemove(t, e, "a")
	r.WaitEnded(t)
	mustSubscribe(t, e, "a", r, false)
	e.Unsubscribe("a", r)
	if got := mustSubscribe(t, e, "a", r, false); got != pos {
		t.Errorf("Subscribe after Remove and an unsubscription = %+v, want %+v", got, pos)
	}
	e.Unsubscribe("a", r)
	if got := position(t, e, "a"); got != pos {
		t.Errorf("History's position = %+v; want %+v", got, pos)
	}
	// Removing a channel never published gives it a new epoch too.
	before := position(t, e, "never")
	if fresh := mustRemove(t, e, "never"); fresh.Offset != 0 || fresh.Epoch == "" || fresh.Epoch == before.Epoch || fresh.Epoch == pos.Epoch {
		t.Errorf("Remove of an unknown channel = %+v; it was at %+v", fresh, before)
	}
}
