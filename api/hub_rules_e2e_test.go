package api_test

// End-to-end tests of the hub's rules: who may do what on which channel,
// which names and data are accepted, how offsets are given out and when
// a publication becomes visible, what idempotency keys do, and
// subscription bookkeeping.

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/rpc"
	"github.com/switchboard/switchboard/server"
	"github.com/switchboard/switchboard/service"
)

// matrixChannels are the channels the permission matrix tries every
// caller on.
var matrixChannels = []string{
	"news", "news.sport", "news.sport.live",
	"chat.lobby", "chat.lobby2",
	"a.b.c", "a.b.d", "a.b.c.d",
	"pub.x", "pub.x.y", "sub.x", "sub.x.y",
}

// TestPermissionMatrix tries every method that needs a permission, for
// callers with various patterns, on every channel of matrixChannels: the
// calls the patterns allow succeed, the others fail with -32003, and
// channelList shows exactly the channels the caller may publish or
// subscribe to.
func TestPermissionMatrix(t *testing.T) {
	ta := servertest.Start(t, server.Config{
		Anonymous:          true,
		AnonymousPublish:   []string{"pub.>"},
		AnonymousSubscribe: []string{"sub.*"},
	})
	admin := ta.HubClient(ta.Token("root", service.Permissions{Admin: true}, time.Hour))
	// Every channel exists, with history, so that channelList can show it.
	for _, ch := range matrixChannels {
		admin.PublishSeen(ch, "seed")
	}

	cases := []struct {
		name  string
		anon  bool
		perms service.Permissions
		pub   []string // the channels of matrixChannels the caller may publish to
		sub   []string // … and subscribe to (and so read history and presence of)
	}{
		{name: "no permissions"},
		{name: "one-segment wildcard",
			perms: service.Permissions{Subscribe: []string{"news.*"}},
			sub:   []string{"news.sport"}},
		{name: "tail wildcard for publishing",
			perms: service.Permissions{Publish: []string{"news.>"}},
			pub:   []string{"news.sport", "news.sport.live"}},
		{name: "tail wildcard for subscribing",
			perms: service.Permissions{Subscribe: []string{"news.>"}},
			sub:   []string{"news.sport", "news.sport.live"}},
		{name: "exact names",
			perms: service.Permissions{Publish: []string{"chat.lobby"}, Subscribe: []string{"chat.lobby", "news"}},
			pub:   []string{"chat.lobby"},
			sub:   []string{"chat.lobby", "news"}},
		{name: "lone star is one segment",
			perms: service.Permissions{Subscribe: []string{"*"}},
			sub:   []string{"news"}},
		{name: "lone tail wildcard is everything",
			perms: service.Permissions{Publish: []string{">"}},
			pub:   matrixChannels},
		{name: "wildcard in the middle",
			perms: service.Permissions{Publish: []string{"a.*.c"}, Subscribe: []string{"a.*.c.>"}},
			pub:   []string{"a.b.c"},
			sub:   []string{"a.b.c.d"}},
		{name: "several patterns",
			perms: service.Permissions{Publish: []string{"chat.*", "sub.x"}, Subscribe: []string{"pub.*", "news.*.live"}},
			pub:   []string{"chat.lobby", "chat.lobby2", "sub.x"},
			sub:   []string{"pub.x", "news.sport.live"}},
		{name: "anonymous", anon: true,
			pub: []string{"pub.x", "pub.x.y"},
			sub: []string{"sub.x"}},
		// Last: an admin's removal changes the channel for later callers.
		{name: "admin",
			perms: service.Permissions{Admin: true},
			pub:   matrixChannels,
			sub:   matrixChannels},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sub := *ta // the subtest's clients are the subtest's
			sub.T = t
			var c *servertest.Client
			if tc.anon {
				c = sub.AnonHubClient()
			} else {
				c = sub.HubClient(sub.Token("user", tc.perms, time.Hour))
			}
			var visible []string
			for _, ch := range matrixChannels {
				canPub, canSub := slices.Contains(tc.pub, ch), slices.Contains(tc.sub, ch)
				if canPub || canSub {
					visible = append(visible, ch)
				}
				pubParams := map[string]any{"channel": ch, "data": tc.name}
				chParams := map[string]any{"channel": ch}
				if canPub {
					var p servertest.PublishResult
					c.OK("channelPublish", pubParams, &p)
					if p.Channel != ch || p.Offset < 2 || p.Epoch == "" {
						t.Errorf("publish to %s: %+v", ch, p)
					}
				} else {
					wantForbidden(t, c, "channelPublish", pubParams, ch)
				}
				for _, m := range []string{"channelSubscribe", "channelHistory", "channelPresence"} {
					if !canSub {
						wantForbidden(t, c, m, chParams, ch)
						continue
					}
					r := c.Call(m, chParams)
					if r.Error != nil {
						t.Errorf("%s %s: error %d %s, want a result", m, ch, r.Error.Code, r.Error.Message)
					}
				}
				if canSub {
					var u map[string]any
					c.OK("channelUnsubscribe", chParams, &u)
				}
			}

			slices.Sort(visible) // listings are in name order
			var list servertest.ChannelListResult
			c.OK("channelList", nil, &list)
			var listed []string
			for _, s := range list.Channels {
				listed = append(listed, s.Channel)
			}
			if !slices.Equal(listed, visible) {
				t.Errorf("channelList shows %q, want %q", listed, visible)
			}

			if tc.perms.Admin {
				var rm servertest.RemoveResult
				c.OK("channelRemove", map[string]any{"channel": "chat.lobby2"}, &rm)
				if rm.Channel != "chat.lobby2" || rm.Offset != 0 || rm.Epoch == "" {
					t.Errorf("admin's channelRemove: %+v", rm)
				}
			} else {
				wantForbidden(t, c, "channelRemove", map[string]any{"channel": "news"}, "")
			}
		})
	}

	// The anonymous publication is in history with no publisher; the
	// others name theirs.
	var h servertest.HistoryResult
	admin.OK("channelHistory", map[string]any{"channel": "pub.x.y"}, &h)
	anonymous := 0
	for _, p := range h.Publications {
		want := "user"
		switch string(p.Data) {
		case `"seed"`:
			want = "root"
		case `"anonymous"`:
			want = ""
			anonymous++
		}
		if p.Publisher != want {
			t.Errorf("publication %d to pub.x.y (data %s) has publisher %q, want %q", p.Offset, p.Data, p.Publisher, want)
		}
	}
	if anonymous != 1 {
		t.Errorf("history of pub.x.y holds %d anonymous publications, want 1", anonymous)
	}
}

