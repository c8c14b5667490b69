package api_test

// End-to-end tests of what the hub knows of its channels and
// connections: presence, joins and leaves, channel removal, slow
// subscribers, channelList, and the channel methods over HTTP POST.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/rpc"
	"github.com/switchboard/switchboard/server"
	"github.com/switchboard/switchboard/service"
)

// TestPresenceJoinLeave follows a channel's members as connections come
// and go: presence lists them oldest first, with the connection ids
// sessionWhoami reports, and only subscriptions made with joinLeave hear
// of joins and leaves, never their own.
func TestPresenceJoinLeave(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	client := func(user string) (*servertest.Client, string) {
		c := ta.HubClient(ta.Token(user, allPerms, time.Hour))
		return c, c.Whoami().ConnectionID
	}
	alice, aliceID := client("alice")
	bob, bobID := client("bob")
	carol, carolID := client("carol")
	alice2, alice2ID := client("alice") // the same user on a second connection
	dave, _ := client("dave")           // listens to another channel
	eve, _ := client("eve")             // looks on without subscribing
	room := map[string]any{"channel": "room.1"}
	withJoinLeave := map[string]any{"channel": "room.1", "joinLeave": true}

	presence := func() []servertest.MemberJSON {
		t.Helper()
		var p servertest.PresenceResult
		r := eve.Call("channelPresence", room)
		r.Decode(t, &p)
		if p.Channel != "room.1" || !strings.Contains(string(r.Result), `"members":[`) {
			t.Fatalf("presence: %s", r.Result)
		}
		return p.Members
	}
	wantEvent := func(c *servertest.Client, method, user, connID string) servertest.MemberJSON {
		t.Helper()
		var m servertest.MemberJSON
		c.NextNote(method, &m)
		if m.Channel != "room.1" || m.User != user || m.ConnectionID != connID || m.Since.IsZero() {
			t.Fatalf("%s: %+v, want user %q connection %s", method, m, user, connID)
		}
		return m
	}

	if got := presence(); len(got) != 0 {
		t.Fatalf("presence of an empty channel: %+v", got)
	}
	dave.Subscribe(map[string]any{"channel": "room.2", "joinLeave": true})
	alice.Subscribe(withJoinLeave)
	bob.Subscribe(room)
	bobJoined := wantEvent(alice, "channelJoin", "bob", bobID)
	carol.Subscribe(withJoinLeave)
	carolJoined := wantEvent(alice, "channelJoin", "carol", carolID)
	alice2.Subscribe(room)
	alice2Joined := wantEvent(alice, "channelJoin", "alice", alice2ID)
	wantEvent(carol, "channelJoin", "alice", alice2ID) // carol heard of none before her, nor of herself

	members := presence()
	want := []struct{ user, id string }{{"alice", aliceID}, {"bob", bobID}, {"carol", carolID}, {"alice", alice2ID}}
	if len(members) != len(want) {
		t.Fatalf("presence: %+v, want %v", members, want)
	}
	for i, m := range members {
		if m.User != want[i].user || m.ConnectionID != want[i].id {
			t.Fatalf("presence member %d: %+v, want %v", i, m, want[i])
		}
		if i > 0 && m.Since.Before(members[i-1].Since) {
			t.Fatalf("presence is not oldest first: %+v", members)
		}
	}
	for _, j := range []servertest.MemberJSON{bobJoined, carolJoined, alice2Joined} {
		for _, m := range members {
			if m.ConnectionID == j.ConnectionID && !m.Since.Equal(j.Since) {
				t.Errorf("%s joined since %v, presence says %v", m.ConnectionID, j.Since, m.Since)
			}
		}
	}

	var u map[string]any
	bob.OK("channelUnsubscribe", room, &u)
	if left := wantEvent(alice, "channelLeave", "bob", bobID); !left.Since.Equal(bobJoined.Since) {
		t.Errorf("bob's leave says since %v, his join %v", left.Since, bobJoined.Since)
	}
	wantEvent(carol, "channelLeave", "bob", bobID)

	carol.Disconnect() // leaving by disconnecting
	wantEvent(alice, "channelLeave", "carol", carolID)
	alice2.Disconnect()
	wantEvent(alice, "channelLeave", "alice", alice2ID)
	if got := presence(); len(got) != 1 || got[0].ConnectionID != aliceID {
		t.Fatalf("presence after the others left: %+v, want alice alone", got)
	}

	alice.OK("channelUnsubscribe", room, &u)
	if got := presence(); len(got) != 0 {
		t.Fatalf("presence after everyone left: %+v", got)
	}
	for _, c := range []*servertest.Client{alice, bob, dave} {
		c.Quiet(200 * time.Millisecond)
	}
}

