package main

// Tests of several "switchboard serve" nodes sharing channels through one
// real redis-server (--engine redis): offsets, recovery, presence,
// removal and listing seen from every node. redis_durability_test.go
// kills nodes and Redis.

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/rpc"
	"github.com/switchboard/switchboard/service"
)

// redisSetup is a redis-server and the nodes that share it.
type redisSetup struct {
	t      *testing.T
	redis  *redistest.Server
	secret string // every node's, so that a token works on each
	tok    string // of "durable", who may publish and subscribe anywhere
	nodes  []*serverProc
}

// startRedisNodes starts a redis-server with opts and n nodes on it,
// each started with extra.
func startRedisNodes(t *testing.T, opts redistest.Options, n int, extra ...string) *redisSetup {
	t.Helper()
	rs := &redisSetup{t: t, redis: redistest.Start(t, opts), secret: servertest.RandomSecret()}
	rs.tok = durableToken(t, rs.secret)
	for range n {
		rs.nodes = append(rs.nodes, rs.node(extra...))
	}
	return rs
}

// node starts one more node, with a data directory (and so a node id) of
// its own and no history limits.
func (rs *redisSetup) node(extra ...string) *serverProc {
	rs.t.Helper()
	args := append([]string{"--engine", "redis", "--redis-url", rs.redis.URL()}, extra...)
	return startDurable(rs.t, rs.t.TempDir(), rs.secret, args...)
}

// publisher publishes to channels in turn over one connection, recording
// each publication in a ledger, until it has count acknowledged (0: until
// stopped).
type publisher struct {
	refused  atomic.Int64 // calls refused with -32013, as while Redis is down
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// startPublishing starts a publisher on c; name tells its publications
// apart from other publishers'. It is stopped when the test ends, before
// c is closed.
func startPublishing(l *ledger, c *servertest.Client, name string, count int, channels []string) *publisher {
	p := &publisher{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for seq, acked := 0, 0; count == 0 || acked < count; seq++ {
			select {
			case <-p.stop:
				return
			default:
			}
			channel := channels[seq%len(channels)]
			data := fmt.Sprintf(`{"by":%q,"seq":%d}`, name, seq)
			l.send(channel, data)
			r, err := c.Send("channelPublish", map[string]any{"channel": channel, "data": json.RawMessage(data)})
			switch {
			case err != nil:
				l.t.Errorf("publisher %s: %v", name, err)
				return
			case r.Error != nil && r.Error.Code == rpc.CodeUnavailable:
				p.refused.Add(1)
				time.Sleep(20 * time.Millisecond) // refusals are fast: do not spin
				continue
			}
			l.ack(channel, data, r)
			acked++
		}
	}()
	c.T.Cleanup(func() { p.finish(c.T) })
	return p
}

// wait waits until p has published its count.
func (p *publisher) wait(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(3 * servertest.WaitTimeout):
		t.Fatalf("a publisher did not finish within %v", 3*servertest.WaitTimeout)
	}
}

// finish stops p and waits for it.
func (p *publisher) finish(t *testing.T) {
	t.Helper()
	p.stopOnce.Do(func() { close(p.stop) })
	p.wait(t)
}

// readPublications reads c's notifications, which must all be
// publications, until it has had, for each channel of last, the one at
// offset last[channel]; it returns them by channel.
func readPublications(t *testing.T, c *servertest.Client, last map[string]uint64) map[string][]servertest.PublicationNote {
	t.Helper()
	got := map[string][]servertest.PublicationNote{}
	left := maps.Clone(last) // the channels whose last is still to come
	maps.DeleteFunc(left, func(_ string, n uint64) bool { return n == 0 })
	for len(left) > 0 {
		p := c.NextPublication()
		got[p.Channel] = append(got[p.Channel], p)
		if want, ok := left[p.Channel]; ok && p.Offset >= want {
			delete(left, p.Channel)
		}
	}
	return got
}

// sameAsHistory checks that got, what a subscriber was sent, is hist's
// publications from offset from to hist's end, once each, in order, with
// their data.
func sameAsHistory(t *testing.T, who string, got, hist []servertest.PublicationNote, from uint64) {
	t.Helper()
	want := slices.DeleteFunc(slices.Clone(hist), func(p servertest.PublicationNote) bool { return p.Offset < from })
	if g, w := servertest.OffsetsOf(got), servertest.OffsetsOf(want); !slices.Equal(g, w) {
		t.Errorf("%s got offsets %v, want %v: the history from %d, once each, in order", who, g, w, from)
		return
	}
	for i, p := range got {
		if string(p.Data) != string(want[i].Data) || p.Channel != want[i].Channel {
			t.Errorf("%s: %s at offset %d holds %s, but the history has %s", who, p.Channel, p.Offset, p.Data, want[i].Data)
		}
	}
}