// wantForbidden checks that method fails with -32003 and, when channel is
// not "", that the message names the channel.
func wantForbidden(t *testing.T, c *servertest.Client, method string, params map[string]any, channel string) {
	t.Helper()
	r := c.Call(method, params)
	switch {
	case r.Error == nil:
		t.Errorf("%s %v: got result %s, want error -32003", method, params, r.Result)
	case r.Error.Code != rpc.CodeForbidden:
		t.Errorf("%s %v: got error %d %q, want -32003", method, params, r.Error.Code, r.Error.Message)
	case !strings.Contains(r.Error.Message, channel):
		t.Errorf("%s %v: message %q does not name the channel", method, params, r.Error.Message)
	}
}

// TestChannelNameRules checks that every method that takes a channel
// refuses names that break the rules with -32602 and a message that says
// which rule, and that a name of exactly 255 characters is fine.
func TestChannelNameRules(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	admin := ta.HubClient(ta.Token("root", service.Permissions{Admin: true}, time.Hour))

	tooLong := strings.Repeat("a", 256)
	cases := []struct{ name, want string }{
		{"", "1 to 255"},
		{tooLong, "1 to 255"},
		{"a b", "not allowed"},
		{"a/b", "not allowed"},
		{"café", "not allowed"},
		{"频道", "not allowed"},
		{"a*b", "not allowed"},
		{"a>b", "not allowed"},
		{"a\tb", "not allowed"},
		{".a", "segments"},
		{"a.", "segments"},
		{"a..b", "segments"},
		{".", "segments"},
	}
	methods := []string{"channelPublish", "channelSubscribe", "channelHistory", "channelPresence", "channelRemove"}
	for _, tc := range cases {
		for _, m := range methods {
			params := map[string]any{"channel": tc.name}
			if m == "channelPublish" {
				params["data"] = 1
			}
			msg := admin.Fails(m, params, rpc.CodeInvalidParams)
			if !strings.Contains(msg, tc.want) {
				t.Errorf("%s %q: message %q, want it to mention %q", m, tc.name, msg, tc.want)
			}
		}
	}

	longest := strings.Repeat("a", 127) + "." + strings.Repeat("b", 127)
	if len(longest) != 255 {
		t.Fatalf("test bug: name of %d characters", len(longest))
	}
	s := admin.Subscribe(map[string]any{"channel": longest})
	p := admin.Publish(longest, "ok")
	if p.Offset != 1 || p.Channel != longest {
		t.Fatalf("publish to a 255-character name: %+v", p)
	}
	if n := admin.NextPublication(); n.Channel != longest || n.Offset != 1 {
		t.Fatalf("publication to a 255-character name: %+v", n)
	}
	var h servertest.HistoryResult
	admin.OK("channelHistory", map[string]any{"channel": longest}, &h)
	if len(h.Publications) != 1 || h.Epoch != s.Epoch {
		t.Fatalf("history of a 255-character name: %+v", h)
	}
}

