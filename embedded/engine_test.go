package embedded

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

func TestSubscribeAndReceive(t *testing.T) {
	f := newFixture(t, Options{})
	epoch := f.engine.seq.epoch

	// A channel never published is at 0 in the store's epoch.
	first := newReceiver("u1", "c1")
	if pos := f.subscribe(t, "a", first, false); pos != (service.Position{Epoch: epoch}) {
		t.Fatalf("Subscribe to a new channel = %+v, want offset 0 in %q", pos, epoch)
	}
	for i := 1; i <= 3; i++ {
		if res := f.publish(t, "a", i); res.Offset != uint64(i) || res.Epoch != epoch {
			t.Fatalf("Publish = %+v", res)
		}
	}
	first.waitOffset(t, 3)

	second := newReceiver("u2", "c2")
	if pos := f.subscribe(t, "a", second, false); pos != (service.Position{Offset: 3, Epoch: epoch}) {
		t.Fatalf("Subscribe = %+v, want offset 3 in %q", pos, epoch)
	}
	other := newReceiver("u3", "c3")
	f.subscribe(t, "b", other, false)
	for i := 4; i <= 5; i++ {
		f.publish(t, "a", i)
	}
	f.publish(t, "b", 1)
	f.closeStore(t)

	if got := first.offsets(); !slices.Equal(got, span(1, 5)) {
		t.Errorf("first receiver got %v, want 1 to 5", got)
	}
	if got := second.offsets(); !slices.Equal(got, span(4, 5)) {
		t.Errorf("second receiver got %v, want 4 to 5", got)
	}
	if got := other.offsets(); !slices.Equal(got, []uint64{1}) {
		t.Errorf("receiver of another channel got %v, want [1]", got)
	}
	for _, e := range second.Events() {
		p := e.Publication
		if e.Kind != service.EventPublication || e.Channel != "a" || p.Channel != "a" || string(p.Data) != fmt.Sprint(p.Offset) || p.Publisher != "p" {
			t.Errorf("second receiver got %+v with %+v", e, p)
		}
	}
	// One event goes to every receiver.
	if first.Events()[4] != second.Events()[1] {
		t.Error("receivers got different events for one publication")
	}
}

func TestJoinLeave(t *testing.T) {
	f := newFixture(t, Options{})
	listener := newReceiver("u1", "c1")
	quiet := newReceiver("u2", "c2")
	joiner := newReceiver("u3", "c3")
	elsewhere := newReceiver("u4", "c4")
	f.subscribe(t, "a", listener, true)
	f.subscribe(t, "a", quiet, false)
	f.subscribe(t, "b", elsewhere, true)
	f.subscribe(t, "a", joiner, true)
	if !f.engine.Unsubscribe("a", quiet) {
		t.Error("Unsubscribe = false for a subscribed receiver")
	}
	if !f.engine.Unsubscribe("a", joiner) {
		t.Error("Unsubscribe = false for a subscribed receiver")
	}

	// Joins and leaves are told as they happen, not on the committer.
	want := []string{"join a c2", "join a c3", "leave a c2", "leave a c3"}
	if got := describe(listener.Events()); got != fmt.Sprint(want) {
		t.Errorf("listener got %s, want %v", got, want)
	}
	for _, e := range listener.Events() {
		var m service.Member
		switch e.Member.ConnectionID {
		case "c2":
			m = quiet.member
		case "c3":
			m = joiner.member
		}
		if *e.Member != m {
			t.Errorf("event %s: member %+v, want %+v", describe([]*service.Event{e}), *e.Member, m)
		}
	}
	if want := []string{"leave a c2"}; describe(joiner.Events()) != fmt.Sprint(want) {
		t.Errorf("joiner got %s, want %v: not its own join or leave", describe(joiner.Events()), want)
	}
	if es := quiet.Events(); len(es) != 0 {
		t.Errorf("a receiver that did not ask for joins and leaves got %s", describe(es))
	}
	if es := elsewhere.Events(); len(es) != 0 {
		t.Errorf("a receiver of another channel got %s", describe(es))
	}
}

func TestUnsubscribe(t *testing.T) {
	f := newFixture(t, Options{})
	r := newReceiver("u1", "c1")
	other := newReceiver("u2", "c2")
	if f.engine.Unsubscribe("a", r) {
		t.Error("Unsubscribe from a channel nobody subscribed to = true")
	}
	f.subscribe(t, "a", other, false)
	if f.engine.Unsubscribe("a", r) {
		t.Error("Unsubscribe of a receiver not subscribed = true")
	}
	f.subscribe(t, "a", r, false)
	if !f.engine.Unsubscribe("a", r) {
		t.Error("Unsubscribe = false")
	}
	if f.engine.Unsubscribe("a", r) {
		t.Error("second Unsubscribe = true")
	}
	// Unsubscribed, r receives nothing more; other does.
	f.publish(t, "a", 1)
	f.closeStore(t)
	if es := r.Events(); len(es) != 0 {
		t.Errorf("an unsubscribed receiver got %s", describe(es))
	}
	if got := other.offsets(); !slices.Equal(got, []uint64{1}) {
		t.Errorf("the subscribed receiver got %v", got)
	}
}

