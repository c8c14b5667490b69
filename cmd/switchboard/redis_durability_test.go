package main

// Durability tests of nodes sharing one redis-server: a node killed while
// publishing, Redis killed and restarted from its append-only file or
// empty, and Redis down for a while.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/rpc"
	"github.com/switchboard/switchboard/service"
)

// waitReady waits until node's /readyz answers status.
func waitReady(t *testing.T, node *serverProc, status int) {
	t.Helper()
	c := node.client()
	servertest.Eventually(t, fmt.Sprintf("/readyz on %s to answer %d", node.addr, status), func() bool {
		return c.Do(http.MethodGet, "/readyz", nil, nil).Status == status
	})
}

// readCLI reads what "switchboard subscribe" prints, until the
// publication at offset last.
func readCLI(t *testing.T, sub *cliProc, last uint64) []servertest.PublicationNote {
	t.Helper()
	var got []servertest.PublicationNote
	for len(got) == 0 || got[len(got)-1].Offset < last {
		l := sub.next(fmt.Sprintf("publication %d", last))
		var p servertest.PublicationNote
		if err := json.Unmarshal([]byte(l), &p); err != nil {
			t.Fatalf("subscribe printed %q: %v", l, err)
		}
		got = append(got, p)
	}
	return got
}

// TestRedisNodeSIGKILLLosesNoAcknowledgedPublication kills a node twice
// while thousands of publications are in flight through it: every
// acknowledged one is in the history read through another node, whose
// subscriber gets the whole history once, in order.
func TestRedisNodeSIGKILLLosesNoAcknowledgedPublication(t *testing.T) {
	channels := []string{"crash.a", "crash.b", "crash.c"}
	// The subscriber takes bursts of thousands: room for them, so that it
	// is not closed as a slow consumer, which is not what is tested.
	rs := startRedisNodes(t, redistest.Options{}, 1, "--send-queue", "100000", "--send-queue-bytes", "1073741824")
	b := rs.nodes[0]
	sub := b.client().HubClient(rs.tok)
	for _, ch := range channels {
		sub.Subscribe(map[string]any{"channel": ch})
	}
	l := newLedger(t, channels)
	for round := range 2 {
		if killWhilePublishing(t, l, rs.node("--max-concurrent-calls", "64"), rs.tok, round, channels); t.Failed() {
			return
		}
	}

	extra := checkLedger(t, l, b.client(), rs.tok, channels)
	t.Logf("%d publications written, %d acknowledged, %d more kept", l.written.Load(), l.acks.Load(), extra)
	hist := map[string][]servertest.PublicationNote{}
	last := map[string]uint64{}
	for _, ch := range channels {
		hist[ch], last[ch], _ = readHistory(t, b.client(), rs.tok, ch)
	}
	got := readPublications(t, sub, last)
	for _, ch := range channels {
		sameAsHistory(t, "the subscriber on the node that lived, to "+ch, got[ch], hist[ch], 1)
	}
}