// TestPublishDataRules checks the data size limit at its boundary, that
// data is required, and the idempotency key's length limit.
func TestPublishDataRules(t *testing.T) {
	ta := servertest.Start(t, server.Config{MaxDataSize: 100, IdempotencyWindow: time.Minute})
	c := ta.HubClient(ta.Token("alice", service.Permissions{Publish: []string{"d.>"}}, time.Hour))

	fits := json.RawMessage(`"` + strings.Repeat("x", 98) + `"`) // 100 bytes of JSON
	if p := c.Publish("d.size", fits); p.Offset != 1 {
		t.Fatalf("publish of 100 bytes: %+v", p)
	}
	for _, data := range []json.RawMessage{
		json.RawMessage(`"` + strings.Repeat("x", 99) + `"`),
		json.RawMessage(`{"list":[` + strings.Repeat(`1,`, 50) + `1]}`),
	} {
		msg := c.Fails("channelPublish", map[string]any{"channel": "d.size", "data": data}, rpc.CodeInvalidParams)
		if !strings.Contains(msg, fmt.Sprint(len(data))) || !strings.Contains(msg, "100") {
			t.Errorf("publish of %d bytes: message %q, want the size and the limit", len(data), msg)
		}
	}
	for _, params := range []map[string]any{
		{"channel": "d.size"},
		{"channel": "d.size", "data": nil},
	} {
		msg := c.Fails("channelPublish", params, rpc.CodeInvalidParams)
		if !strings.Contains(msg, `"data"`) {
			t.Errorf("publish %v: message %q does not name data", params, msg)
		}
	}
	key := strings.Repeat("k", service.MaxIdempotencyKeyLength)
	c.Fails("channelPublish", map[string]any{"channel": "d.size", "data": 1, "idempotencyKey": key + "k"}, rpc.CodeInvalidParams)
	var p servertest.PublishResult
	c.OK("channelPublish", map[string]any{"channel": "d.size", "data": 1, "idempotencyKey": key}, &p)
	// Nothing refused took an offset.
	if p.Offset != 2 || p.Duplicate {
		t.Fatalf("publish after the refused ones: %+v, want offset 2", p)
	}
}

// TestOffsetsStartAtOneAndRiseByOne checks offsets per channel, as
// publishers are told them and as subscribers and history see them.
func TestOffsetsStartAtOneAndRiseByOne(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	c := ta.HubClient(ta.Token("alice", service.Permissions{Publish: []string{"o.*"}, Subscribe: []string{"o.*"}}, time.Hour))
	s := c.Subscribe(map[string]any{"channel": "o.a"})
	for i := 1; i <= 5; i++ {
		a := c.Publish("o.a", i)
		if a.Offset != uint64(i) || a.Epoch != s.Epoch {
			t.Fatalf("publication %d to o.a: %+v", i, a)
		}
		if i%2 == 0 {
			// Another channel's publications do not move this one's.
			if b := c.Publish("o.b", i); b.Offset != uint64(i/2) {
				t.Fatalf("publication %d to o.b: %+v", i/2, b)
			}
		}
	}
	for i := 1; i <= 5; i++ {
		if n := c.NextPublication(); n.Channel != "o.a" || n.Offset != uint64(i) || string(n.Data) != fmt.Sprint(i) || n.Publisher != "alice" {
			t.Fatalf("notification %d: %+v", i, n)
		}
	}
	c.Quiet(200 * time.Millisecond)
	var h servertest.HistoryResult
	c.OK("channelHistory", map[string]any{"channel": "o.a"}, &h)
	if got := servertest.OffsetsOf(h.Publications); !slices.Equal(got, servertest.Seq(1, 5)) || h.Offset != 5 {
		t.Fatalf("history of o.a: offsets %v, channel offset %d", got, h.Offset)
	}
}