func TestSubscribeTwice(t *testing.T) {
	f := newFixture(t, Options{})
	r := newReceiver("u1", "c1")
	f.subscribe(t, "a", r, true)
	if _, err := f.engine.Subscribe(context.Background(), "a", r, false); service.ErrorCode(err) != service.ECONFLICT {
		t.Fatalf("second Subscribe: error %v, want %q", err, service.ECONFLICT)
	}
	// The first subscription stands, once.
	members, err := f.engine.Presence(context.Background(), "a")
	if err != nil || len(members) != 1 || members[0] != r.member {
		t.Errorf("Presence = %v, %v", members, err)
	}
	// The same receiver may subscribe to another channel.
	f.subscribe(t, "b", r, false)
	f.publish(t, "a", 1)
	f.closeStore(t)
	if got := r.offsets(); !slices.Equal(got, []uint64{1}) {
		t.Errorf("receiver got %v, want [1] once", got)
	}
}

func TestRemove(t *testing.T) {
	f := newFixture(t, Options{})
	r1 := newReceiver("u1", "c1")
	r2 := newReceiver("u2", "c2")
	other := newReceiver("u3", "c3")
	f.subscribe(t, "a", r1, true)
	f.subscribe(t, "a", r2, false)
	f.subscribe(t, "b", other, false)
	f.publish(t, "a", 1)
	f.publish(t, "a", 2)
	f.publish(t, "b", 1)

	pos, err := f.engine.Remove(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	if pos.Offset != 0 || pos.Epoch == f.engine.seq.epoch || pos.Epoch == "" {
		t.Fatalf("Remove = %+v; the store's epoch is %q", pos, f.engine.seq.epoch)
	}
	removed := func(es []*service.Event) bool {
		return len(es) > 0 && es[len(es)-1].Kind == service.EventUnsubscribed
	}
	r1.waitFor(t, "the removal", removed)
	r2.waitFor(t, "the removal", removed)
	for _, r := range []*receiver{r1, r2} {
		es := r.Events()
		want := "[pub a 1 pub a 2 unsubscribed a removed]"
		if r == r1 {
			want = "[join a c2 pub a 1 pub a 2 unsubscribed a removed]"
		}
		if describe(es) != want {
			t.Errorf("%s got %s, want %s", r.member.ConnectionID, describe(es), want)
		}
		if e := es[len(es)-1]; e.Reason != service.ReasonRemoved || e.Channel != "a" {
			t.Errorf("%s got %+v", r.member.ConnectionID, e)
		}
	}
	members, err := f.engine.Presence(context.Background(), "a")
	if err != nil || len(members) != 0 {
		t.Errorf("Presence after Remove = %v, %v", members, err)
	}
	if f.engine.Unsubscribe("a", r1) {
		t.Error("Unsubscribe after Remove = true")
	}
	hist, err := f.engine.History(context.Background(), "a", service.HistoryQuery{Limit: 10})
	if err != nil || len(hist.Publications) != 0 || hist.Position != pos {
		t.Errorf("History after Remove = %+v, %v; want nothing at %+v", hist, err, pos)
	}

	// The channel starts again, in the new epoch.
	r3 := newReceiver("u4", "c4")
	if got := f.subscribe(t, "a", r3, false); got != pos {
		t.Errorf("Subscribe after Remove = %+v, want %+v", got, pos)
	}
	if res := f.publish(t, "a", 3); res.Position != (service.Position{Offset: 1, Epoch: pos.Epoch}) {
		t.Errorf("Publish after Remove = %+v, want offset 1 in %q", res, pos.Epoch)
	}
	f.closeStore(t)
	if got := r3.offsets(); !slices.Equal(got, []uint64{1}) {
		t.Errorf("new subscriber got %v, want [1]", got)
	}
	if n := len(r1.Events()); n != 4 {
		t.Errorf("removed subscriber got %s", describe(r1.Events()))
	}
	if got := describe(other.Events()); got != "[pub b 1]" {
		t.Errorf("subscriber of another channel got %s", got)
	}
}

func TestRemoveThenSubscribe(t *testing.T) {
	// Once Remove has returned, the channel is in its new epoch: a
	// subscription made then starts there, and is not ended by the
	// removal it followed.
	f := newFixture(t, Options{})
	var mu sync.Mutex
	var stale []string
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				channel := fmt.Sprint("ch", g, ".", i)
				// Subscribers make fan-out take a while, as it does in
				// production, and so widen the window.
				for j := range 50 {
					f.subscribe(t, channel, newReceiver("u", fmt.Sprint(j)), false)
				}
				f.publish(t, channel, 1)
				pos, err := f.engine.Remove(context.Background(), channel)
				if err != nil {
					t.Error(err)
					return
				}
				if got := f.subscribe(t, channel, newReceiver("u", "c"), false); got != pos {
					mu.Lock()
					stale = append(stale, fmt.Sprintf("%s: Remove returned %+v, then Subscribe %+v", channel, pos, got))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(stale) > 0 {
		t.Errorf("of 400 subscriptions made right after Remove returned, %d got the position from before the removal (and are then ended by it): %v",
			len(stale), stale[:min(len(stale), 3)])
	}
}

func TestPublishThenHistory(t *testing.T) {
	// A publication is in the history, and the channel's position at
	// least its offset, once Publish has returned.
	f := newFixture(t, Options{})
	// Subscribers make fan-out take a while, as it does in production.
	for i := range 50 {
		f.subscribe(t, "a", newReceiver("u", fmt.Sprint(i)), false)
	}
	var behind []string
	const n = 300
	for i := range n {
		res := f.publish(t, "a", i)
		hist, err := f.engine.History(context.Background(), "a", service.HistoryQuery{After: res.Offset - 1, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if hist.Position.Offset < res.Offset || len(hist.Publications) != 1 {
			behind = append(behind, fmt.Sprintf("offset %d: history at %d with %d publications", res.Offset, hist.Position.Offset, len(hist.Publications)))
		}
	}
	// And with publishers at once, so that batches hold several.
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range 40 {
				res, err := f.engine.Publish(context.Background(), service.Publication{Channel: "a", Data: json.RawMessage(fmt.Sprint(i)), Time: time.Now()}, "")
				if err != nil {
					t.Error(err)
					return
				}
				hist, err := f.engine.History(context.Background(), "a", service.HistoryQuery{After: res.Offset - 1, Limit: 1})
				if err != nil {
					t.Error(err)
					return
				}
				if hist.Position.Offset < res.Offset || len(hist.Publications) != 1 {
					mu.Lock()
					behind = append(behind, fmt.Sprintf("offset %d: history at %d with %d publications", res.Offset, hist.Position.Offset, len(hist.Publications)))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(behind) > 0 {
		t.Errorf("of %d publications, %d were not in the history read right after Publish returned: %v", n+8*40, len(behind), behind[:min(len(behind), 3)])
	}
}

func TestHistory(t *testing.T) {
	f := newFixture(t, Options{})
	r := newReceiver("u", "c")
	f.subscribe(t, "a", r, false)
	for i := 1; i <= 5; i++ {
		f.publish(t, "a", i)
	}
	r.waitOffset(t, 5)
	epoch := f.engine.seq.epoch
	for _, tt := range []struct {
		q    service.HistoryQuery
		want []uint64
	}{
		{service.HistoryQuery{Limit: 10}, span(1, 5)},
		{service.HistoryQuery{After: 2, Limit: 2}, span(3, 4)},
		{service.HistoryQuery{Limit: 10, Reverse: true}, []uint64{5, 4, 3, 2, 1}},
		{service.HistoryQuery{Before: 3, Limit: 10, Reverse: true}, []uint64{2, 1}},
		{service.HistoryQuery{Before: 100, Limit: 10}, span(1, 5)},
		{service.HistoryQuery{Limit: 0}, nil},
	} {
		hist, err := f.engine.History(context.Background(), "a", tt.q)
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		for _, p := range hist.Publications {
			got = append(got, p.Offset)
		}
		if !slices.Equal(got, tt.want) || hist.Position != (service.Position{Offset: 5, Epoch: epoch}) {
			t.Errorf("History(%+v) = %v at %+v, want %v at offset 5", tt.q, got, hist.Position, tt.want)
		}
	}
	hist, err := f.engine.History(context.Background(), "unknown", service.HistoryQuery{Limit: 10})
	if err != nil || len(hist.Publications) != 0 || hist.Position != (service.Position{Epoch: epoch}) {
		t.Errorf("History of an unknown channel = %+v, %v", hist, err)
	}
	// Reading history does not make a channel.
	infos, _, _ := f.engine.Channels(context.Background(), "unknown", all, 10)
	if len(infos) != 0 {
		t.Errorf("Channels lists %v after a read of its history", infos)
	}
}
