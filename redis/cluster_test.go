package redis_test

// Two engines on a three-master Redis Cluster, sharing channels whose
// keys sit on every master.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/enginetest"
	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/redis"
	"github.com/switchboard/switchboard/service"
)

// clusterWait bounds every wait of these tests: the machine is shared.
const clusterWait = 10 * time.Second

// clusterReceiver is the contract suite's receiver, with the waits these
// tests want.
type clusterReceiver struct{ *enginetest.Receiver }

func newClusterReceiver(user, conn string) *clusterReceiver {
	return &clusterReceiver{enginetest.NewReceiver(user, conn)}
}

func (r *clusterReceiver) snapshot() []*service.Event { return r.Events() }

// waitFor waits until cond holds of the events received so far, and
// returns them.
func (r *clusterReceiver) waitFor(t *testing.T, what string, cond func([]*service.Event) bool) []*service.Event {
	t.Helper()
	var es []*service.Event
	r.WaitFor(t, what, func(got []*service.Event) bool {
		es = got
		return cond(got)
	})
	return es
}

// publications waits for n publications of channel and returns their
// offsets in the order received.
func (r *clusterReceiver) publications(t *testing.T, channel string, n int) []uint64 {
	t.Helper()
	var offsets []uint64
	r.waitFor(t, fmt.Sprintf("%d publications of %s", n, channel), func(es []*service.Event) bool {
		offsets = offsets[:0]
		for _, e := range es {
			if e.Kind == service.EventPublication && e.Channel == channel {
				offsets = append(offsets, e.Publication.Offset)
			}
		}
		return len(offsets) >= n
	})
	return offsets
}

