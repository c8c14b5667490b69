package embedded_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
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
	engine, err := embedded.New(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	f.store, f.engine = store, engine
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

func TestSubscribeAndReceive(t *testing.T) {
	f := newFixture(t, sqlite.Options{})
	epoch := f.store.Epoch()

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
	f := newFixture(t, sqlite.Options{})
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
	f := newFixture(t, sqlite.Options{})
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
	f := newFixture(t, sqlite.Options{})
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
	f := newFixture(t, sqlite.Options{})
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
	if pos.Offset != 0 || pos.Epoch == f.store.Epoch() || pos.Epoch == "" {
		t.Fatalf("Remove = %+v; the store's epoch is %q", pos, f.store.Epoch())
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
	f := newFixture(t, sqlite.Options{})
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
	f := newFixture(t, sqlite.Options{})
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
	f := newFixture(t, sqlite.Options{})
	r := newReceiver("u", "c")
	f.subscribe(t, "a", r, false)
	for i := 1; i <= 5; i++ {
		f.publish(t, "a", i)
	}
	r.waitOffset(t, 5)
	epoch := f.store.Epoch()
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

func all(string) bool { return true }

func names(infos []service.ChannelInfo) []string {
	n := []string{}
	for _, i := range infos {
		n = append(n, i.Name)
	}
	return n
}

func TestChannels(t *testing.T) {
	f := newFixture(t, sqlite.Options{})
	ctx := context.Background()
	watcher := newReceiver("w", "w")
	f.subscribe(t, "news.sport", watcher, false)
	for _, ch := range []string{"news.sport", "news.sport", "news.weather", "news", "newsroom", "chat.b", "chat.a", "Chat"} {
		f.publish(t, ch, 1)
	}
	watcher.waitOffset(t, 2)
	r := newReceiver("u", "c")
	f.subscribe(t, "news.idle", r, false) // subscribers, no history
	f.subscribe(t, "chat.a", r, false)
	f.closeStore(t) // every publication has been fanned out

	infos, more, err := f.engine.Channels(ctx, "", all, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []service.ChannelInfo{
		{Name: "Chat", Offset: 1},
		{Name: "chat.a", Offset: 1, Subscribers: 1},
		{Name: "chat.b", Offset: 1},
		{Name: "news", Offset: 1},
		{Name: "news.idle", Subscribers: 1},
		{Name: "news.sport", Offset: 2, Subscribers: 1},
		{Name: "news.weather", Offset: 1},
		{Name: "newsroom", Offset: 1},
	}
	if !slices.Equal(infos, want) || more {
		t.Errorf("Channels = %+v, %v; want %+v", infos, more, want)
	}
	for _, tt := range []struct {
		prefix  string
		visible func(string) bool
		limit   int
		want    []string
		more    bool
	}{
		{"news", all, 100, []string{"news", "news.idle", "news.sport", "news.weather", "newsroom"}, false},
		{"news.", all, 100, []string{"news.idle", "news.sport", "news.weather"}, false},
		{"news.s", all, 100, []string{"news.sport"}, false},
		{"news.sport", all, 100, []string{"news.sport"}, false},
		{"news.sport.", all, 100, []string{}, false},
		{"nothing", all, 100, []string{}, false},
		{"chat", all, 100, []string{"chat.a", "chat.b"}, false}, // prefixes are case-sensitive
		{"", all, 3, []string{"Chat", "chat.a", "chat.b"}, true},
		{"news", all, 4, []string{"news", "news.idle", "news.sport", "news.weather"}, true},
		{"news", all, 5, []string{"news", "news.idle", "news.sport", "news.weather", "newsroom"}, false},
		{"", func(s string) bool { return service.MatchChannel("news.*", s) }, 100, []string{"news.idle", "news.sport", "news.weather"}, false},
		// more counts only what was visible.
		{"", func(s string) bool { return service.MatchChannel("news.*", s) }, 3, []string{"news.idle", "news.sport", "news.weather"}, false},
		{"", func(s string) bool { return service.MatchChannel("news.*", s) }, 2, []string{"news.idle", "news.sport"}, true},
		{"", func(string) bool { return false }, 100, []string{}, false},
	} {
		infos, more, err := f.engine.Channels(ctx, tt.prefix, tt.visible, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		if got := names(infos); !slices.Equal(got, tt.want) || more != tt.more {
			t.Errorf("Channels(%q, limit %d) = %v, more %v; want %v, more %v", tt.prefix, tt.limit, got, more, tt.want, tt.more)
		}
	}
}

func TestChannelsSkipsRemoved(t *testing.T) {
	// A removed channel is listed again once it has a subscriber or a
	// publication; until then it counts for neither the limit nor more.
	f := newFixture(t, sqlite.Options{})
	ctx := context.Background()
	for _, ch := range []string{"a", "b", "c", "d"} {
		f.publish(t, ch, 1)
	}
	for _, ch := range []string{"b", "d"} {
		if _, err := f.engine.Remove(ctx, ch); err != nil {
			t.Fatal(err)
		}
	}
	r := newReceiver("u", "c")
	f.closeStore(t) // every change has been fanned out
	check := func(limit int, want []string, wantMore bool) {
		t.Helper()
		infos, more, err := f.engine.Channels(ctx, "", all, limit)
		if err != nil {
			t.Fatal(err)
		}
		if got := names(infos); !slices.Equal(got, want) || more != wantMore {
			t.Errorf("Channels(limit %d) = %v, more %v; want %v, more %v", limit, got, more, want, wantMore)
		}
	}
	check(10, []string{"a", "c"}, false)
	check(2, []string{"a", "c"}, false)
	check(1, []string{"a"}, true)
	f.subscribe(t, "b", r, false)
	check(10, []string{"a", "b", "c"}, false)
	check(2, []string{"a", "b"}, true)
	f.engine.Unsubscribe("b", r)
	check(10, []string{"a", "c"}, false)
}

func TestChannelsAfterRestart(t *testing.T) {
	f := newFixture(t, sqlite.Options{})
	f.publish(t, "a", 1)
	f.publish(t, "a", 2)
	f.publish(t, "b", 1)
	f.closeStore(t)
	f.open(t, sqlite.Options{})
	infos, _, err := f.engine.Channels(context.Background(), "", all, 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []service.ChannelInfo{{Name: "a", Offset: 2}, {Name: "b", Offset: 1}}; !slices.Equal(infos, want) {
		t.Errorf("Channels after restart = %+v, want %+v", infos, want)
	}
	r := newReceiver("u", "c")
	if pos := f.subscribe(t, "a", r, false); pos != (service.Position{Offset: 2, Epoch: f.store.Epoch()}) {
		t.Errorf("Subscribe after restart = %+v", pos)
	}
}

func TestPresence(t *testing.T) {
	f := newFixture(t, sqlite.Options{})
	ctx := context.Background()
	base := time.Now()
	rs := []*receiver{
		{member: service.Member{User: "u1", ConnectionID: "b", Since: base.Add(2 * time.Second)}, changed: make(chan struct{}, 1)},
		{member: service.Member{User: "u2", ConnectionID: "z", Since: base}, changed: make(chan struct{}, 1)},
		{member: service.Member{User: "u3", ConnectionID: "a", Since: base.Add(2 * time.Second)}, changed: make(chan struct{}, 1)},
		{member: service.Member{User: "u1", ConnectionID: "c", Since: base.Add(time.Second)}, changed: make(chan struct{}, 1)},
	}
	for _, r := range rs {
		f.subscribe(t, "a", r, false)
	}
	f.subscribe(t, "b", newReceiver("u9", "other"), false)
	members, err := f.engine.Presence(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	want := []service.Member{rs[1].member, rs[3].member, rs[2].member, rs[0].member}
	if !slices.Equal(members, want) {
		t.Errorf("Presence = %+v, want %+v", members, want)
	}
	f.engine.Unsubscribe("a", rs[3])
	members, _ = f.engine.Presence(ctx, "a")
	if want := []service.Member{rs[1].member, rs[2].member, rs[0].member}; !slices.Equal(members, want) {
		t.Errorf("Presence = %+v, want %+v", members, want)
	}
	members, err = f.engine.Presence(ctx, "nobody")
	if err != nil || members == nil || len(members) != 0 {
		t.Errorf("Presence of an unknown channel = %#v, %v; want an empty list", members, err)
	}
}

func TestForgetIdleChannel(t *testing.T) {
	f := newFixture(t, sqlite.Options{})
	ctx := context.Background()
	r1 := newReceiver("u1", "c1")
	r2 := newReceiver("u2", "c2")
	f.subscribe(t, "idle", r1, false)
	f.subscribe(t, "idle", r2, false)
	f.subscribe(t, "kept", r1, false)
	f.publish(t, "kept", 1)
	f.closeStore(t)

	list := func() []string {
		infos, _, err := f.engine.Channels(ctx, "", all, 10)
		if err != nil {
			t.Fatal(err)
		}
		return names(infos)
	}
	if got := list(); !slices.Equal(got, []string{"idle", "kept"}) {
		t.Fatalf("Channels = %v", got)
	}
	f.engine.Unsubscribe("idle", r1)
	if got := list(); !slices.Equal(got, []string{"idle", "kept"}) {
		t.Errorf("after one of two subscribers left, Channels = %v", got)
	}
	f.engine.Unsubscribe("idle", r2)
	f.engine.Unsubscribe("kept", r1)
	// A channel with history stays; one without, and without
	// subscribers, goes.
	if got := list(); !slices.Equal(got, []string{"kept"}) {
		t.Errorf("after the last subscriber left, Channels = %v, want [kept]", got)
	}
	members, _ := f.engine.Presence(ctx, "idle")
	if len(members) != 0 {
		t.Errorf("Presence of a forgotten channel = %v", members)
	}
}

func TestForgetRemovedChannelKeepsEpoch(t *testing.T) {
	// A removed channel is at offset 0, but in a new epoch: forgetting it
	// would give subscribers the store's epoch instead.
	f := newFixture(t, sqlite.Options{})
	r := newReceiver("u", "c")
	f.subscribe(t, "a", r, false)
	f.publish(t, "a", 1)
	pos, err := f.engine.Remove(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, "the removal", func(es []*service.Event) bool {
		return len(es) > 0 && es[len(es)-1].Kind == service.EventUnsubscribed
	})
	f.subscribe(t, "a", r, false)
	f.engine.Unsubscribe("a", r)
	if got := f.subscribe(t, "a", r, false); got != pos {
		t.Errorf("Subscribe after Remove and an unsubscription = %+v, want %+v", got, pos)
	}
	f.engine.Unsubscribe("a", r)
	hist, err := f.engine.History(context.Background(), "a", service.HistoryQuery{Limit: 1})
	if err != nil || hist.Position != pos {
		t.Errorf("History = %+v, %v; want position %+v", hist, err, pos)
	}
}

// Subscribing to a channel never published while its last subscriber
// leaves must not lose the new subscription.
func TestSubscribeWhileLastLeaves(t *testing.T) {
	f := newFixture(t, sqlite.Options{})
	ctx := context.Background()
	const iterations = 5000
	lost := make([]int, 2)
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Go(func() {
			// Come and go, often leaving the channel without subscribers.
			r := newReceiver(fmt.Sprint("u", g), fmt.Sprint("c", g))
			for range iterations {
				f.subscribe(t, "a", r, false)
				members, err := f.engine.Presence(ctx, "a")
				if err != nil {
					t.Error(err)
					return
				}
				if !slices.Contains(members, r.member) || !f.engine.Unsubscribe("a", r) {
					lost[g]++
				}
			}
		})
	}
	wg.Wait()
	if lost[0]+lost[1] > 0 {
		t.Errorf("of %d subscriptions, %d were not in the channel's presence or could not be unsubscribed", 2*iterations, lost[0]+lost[1])
	}

	// And a subscription so lost misses publications.
	var stayed []*receiver
	for i := range 100 {
		channel := fmt.Sprint("ch", i)
		leaving := newReceiver("u1", "leaving")
		staying := newReceiver("u2", channel)
		stayed = append(stayed, staying)
		wg.Go(func() {
			for range 50 {
				f.subscribe(t, channel, leaving, false)
				f.engine.Unsubscribe(channel, leaving)
			}
		})
		wg.Go(func() { f.subscribe(t, channel, staying, false) })
		wg.Wait()
		f.publish(t, channel, 1)
	}
	f.closeStore(t) // every publication has been fanned out
	var missed []string
	for _, r := range stayed {
		if got := r.offsets(); !slices.Equal(got, []uint64{1}) {
			missed = append(missed, r.member.ConnectionID)
		}
	}
	if len(missed) > 0 {
		t.Errorf("%d of %d subscribers missed the publication that followed their subscription: %v", len(missed), len(stayed), missed)
	}
}

// The first publication to a channel, committed while its last
// subscriber leaves, must not be forgotten.
func TestFirstPublicationWhileLastLeaves(t *testing.T) {
	f := newFixture(t, sqlite.Options{})
	ctx := context.Background()
	const rounds = 100
	for i := range rounds {
		channel := fmt.Sprint("ch", i)
		published := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			// Come and go until a little after the publication's commit.
			r := newReceiver("u1", "leaving")
			for n := 0; n < 100; {
				f.subscribe(t, channel, r, false)
				f.engine.Unsubscribe(channel, r)
				select {
				case <-published:
					n++
				default:
				}
			}
		})
		f.publish(t, channel, 1)
		close(published)
		wg.Wait()
	}
	f.closeStore(t) // every commit has been fanned out
	infos, _, err := f.engine.Channels(ctx, "", all, rounds+1)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]uint64{}
	for _, info := range infos {
		listed[info.Name] = info.Offset
	}
	var unlisted, wrong []string
	for i := range rounds {
		channel := fmt.Sprint("ch", i)
		if offset, ok := listed[channel]; !ok || offset != 1 {
			unlisted = append(unlisted, channel)
		}
		// Its position is the one committed.
		r := newReceiver("u2", "late")
		if pos := f.subscribe(t, channel, r, false); pos.Offset != 1 {
			wrong = append(wrong, channel)
		}
	}
	if len(unlisted)+len(wrong) > 0 {
		t.Errorf("of %d channels published to once, %d were not listed at offset 1 (%v), and Subscribe gave %d a position other than offset 1 (%v)",
			rounds, len(unlisted), unlisted, len(wrong), wrong)
	}
}

// Receivers subscribing at random times while others publish each get
// exactly the publications after the position Subscribe gave them.
func TestSubscribeWhilePublishing(t *testing.T) {
	f := newFixture(t, sqlite.Options{})
	channels := []string{"x", "y"}
	const publishers, each = 4, 60 // per channel
	const subscribers = 40         // per channel

	type sub struct {
		r       *receiver
		channel string
		pos     service.Position
	}
	var mu sync.Mutex
	var subs []sub
	var pubs, wg sync.WaitGroup
	published := make(chan struct{})
	for _, ch := range channels {
		for p := range publishers {
			pubs.Go(func() {
				for i := range each {
					if _, err := f.engine.Publish(context.Background(), service.Publication{
						Channel: ch, Data: json.RawMessage(fmt.Sprint(p*each + i)), Time: time.Now(),
					}, ""); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		for s := range subscribers {
			wg.Go(func() {
				// Subscribe once the channel reaches a random offset.
				rng := rand.New(rand.NewPCG(uint64(s), uint64(len(ch))))
				target := rng.Uint64N(publishers*each + 1)
				r := newReceiver("u", fmt.Sprint(ch, s))
			wait:
				for {
					hist, err := f.engine.History(context.Background(), ch, service.HistoryQuery{Limit: 0})
					if err != nil {
						t.Error(err)
						return
					}
					if hist.Position.Offset >= target {
						break
					}
					select {
					case <-published:
						break wait
					default:
						runtime.Gosched()
					}
				}
				pos, err := f.engine.Subscribe(context.Background(), ch, r, s%2 == 0)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				subs = append(subs, sub{r, ch, pos})
				mu.Unlock()
			})
		}
	}
	pubs.Wait()
	close(published)
	wg.Wait()
	f.closeStore(t) // every publication has been fanned out
	const n = publishers * each
	epoch := f.store.Epoch()
	for _, s := range subs {
		if s.pos.Epoch != epoch || s.pos.Offset > n {
			t.Errorf("%s: Subscribe returned %+v", s.r.member.ConnectionID, s.pos)
			continue
		}
		if got := s.r.offsets(); !slices.Equal(got, span(s.pos.Offset+1, n)) {
			t.Errorf("%s subscribed at %d and got %v, want %d to %d", s.r.member.ConnectionID, s.pos.Offset, got, s.pos.Offset+1, n)
		}
		for _, e := range s.r.Events() {
			if e.Channel != s.channel {
				t.Errorf("%s got an event of %s", s.r.member.ConnectionID, e.Channel)
			}
		}
	}
	if len(subs) != len(channels)*subscribers {
		t.Errorf("%d subscriptions, want %d", len(subs), len(channels)*subscribers)
	}
}