// TestIdempotencyKeys checks that a key repeated on a channel within the
// window publishes nothing and answers the first offset, while the same
// key on another channel is independent.
func TestIdempotencyKeys(t *testing.T) {
	ta := servertest.Start(t, server.Config{IdempotencyWindow: time.Minute})
	c := ta.HubClient(ta.Token("alice", service.Permissions{Publish: []string{"i.*"}, Subscribe: []string{"i.*"}}, time.Hour))
	c.Subscribe(map[string]any{"channel": "i.a"})
	pub := func(ch string, data any, key string) servertest.PublishResult {
		t.Helper()
		var p servertest.PublishResult
		c.OK("channelPublish", map[string]any{"channel": ch, "data": data, "idempotencyKey": key}, &p)
		return p
	}

	first := pub("i.a", "first", "k1")
	if first.Offset != 1 || first.Duplicate {
		t.Fatalf("first publication with k1: %+v", first)
	}
	again := pub("i.a", "again", "k1")
	if again.Offset != first.Offset || again.Epoch != first.Epoch || !again.Duplicate {
		t.Fatalf("repeated k1: %+v, want offset %d, duplicate", again, first.Offset)
	}
	if other := pub("i.a", "other", "k2"); other.Offset != 2 || other.Duplicate {
		t.Fatalf("k2: %+v, want offset 2", other)
	}
	if elsewhere := pub("i.b", "elsewhere", "k1"); elsewhere.Offset != 1 || elsewhere.Duplicate {
		t.Fatalf("k1 on another channel: %+v, want offset 1, not a duplicate", elsewhere)
	}
	if third := pub("i.a", "again", "k1"); !third.Duplicate || third.Offset != 1 {
		t.Fatalf("k1 a third time: %+v", third)
	}

	for _, want := range []struct {
		offset uint64
		data   string
	}{{1, `"first"`}, {2, `"other"`}} {
		if n := c.NextPublication(); n.Offset != want.offset || string(n.Data) != want.data {
			t.Fatalf("notification: %+v data %s, want offset %d data %s", n, n.Data, want.offset, want.data)
		}
	}
	c.Quiet(200 * time.Millisecond)
	var h servertest.HistoryResult
	c.OK("channelHistory", map[string]any{"channel": "i.a"}, &h)
	if len(h.Publications) != 2 || string(h.Publications[0].Data) != `"first"` || h.Offset != 2 {
		t.Fatalf("history of i.a: %+v", h)
	}
}

// TestIdempotencyKeysIgnoredWithoutWindow: with no window, keys mean
// nothing and every publication is published.
func TestIdempotencyKeysIgnoredWithoutWindow(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	c := ta.HubClient(ta.Token("alice", service.Permissions{Publish: []string{"i.*"}}, time.Hour))
	for i := 1; i <= 2; i++ {
		var p servertest.PublishResult
		c.OK("channelPublish", map[string]any{"channel": "i.a", "data": i, "idempotencyKey": "k"}, &p)
		if p.Offset != uint64(i) || p.Duplicate {
			t.Fatalf("publication %d with key k: %+v", i, p)
		}
	}
}

