package main

// Two serve processes sharing channels through a three-master Redis
// Cluster: what a client does on one node is seen on the other, for
// channels whose keys sit on every master.

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/service"
)

// clusterNodes are two switchboard processes on one Redis Cluster.
type clusterNodes struct {
	redis      *redistest.Cluster
	a, b       *serverProc
	tok, admin string // may publish and subscribe to everything; an admin
}

// startClusterNodes starts a Redis Cluster and two nodes on it, with
// extra flags.
func startClusterNodes(t *testing.T, extra ...string) *clusterNodes {
	t.Helper()
	rc := redistest.StartCluster(t)
	secret := servertest.RandomSecret()
	engine := append([]string{"--engine", "redis", "--redis-cluster", "--redis-url", rc.URL()}, extra...)
	n := &clusterNodes{redis: rc, tok: durableToken(t, secret)}
	n.a = startDurable(t, t.TempDir(), secret, engine...)
	n.b = startDurable(t, t.TempDir(), secret, engine...)
	a, err := auth.New([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	if n.admin, err = a.Issue("admin", service.Permissions{Admin: true, Publish: []string{">"}, Subscribe: []string{">"}}, time.Hour); err != nil {
		t.Fatal(err)
	}
	return n
}

// nodes returns the two servers' clients for t, a subtest: serverProc's
// client would fail the parent test.
func (n *clusterNodes) nodes(t *testing.T) (a, b *servertest.Server) {
	return servertest.At(t, n.a.addr), servertest.At(t, n.b.addr)
}

// TestClusterTwoNodes runs two nodes on a Redis Cluster and checks each
// feature across them, on channels spread over the three masters.
func TestClusterTwoNodes(t *testing.T) {
	n := startClusterNodes(t)
	var infoA, infoB servertest.InfoResult
	a, b := n.nodes(t)
	r, _ := a.Call(servertest.Bearer(n.tok), "serverInfo", nil)
	r.Decode(t, &infoA)
	r, _ = b.Call(servertest.Bearer(n.tok), "serverInfo", nil)
	r.Decode(t, &infoB)
	if infoA.NodeID == infoB.NodeID {
		t.Fatalf("both nodes are %q: their joins and leaves would be taken for each other's", infoA.NodeID)
	}

	// list comes first, before anything has loaded the script that
	// counts subscribers on any master.
	t.Run("list", func(t *testing.T) { clusterList(t, n) })
	t.Run("fanout", func(t *testing.T) { clusterFanout(t, n) })
	t.Run("idempotency", func(t *testing.T) { clusterIdempotency(t, n) })
	t.Run("presence", func(t *testing.T) { clusterPresence(t, n) })
	t.Run("remove", func(t *testing.T) { clusterRemove(t, n) })
	t.Run("recovery", func(t *testing.T) { clusterRecovery(t, n) })
}

// clusterFanout publishes from two connections on each node at once and
// checks that two subscribers on each node receive every channel's
// publications gapless and in one order, the order history holds on
// either node.
func clusterFanout(t *testing.T, n *clusterNodes) {
	a, b := n.nodes(t)
	channels := n.redis.Spread(t, "fan", 2)
	var subs []*servertest.Client
	subNodes := []string{"a", "a", "b", "b"}
	for _, s := range []*servertest.Server{a, a, b, b} {
		c := s.HubClient(n.tok)
		for _, ch := range channels {
			if res := c.Subscribe(map[string]any{"channel": ch}); res.Offset != 0 {
				t.Fatalf("subscribe to new %s: offset %d", ch, res.Offset)
			}
		}
		subs = append(subs, c)
	}

	const perPublisher = 10
	var wg sync.WaitGroup
	for i, s := range []*servertest.Server{a, a, b, b} {
		pub := s.HubClient(n.tok)
		wg.Go(func() {
			for k := range perPublisher {
				for _, ch := range channels {
					if _, err := pub.TryPublish(ch, map[string]int{"publisher": i, "k": k}); err != nil {
						t.Errorf("publisher %d: %v", i, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	const total = 4 * perPublisher
	received := make([]map[string][]string, len(subs)) // subscriber → channel → data in order
	for i, c := range subs {
		received[i] = map[string][]string{}
		offsets := map[string][]uint64{}
		for range total * len(channels) {
			p := c.NextPublication()
			offsets[p.Channel] = append(offsets[p.Channel], p.Offset)
			received[i][p.Channel] = append(received[i][p.Channel], string(p.Data))
		}
		for _, ch := range channels {
			if !slices.Equal(offsets[ch], servertest.Seq(1, total)) {
				t.Errorf("subscriber %d (on %s) received offsets %v of %s, want 1 to %d once each", i, subNodes[i], offsets[ch], ch, total)
			}
		}
	}
	for _, ch := range channels {
		for i := 1; i < len(subs); i++ {
			if !slices.Equal(received[i][ch], received[0][ch]) {
				t.Errorf("%s: subscriber %d received %v, subscriber 0 %v: not one order", ch, i, received[i][ch], received[0][ch])
			}
		}
		for name, s := range map[string]*servertest.Server{"a": a, "b": b} {
			pubs, offset, _ := readHistory(t, s, n.tok, ch)
			var got []string
			for _, p := range pubs {
				got = append(got, string(p.Data))
			}
			if offset != total || !slices.Equal(got, received[0][ch]) {
				t.Errorf("history of %s on node %s: offset %d, %v; want %d, what the subscribers received", ch, name, offset, got, total)
			}
		}
	}
}

// clusterIdempotency publishes with one key on each node: the second is
// the first's duplicate.
func clusterIdempotency(t *testing.T, n *clusterNodes) {
	a, b := n.nodes(t)
	for _, ch := range n.redis.Spread(t, "idem", 1) {
		publish := func(s *servertest.Server, key string) servertest.PublishResult {
			t.Helper()
			r, _ := s.Call(servertest.Bearer(n.tok), "channelPublish", map[string]any{"channel": ch, "data": key, "idempotencyKey": key})
			var res servertest.PublishResult
			r.Decode(t, &res)
			return res
		}
		first := publish(a, "k1")
		again := publish(b, "k1")
		other := publish(b, "k2")
		if first.Offset != 1 || first.Duplicate {
			t.Errorf("%s: first publication with k1 on a: %+v, want offset 1, no duplicate", ch, first)
		}
		if again.Offset != first.Offset || again.Epoch != first.Epoch || !again.Duplicate {
			t.Errorf("%s: k1 again on b: %+v, want %+v with duplicate", ch, again, first)
		}
		if other.Offset != 2 || other.Duplicate {
			t.Errorf("%s: k2 on b: %+v, want offset 2, no duplicate", ch, other)
		}
		if pubs, _, _ := readHistory(t, a, n.tok, ch); len(pubs) != 2 {
			t.Errorf("%s: history holds %d publications, want 2 (k1 once, k2)", ch, len(pubs))
		}
	}
}

// clusterPresence subscribes on each node: both nodes list both, and a
// subscriber with joinLeave hears of the one on the other node.
func clusterPresence(t *testing.T, n *clusterNodes) {
	a, b := n.nodes(t)
	for _, ch := range n.redis.Spread(t, "pres", 1) {
		ca, cb := a.HubClient(n.tok), b.HubClient(n.tok)
		ca.Subscribe(map[string]any{"channel": ch, "joinLeave": true})
		cb.Subscribe(map[string]any{"channel": ch})
		idA, idB := ca.Whoami().ConnectionID, cb.Whoami().ConnectionID
		want := []string{idA, idB}
		slices.Sort(want)
		for name, s := range map[string]*servertest.Server{"a": a, "b": b} {
			var got []string
			defer func() { // Eventually's Fatal runs it
				if t.Failed() {
					t.Logf("node %s listed %v in %s", name, got, ch)
				}
			}()
			servertest.Eventually(t, fmt.Sprintf("node %s to list %v in %s", name, want, ch), func() bool {
				got = slices.Sorted(maps.Keys(presenceOf(t, s, n.tok, ch)))
				return slices.Equal(got, want)
			})
		}
		var join servertest.MemberJSON
		ca.NextNote("channelJoin", &join)
		if join.Channel != ch || join.ConnectionID != idB || join.User != "durable" {
			t.Errorf("%s: join %+v, want b's connection %s", ch, join, idB)
		}
		// A leave on b reaches a too.
		cb.Disconnect()
		var leave servertest.MemberJSON
		ca.NextNote("channelLeave", &leave)
		if leave.Channel != ch || leave.ConnectionID != idB {
			t.Errorf("%s: leave %+v, want b's connection %s", ch, leave, idB)
		}
		ca.Disconnect()
	}
}

// clusterList gives channels of every master publications from both
// nodes, and subscribers on both, and lists them from both nodes.
func clusterList(t *testing.T, n *clusterNodes) {
	a, b := n.nodes(t)
	channels := n.redis.Spread(t, "list", 2)
	last := len(channels) - 1 // it gets a subscriber and no publication
	want := map[string]servertest.ChannelSummaryJSON{}
	for i, ch := range channels[:last] {
		s := []*servertest.Server{a, b}[i%2]
		for range i + 1 { // offsets tell the channels apart
			servertest.PublishHTTP(t, s, n.tok, ch, `"x"`)
		}
		want[ch] = servertest.ChannelSummaryJSON{Channel: ch, Offset: uint64(i + 1)}
	}
	a.HubClient(n.tok).Subscribe(map[string]any{"channel": channels[0]})
	b.HubClient(n.tok).Subscribe(map[string]any{"channel": channels[last]})
	want[channels[0]] = servertest.ChannelSummaryJSON{Channel: channels[0], Offset: 1, Subscribers: 1}
	want[channels[last]] = servertest.ChannelSummaryJSON{Channel: channels[last], Subscribers: 1}
	var wantList []servertest.ChannelSummaryJSON
	for _, ch := range slices.Sorted(slices.Values(channels)) {
		wantList = append(wantList, want[ch])
	}

	for name, s := range map[string]*servertest.Server{"a": a, "b": b} {
		var l servertest.ChannelListResult
		defer func() { // Eventually's Fatal runs it
			if t.Failed() {
				t.Logf("node %s listed %+v", name, l)
			}
		}()
		// Subscribers are counted once their node has written them.
		servertest.Eventually(t, fmt.Sprintf("node %s to list %+v", name, wantList), func() bool {
			r, _ := s.Call(servertest.Bearer(n.tok), "channelList", map[string]any{"prefix": "list."})
			r.Decode(t, &l)
			return !l.More && slices.Equal(l.Channels, wantList)
		})
	}
}

// clusterRemove removes on a the channels that subscribers on b follow:
// their subscriptions end, and the channels start again.
func clusterRemove(t *testing.T, n *clusterNodes) {
	a, b := n.nodes(t)
	channels := n.redis.Spread(t, "gone", 1)
	sub := b.HubClient(n.tok)
	epochs := map[string]string{}
	for _, ch := range channels {
		epochs[ch] = sub.Subscribe(map[string]any{"channel": ch}).Epoch
		servertest.PublishHTTP(t, a, n.tok, ch, `"before"`)
		if p := sub.NextPublication(); p.Channel != ch || p.Offset != 1 {
			t.Fatalf("subscriber on b got %s %d, want %s 1", p.Channel, p.Offset, ch)
		}
	}
	for _, ch := range channels {
		r, _ := a.Call(servertest.Bearer(n.admin), "channelRemove", map[string]any{"channel": ch})
		var rm servertest.RemoveResult
		r.Decode(t, &rm)
		if rm.Offset != 0 || rm.Epoch == epochs[ch] {
			t.Errorf("remove %s: %+v, want offset 0 in an epoch other than %q", ch, rm, epochs[ch])
		}
		var u servertest.UnsubscribedNote
		sub.NextNote("channelUnsubscribed", &u)
		if u.Channel != ch || u.Reason != service.ReasonRemoved {
			t.Errorf("subscriber on b told %+v, want %s removed", u, ch)
		}
		if res := servertest.PublishHTTP(t, b, n.tok, ch, `"after"`); res.Offset != 1 || res.Epoch != rm.Epoch {
			t.Errorf("publish to %s after its removal: %+v, want offset 1 in %q", ch, res, rm.Epoch)
		}
		// The session holds the subscription no more: subscribing again
		// is no conflict, and starts from the new epoch.
		if res := sub.Subscribe(map[string]any{"channel": ch}); res.Offset != 1 || res.Epoch != rm.Epoch {
			t.Errorf("subscribe to %s again on b: %+v, want offset 1 in %q", ch, res, rm.Epoch)
		}
	}
}

// clusterRecovery subscribes on a, disconnects, and recovers through b
// exactly what was published meanwhile, then follows b live.
func clusterRecovery(t *testing.T, n *clusterNodes) {
	a, b := n.nodes(t)
	data := func(i int) string { return fmt.Sprintf(`{"n":%d}`, i) }
	for _, ch := range n.redis.Spread(t, "rec", 1) {
		first := a.HubClient(n.tok)
		epoch := first.Subscribe(map[string]any{"channel": ch}).Epoch
		for i := 1; i <= 5; i++ {
			servertest.PublishHTTP(t, b, n.tok, ch, data(i))
		}
		var last servertest.PublicationNote
		for range 5 {
			last = first.NextPublication()
		}
		first.Disconnect()
		for i := 6; i <= 12; i++ {
			servertest.PublishHTTP(t, []*servertest.Server{a, b}[i%2], n.tok, ch, data(i))
		}

		again := b.HubClient(n.tok)
		got := again.Subscribe(map[string]any{"channel": ch, "since": map[string]any{"offset": last.Offset, "epoch": epoch}})
		if !got.Recovered || got.Epoch != epoch || got.Offset != 12 {
			t.Errorf("%s: subscribe on b since %d: recovered %v at %d in %q, want recovered at 12 in %q", ch, last.Offset, got.Recovered, got.Offset, got.Epoch, epoch)
		}
		if o := servertest.OffsetsOf(got.Publications); !slices.Equal(o, servertest.Seq(6, 12)) {
			t.Errorf("%s: recovered offsets %v, want 6 to 12", ch, o)
		}
		for _, p := range got.Publications {
			if !jsonEqual(p.Data, data(int(p.Offset))) {
				t.Errorf("%s: recovered offset %d holds %s, want %s", ch, p.Offset, p.Data, data(int(p.Offset)))
			}
		}
		servertest.PublishHTTP(t, a, n.tok, ch, data(13))
		if p := again.NextPublication(); p.Offset != 13 || !jsonEqual(p.Data, data(13)) {
			t.Errorf("%s: after recovering, b delivered %d %s, want 13", ch, p.Offset, p.Data)
		}
		again.Disconnect()
	}
}

func jsonEqual(got json.RawMessage, want string) bool {
	var g, w any
	return json.Unmarshal(got, &g) == nil && json.Unmarshal([]byte(want), &w) == nil && fmt.Sprint(g) == fmt.Sprint(w)
}

// TestClusterIndexMasterDownLeavesNoGhost subscribes, through a node,
// to a channel of a master that is up while the channel index's master
// is down. Should the subscription fail, the connection must not be
// listed in presence once it has closed: a ghost nobody can remove.
func TestClusterIndexMasterDownLeavesNoGhost(t *testing.T) {
	n := startClusterNodes(t)
	for _, node := range n.redis.Nodes { // so that the others serve their slots meanwhile
		if reply, err := node.Command("CONFIG", "SET", "cluster-require-full-coverage", "no"); err != nil || reply != "+OK" {
			t.Fatalf("CONFIG SET: %q %v", reply, err)
		}
	}
	a, b := n.nodes(t)
	down := n.redis.Owner(t, "switchboard:channels")
	var ch string
	for _, name := range n.redis.Spread(t, "ghost", 1) {
		if n.redis.Owner(t, name) != down {
			ch = name
		}
	}

	n.redis.Nodes[down].Kill()
	c := a.HubClient(n.tok)
	id := c.Whoami().ConnectionID
	r, err := c.Send("channelSubscribe", map[string]any{"channel": ch})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("subscribe to %s on a with the index's master down: result %s, error %+v", ch, r.Result, r.Error)
	c.Disconnect()
	n.redis.Nodes[down].Restart()
	n.redis.WaitOK(t)

	// Node a writes presence in order: once a later subscriber of a is
	// listed, the first connection's join and leave were written too.
	// First a publish, retried under one key, until a reaches the index
	// again: a subscription that failed would be a second ghost.
	servertest.Eventually(t, "a publish through a with every master up", func() bool {
		r, _ := a.Call(servertest.Bearer(n.tok), "channelPublish", map[string]any{"channel": "ghost.probe", "data": 1, "idempotencyKey": "probe"})
		return r.Error == nil
	})
	witness := a.HubClient(n.tok)
	witness.Subscribe(map[string]any{"channel": ch})
	wid := witness.Whoami().ConnectionID
	var members []string
	servertest.Eventually(t, "the later subscriber in presence on b", func() bool {
		members = slices.Sorted(maps.Keys(presenceOf(t, b, n.tok, ch)))
		return slices.Contains(members, wid)
	})
	if slices.Contains(members, id) {
		t.Errorf("presence of %s lists %v: %s, closed, whose subscription was answered %+v, is still there", ch, members, id, r.Error)
	}
}

// TestClusterDeadNodeLeavesPresence SIGKILLs one node: its
// subscriber leaves presence within --presence-ttl, while the living
// node's older one, renewed, stays.
func TestClusterDeadNodeLeavesPresence(t *testing.T) {
	const ttl = 3 * time.Second
	n := startClusterNodes(t, "--presence-ttl", ttl.String())
	a, b := n.nodes(t)
	ch := n.redis.Spread(t, "dead", 1)[0]
	ca := a.HubClient(n.tok)
	ca.Subscribe(map[string]any{"channel": ch})
	cb := b.HubClient(n.tok)
	cb.Subscribe(map[string]any{"channel": ch})
	idA, idB := ca.Whoami().ConnectionID, cb.Whoami().ConnectionID

	var got []string
	defer func() { // Eventually's Fatal runs it
		if t.Failed() {
			t.Logf("node a listed %v", got)
		}
	}()
	members := func() []string {
		got = slices.Sorted(maps.Keys(presenceOf(t, a, n.tok, ch)))
		return got
	}
	servertest.Eventually(t, "a to list both subscribers", func() bool { return len(members()) == 2 })
	joined := time.Now()

	n.b.cmd.Process.Kill() // no leave is written: only expiry removes it
	n.b.wait()
	servertest.Eventually(t, fmt.Sprintf("a to list only %s", idA), func() bool {
		return slices.Equal(members(), []string{idA})
	})
	if since := time.Since(joined); since < ttl/2 {
		t.Errorf("%s left presence %v after b was killed: before expiring", idB, since)
	}
	r, _ := a.Call(servertest.Bearer(n.tok), "channelList", map[string]any{"prefix": ch})
	var l servertest.ChannelListResult
	r.Decode(t, &l)
	if len(l.Channels) != 1 || l.Channels[0].Subscribers != 1 {
		t.Errorf("a lists %+v, want %s with its 1 living subscriber", l.Channels, ch)
	}
}