// expectUnsubscribed checks that each subscriber, by the node it is on,
// is told that its subscription to channel ended for reason.
func expectUnsubscribed(t *testing.T, subs map[string]*servertest.Client, channel, reason string) {
	t.Helper()
	for node, c := range subs {
		var u servertest.UnsubscribedNote
		c.NextNote("channelUnsubscribed", &u)
		if u.Channel != channel || u.Reason != reason {
			t.Errorf("the subscriber on %s was told %+v, want %s %s", node, u, channel, reason)
		}
	}
}

// presenceOf lists channel's members as node sees them: user by
// connection ID.
func presenceOf(t *testing.T, node *servertest.Server, tok, channel string) map[string]string {
	t.Helper()
	r, _ := node.Call(servertest.Bearer(tok), "channelPresence", map[string]any{"channel": channel})
	var p servertest.PresenceResult
	r.Decode(t, &p)
	members := map[string]string{}
	for _, m := range p.Members {
		members[m.ConnectionID] = m.User
	}
	return members
}

// TestRedisNodesShareOffsets publishes from two connections on each of
// three nodes at once to three channels: subscribers on every node get
// each channel's offsets 1 to N once each, in order, and every node's
// history is the same.
func TestRedisNodesShareOffsets(t *testing.T) {
	channels := []string{"shared.a", "shared.b", "shared.c"}
	rs := startRedisNodes(t, redistest.Options{}, 3)
	var subs []*servertest.Client
	for _, n := range rs.nodes {
		c := n.client().HubClient(rs.tok)
		for _, ch := range channels {
			if res := c.Subscribe(map[string]any{"channel": ch}); res.Offset != 0 {
				t.Fatalf("subscribed to the new channel %s at offset %d", ch, res.Offset)
			}
		}
		subs = append(subs, c)
	}

	l := newLedger(t, channels)
	var pubs []*publisher
	for i, n := range rs.nodes {
		for j := range 2 {
			c := n.client().HubClient(rs.tok)
			pubs = append(pubs, startPublishing(l, c, fmt.Sprintf("node%d.%d", i, j), 40, channels))
		}
	}
	for _, p := range pubs {
		p.wait(t)
		if n := p.refused.Load(); n > 0 {
			t.Errorf("%d publications refused with Redis up", n)
		}
	}
	if t.Failed() {
		return
	}

	// Through node A, which adds one more to each channel.
	if extra := checkLedger(t, l, rs.nodes[0].client(), rs.tok, channels); extra != 0 {
		t.Errorf("%d publications in the history that no publisher sent", extra)
	}
	last := map[string]uint64{}
	for _, ch := range channels {
		last[ch] = uint64(len(l.acked[ch]))
	}
	hist := map[string][]servertest.PublicationNote{}
	for _, ch := range channels {
		hist[ch], _, _ = readHistory(t, rs.nodes[0].client(), rs.tok, ch)
	}
	for i, c := range subs {
		got := readPublications(t, c, last)
		for _, ch := range channels {
			sameAsHistory(t, fmt.Sprintf("the subscriber on node %d to %s", i, ch), got[ch], hist[ch], 1)
		}
	}
	for _, n := range rs.nodes[1:] {
		checkLedger(t, l, n.client(), rs.tok, channels)
	}
}

