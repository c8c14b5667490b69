package embedded

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/service"
)

func all(string) bool { return true }

func names(infos []service.ChannelInfo) []string {
	n := []string{}
	for _, i := range infos {
		n = append(n, i.Name)
	}
	return n
}

func TestChannels(t *testing.T) {
	f := newFixture(t, Options{})
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
	f := newFixture(t, Options{})
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
	f := newFixture(t, Options{})
	f.publish(t, "a", 1)
	f.publish(t, "a", 2)
	f.publish(t, "b", 1)
	f.closeStore(t)
	f.open(t, Options{})
	infos, _, err := f.engine.Channels(context.Background(), "", all, 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []service.ChannelInfo{{Name: "a", Offset: 2}, {Name: "b", Offset: 1}}; !slices.Equal(infos, want) {
		t.Errorf("Channels after restart = %+v, want %+v", infos, want)
	}
	r := newReceiver("u", "c")
	if pos := f.subscribe(t, "a", r, false); pos != (service.Position{Offset: 2, Epoch: f.engine.seq.epoch}) {
		t.Errorf("Subscribe after restart = %+v", pos)
	}
}

func TestPresence(t *testing.T) {
	f := newFixture(t, Options{})
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
	f := newFixture(t, Options{})
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
	f := newFixture(t, Options{})
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