// TestRedisRestartFromAppendOnlyFile kills Redis, which fsyncs every
// write, and starts it again from its append-only file while two nodes
// publish and "switchboard subscribe" follows one of them: every
// acknowledged publication is in the history, the subscriber prints the
// whole history once, in order, and a WebSocket subscriber on the same
// node gets it all without being interrupted.
func TestRedisRestartFromAppendOnlyFile(t *testing.T) {
	const channel = "aof.room"
	channels := []string{channel}
	rs := startRedisNodes(t, redistest.Options{AppendFsyncAlways: true}, 2)
	a, b := rs.nodes[0], rs.nodes[1]
	sub := startCLI(t, []string{"SWITCHBOARD_URL=ws://" + b.addr, "SWITCHBOARD_TOKEN=" + rs.tok}, "subscribe", channel, "--since", "0")
	servertest.Eventually(t, "the subscriber to be listed", func() bool { return len(presenceOf(t, b.client(), rs.tok, channel)) == 1 })
	// The CLI would recover from an interruption; this one must not need
	// to: the history has all it could miss.
	ws := b.client().HubClient(rs.tok)
	ws.Subscribe(map[string]any{"channel": channel})

	l := newLedger(t, channels)
	pubs := []*publisher{
		startPublishing(l, a.client().HubClient(rs.tok), "on-a", 0, channels),
		startPublishing(l, b.client().HubClient(rs.tok), "on-b", 0, channels),
	}
	servertest.Eventually(t, "100 publications", func() bool { return l.acks.Load() >= 100 })
	rs.redis.Kill()
	for i, p := range pubs {
		servertest.Eventually(t, fmt.Sprintf("publisher %d to be refused", i), func() bool { return p.refused.Load() > 0 })
	}
	rs.redis.Restart()
	acks := l.acks.Load()
	servertest.Eventually(t, "100 publications after the restart", func() bool { return l.acks.Load() >= acks+100 })
	for _, p := range pubs {
		p.finish(t)
	}

	extra := checkLedger(t, l, a.client(), rs.tok, channels)
	t.Logf("%d acknowledged, %d refused while Redis was down, %d kept unacknowledged", l.acks.Load(), pubs[0].refused.Load()+pubs[1].refused.Load(), extra)
	hist, _, _ := readHistory(t, b.client(), rs.tok, channel)
	sameAsHistory(t, "switchboard subscribe", readCLI(t, sub, uint64(len(hist))), hist, 1)
	sameAsHistory(t, "the WebSocket subscriber", readPublications(t, ws, map[string]uint64{channel: uint64(len(hist))})[channel], hist, 1)
	sub.cmd.Process.Signal(syscall.SIGTERM)
	if code := sub.wait(); code != 0 {
		t.Errorf("subscribe exited %d, want 0", code)
	}
	if l, ok := <-sub.lines; ok {
		t.Errorf("subscribe printed more than the history: %q", l)
	}
	if e := sub.stderr.String(); strings.Contains(e, "lost") {
		t.Errorf("subscribe reported lost publications:\n%s", e)
	}
}

// TestRedisLostDataInterruptsSubscriptions restarts Redis empty: the
// subscribers on both nodes are told "interrupted", and subscribing again
// from their position recovers nothing, in the new epoch both nodes
// agree on.
func TestRedisLostDataInterruptsSubscriptions(t *testing.T) {
	const channel = "wiped.room"
	rs := startRedisNodes(t, redistest.Options{}, 2)
	a, b := rs.nodes[0], rs.nodes[1]
	subs := map[string]*servertest.Client{"A": a.client().HubClient(rs.tok), "B": b.client().HubClient(rs.tok)}
	var old string
	for _, c := range subs {
		old = c.Subscribe(map[string]any{"channel": channel}).Epoch
	}
	for i := 1; i <= 3; i++ {
		servertest.PublishHTTP(t, a.client(), rs.tok, channel, fmt.Sprint(i))
	}
	for _, c := range subs {
		readPublications(t, c, map[string]uint64{channel: 3})
	}

	rs.redis.Kill()
	rs.redis.Wipe()
	rs.redis.Restart()
	expectUnsubscribed(t, subs, channel, service.ReasonInterrupted)
	var epoch string
	for node, c := range subs {
		res := c.Subscribe(map[string]any{"channel": channel, "since": map[string]any{"offset": 3, "epoch": old}})
		if res.Recovered || res.Epoch == "" || res.Epoch == old || res.Offset != 0 || len(res.Publications) != 0 {
			t.Errorf("subscribe on %s since 3 in the lost epoch %q: recovered %v at %d in %q with %d publications; want not recovered, at 0, in a new epoch",
				node, old, res.Recovered, res.Offset, res.Epoch, len(res.Publications))
		}
		if epoch != "" && res.Epoch != epoch {
			t.Errorf("the nodes disagree on the new epoch: %q and %q", epoch, res.Epoch)
		}
		epoch = res.Epoch
	}
	// Presence went with the data; subscribing again lists them anew.
	servertest.Eventually(t, "both subscribers to be listed again", func() bool { return len(presenceOf(t, b.client(), rs.tok, channel)) == 2 })

	waitReady(t, b, http.StatusOK)
	if p := servertest.PublishHTTP(t, b.client(), rs.tok, channel, `"new"`); p.Offset != 1 || p.Epoch != epoch {
		t.Errorf("first publication in the new data: offset %d in %q, want 1 in %q", p.Offset, p.Epoch, epoch)
	}
	for node, c := range subs {
		if p := c.NextPublication(); p.Offset != 1 || string(p.Data) != `"new"` {
			t.Errorf("the subscriber on %s got offset %d %s, want 1 \"new\"", node, p.Offset, p.Data)
		}
	}
	// The channel index was lost with the rest, and made again.
	r, _ := a.client().Call(servertest.Bearer(rs.tok), "channelList", map[string]any{"prefix": channel})
	var list servertest.ChannelListResult
	r.Decode(t, &list)
	if len(list.Channels) != 1 || list.Channels[0].Offset != 1 {
		t.Errorf("channelList on A after the loss: %+v, want %s at offset 1", list.Channels, channel)
	}
}