// TestRedisRecoveryThroughAnotherNode has a subscriber leave node A and
// come back on node B with its last position while two publishers go on,
// one on each node: it recovers exactly what it missed, then gets the
// live publications, nothing twice.
func TestRedisRecoveryThroughAnotherNode(t *testing.T) {
	const channel = "recover.nodes"
	channels := []string{channel}
	rs := startRedisNodes(t, redistest.Options{}, 2)
	a, b := rs.nodes[0], rs.nodes[1]
	l := newLedger(t, channels)

	subA := a.client().HubClient(rs.tok)
	epoch := subA.Subscribe(map[string]any{"channel": channel}).Epoch
	startPublishing(l, a.client().HubClient(rs.tok), "first", 10, channels).wait(t)
	const k = 10
	readPublications(t, subA, map[string]uint64{channel: k})
	subA.Disconnect()

	pa := startPublishing(l, a.client().HubClient(rs.tok), "on-a", 0, channels)
	pb := startPublishing(l, b.client().HubClient(rs.tok), "on-b", 0, channels)
	servertest.Eventually(t, "20 more publications", func() bool { return l.acks.Load() >= k+20 })

	subB := b.client().HubClient(rs.tok)
	res := subB.Subscribe(map[string]any{"channel": channel, "since": map[string]any{"offset": k, "epoch": epoch}})
	if !res.Recovered || res.Epoch != epoch || res.Offset < k+20 {
		t.Fatalf("subscribe on B since %d: recovered %v at %d in %q; want recovered, at 30 or more, in %q", k, res.Recovered, res.Offset, res.Epoch, epoch)
	}
	if got := servertest.OffsetsOf(res.Publications); !slices.Equal(got, servertest.Seq(k+1, res.Offset)) {
		t.Fatalf("recovered offsets %v, want %d to %d", got, k+1, res.Offset)
	}
	servertest.Eventually(t, "20 live publications", func() bool { return l.acks.Load() >= int64(res.Offset)+20 })
	pa.finish(t)
	pb.finish(t)

	checkLedger(t, l, b.client(), rs.tok, channels)
	hist, _, _ := readHistory(t, a.client(), rs.tok, channel)
	live := readPublications(t, subB, map[string]uint64{channel: uint64(len(hist))})[channel]
	sameAsHistory(t, "the subscriber that came back on B", append(res.Publications, live...), hist, k+1)
}

// TestRedisRecoveryThroughALaggingNode moves a subscriber from node A to
// node B while B is behind: B follows the channel already, for a
// subscriber of its own, but has yet to deliver the latest publications,
// which the subscriber had from A. Its position is whole all the same:
// recovered, and each later publication once.
func TestRedisRecoveryThroughALaggingNode(t *testing.T) {
	const (
		channel = "recover.lag"
		k       = 50
	)
	rs := startRedisNodes(t, redistest.Options{}, 2)
	a, b := rs.nodes[0], rs.nodes[1]
	b.client().HubClient(rs.tok).Subscribe(map[string]any{"channel": channel})
	subA := a.client().HubClient(rs.tok)
	epoch := subA.Subscribe(map[string]any{"channel": channel}).Epoch
	mover := b.client().HubClient(rs.tok) // connected before B stops

	// B is stopped while A delivers k publications of 60 KiB: when B
	// runs again, it has them all to deliver before it is at k.
	b.cmd.Process.Signal(syscall.SIGSTOP)
	pad := strings.Repeat("x", 60<<10)
	for i := 1; i <= k; i++ {
		servertest.PublishHTTP(t, a.client(), rs.tok, channel, fmt.Sprintf(`{"n":%d,"pad":"%s"}`, i, pad))
	}
	readPublications(t, subA, map[string]uint64{channel: k})
	replies := make(chan servertest.Reply, 1)
	go func() {
		r, err := mover.Send("channelSubscribe", map[string]any{"channel": channel, "since": map[string]any{"offset": k, "epoch": epoch}})
		if err != nil {
			t.Errorf("subscribe on B: %v", err)
		}
		replies <- r
	}()
	// Time for the request to reach B's socket, so that B reads it as it
	// starts again. Were it later, B might have caught up: the test would
	// prove less, but not fail.
	time.Sleep(100 * time.Millisecond)
	b.cmd.Process.Signal(syscall.SIGCONT)
	var res servertest.SubscribeResult
	(<-replies).Decode(t, &res)
	if !res.Recovered || res.Epoch != epoch || res.Offset < k {
		t.Errorf("subscribe on B since %d: recovered %v at %d in %q with offsets %v; want recovered, at %d or later, in %q",
			k, res.Recovered, res.Offset, res.Epoch, servertest.OffsetsOf(res.Publications), k, epoch)
	}
	servertest.PublishHTTP(t, a.client(), rs.tok, channel, `{"n":"after"}`)
	live := readPublications(t, mover, map[string]uint64{channel: k + 1})[channel]
	if got := servertest.OffsetsOf(append(res.Publications, live...)); !slices.Equal(got, []uint64{k + 1}) {
		t.Errorf("after offset %d the subscriber on B got %v, want only %d", k, got, k+1)
	}
}