// TestAnonymousPresence: anonymous members have no user.
func TestAnonymousPresence(t *testing.T) {
	ta := servertest.Start(t, server.Config{Anonymous: true, AnonymousSubscribe: []string{"lobby"}})
	watcher := ta.HubClient(ta.Token("alice", allPerms, time.Hour))
	watcher.Subscribe(map[string]any{"channel": "lobby", "joinLeave": true})
	anon := ta.AnonHubClient()
	anonID := anon.Whoami().ConnectionID
	anon.Subscribe(map[string]any{"channel": "lobby"})
	var j servertest.MemberJSON
	watcher.NextNote("channelJoin", &j)
	if j.User != "" || j.ConnectionID != anonID {
		t.Fatalf("anonymous join: %+v, want no user and connection %s", j, anonID)
	}
	var p servertest.PresenceResult
	anon.OK("channelPresence", map[string]any{"channel": "lobby"}, &p)
	if len(p.Members) != 2 || p.Members[1].User != "" || p.Members[1].ConnectionID != anonID {
		t.Fatalf("presence: %+v", p.Members)
	}
}

// TestRemoveChannel: only admins remove; subscribers are told; the
// channel starts again at offset 0 in a new epoch, so old positions
// cannot be recovered from.
func TestRemoveChannel(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	admin := ta.HubClient(ta.Token("root", service.Permissions{Admin: true}, time.Hour))
	pub := ta.HubClient(ta.Token("alice", allPerms, time.Hour))
	subs := []*servertest.Client{ta.HubClient(ta.Token("bob", allPerms, time.Hour)), ta.HubClient(ta.Token("carol", allPerms, time.Hour))}
	ch := map[string]any{"channel": "gone.x"}
	var old servertest.SubscribeResult
	for _, s := range subs {
		old = s.Subscribe(map[string]any{"channel": "gone.x", "joinLeave": true})
	}
	subs[0].NextNote("channelJoin", &servertest.MemberJSON{})
	for i := 1; i <= 3; i++ {
		pub.Publish("gone.x", i)
	}
	for _, s := range subs {
		for i := 1; i <= 3; i++ {
			s.NextPublication()
		}
	}

	msg := pub.Fails("channelRemove", ch, rpc.CodeForbidden)
	if !strings.Contains(msg, "admin") {
		t.Errorf("non-admin remove: message %q", msg)
	}
	var h servertest.HistoryResult
	pub.OK("channelHistory", ch, &h)
	if h.Offset != 3 || len(h.Publications) != 3 {
		t.Fatalf("history after a refused removal: %+v", h)
	}

	var rm servertest.RemoveResult
	admin.OK("channelRemove", ch, &rm)
	if rm.Channel != "gone.x" || rm.Offset != 0 || rm.Epoch == "" || rm.Epoch == old.Epoch {
		t.Fatalf("remove: %+v (old epoch %s)", rm, old.Epoch)
	}
	for i, s := range subs {
		var u servertest.UnsubscribedNote
		s.NextNote("channelUnsubscribed", &u)
		if u.Channel != "gone.x" || u.Reason != "removed" {
			t.Fatalf("subscriber %d: channelUnsubscribed %+v", i, u)
		}
	}

	pub.OK("channelHistory", ch, &h)
	if h.Offset != 0 || h.Epoch != rm.Epoch || len(h.Publications) != 0 {
		t.Fatalf("history after removal: %+v, want empty at offset 0 in epoch %s", h, rm.Epoch)
	}
	pub.Fails("channelHistory", map[string]any{"channel": "gone.x", "since": map[string]any{"offset": 1, "epoch": old.Epoch}}, rpc.CodeConflict)
	var p servertest.PresenceResult
	pub.OK("channelPresence", ch, &p)
	if len(p.Members) != 0 {
		t.Fatalf("presence after removal: %+v", p.Members)
	}
	subs[0].Fails("channelUnsubscribe", ch, rpc.CodeNotFound) // the server ended it

	np := pub.Publish("gone.x", "again")
	if np.Offset != 1 || np.Epoch != rm.Epoch {
		t.Fatalf("publication after removal: %+v, want offset 1 in epoch %s", np, rm.Epoch)
	}
	for _, s := range subs {
		s.Quiet(200 * time.Millisecond) // no longer subscribed, no leave either
	}

	r := subs[0].Subscribe(map[string]any{"channel": "gone.x", "since": map[string]any{"offset": 3, "epoch": old.Epoch}})
	if r.Recovered || len(r.Publications) != 0 || r.Offset != 1 || r.Epoch != rm.Epoch {
		t.Fatalf("recovery from the old epoch: %+v, want recovered false at offset 1 in epoch %s", r, rm.Epoch)
	}
	r = subs[1].Subscribe(map[string]any{"channel": "gone.x", "since": map[string]any{"offset": 0, "epoch": rm.Epoch}})
	if !r.Recovered || len(r.Publications) != 1 || string(r.Publications[0].Data) != `"again"` {
		t.Fatalf("recovery in the new epoch: %+v", r)
	}
	pub.Publish("gone.x", "live")
	for _, s := range subs {
		if n := s.NextPublication(); n.Offset != 2 {
			t.Fatalf("live publication after resubscribing: %+v", n)
		}
	}
	var l servertest.ChannelListResult
	admin.OK("channelList", map[string]any{"prefix": "gone."}, &l)
	if want := (servertest.ChannelSummaryJSON{Channel: "gone.x", Subscribers: 2, Offset: 2}); len(l.Channels) != 1 || l.Channels[0] != want {
		t.Fatalf("list: %+v, want %+v", l.Channels, want)
	}
}

