package api_test

// End-to-end tests of the hub's ordering and recovery promises: the
// subscribe reply comes before the subscription's publications, every
// subscriber sees every publication once and in order, a client that
// reconnects with its last position gets exactly what it missed, and
// history pages and retention keep offsets as they were given out.

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/rpc"
	"github.com/switchboard/switchboard/server"
	"github.com/switchboard/switchboard/service"
)

var allPerms = service.Permissions{Publish: []string{">"}, Subscribe: []string{">"}}

// TestSubscribeReplyPrecedesPublications subscribes one connection after
// another while publishers publish without pause: each connection reads
// its subscribe reply before any publication, and the publications
// continue gapless from the reply's offset. Most subscriptions recover a
// few hundred publications, which keeps the server busy between taking
// the subscription and sending its reply.
func TestSubscribeReplyPrecedesPublications(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	tok := ta.Token("alice", allPerms, time.Hour)
	var bps []*servertest.Publisher
	for range 3 {
		bps = append(bps, servertest.StartPublisher(t, ta.HubClient(tok), "race.x"))
	}
	bps[0].WaitFor(t, 300)
	var epoch string
	for i := range 8 {
		c := ta.HubClient(tok)
		params := map[string]any{"channel": "race.x"}
		if i > 0 {
			latest := bps[0].Last.Load()
			params["since"] = map[string]any{"offset": max(latest, 300) - 300, "epoch": epoch}
		}
		r := c.Call("channelSubscribe", params)
		var s servertest.SubscribeResult
		r.Decode(t, &s)
		epoch = s.Epoch
		if i > 0 && (!s.Recovered || len(s.Publications) == 0) {
			t.Fatalf("subscription %d recovered nothing: %+v", i, s)
		}
		first := c.NextPublication() // there is always a next one
		frames := c.Frames()
		reply := slices.Index(frames, "reply:"+string(r.ID))
		pub := slices.Index(frames, "channelPublication")
		if reply < 0 || pub < reply {
			t.Fatalf("subscription %d: frames %q: the subscribe reply must come first", i, frames)
		}
		if first.Offset != s.Offset+1 {
			t.Fatalf("subscription %d: reply at offset %d, first publication %d", i, s.Offset, first.Offset)
		}
		for want := first.Offset + 1; want < first.Offset+20; want++ {
			if n := c.NextPublication(); n.Offset != want {
				t.Fatalf("subscription %d: publication %d after %d", i, n.Offset, want-1)
			}
		}
		c.Disconnect()
	}
	for _, bp := range bps {
		bp.Finish(t)
	}
}