// TestRedisPresenceAcrossNodes checks that joins and leaves reach the
// other node, that channelPresence on either lists the subscribers of
// both, and that the members of a node killed with SIGKILL stay listed
// until --presence-ttl has passed, and not much longer.
func TestRedisPresenceAcrossNodes(t *testing.T) {
	const (
		channel = "presence.room"
		ttl     = 3 * time.Second
	)
	rs := startRedisNodes(t, redistest.Options{}, 2, "--presence-ttl", ttl.String())
	a, b := rs.nodes[0], rs.nodes[1]
	connect := func(node *serverProc, user string) (*servertest.Client, string) {
		c := node.client().HubClient(tokenOf(t, rs.secret, user, service.Permissions{Subscribe: []string{">"}}))
		return c, c.Whoami().ConnectionID
	}
	nextMember := func(c *servertest.Client, method string) servertest.MemberJSON {
		t.Helper()
		var m servertest.MemberJSON
		c.NextNote(method, &m)
		if m.Channel != channel {
			t.Fatalf("%s of %s, want %s", method, m.Channel, channel)
		}
		return m
	}

	watcher, watcherID := connect(a, "watcher")
	watcher.Subscribe(map[string]any{"channel": channel, "joinLeave": true})
	bob, bobID := connect(b, "bob")
	bob.Subscribe(map[string]any{"channel": channel, "joinLeave": true})
	if m := nextMember(watcher, "channelJoin"); m.User != "bob" || m.ConnectionID != bobID {
		t.Fatalf("the watcher on A was told of %+v joining, want bob's %s", m, bobID)
	}
	both := map[string]string{watcherID: "watcher", bobID: "bob"}
	for i, n := range []*serverProc{a, b} {
		servertest.Eventually(t, fmt.Sprintf("node %d to list the watcher and bob", i), func() bool {
			return maps.Equal(presenceOf(t, n.client(), rs.tok, channel), both)
		})
	}

	// A subscriber on A: told to bob on B, and once only to the watcher,
	// whose next note is bob's leave.
	carol, carolID := connect(a, "carol")
	carol.Subscribe(map[string]any{"channel": channel})
	for who, c := range map[string]*servertest.Client{"the watcher": watcher, "bob": bob} {
		if m := nextMember(c, "channelJoin"); m.User != "carol" || m.ConnectionID != carolID {
			t.Fatalf("%s was told of %+v joining, want carol's %s", who, m, carolID)
		}
	}
	bob.OK("channelUnsubscribe", map[string]any{"channel": channel}, new(map[string]any))
	if m := nextMember(watcher, "channelLeave"); m.User != "bob" || m.ConnectionID != bobID {
		t.Fatalf("the watcher was told of %+v leaving, want bob's %s", m, bobID)
	}
	// B drops the member in Redis before it tells of the leave.
	if got := presenceOf(t, a.client(), rs.tok, channel); got[bobID] != "" || got[carolID] != "carol" {
		t.Errorf("A lists %v after bob left, want carol and not bob", got)
	}

	dave, daveID := connect(b, "dave") // B will be killed
	// dave's expiry is at least a TTL after his subscribe was sent: until
	// then every node must list him.
	asked := time.Now()
	dave.Subscribe(map[string]any{"channel": channel})
	if m := nextMember(watcher, "channelJoin"); m.ConnectionID != daveID {
		t.Fatalf("the watcher was told of %+v joining, want dave's %s", m, daveID)
	}
	b.stop(syscall.SIGKILL)
	killed := time.Now()
	// B renewed dave at the latest as it died: he is gone a TTL later,
	// and a poll's time after that.
	poll.Until(t, time.Until(killed.Add(ttl+servertest.WaitTimeout/2)), "dave to expire from A's presence", func() bool {
		listed := presenceOf(t, a.client(), rs.tok, channel)[daveID] == "dave"
		if answered := time.Now(); !listed && answered.Before(asked.Add(ttl-10*time.Millisecond)) {
			t.Fatalf("dave was dropped from presence %v after his subscribe, before the TTL of %v", answered.Sub(asked), ttl)
		}
		return !listed
	})
	t.Logf("dave expired %v after B was killed, %v after his subscribe (TTL %v)",
		time.Since(killed).Round(time.Millisecond), time.Since(asked).Round(time.Millisecond), ttl)
	// The expiry takes only the dead node's members.
	if got := presenceOf(t, a.client(), rs.tok, channel); !maps.Equal(got, map[string]string{watcherID: "watcher", carolID: "carol"}) {
		t.Errorf("A lists %v after dave expired, want the watcher and carol", got)
	}
}