// TestRemoveIsVisibleOnceAnswered: once channelRemove has answered, the
// channel is in its new epoch: history says so, and a subscription made
// afterwards belongs to the new epoch and is not ended by the removal.
func TestRemoveIsVisibleOnceAnswered(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	admin := ta.HubClient(ta.Token("root", service.Permissions{Admin: true}, time.Hour))
	c := ta.HubClient(ta.Token("alice", allPerms, time.Hour))
	ch := map[string]any{"channel": "rm.x"}
	for i := range 100 {
		var rm servertest.RemoveResult
		admin.OK("channelRemove", ch, &rm)
		var h servertest.HistoryResult
		c.OK("channelHistory", ch, &h)
		if h.Epoch != rm.Epoch || h.Offset != 0 {
			t.Fatalf("removal %d answered epoch %s; history read right after: offset %d epoch %s", i, rm.Epoch, h.Offset, h.Epoch)
		}
		s := c.Subscribe(ch)
		if s.Epoch != rm.Epoch {
			t.Fatalf("removal %d answered epoch %s; subscription made right after is in epoch %s", i, rm.Epoch, s.Epoch)
		}
		p := admin.Publish("rm.x", i)
		if n := c.Next(); n.Method != "channelPublication" {
			t.Fatalf("removal %d: a subscription made after it got %s %s, want the next publication (offset %d)", i, n.Method, n.Params, p.Offset)
		}
		var u map[string]any
		c.OK("channelUnsubscribe", ch, &u)
	}
}