func openClusterEngine(t *testing.T, c *redistest.Cluster, node string) *redis.Engine {
	t.Helper()
	e, err := redis.Open(redis.Options{URL: c.URL(), Cluster: true, Node: node, IdempotencyWindow: time.Minute})
	if err != nil {
		t.Fatalf("open engine %s on the cluster: %v", node, err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// clusterCtx bounds a whole test's engine calls, generously: the engine
// bounds each command by itself.
func clusterCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestClusterEnginesShareChannels publishes from two engines to channels
// on every master and checks that subscribers of both see the same
// gapless order, and that history, idempotency keys, presence, the
// channel list and removal agree across them.
func TestClusterEnginesShareChannels(t *testing.T) {
	c := redistest.StartCluster(t)
	a, b := openClusterEngine(t, c, "a"), openClusterEngine(t, c, "b")
	ctx := clusterCtx(t)
	channels := c.Spread(t, "room", 2)

	subs := map[string][2]*clusterReceiver{}
	for _, ch := range channels {
		ra, rb := newClusterReceiver("ann", "conn-a-"+ch), newClusterReceiver("bob", "conn-b-"+ch)
		for _, s := range []struct {
			e *redis.Engine
			r *clusterReceiver
		}{{a, ra}, {b, rb}} {
			pos, err := s.e.Subscribe(ctx, ch, s.r, true)
			if err != nil {
				t.Fatalf("subscribe %s: %v", ch, err)
			}
			if pos.Offset != 0 || pos.Epoch == "" {
				t.Fatalf("subscribe to new %s: position %+v", ch, pos)
			}
		}
		subs[ch] = [2]*clusterReceiver{ra, rb}
	}

	// Both engines publish to every channel at once.
	const perEngine = 20
	var wg sync.WaitGroup
	for _, ch := range channels {
		for i, e := range []*redis.Engine{a, b} {
			wg.Go(func() {
				for n := range perEngine {
					p := service.Publication{Channel: ch, Data: fmt.Appendf(nil, `{"from":%d,"n":%d}`, i, n), Publisher: "ann", Time: time.Now()}
					if _, err := e.Publish(ctx, p, ""); err != nil {
						t.Errorf("publish %d to %s from engine %d: %v", n, ch, i, err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	const total = 2 * perEngine
	for _, ch := range channels {
		for _, r := range subs[ch] {
			if got := r.publications(t, ch, total); !slices.Equal(got, clusterSeq(total)) {
				t.Errorf("%s on %s received offsets %v, want 1 to %d once each", r.Member().ConnectionID, ch, got, total)
			}
		}
		// What both subscribers received is what either engine's
		// history holds.
		var want []string
		for _, e := range subs[ch][0].snapshot() {
			if e.Kind == service.EventPublication {
				want = append(want, string(e.Publication.Data))
			}
		}
		for name, e := range map[string]*redis.Engine{"a": a, "b": b} {
			h, err := e.History(ctx, ch, service.HistoryQuery{Limit: 1000})
			if err != nil {
				t.Fatalf("history of %s on %s: %v", ch, name, err)
			}
			var got []string
			for _, p := range h.Publications {
				got = append(got, string(p.Data))
			}
			if h.Position.Offset != total || !slices.Equal(got, want) {
				t.Errorf("history of %s on %s: offset %d, data %v; want offset %d and what subscribers received, %v", ch, name, h.Position.Offset, got, total, want)
			}
		}
	}

	// The channels' keys are where the cluster says their slots are.
	for _, ch := range channels {
		owner := c.Nodes[c.Owner(t, "{"+ch+"}")]
		if reply, err := owner.Command("EXISTS", "switchboard:{"+ch+"}:h"); err != nil || reply != ":1" {
			t.Errorf("EXISTS of %s's history on its slot's master: %q %v", ch, reply, err)
		}
	}

	// An idempotency key given on one engine is known on the other.
	for _, ch := range channels {
		p := service.Publication{Channel: ch, Data: []byte(`"once"`), Publisher: "ann", Time: time.Now()}
		first, err := a.Publish(ctx, p, "key-1")
		if err != nil {
			t.Fatalf("publish with a key to %s: %v", ch, err)
		}
		again, err := b.Publish(ctx, p, "key-1")
		if err != nil {
			t.Fatalf("publish again with the key to %s: %v", ch, err)
		}
		if first.Duplicate || first.Offset != total+1 || !again.Duplicate || again.Position != first.Position {
			t.Errorf("%s: key published at %+v, then %+v; want offset %d, then the same with duplicate", ch, first, again, total+1)
		}
	}

	// Each engine lists both engines' subscribers, and each subscriber
	// hears of the other's join, which came through the other engine.
	for _, ch := range channels {
		want := []string{"conn-a-" + ch, "conn-b-" + ch}
		for name, e := range map[string]*redis.Engine{"a": a, "b": b} {
			var got []string
			poll.Until(t, clusterWait, fmt.Sprintf("presence of %s on %s to be %v", ch, name, want), func() bool {
				ms, err := e.Presence(ctx, ch)
				if err != nil {
					t.Fatalf("presence of %s on %s: %v", ch, name, err)
				}
				got = got[:0]
				for _, m := range ms {
					got = append(got, m.ConnectionID)
				}
				slices.Sort(got)
				return slices.Equal(got, want)
			})
		}
		ra := subs[ch][0]
		ra.waitFor(t, "bob's join through b", func(es []*service.Event) bool {
			return slices.ContainsFunc(es, func(e *service.Event) bool {
				return e.Kind == service.EventJoin && e.Member.ConnectionID == "conn-b-"+ch
			})
		})
	}

	// Either engine lists the channels of every slot.
	for name, e := range map[string]*redis.Engine{"a": a, "b": b} {
		infos, more, err := e.Channels(ctx, "room.", func(string) bool { return true }, 100)
		if err != nil {
			t.Fatalf("channels on %s: %v", name, err)
		}
		var got []string
		for _, info := range infos {
			got = append(got, info.Name)
			if info.Offset != total+1 || info.Subscribers != 2 {
				t.Errorf("channels on %s: %+v, want offset %d and 2 subscribers", name, info, total+1)
			}
		}
		want := slices.Sorted(slices.Values(channels))
		if more || !slices.Equal(got, want) {
			t.Errorf("channels on %s: %v (more %v), want %v", name, got, more, want)
		}
	}

	// Removing on b ends a's subscriptions too.
	for _, ch := range channels {
		if _, err := b.Remove(ctx, ch); err != nil {
			t.Fatalf("remove %s: %v", ch, err)
		}
		subs[ch][0].waitFor(t, "the end of the subscription", func(es []*service.Event) bool {
			return slices.ContainsFunc(es, func(e *service.Event) bool {
				return e.Kind == service.EventUnsubscribed && e.Reason == service.ReasonRemoved
			})
		})
	}
}

func clusterSeq(n int) []uint64 {
	s := make([]uint64, n)
	for i := range s {
		s[i] = uint64(i + 1)
	}
	return s
}

// publishSurely publishes data to ch with key until it succeeds: while a
// master is down or just back, commands may fail, and the key makes a
// retry of one that ran a duplicate rather than a second publication.
func publishSurely(t *testing.T, e *redis.Engine, ch, data, key string) service.Published {
	t.Helper()
	var res service.Published
	var err error
	poll.Until(t, 2*clusterWait, fmt.Sprintf("a publication to %s to succeed (last error: %v)", ch, err), func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), clusterWait)
		defer cancel()
		res, err = e.Publish(ctx, service.Publication{Channel: ch, Data: []byte(data), Publisher: "ann", Time: time.Now()}, key)
		return err == nil
	})
	return res
}

// TestClusterEnginesAcrossMasterRestart kills a master and starts it
// again without its data: subscribers of the other masters' channels miss
// nothing published meanwhile, however their Pub/Sub connections fared,
// and those of the restarted master's channel are told to recover.
func TestClusterEnginesAcrossMasterRestart(t *testing.T) {
	c := redistest.StartCluster(t)
	a, b := openClusterEngine(t, c, "a"), openClusterEngine(t, c, "b")
	ctx := clusterCtx(t)
	channels := c.Spread(t, "surv", 1)
	const lostAt = 1 // channels[lostAt] is the one whose master restarts
	victim := c.Owner(t, channels[lostAt])

	subs := map[string][]*clusterReceiver{}
	for _, ch := range channels {
		for i, e := range []*redis.Engine{a, b} {
			r := newClusterReceiver("bob", fmt.Sprintf("conn-%d-%s", i, ch))
			if _, err := e.Subscribe(ctx, ch, r, false); err != nil {
				t.Fatalf("subscribe to %s: %v", ch, err)
			}
			subs[ch] = append(subs[ch], r)
		}
	}
	engines := []*redis.Engine{a, b}
	publish := func(ch string, from, to int) {
		for n := from; n <= to; n++ {
			publishSurely(t, engines[n%2], ch, fmt.Sprint(n), fmt.Sprintf("n%d", n))
		}
	}
	for _, ch := range channels {
		publish(ch, 1, 3)
		for _, r := range subs[ch] {
			r.publications(t, ch, 3)
		}
	}

	// What this test is about happens to the engines' Pub/Sub
	// connections that the victim holds: go-redis puts them on random
	// nodes, so say how many channels they follow there.
	if info, err := c.Nodes[victim].Text("INFO", "stats"); err == nil {
		for line := range strings.SplitSeq(info, "\n") {
			if strings.HasPrefix(line, "pubsub_channels:") {
				t.Logf("the master to restart has Pub/Sub subscribers of %s channels", strings.TrimSpace(line[len("pubsub_channels:"):]))
			}
		}
	}
	c.Nodes[victim].Kill()
	for i, ch := range channels {
		if i != lostAt {
			publish(ch, 4, 6)
		}
	}
	c.Nodes[victim].Restart()
	c.WaitOK(t)
	for _, ch := range channels {
		publish(ch, 7, 9)
	}

	for i, ch := range channels {
		if i == lostAt {
			continue
		}
		for _, r := range subs[ch] {
			if got := r.publications(t, ch, 9); !slices.Equal(got, clusterSeq(9)) {
				t.Errorf("%s on %s received %v, want 1 to 9 once each", r.Member().ConnectionID, ch, got)
			}
		}
	}
	lost := channels[lostAt]
	for _, r := range subs[lost] {
		r.waitFor(t, "the interruption of "+lost, func(es []*service.Event) bool {
			return slices.ContainsFunc(es, func(e *service.Event) bool {
				return e.Kind == service.EventUnsubscribed && e.Reason == service.ReasonInterrupted
			})
		})
	}
	h, err := b.History(ctx, lost, service.HistoryQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range h.Publications {
		got = append(got, string(p.Data))
	}
	if !slices.Equal(got, []string{"7", "8", "9"}) || h.Position.Offset != 3 {
		t.Errorf("history of %s after its master lost it: offset %d, %v; want 3, [7 8 9]", lost, h.Position.Offset, got)
	}
}

// TestClusterIndexMasterDown takes down the master of the channel index
// (PREFIX:channels, one key) while the other masters go on: a publish or
// subscribe to a channel of theirs may fail, but one that fails must
// leave nothing behind, neither a publication a client would publish
// again nor a subscriber nobody will unsubscribe.
func TestClusterIndexMasterDown(t *testing.T) {
	c := redistest.StartCluster(t)
	for _, n := range c.Nodes { // so that the others serve their slots meanwhile
		if reply, err := n.Command("CONFIG", "SET", "cluster-require-full-coverage", "no"); err != nil || reply != "+OK" {
			t.Fatalf("CONFIG SET: %q %v", reply, err)
		}
	}
	a := openClusterEngine(t, c, "a")
	ctx := clusterCtx(t)
	down := c.Owner(t, "switchboard:channels")
	var fresh []string // channels on the masters that stay up, never used yet
	for _, ch := range c.Spread(t, "fresh", 2) {
		if c.Owner(t, ch) != down {
			fresh = append(fresh, ch)
		}
	}
	pubCh, subCh := fresh[0], fresh[1]

	c.Nodes[down].Kill()
	_, perr := a.Publish(ctx, service.Publication{Channel: pubCh, Data: []byte(`"lost?"`), Publisher: "ann", Time: time.Now()}, "")
	ghost := newClusterReceiver("ghost", "conn-ghost")
	_, serr := a.Subscribe(ctx, subCh, ghost, false)
	t.Logf("with the index's master down: publish to %s: %v; subscribe to %s: %v", pubCh, perr, subCh, serr)

	if perr != nil {
		h, err := a.History(ctx, pubCh, service.HistoryQuery{Limit: 1000})
		if err != nil {
			t.Fatalf("history of %s, whose master is up: %v", pubCh, err)
		}
		if len(h.Publications) != 0 {
			t.Errorf("publish to %s failed (%v), yet stored it at offset %d: a client retrying it publishes it twice", pubCh, perr, h.Publications[0].Offset)
		}
	}

	c.Nodes[down].Restart()
	c.WaitOK(t)
	publishSurely(t, a, "fresh.probe", `"back"`, "probe") // the engine reaches the index again
	witness := newClusterReceiver("witness", "conn-witness")
	if _, err := a.Subscribe(ctx, subCh, witness, false); err != nil {
		t.Fatalf("subscribe to %s with every master up: %v", subCh, err)
	}
	// Presence is written in order: once the witness is listed, the
	// ghost's join would have been too.
	var members []string
	poll.Until(t, clusterWait, "the witness in presence", func() bool {
		ms, err := a.Presence(ctx, subCh)
		if err != nil {
			t.Fatal(err)
		}
		members = members[:0]
		for _, m := range ms {
			members = append(members, m.ConnectionID)
		}
		return slices.Contains(members, "conn-witness")
	})
	publishSurely(t, a, subCh, `"after"`, "after")
	witness.publications(t, subCh, 1)
	if serr != nil {
		if slices.Contains(members, "conn-ghost") {
			t.Errorf("subscribe to %s failed (%v), yet presence lists its receiver: %v", subCh, serr, members)
		}
		if es := ghost.snapshot(); len(es) > 0 {
			t.Errorf("subscribe to %s failed (%v), yet its receiver was given %v", subCh, serr, enginetest.Describe(es))
		}
	}
}

// TestClusterEnginesRaceOnOneKey publishes one idempotency key from both
// engines at once, on channels of every master: exactly one publication
// is made, and every caller is given its offset.
func TestClusterEnginesRaceOnOneKey(t *testing.T) {
	c := redistest.StartCluster(t)
	engines := []*redis.Engine{openClusterEngine(t, c, "a"), openClusterEngine(t, c, "b")}
	ctx := clusterCtx(t)
	for _, ch := range c.Spread(t, "race", 1) {
		const callers = 8
		results := make([]service.Published, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() {
				p := service.Publication{Channel: ch, Data: fmt.Appendf(nil, "%d", i), Publisher: "ann", Time: time.Now()}
				var err error
				if results[i], err = engines[i%2].Publish(ctx, p, "the-key"); err != nil {
					t.Errorf("publish %d to %s: %v", i, ch, err)
				}
			})
		}
		wg.Wait()
		firsts := 0
		for _, r := range results {
			if !r.Duplicate {
				firsts++
			}
			if r.Offset != 1 || r.Epoch != results[0].Epoch {
				t.Errorf("%s: a caller was given %+v, want offset 1 in %q", ch, r, results[0].Epoch)
			}
		}
		h, err := engines[1].History(ctx, ch, service.HistoryQuery{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if firsts != 1 || len(h.Publications) != 1 {
			t.Errorf("%s: %d callers were told they published, history holds %d; want 1 and 1", ch, firsts, len(h.Publications))
		}
	}
}

// TestClusterEnginesListManyChannels lists more channels than the engine
// reads from the index at a time, their keys on every master.
func TestClusterEnginesListManyChannels(t *testing.T) {
	c := redistest.StartCluster(t)
	a, b := openClusterEngine(t, c, "a"), openClusterEngine(t, c, "b")
	ctx := clusterCtx(t)
	const count = 300 // above the engine's batch of 256
	var want []string
	for i := range count {
		ch := fmt.Sprintf("many.%03d", i)
		if _, err := a.Publish(ctx, service.Publication{Channel: ch, Data: []byte("1"), Publisher: "ann", Time: time.Now()}, ""); err != nil {
			t.Fatalf("publish to %s: %v", ch, err)
		}
		want = append(want, ch)
	}
	owners := map[int]bool{}
	for _, ch := range want[:30] {
		owners[c.Owner(t, ch)] = true
	}
	if len(owners) != len(c.Nodes) {
		t.Fatalf("the first 30 channels sit on %d masters, want all %d", len(owners), len(c.Nodes))
	}
	infos, more, err := b.Channels(ctx, "many.", func(string) bool { return true }, 1000)
	if err != nil {
		t.Fatalf("channels: %v", err)
	}
	var got []string
	for _, info := range infos {
		got = append(got, info.Name)
	}
	if more || !slices.Equal(got, want) {
		t.Errorf("b lists %d channels (more %v), want the %d published through a, in order", len(got), more, count)
	}
	infos, more, err = b.Channels(ctx, "many.", func(string) bool { return true }, 100)
	if err != nil || !more || len(infos) != 100 || infos[99].Name != want[99] {
		t.Errorf("b lists %d channels with a limit of 100 (more %v, err %v), want the first 100 and more", len(infos), more, err)
	}
}