// TestRedisRemoveEndsSubscriptionsOnEveryNode removes a channel through
// node A: its subscribers on B, and on A, are told "removed", and B
// sees it start again empty in the new epoch.
func TestRedisRemoveEndsSubscriptionsOnEveryNode(t *testing.T) {
	const channel = "remove.room"
	rs := startRedisNodes(t, redistest.Options{}, 2)
	a, b := rs.nodes[0], rs.nodes[1]
	subs := map[string]*servertest.Client{"A": a.client().HubClient(rs.tok), "B": b.client().HubClient(rs.tok)}
	var old string
	for _, c := range subs {
		old = c.Subscribe(map[string]any{"channel": channel}).Epoch
	}
	servertest.PublishHTTP(t, b.client(), rs.tok, channel, `{"n":1}`)
	servertest.PublishHTTP(t, b.client(), rs.tok, channel, `{"n":2}`)
	for _, c := range subs {
		readPublications(t, c, map[string]uint64{channel: 2})
	}

	admin := tokenOf(t, rs.secret, "admin", service.Permissions{Admin: true})
	r, _ := a.client().Call(servertest.Bearer(admin), "channelRemove", map[string]any{"channel": channel})
	var removed servertest.RemoveResult
	r.Decode(t, &removed)
	if removed.Offset != 0 || removed.Epoch == "" || removed.Epoch == old {
		t.Fatalf("channelRemove: %+v, want offset 0 in a new epoch (was %q)", removed, old)
	}
	expectUnsubscribed(t, subs, channel, service.ReasonRemoved)

	pubs, offset, epoch := readHistory(t, b.client(), rs.tok, channel)
	if len(pubs) != 0 || offset != 0 || epoch != removed.Epoch {
		t.Errorf("history on B after the removal: %d publications, offset %d in %q; want none, 0, in %q", len(pubs), offset, epoch, removed.Epoch)
	}
	sub := subs["B"]
	res := sub.Subscribe(map[string]any{"channel": channel, "since": map[string]any{"offset": 2, "epoch": old}})
	if res.Recovered || res.Epoch != removed.Epoch || res.Offset != 0 || len(res.Publications) != 0 {
		t.Errorf("subscribe on B since the old epoch: recovered %v at %d in %q with %d publications; want not recovered, at 0 in %q",
			res.Recovered, res.Offset, res.Epoch, len(res.Publications), removed.Epoch)
	}
	if p := servertest.PublishHTTP(t, a.client(), rs.tok, channel, `{"n":"again"}`); p.Offset != 1 || p.Epoch != removed.Epoch {
		t.Errorf("publish on A after the removal: offset %d in %q, want 1 in %q", p.Offset, p.Epoch, removed.Epoch)
	}
	if p := sub.NextPublication(); p.Offset != 1 || string(p.Data) != `{"n":"again"}` {
		t.Errorf("B's subscriber got offset %d %s after subscribing again, want 1", p.Offset, p.Data)
	}
}

// TestRedisChannelListOnEveryNode checks that channelList on each node
// lists the channels published to and subscribed to on the others, with
// offsets and subscribers summed over the nodes.
func TestRedisChannelListOnEveryNode(t *testing.T) {
	rs := startRedisNodes(t, redistest.Options{}, 3)
	a, b, c := rs.nodes[0], rs.nodes[1], rs.nodes[2]
	servertest.PublishHTTP(t, a.client(), rs.tok, "list.a", `1`)
	servertest.PublishHTTP(t, a.client(), rs.tok, "list.a", `2`)
	servertest.PublishHTTP(t, b.client(), rs.tok, "list.b", `1`)
	servertest.PublishHTTP(t, b.client(), rs.tok, "other.x", `1`) // not under the prefix
	for _, n := range []*serverProc{a, b} {
		n.client().HubClient(rs.tok).Subscribe(map[string]any{"channel": "list.a"})
	}
	c.client().HubClient(rs.tok).Subscribe(map[string]any{"channel": "list.c"}) // no publication

	want := []servertest.ChannelSummaryJSON{
		{Channel: "list.a", Subscribers: 2, Offset: 2},
		{Channel: "list.b", Subscribers: 0, Offset: 1},
		{Channel: "list.c", Subscribers: 1, Offset: 0},
	}
	for i, n := range rs.nodes {
		var got servertest.ChannelListResult
		servertest.Eventually(t, fmt.Sprintf("node %d to list %v", i, want), func() bool {
			r, _ := n.client().Call(servertest.Bearer(rs.tok), "channelList", map[string]any{"prefix": "list."})
			r.Decode(t, &got)
			return slices.Equal(got.Channels, want) && !got.More
		})
	}
}