// TestSlowSubscriberIsClosed: a subscriber that stops reading is closed
// with 4000 once its send queue overflows, while the publisher's calls
// keep succeeding and another subscriber receives everything.
func TestSlowSubscriberIsClosed(t *testing.T) {
	// A zero field of rpc.Limits means its default: only the send queue
	// is shortened.
	ta := servertest.Start(t, server.Config{Limits: rpc.Limits{SendQueue: 16}})
	tok := ta.Token("alice", allPerms, time.Hour)
	pub := ta.HubClient(tok)
	good := ta.HubClient(tok)
	good.Subscribe(map[string]any{"channel": "big.x"})

	slow := ta.Dial(servertest.Bearer(tok))
	body, _ := servertest.Request("channelSubscribe", map[string]any{"channel": "big.x"})
	ctx, cancel := context.WithTimeout(context.Background(), servertest.IOTimeout)
	defer cancel()
	if err := slow.Write(ctx, websocket.MessageText, body); err != nil {
		t.Fatal(err)
	}
	// From here on the slow client reads nothing until it is dropped.
	servertest.Eventually(t, "the slow client's subscription", func() bool {
		var p servertest.PresenceResult
		pub.OK("channelPresence", map[string]any{"channel": "big.x"}, &p)
		return len(p.Members) == 2
	})

	dropped := func() float64 { return ta.Scrape().Value("switchboard_notifications_dropped_total", nil) }
	if d := dropped(); d != 0 {
		t.Fatalf("%v notifications dropped before the test began", d)
	}
	data := strings.Repeat("x", 60<<10) // within the default 64 KiB limit
	var published uint64
	// Socket buffers take a few MiB; 500 publications of 60 KiB are far
	// beyond them and the queue.
	for published < 500 {
		published = pub.Publish("big.x", data).Offset
		if published%4 == 0 && dropped() > 0 {
			break
		}
	}
	if dropped() == 0 {
		t.Fatalf("no notification dropped after %d publications of %d bytes to a client that reads nothing", published, len(data))
	}
	// Now the slow client reads, and so lets through the close frame the
	// server is trying to send it (which it gives up on after 5s).
	closed := make(chan websocket.StatusCode, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), servertest.WaitTimeout)
		defer cancel()
		for {
			if _, _, err := slow.Read(ctx); err != nil {
				closed <- websocket.CloseStatus(err)
				return
			}
		}
	}()
	// The publisher goes on regardless.
	for range 3 {
		published = pub.Publish("big.x", data).Offset
	}
	for want := uint64(1); want <= published; want++ {
		if n := good.NextPublication(); n.Offset != want || len(n.Data) != len(data)+2 {
			t.Fatalf("good subscriber: publication %d (%d bytes), want %d", n.Offset, len(n.Data), want)
		}
	}
	if code := <-closed; code != rpc.CloseSlowConsumer {
		t.Fatalf("slow subscriber closed with %v, want %v", code, rpc.CloseSlowConsumer)
	}
	servertest.Eventually(t, "the slow subscriber to leave", func() bool {
		var p servertest.PresenceResult
		pub.OK("channelPresence", map[string]any{"channel": "big.x"}, &p)
		return len(p.Members) == 1
	})
	if n := ta.Scrape().Value("switchboard_disconnects_total", map[string]string{"reason": rpc.ReasonSlowConsumer}); n != 1 {
		t.Errorf("%v slow_consumer disconnects counted, want 1", n)
	}
}

