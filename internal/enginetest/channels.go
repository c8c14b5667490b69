package enginetest

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

// waitChannels waits for Channels(prefix, all, limit) to list want, and
// more to be wantMore.
func waitChannels(t testing.TB, e service.Engine, limit int, want []string, wantMore bool) {
	t.Helper()
	var got []string
	var more bool
	ok := waitUntil(func() bool {
		infos, m, err := e.Channels(context.Background(), "", all, limit)
		if err != nil {
			t.Fatal(err)
		}
		got, more = names(infos), m
		return slices.Equal(got, want) && more == wantMore
	})
	if !ok {
		t.Errorf("Channels(limit %d) = %v, more %v after %v; want %v, more %v", limit, got, more, wait, want, wantMore)
	}
}

func testChannels(t *testing.T, open Opener) {
	e, _ := open(t, Options{})
	ctx := context.Background()
	watcher := NewReceiver("w", "w")
	mustSubscribe(t, e, "news.sport", watcher, false)
	for _, ch := range []string{"news.sport", "news.sport", "news.weather", "news", "newsroom", "chat.b", "chat.a", "Chat"} {
		mustPublish(t, e, pub(ch, 1), "")
	}
	watcher.WaitOffset(t, 2)
	r := NewReceiver("u", "c")
	mustSubscribe(t, e, "news.idle", r, false) // subscribers, no history
	mustSubscribe(t, e, "chat.a", r, false)

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
	var infos []service.ChannelInfo
	var more bool
	listed := waitUntil(func() bool {
		var err error
		infos, more, err = e.Channels(ctx, "", all, 100)
		if err != nil {
			t.Fatal(err)
		}
		return slices.Equal(infos, want) && !more
	})
	if !listed {
		t.Fatalf("Channels = %+v, %v after %v; want %+v", infos, more, wait, want)
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
		infos, more, err := e.Channels(ctx, tt.prefix, tt.visible, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		if got := names(infos); !slices.Equal(got, tt.want) || more != tt.more {
			t.Errorf("Channels(%q, limit %d) = %v, more %v; want %v, more %v", tt.prefix, tt.limit, got, more, tt.want, tt.more)
		}
	}
}

func testChannelsSkipsRemoved(t *testing.T, open Opener) {
	// A removed channel is listed again once it has a subscriber or a
	// publication; until then it counts for neither the limit nor more.
	e, _ := open(t, Options{})
	for _, ch := range []string{"a", "b", "c", "d"} {
		mustPublish(t, e, pub(ch, 1), "")
	}
	for _, ch := range []string{"b", "d"} {
		mustRemove(t, e, ch)
	}
	waitChannels(t, e, 10, []string{"a", "c"}, false)
	waitChannels(t, e, 2, []string{"a", "c"}, false)
	waitChannels(t, e, 1, []string{"a"}, true)
	r := NewReceiver("u", "c")
	mustSubscribe(t, e, "b", r, false)
	waitChannels(t, e, 10, []string{"a", "b", "c"}, false)
	waitChannels(t, e, 2, []string{"a", "b"}, true)
	e.Unsubscribe("b", r)
	waitChannels(t, e, 10, []string{"a", "c"}, false)
	mustPublish(t, e, pub("d", 1), "")
	waitChannels(t, e, 10, []string{"a", "c", "d"}, false)
}

func testChannelsWithoutSubscribers(t *testing.T, open Opener) {
	// A channel with history stays listed when its subscribers go; one
	// without history goes with them.
	e, _ := open(t, Options{})
	r1 := NewReceiver("u1", "c1")
	r2 := NewReceiver("u2", "c2")
	mustSubscribe(t, e, "idle", r1, false)
	mustSubscribe(t, e, "idle", r2, false)
	mustSubscribe(t, e, "kept", r1, false)
	mustPublish(t, e, pub("kept", 1), "")
	waitChannels(t, e, 10, []string{"idle", "kept"}, false)
	e.Unsubscribe("idle", r1)
	waitPresence(t, e, "idle", []service.Member{r2.member})
	waitChannels(t, e, 10, []string{"idle", "kept"}, false)
	e.Unsubscribe("idle", r2)
	e.Unsubscribe("kept", r1)
	waitChannels(t, e, 10, []string{"kept"}, false)
	waitPresence(t, e, "idle", []service.Member{})
}

func testPresence(t *testing.T, open Opener) {
	e, _ := open(t, Options{})
	base := time.Now()
	rs := []*Receiver{
		NewReceiverSince("u1", "b", base.Add(2*time.Second)),
		NewReceiverSince("u2", "z", base),
		NewReceiverSince("u3", "a", base.Add(2*time.Second)),
		NewReceiverSince("u1", "c", base.Add(time.Second)),
	}
	for _, r := range rs {
		mustSubscribe(t, e, "a", r, false)
	}
	mustSubscribe(t, e, "b", NewReceiver("u9", "other"), false)
	// Longest subscribed first; connection IDs break ties.
	waitPresence(t, e, "a", []service.Member{rs[1].member, rs[3].member, rs[2].member, rs[0].member})
	e.Unsubscribe("a", rs[3])
	waitPresence(t, e, "a", []service.Member{rs[1].member, rs[2].member, rs[0].member})
	members, err := e.Presence(context.Background(), "nobody")
	if err != nil || members == nil || len(members) != 0 {
		t.Errorf("Presence of an unknown channel = %#v, %v; want an empty list", members, err)
	}
}

// Every node lists every node's subscribers.
func testPresenceFromAnother(t *testing.T, open Opener) {
	a, another := open(t, Options{})
	b := another()
	base := time.Now()
	ra := NewReceiverSince("u1", "ca", base)
	rb := NewReceiverSince("u2", "cb", base.Add(time.Second))
	mustSubscribe(t, a, "a", ra, false)
	mustSubscribe(t, b, "a", rb, false)
	want := []service.Member{ra.member, rb.member}
	waitPresence(t, a, "a", want)
	waitPresence(t, b, "a", want)
	b.Unsubscribe("a", rb)
	waitPresence(t, a, "a", want[:1])
	waitPresence(t, b, "a", want[:1])
}