// TestRedisIdempotencyKeyAcrossNodes repeats a publication's
// idempotencyKey through another node: it is answered as a duplicate of
// the first, and nobody receives it twice.
func TestRedisIdempotencyKeyAcrossNodes(t *testing.T) {
	const channel = "idem.room"
	rs := startRedisNodes(t, redistest.Options{}, 2)
	sub := rs.nodes[1].client().HubClient(rs.tok)
	sub.Subscribe(map[string]any{"channel": channel})
	publish := func(node *serverProc, data, key string) servertest.PublishResult {
		t.Helper()
		r, _ := node.client().Call(servertest.Bearer(rs.tok), "channelPublish",
			map[string]any{"channel": channel, "data": json.RawMessage(data), "idempotencyKey": key})
		var res servertest.PublishResult
		r.Decode(t, &res)
		return res
	}
	first := publish(rs.nodes[0], `"first"`, "key-1")
	again := publish(rs.nodes[1], `"again"`, "key-1")
	if first.Offset != 1 || first.Duplicate || again.Offset != 1 || !again.Duplicate || again.Epoch != first.Epoch {
		t.Errorf("the key published through A then B: %+v then %+v; want offset 1, then offset 1 as a duplicate", first, again)
	}
	if next := publish(rs.nodes[1], `"next"`, "key-2"); next.Offset != 2 || next.Duplicate {
		t.Errorf("a new key after the duplicate: %+v, want offset 2", next)
	}
	got := readPublications(t, sub, map[string]uint64{channel: 2})[channel]
	hist, _, _ := readHistory(t, rs.nodes[0].client(), rs.tok, channel)
	sameAsHistory(t, "the subscriber on B", got, hist, 1)
	if len(hist) != 2 || string(hist[0].Data) != `"first"` {
		t.Errorf("history %v, want the first publication and the next", hist)
	}
}

// TestRedisPrefixesKeepDeploymentsApart runs two deployments on one
// Redis with different --redis-prefix: the same channel name is two
// channels, each with its own offsets, subscribers and listing.
func TestRedisPrefixesKeepDeploymentsApart(t *testing.T) {
	const channel = "prefix.room"
	rs := startRedisNodes(t, redistest.Options{}, 0)
	one, two := rs.node("--redis-prefix", "one"), rs.node("--redis-prefix", "two")
	subTwo := two.client().HubClient(rs.tok)
	subTwo.Subscribe(map[string]any{"channel": channel})
	for i := 1; i <= 3; i++ {
		servertest.PublishHTTP(t, one.client(), rs.tok, channel, fmt.Sprint(i))
	}
	if p := servertest.PublishHTTP(t, two.client(), rs.tok, channel, `"two"`); p.Offset != 1 {
		t.Errorf("first publication of the other deployment: offset %d, want 1", p.Offset)
	}
	if p := subTwo.NextPublication(); p.Offset != 1 || string(p.Data) != `"two"` {
		t.Errorf("the other deployment's subscriber got offset %d %s, want its own first publication", p.Offset, p.Data)
	}
	for _, d := range []struct {
		prefix string
		node   *serverProc
		want   []servertest.ChannelSummaryJSON
	}{
		{"one", one, []servertest.ChannelSummaryJSON{{Channel: channel, Subscribers: 0, Offset: 3}}},
		{"two", two, []servertest.ChannelSummaryJSON{{Channel: channel, Subscribers: 1, Offset: 1}}},
	} {
		var got servertest.ChannelListResult
		servertest.Eventually(t, fmt.Sprintf("prefix %s's node to list %+v", d.prefix, d.want), func() bool {
			r, _ := d.node.client().Call(servertest.Bearer(rs.tok), "channelList", map[string]any{"prefix": "prefix."})
			r.Decode(t, &got)
			return slices.Equal(got.Channels, d.want)
		})
	}
}