// TestChannelList checks prefixes, visibility, subscriber counts, offsets
// and order.
func TestChannelList(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	admin := ta.HubClient(ta.Token("root", service.Permissions{Admin: true}, time.Hour))
	for ch, n := range map[string]int{"app.b": 1, "app.a": 2, "app.c.x": 1, "other.z": 3, "zeta": 1} {
		data := make([]any, n)
		for i := range data {
			data[i] = i
		}
		admin.PublishSeen(ch, data...)
	}
	perms := service.Permissions{Subscribe: []string{"app.*"}, Publish: []string{"other.>"}}
	c := ta.HubClient(ta.Token("alice", perms, time.Hour))
	d := ta.HubClient(ta.Token("dave", perms, time.Hour))
	c.Subscribe(map[string]any{"channel": "app.a"})
	d.Subscribe(map[string]any{"channel": "app.a"})
	d.Subscribe(map[string]any{"channel": "app.d"}) // exists only by its subscriber

	list := func(c *servertest.Client, prefix string) []servertest.ChannelSummaryJSON {
		t.Helper()
		var l servertest.ChannelListResult
		r := c.Call("channelList", map[string]any{"prefix": prefix})
		r.Decode(t, &l)
		if !strings.Contains(string(r.Result), `"channels":[`) {
			t.Fatalf("channelList %q: %s, want channels to be an array", prefix, r.Result)
		}
		if l.More {
			t.Errorf("channelList %q: more is set", prefix)
		}
		return l.Channels
	}
	want := []servertest.ChannelSummaryJSON{
		{Channel: "app.a", Subscribers: 2, Offset: 2}, {Channel: "app.b", Subscribers: 0, Offset: 1}, {Channel: "app.d", Subscribers: 1, Offset: 0}, {Channel: "other.z", Subscribers: 0, Offset: 3},
	}
	if got := list(c, ""); !slices.Equal(got, want) {
		t.Errorf("channelList: %+v, want %+v", got, want)
	}
	if got := list(c, "app."); !slices.Equal(got, want[:3]) {
		t.Errorf("channelList app.: %+v, want %+v", got, want[:3])
	}
	if got := list(c, "app.b"); !slices.Equal(got, want[1:2]) {
		t.Errorf("channelList app.b: %+v, want %+v", got, want[1:2])
	}
	if got := list(c, "nothing"); len(got) != 0 {
		t.Errorf("channelList nothing: %+v, want none", got)
	}
	all := list(admin, "")
	var names []string
	for _, s := range all {
		names = append(names, s.Channel)
	}
	if wantNames := []string{"app.a", "app.b", "app.c.x", "app.d", "other.z", "zeta"}; !slices.Equal(names, wantNames) {
		t.Errorf("admin's channelList: %q, want %q", names, wantNames)
	}

	// Counts follow unsubscriptions; a channel with neither history nor
	// subscribers is gone.
	var u map[string]any
	d.OK("channelUnsubscribe", map[string]any{"channel": "app.a"}, &u)
	d.OK("channelUnsubscribe", map[string]any{"channel": "app.d"}, &u)
	want = []servertest.ChannelSummaryJSON{{Channel: "app.a", Subscribers: 1, Offset: 2}, {Channel: "app.b", Subscribers: 0, Offset: 1}}
	if got := list(c, "app."); !slices.Equal(got, want) {
		t.Errorf("channelList app. after unsubscribing: %+v, want %+v", got, want)
	}

	for _, bad := range []string{"a b", "é", "app/", strings.Repeat("a", 256)} {
		msg := c.Fails("channelList", map[string]any{"prefix": bad}, rpc.CodeInvalidParams)
		if !strings.Contains(msg, "prefix") {
			t.Errorf("channelList %q: message %q does not mention the prefix", bad, msg)
		}
	}
}