// TestConcurrentPublishersOneOrder has 8 connections publish 200 times
// each to one channel while 3 subscribers listen: each subscriber sees
// offsets 1..1600 once each, in order, with the data each publisher was
// told was at that offset.
func TestConcurrentPublishersOneOrder(t *testing.T) {
	const publishers, each = 8, 200
	const total = publishers * each
	ta := servertest.Start(t, server.Config{})
	tok := ta.Token("alice", allPerms, time.Hour)
	subs := make([]*servertest.Client, 3)
	for i := range subs {
		subs[i] = ta.HubClient(tok)
		subs[i].Subscribe(map[string]any{"channel": "load.x"})
	}

	told := make([]string, total+1) // offset -> data, as publishers were told
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for p := range publishers {
		c := ta.HubClient(tok)
		wg.Go(func() {
			for i := range each {
				data := fmt.Sprintf("p%d-%d", p, i)
				res, err := c.TryPublish("load.x", data)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if res.Offset < 1 || res.Offset > total || told[res.Offset] != "" {
					mu.Unlock()
					errs <- fmt.Errorf("%s got offset %d, given out already or out of range", data, res.Offset)
					return
				}
				told[res.Offset] = `"` + data + `"`
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, s := range subs {
		for want := uint64(1); want <= total; want++ {
			n := s.NextPublication()
			if n.Offset != want || string(n.Data) != told[want] {
				t.Fatalf("subscriber %d: got offset %d data %s, want offset %d data %s", i, n.Offset, n.Data, want, told[want])
			}
		}
	}
	for _, s := range subs {
		s.Quiet(200 * time.Millisecond)
	}
}

// TestRecoveryAfterReconnect: a client that reconnects with the position
// of the last publication it got receives exactly what it missed in the
// reply, and then the live publications, with no gap and no repeat.
func TestRecoveryAfterReconnect(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	tok := ta.Token("alice", allPerms, time.Hour)
	pub := ta.HubClient(tok)
	c := ta.HubClient(tok)
	s := c.Subscribe(map[string]any{"channel": "rec.x"})
	for i := 1; i <= 3; i++ {
		pub.Publish("rec.x", i)
	}
	var last servertest.PublicationNote
	for range 3 {
		last = c.NextPublication()
	}
	c.Disconnect()
	pub.PublishSeen("rec.x", 4, 5, 6, 7)

	c = ta.HubClient(tok)
	r := c.Subscribe(map[string]any{"channel": "rec.x", "since": map[string]any{"offset": last.Offset, "epoch": s.Epoch}})
	if !r.Recovered || r.Offset != 7 || r.Epoch != s.Epoch {
		t.Fatalf("recovery: %+v", r)
	}
	if got := servertest.OffsetsOf(r.Publications); !slices.Equal(got, servertest.Seq(4, 7)) {
		t.Fatalf("recovered offsets %v, want 4..7", got)
	}
	for i, p := range r.Publications {
		if string(p.Data) != fmt.Sprint(i+4) || p.Publisher != "alice" || p.Channel != "rec.x" || p.Time.IsZero() {
			t.Fatalf("recovered publication %+v", p)
		}
	}
	pub.Publish("rec.x", 8)
	if n := c.NextPublication(); n.Offset != 8 {
		t.Fatalf("first live publication after recovery: %d, want 8", n.Offset)
	}
	c.Quiet(200 * time.Millisecond)

	// Already up to date: recovered, nothing to recover.
	d := ta.HubClient(tok)
	r = d.Subscribe(map[string]any{"channel": "rec.x", "since": map[string]any{"offset": 8, "epoch": s.Epoch}})
	if !r.Recovered || len(r.Publications) != 0 || r.Offset != 8 {
		t.Fatalf("recovery from the latest offset: %+v", r)
	}
	// From the very start.
	d.Disconnect()
	d = ta.HubClient(tok)
	r = d.Subscribe(map[string]any{"channel": "rec.x", "since": map[string]any{"offset": 0, "epoch": s.Epoch}})
	if got := servertest.OffsetsOf(r.Publications); !r.Recovered || !slices.Equal(got, servertest.Seq(1, 8)) {
		t.Fatalf("recovery from offset 0: recovered %v, offsets %v", r.Recovered, got)
	}
}

// TestRecoveryWhilePublishing reconnects a client several times while a
// publisher publishes without pause: over all its connections, the
// client sees every offset exactly once, in order.
func TestRecoveryWhilePublishing(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	tok := ta.Token("alice", allPerms, time.Hour)
	bp := servertest.StartPublisher(t, ta.HubClient(tok), "rec.live")

	c := ta.HubClient(tok)
	s := c.Subscribe(map[string]any{"channel": "rec.live"})
	var seen []uint64
	for range 5 {
		for range 10 {
			seen = append(seen, c.NextPublication().Offset)
		}
		c.Disconnect()
		c = ta.HubClient(tok)
		r := c.Subscribe(map[string]any{"channel": "rec.live", "since": map[string]any{"offset": seen[len(seen)-1], "epoch": s.Epoch}})
		if !r.Recovered {
			t.Fatalf("reconnect after offset %d: not recovered: %+v", seen[len(seen)-1], r)
		}
		if len(r.Publications) > 0 && r.Publications[len(r.Publications)-1].Offset != r.Offset {
			t.Fatalf("recovered publications end at %d, the reply's offset is %d", r.Publications[len(r.Publications)-1].Offset, r.Offset)
		}
		seen = append(seen, servertest.OffsetsOf(r.Publications)...)
	}
	last := bp.Finish(t)
	for seen[len(seen)-1] < last {
		seen = append(seen, c.NextPublication().Offset)
	}
	c.Quiet(200 * time.Millisecond)
	if want := servertest.Seq(s.Offset+1, last); !slices.Equal(seen, want) {
		t.Fatalf("offsets seen over the reconnections: %v, want %d..%d", seen, s.Offset+1, last)
	}
}

// TestRecoveryRefused: positions that cannot be recovered from are told
// so with recovered false, and the subscription still works.
func TestRecoveryRefused(t *testing.T) {
	ta := servertest.Start(t, server.Config{HistorySize: 3})
	tok := ta.Token("alice", allPerms, time.Hour)
	pub := ta.HubClient(tok)
	epoch := pub.PublishSeen("refuse.x", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)[0].Epoch
	// Each case publishes once more, moving the channel's offset (cur)
	// and the 3 publications it keeps (cur-2..cur).
	cases := []struct {
		name      string
		epoch     string // "" for the channel's
		back      int    // since's offset is cur-back
		recovered bool
		kept      bool // publications are the 3 kept; otherwise none
	}{
		{"another epoch", "0000000000000000", 1, false, false},
		{"beyond the latest offset", "", -1, false, false},
		{"trimmed long ago", "", 9, false, true},
		{"just trimmed", "", 4, false, true},
		{"oldest kept", "", 3, true, true},
		{"latest", "", 0, true, false},
	}
	cur := uint64(10)
	for _, tc := range cases {
		since := map[string]any{"offset": int64(cur) - int64(tc.back), "epoch": epoch}
		if tc.epoch != "" {
			since["epoch"] = tc.epoch
		}
		c := ta.HubClient(tok)
		r := c.Subscribe(map[string]any{"channel": "refuse.x", "since": since})
		if r.Recovered != tc.recovered || r.Offset != cur || r.Epoch != epoch {
			t.Errorf("%s: %+v, want recovered %v at offset %d", tc.name, r, tc.recovered, cur)
		}
		var want []uint64
		if tc.kept {
			want = servertest.Seq(cur-2, cur)
		}
		if got := servertest.OffsetsOf(r.Publications); !slices.Equal(got, want) {
			t.Errorf("%s: publications %v, want %v", tc.name, got, want)
		}
		// Live publications follow all the same.
		p := pub.Publish("refuse.x", "live")
		if n := c.NextPublication(); n.Offset != p.Offset || p.Offset != cur+1 {
			t.Errorf("%s: live publication %d, published %d, want %d", tc.name, n.Offset, p.Offset, cur+1)
		}
		cur = p.Offset
		c.Disconnect()
	}
}

// TestRecoveryLimit: a subscription recovers at most 1000 publications
// (the server's recovery limit); when more were missed, it gets the first
// 1000 and recovered false.
func TestRecoveryLimit(t *testing.T) {
	const total, publishers = 1005, 5
	ta := servertest.Start(t, server.Config{})
	tok := ta.Token("alice", allPerms, time.Hour)
	watcher := ta.HubClient(tok)
	w := watcher.Subscribe(map[string]any{"channel": "many.x"})
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for range publishers {
		c := ta.HubClient(tok)
		wg.Go(func() {
			for range total / publishers {
				if _, err := c.TryPublish("many.x", 1); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for want := uint64(1); want <= total; want++ {
		if n := watcher.NextPublication(); n.Offset != want {
			t.Fatalf("watcher: publication %d, want %d", n.Offset, want)
		}
	}
	for _, tc := range []struct {
		since     uint64
		recovered bool
	}{{0, false}, {total - 1001, false}, {total - 1000, true}} {
		c := ta.HubClient(tok)
		r := c.Subscribe(map[string]any{"channel": "many.x", "since": map[string]any{"offset": tc.since, "epoch": w.Epoch}})
		if r.Recovered != tc.recovered || r.Offset != total {
			t.Errorf("since %d: recovered %v at offset %d, want %v at %d", tc.since, r.Recovered, r.Offset, tc.recovered, total)
		}
		if got := servertest.OffsetsOf(r.Publications); !slices.Equal(got, servertest.Seq(tc.since+1, tc.since+1000)) {
			t.Errorf("since %d: %d publications, %v…, want %d..%d", tc.since, len(got), got[:min(len(got), 3)], tc.since+1, tc.since+1000)
		}
		c.Disconnect()
	}
}

// TestHistoryPaging pages through 150 publications both ways.
func TestHistoryPaging(t *testing.T) {
	const total = 150
	ta := servertest.Start(t, server.Config{})
	c := ta.HubClient(ta.Token("alice", allPerms, time.Hour))
	data := make([]any, total)
	for i := range data {
		data[i] = i + 1
	}
	epoch := c.PublishSeen("hist.x", data...)[0].Epoch
	history := func(params map[string]any) servertest.HistoryResult {
		t.Helper()
		params["channel"] = "hist.x"
		var h servertest.HistoryResult
		c.OK("channelHistory", params, &h)
		if h.Channel != "hist.x" || h.Offset != total || h.Epoch != epoch {
			t.Fatalf("history %v: channel %q offset %d epoch %q", params, h.Channel, h.Offset, h.Epoch)
		}
		for _, p := range h.Publications {
			if string(p.Data) != fmt.Sprint(p.Offset) {
				t.Fatalf("publication %d holds %s", p.Offset, p.Data)
			}
		}
		return h
	}
	since := func(offset uint64) map[string]any { return map[string]any{"offset": offset, "epoch": epoch} }

	if got := servertest.OffsetsOf(history(map[string]any{}).Publications); !slices.Equal(got, servertest.Seq(1, 100)) {
		t.Errorf("default page: %v, want 1..100", got)
	}
	if got := servertest.OffsetsOf(history(map[string]any{"limit": 0}).Publications); !slices.Equal(got, servertest.Seq(1, 100)) {
		t.Errorf("limit 0: %v, want the default page", got)
	}
	if got := servertest.OffsetsOf(history(map[string]any{"limit": 1000}).Publications); !slices.Equal(got, servertest.Seq(1, total)) {
		t.Errorf("limit 1000: %v, want all %d", got, total)
	}
	for _, limit := range []int{1001, -1} {
		msg := c.Fails("channelHistory", map[string]any{"channel": "hist.x", "limit": limit}, rpc.CodeInvalidParams)
		if !strings.Contains(msg, "limit") {
			t.Errorf("limit %d: message %q does not mention the limit", limit, msg)
		}
	}

	var forward []uint64
	var pos uint64
	for {
		page := servertest.OffsetsOf(history(map[string]any{"since": since(pos), "limit": 40}).Publications)
		if len(page) == 0 {
			break
		}
		if len(page) > 40 {
			t.Fatalf("page of %d, limit 40", len(page))
		}
		forward = append(forward, page...)
		pos = page[len(page)-1]
	}
	if !slices.Equal(forward, servertest.Seq(1, total)) {
		t.Errorf("forward pages: %v", forward)
	}

	newest := servertest.OffsetsOf(history(map[string]any{"newestFirst": true, "limit": 10}).Publications)
	if want := reversed(servertest.Seq(141, total)); !slices.Equal(newest, want) {
		t.Errorf("reverse page: %v, want %v", newest, want)
	}
	var backward []uint64
	pos = total + 1
	for {
		page := servertest.OffsetsOf(history(map[string]any{"since": since(pos), "newestFirst": true, "limit": 64}).Publications)
		if len(page) == 0 {
			break
		}
		backward = append(backward, page...)
		pos = page[len(page)-1]
	}
	if !slices.Equal(backward, reversed(servertest.Seq(1, total))) {
		t.Errorf("reverse pages: %v", backward)
	}
	if got := history(map[string]any{"since": since(0), "newestFirst": true}).Publications; len(got) != 0 {
		t.Errorf("reverse from offset 0: %v, want nothing", servertest.OffsetsOf(got))
	}
	if got := history(map[string]any{"since": since(total + 5)}).Publications; len(got) != 0 {
		t.Errorf("forward from beyond the latest offset: %v, want nothing", servertest.OffsetsOf(got))
	}

	for _, params := range []map[string]any{
		{"since": map[string]any{"offset": 3, "epoch": "0000000000000000"}},
		{"since": map[string]any{"offset": 0, "epoch": "0000000000000000"}, "newestFirst": true},
	} {
		params["channel"] = "hist.x"
		c.Fails("channelHistory", params, rpc.CodeConflict)
	}

	var h servertest.HistoryResult
	c.OK("channelHistory", map[string]any{"channel": "hist.never"}, &h)
	if len(h.Publications) != 0 || h.Offset != 0 || h.Epoch == "" {
		t.Errorf("history of a channel never published to: %+v", h)
	}
}

// TestHistorySizeKeepsOffsets: trimming to historySize drops the oldest
// publications and renumbers nothing.
func TestHistorySizeKeepsOffsets(t *testing.T) {
	ta := servertest.Start(t, server.Config{HistorySize: 5})
	c := ta.HubClient(ta.Token("alice", allPerms, time.Hour))
	c.PublishSeen("trim.x", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)
	var h servertest.HistoryResult
	c.OK("channelHistory", map[string]any{"channel": "trim.x"}, &h)
	if got := servertest.OffsetsOf(h.Publications); !slices.Equal(got, servertest.Seq(8, 12)) || h.Offset != 12 {
		t.Fatalf("history after 12 publications: offsets %v, channel offset %d; want 8..12 and 12", got, h.Offset)
	}
	for _, p := range h.Publications {
		if string(p.Data) != fmt.Sprint(p.Offset) {
			t.Fatalf("publication %d holds %s", p.Offset, p.Data)
		}
	}
	var l servertest.ChannelListResult
	c.OK("channelList", map[string]any{"prefix": "trim."}, &l)
	if len(l.Channels) != 1 || l.Channels[0].Offset != 12 {
		t.Fatalf("list: %+v", l.Channels)
	}
	if p := c.Publish("trim.x", 13); p.Offset != 13 {
		t.Fatalf("publication after trimming: %+v", p)
	}
}

// TestHistoryTTL: publications older than historyTTL go, the channel's
// offset stays, and numbering continues.
func TestHistoryTTL(t *testing.T) {
	// Three seconds: long enough that a loaded machine reads the history
	// back before it expires, short enough to wait for.
	ta := servertest.Start(t, server.Config{HistoryTTL: 3 * time.Second})
	c := ta.HubClient(ta.Token("alice", allPerms, time.Hour))
	epoch := c.PublishSeen("ttl.x", 1, 2, 3)[0].Epoch
	history := func() servertest.HistoryResult {
		var h servertest.HistoryResult
		c.OK("channelHistory", map[string]any{"channel": "ttl.x"}, &h)
		return h
	}
	if got := servertest.OffsetsOf(history().Publications); !slices.Equal(got, servertest.Seq(1, 3)) {
		t.Fatalf("history right after publishing: %v", got)
	}
	servertest.Eventually(t, "history to expire", func() bool { return len(history().Publications) == 0 })
	if h := history(); h.Offset != 3 || h.Epoch != epoch {
		t.Fatalf("expired history: offset %d epoch %q, want 3 %q", h.Offset, h.Epoch, epoch)
	}
	// Recovery across the expiry: from the latest offset nothing was lost;
	// from before it, the expired publications were.
	r := c.Subscribe(map[string]any{"channel": "ttl.x", "since": map[string]any{"offset": 3, "epoch": epoch}})
	if !r.Recovered || len(r.Publications) != 0 {
		t.Fatalf("recovery from the latest offset after expiry: %+v", r)
	}
	if p := c.Publish("ttl.x", 4); p.Offset != 4 || p.Epoch != epoch {
		t.Fatalf("publication after expiry: %+v, want offset 4", p)
	}
	if n := c.NextPublication(); n.Offset != 4 {
		t.Fatalf("live publication after expiry: %d", n.Offset)
	}
	if got := servertest.OffsetsOf(history().Publications); !slices.Equal(got, []uint64{4}) {
		t.Fatalf("history after a new publication: %v, want [4]", got)
	}
	d := ta.HubClient(ta.Token("bob", allPerms, time.Hour))
	r = d.Subscribe(map[string]any{"channel": "ttl.x", "since": map[string]any{"offset": 2, "epoch": epoch}})
	if r.Recovered {
		t.Fatalf("recovery from before the expiry: %+v, want recovered false", r)
	}
}

func reversed(s []uint64) []uint64 {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}