// TestRedisOutage stops Redis for a while: publishing through a node
// fails fast with -32013 and /readyz fails; once Redis is back, /readyz
// passes, publishing works, and a subscriber that stayed connected goes
// on with the next offset.
func TestRedisOutage(t *testing.T) {
	const channel = "outage.room"
	rs := startRedisNodes(t, redistest.Options{AppendFsyncAlways: true}, 2)
	a, b := rs.nodes[0], rs.nodes[1]
	sub := b.client().HubClient(rs.tok)
	epoch := sub.Subscribe(map[string]any{"channel": channel}).Epoch
	for i := 1; i <= 3; i++ {
		servertest.PublishHTTP(t, a.client(), rs.tok, channel, fmt.Sprint(i))
	}
	readPublications(t, sub, map[string]uint64{channel: 3})
	for _, n := range rs.nodes {
		waitReady(t, n, http.StatusOK)
	}

	rs.redis.Kill()
	// The first publication finds its pooled connection dead; the second
	// a node that knows Redis is down.
	publishRefused(t, a, rs.tok, channel)
	for _, n := range rs.nodes {
		waitReady(t, n, http.StatusServiceUnavailable)
	}
	publishRefused(t, a, rs.tok, channel)
	// Nor can a node read or follow a channel without Redis.
	other := b.client().HubClient(rs.tok)
	other.Fails("channelSubscribe", map[string]any{"channel": "outage.other"}, rpc.CodeUnavailable)
	other.Fails("channelHistory", map[string]any{"channel": channel}, rpc.CodeUnavailable)

	rs.redis.Restart()
	for _, n := range rs.nodes {
		waitReady(t, n, http.StatusOK)
	}
	for i, n := range []*serverProc{a, b} {
		want := uint64(4 + i)
		if p := servertest.PublishHTTP(t, n.client(), rs.tok, channel, fmt.Sprint(want)); p.Offset != want || p.Epoch != epoch {
			t.Errorf("publish after the outage: offset %d in %q, want %d in %q", p.Offset, p.Epoch, want, epoch)
		}
		if p := sub.NextPublication(); p.Offset != want || string(p.Data) != fmt.Sprint(want) {
			t.Errorf("the subscriber got offset %d %s after the outage, want %d", p.Offset, p.Data, want)
		}
	}
}

// publishRefused publishes through node while Redis is down: it must be
// refused with -32013, without waiting for long.
func publishRefused(t *testing.T, node *serverProc, tok, channel string) {
	t.Helper()
	start := time.Now()
	r, _ := node.client().Call(servertest.Bearer(tok), "channelPublish", map[string]any{"channel": channel, "data": "lost"})
	took := time.Since(start)
	if r.Error == nil || r.Error.Code != rpc.CodeUnavailable {
		t.Errorf("publish with Redis down: %+v %s, want error %d", r.Error, r.Result, rpc.CodeUnavailable)
	}
	if took > 3*time.Second {
		t.Errorf("publish with Redis down took %v to fail: it waited for Redis", took)
	}
	t.Logf("publish with Redis down failed in %v", took.Round(time.Millisecond))
}