// TestChannelListMore: a listing holds at most 1000 channels (the
// server's list limit), the first ones by name, and says there are more.
func TestChannelListMore(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	tok := ta.Token("alice", allPerms, time.Hour)
	// Subscriptions make channels without writing anything; a connection
	// holds at most 1000 of them.
	var names []string
	for i := range 1001 {
		names = append(names, fmt.Sprintf("many.%04d", i))
	}
	for _, part := range [][]string{names[:500], names[500:]} {
		c := ta.HubClient(tok)
		for _, name := range part {
			c.Subscribe(map[string]any{"channel": name})
		}
	}
	c := ta.HubClient(tok)
	var l servertest.ChannelListResult
	c.OK("channelList", map[string]any{"prefix": "many."}, &l)
	if !l.More || len(l.Channels) != 1000 || l.Channels[0].Channel != names[0] || l.Channels[999].Channel != names[999] {
		t.Fatalf("list of 1001 channels: more %v, %d channels", l.More, len(l.Channels))
	}
	c.OK("channelList", map[string]any{"prefix": "many.1"}, &l)
	if l.More || len(l.Channels) != 1 || l.Channels[0].Channel != names[1000] {
		t.Fatalf("narrower list: more %v, %+v", l.More, l.Channels)
	}
}

// TestHubOverHTTP: publish, history, presence and list work over HTTP
// POST; subscribe and unsubscribe need a WebSocket.
func TestHubOverHTTP(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	perms := service.Permissions{Publish: []string{"h.*"}, Subscribe: []string{"h.*"}}
	tok := ta.Token("alice", perms, time.Hour)
	ws := ta.HubClient(ta.Token("bob", perms, time.Hour))
	s := ws.Subscribe(map[string]any{"channel": "h.room"})
	me := ws.Whoami()
	hdr := servertest.Bearer(tok)

	ok := func(method string, params, v any) {
		t.Helper()
		r, _ := ta.Call(hdr, method, params)
		r.Decode(t, v)
	}
	var p servertest.PublishResult
	ok("channelPublish", map[string]any{"channel": "h.room", "data": map[string]string{"text": "hi"}}, &p)
	if p.Offset != 1 || p.Epoch != s.Epoch || p.Channel != "h.room" {
		t.Fatalf("publish over HTTP: %+v", p)
	}
	if n := ws.NextPublication(); n.Offset != 1 || n.Publisher != "alice" || string(n.Data) != `{"text":"hi"}` {
		t.Fatalf("WebSocket subscriber got %+v data %s", n, n.Data)
	}
	var h servertest.HistoryResult
	ok("channelHistory", map[string]any{"channel": "h.room"}, &h)
	if h.Offset != 1 || h.Epoch != s.Epoch || len(h.Publications) != 1 || h.Publications[0].Publisher != "alice" {
		t.Fatalf("history over HTTP: %+v", h)
	}
	var pr servertest.PresenceResult
	ok("channelPresence", map[string]any{"channel": "h.room"}, &pr)
	if len(pr.Members) != 1 || pr.Members[0].User != "bob" || pr.Members[0].ConnectionID != me.ConnectionID {
		t.Fatalf("presence over HTTP: %+v, want bob on %s", pr, me.ConnectionID)
	}
	var l servertest.ChannelListResult
	ok("channelList", map[string]any{"prefix": "h."}, &l)
	if want := []servertest.ChannelSummaryJSON{{Channel: "h.room", Subscribers: 1, Offset: 1}}; !slices.Equal(l.Channels, want) {
		t.Fatalf("list over HTTP: %+v, want %+v", l.Channels, want)
	}
	for _, m := range []string{"channelSubscribe", "channelUnsubscribe"} {
		r, _ := ta.Call(hdr, m, map[string]any{"channel": "h.room"})
		if r.Error == nil || r.Error.Code != rpc.CodeSocketRequired {
			t.Errorf("%s over HTTP: %s %+v, want error -32010", m, r.Result, r.Error)
		}
	}
	// Refusals are the same over HTTP.
	r, _ := ta.Call(hdr, "channelPublish", map[string]any{"channel": "x.room", "data": 1})
	if r.Error == nil || r.Error.Code != rpc.CodeForbidden {
		t.Errorf("forbidden publish over HTTP: %s %+v, want -32003", r.Result, r.Error)
	}
}