// TestAcknowledgedPublicationIsVisible: once channelPublish has answered,
// the publication is the channel's: history has it, the channel's offset
// counts it, and a client holding its position is up to date. Other
// publishers and subscribers keep the channel busy meanwhile.
func TestAcknowledgedPublicationIsVisible(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	tok := ta.Token("alice", allPerms, time.Hour)
	for range 3 {
		ta.HubClient(tok).Subscribe(map[string]any{"channel": "ack.x"})
	}
	for range 3 {
		servertest.StartPublisher(t, ta.HubClient(tok), "ack.x")
	}
	c := ta.HubClient(tok)
	var historyLags, subscribeLags int
	for i := 0; i < 100 && (historyLags == 0 || subscribeLags == 0); i++ {
		p := c.Publish("ack.x", "probe")
		var h servertest.HistoryResult
		c.OK("channelHistory", map[string]any{"channel": "ack.x", "since": map[string]any{"offset": p.Offset - 1, "epoch": p.Epoch}, "limit": 1}, &h)
		if h.Offset < p.Offset || len(h.Publications) != 1 || h.Publications[0].Offset != p.Offset {
			if historyLags++; historyLags == 1 {
				t.Errorf("probe %d acknowledged at offset %d; history read right after: channel offset %d, publications %v", i, p.Offset, h.Offset, servertest.OffsetsOf(h.Publications))
			}
		}
		p = c.Publish("ack.x", "probe")
		s := c.Subscribe(map[string]any{"channel": "ack.x", "since": map[string]any{"offset": p.Offset, "epoch": p.Epoch}})
		if !s.Recovered || s.Offset < p.Offset {
			if subscribeLags++; subscribeLags == 1 {
				t.Errorf("probe %d acknowledged at offset %d; subscribing from it right after: offset %d, recovered %v", i, p.Offset, s.Offset, s.Recovered)
			}
		}
		var u map[string]any
		c.OK("channelUnsubscribe", map[string]any{"channel": "ack.x"}, &u)
	}
}

// TestSubscriptionBookkeeping: unsubscribing stops notifications, a second
// unsubscribe is -32004, subscribing again works, subscribing twice is
// -32009 and does not double the notifications.
func TestSubscriptionBookkeeping(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	perms := service.Permissions{Publish: []string{"s.*"}, Subscribe: []string{"s.*"}}
	c := ta.HubClient(ta.Token("alice", perms, time.Hour))
	pub := ta.HubClient(ta.Token("bob", perms, time.Hour))
	one := map[string]any{"channel": "s.one"}

	c.Subscribe(one)
	c.Fails("channelSubscribe", one, rpc.CodeConflict)
	pub.Publish("s.one", 1)
	if n := c.NextPublication(); n.Offset != 1 {
		t.Fatalf("publication: %+v", n)
	}
	c.Quiet(200 * time.Millisecond) // once, though subscribed "twice"

	var u struct {
		Channel string `json:"channel"`
	}
	c.OK("channelUnsubscribe", one, &u)
	if u.Channel != "s.one" {
		t.Fatalf("unsubscribe result: %+v", u)
	}
	pub.Publish("s.one", 2)
	c.Quiet(200 * time.Millisecond)
	c.Fails("channelUnsubscribe", one, rpc.CodeNotFound)
	c.Fails("channelUnsubscribe", map[string]any{"channel": "s.never"}, rpc.CodeNotFound)

	s := c.Subscribe(one)
	if s.Offset != 2 {
		t.Fatalf("subscribe again: %+v, want offset 2", s)
	}
	pub.Publish("s.one", 3)
	if n := c.NextPublication(); n.Offset != 3 {
		t.Fatalf("after subscribing again: %+v, want offset 3", n)
	}
}

// TestMaxSubscriptions: a connection may hold maxSubscriptions
// subscriptions; the limit is per connection and frees up on unsubscribe.
func TestMaxSubscriptions(t *testing.T) {
	ta := servertest.Start(t, server.Config{MaxSubscriptions: 3})
	tok := ta.Token("alice", service.Permissions{Subscribe: []string{"m.*"}}, time.Hour)
	c := ta.HubClient(tok)
	for i := 1; i <= 3; i++ {
		c.Subscribe(map[string]any{"channel": fmt.Sprintf("m.%d", i)})
	}
	msg := c.Fails("channelSubscribe", map[string]any{"channel": "m.4"}, rpc.CodeLimitExceeded)
	if !strings.Contains(msg, "3") {
		t.Errorf("message %q does not state the limit", msg)
	}
	// A refused subscription to a channel already held is a conflict, not
	// a limit.
	c.Fails("channelSubscribe", map[string]any{"channel": "m.1"}, rpc.CodeConflict)

	other := ta.HubClient(tok)
	for i := 1; i <= 3; i++ {
		other.Subscribe(map[string]any{"channel": fmt.Sprintf("m.%d", i)})
	}

	var u map[string]any
	c.OK("channelUnsubscribe", map[string]any{"channel": "m.2"}, &u)
	c.Subscribe(map[string]any{"channel": "m.4"})
	c.Fails("channelSubscribe", map[string]any{"channel": "m.5"}, rpc.CodeLimitExceeded)
}