// TestRedisNodeCatchesUpAfterLosingPubSub has Redis drop a node's Pub/Sub
// connection, and the publications on it, while the node is stopped
// (SIGSTOP) and another publishes: the node reads what it lost from the
// history when it reconnects, with no later publication to reveal the
// gap; when the history was trimmed past them, its subscribers are told
// "interrupted" instead, and recover what is left.
func TestRedisNodeCatchesUpAfterLosingPubSub(t *testing.T) {
	const (
		channel = "pubsub.lost"
		n       = 200 // of 60 KiB: far more than the sockets between Redis and the node hold
		kept    = 20  // with a trimmed history
	)
	for _, trimmed := range []bool{false, true} {
		t.Run(fmt.Sprintf("trimmed=%v", trimmed), func(t *testing.T) {
			size := "0"
			if trimmed {
				size = fmt.Sprint(kept)
			}
			// Room in the send queue for the catch-up's bursts.
			rs := startRedisNodes(t, redistest.Options{}, 2, "--history-size", size, "--send-queue", "100000", "--send-queue-bytes", "1073741824")
			a, b := rs.nodes[0], rs.nodes[1]
			sub := b.client().HubClient(rs.tok)
			epoch := sub.Subscribe(map[string]any{"channel": channel}).Epoch
			if reply, err := rs.redis.Command("CONFIG", "SET", "client-output-buffer-limit", "pubsub 1mb 0 0"); reply != "+OK" {
				t.Fatalf("CONFIG SET: %q %v", reply, err)
			}

			b.cmd.Process.Signal(syscall.SIGSTOP)
			pad := strings.Repeat("x", 60<<10)
			for i := 1; i <= n; i++ {
				servertest.PublishHTTP(t, a.client(), rs.tok, channel, fmt.Sprintf(`{"n":%d,"pad":"%s"}`, i, pad))
			}
			if !strings.Contains(rs.redis.Log(), "output buffer limits") {
				t.Fatalf("Redis did not drop B's Pub/Sub connection; its log:\n%s", rs.redis.Log())
			}
			b.cmd.Process.Signal(syscall.SIGCONT)
			hist, _, _ := readHistory(t, a.client(), rs.tok, channel)

			if !trimmed {
				got := readPublications(t, sub, map[string]uint64{channel: n})[channel]
				sameAsHistory(t, "B's subscriber", got, hist, 1)
				return
			}
			// What reached B's socket before Redis gave up, then the end.
			var got []uint64
			for {
				note := sub.Next()
				if note.Method == "channelUnsubscribed" {
					var u servertest.UnsubscribedNote
					json.Unmarshal(note.Params, &u)
					if u.Channel != channel || u.Reason != service.ReasonInterrupted {
						t.Fatalf("B's subscriber was told %+v, want %s interrupted", u, channel)
					}
					break
				}
				var p servertest.PublicationNote
				if err := json.Unmarshal(note.Params, &p); note.Method != "channelPublication" || err != nil {
					t.Fatalf("B's subscriber got %s %s", note.Method, note.Params)
				}
				got = append(got, p.Offset)
			}
			last := uint64(len(got))
			t.Logf("B's subscriber got %d publications before it was interrupted", last)
			if !slices.Equal(got, servertest.Seq(1, last)) || last >= n-kept {
				t.Fatalf("before the interruption B's subscriber got %v, want 1 to fewer than %d", got, n-kept)
			}
			res := sub.Subscribe(map[string]any{"channel": channel, "since": map[string]any{"offset": last, "epoch": epoch}})
			if res.Recovered || res.Epoch != epoch || res.Offset != n {
				t.Errorf("subscribe again since %d: recovered %v at %d in %q; want not recovered, at %d in %q", last, res.Recovered, res.Offset, res.Epoch, n, epoch)
			}
			sameAsHistory(t, "B's subscriber, subscribed again", res.Publications, hist, n-kept+1)
		})
	}
}
