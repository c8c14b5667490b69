package redis_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/enginetest"
	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/redis"
	"github.com/switchboard/switchboard/service"
)

// The members of a node that stops without unsubscribing them, as one
// that crashed, stay listed until their PresenceTTL runs out, and no
// longer; the other node's stay, and hear of their leave.
func TestDeadNodesMembersExpire(t *testing.T) {
	const ttl = 1500 * time.Millisecond
	srv := redistest.Start(t, redistest.Options{})
	a := openEngine(t, redis.Options{URL: srv.URL(), Node: "a"})
	b := openEngine(t, redis.Options{URL: srv.URL(), Node: "b", PresenceTTL: ttl})
	ctx := context.Background()
	ra := enginetest.NewReceiverSince("u1", "ca", time.Now())
	rb := enginetest.NewReceiverSince("u2", "cb", time.Now().Add(time.Second))
	both := []service.Member{ra.Member(), rb.Member()}
	var got []service.Member
	var subscribed time.Time // of b's member
	// One after the other, so that b, with the shorter TTL, writes last.
	for i, sub := range []struct {
		e *redis.Engine
		r *enginetest.Receiver
	}{{a, ra}, {b, rb}} {
		subscribed = time.Now()
		if _, err := sub.e.Subscribe(ctx, "ch", sub.r, sub.r == ra); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, wait, "the member in presence", func() bool {
			got = presenceOf(t, a, "ch")
			return slices.Equal(got, both[:i+1])
		})
	}
	// Close, without Unsubscribe, writes no leaves: b's renewals stop as
	// a crashed node's would. Its member was written after its subscribe
	// began and expires a TTL after its last renewal: no sooner than a
	// TTL after the subscribe, whenever the renewals ran on a busy machine.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	for {
		got = presenceOf(t, a, "ch")
		since := time.Since(stopped)
		if !slices.Equal(got, both) {
			if early := time.Since(subscribed); early < ttl {
				t.Fatalf("b's member left presence %v after its subscribe, before its TTL %v: %+v", early, ttl, got)
			}
			break
		}
		if since > wait {
			t.Fatalf("b's member still listed %v after b stopped, with a TTL of %v", since, ttl)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if want := both[:1]; !slices.Equal(got, want) {
		t.Errorf("presence after b's members expired = %+v, want %+v", got, want)
	}
	// a's listener hears that b's member left, though b said nothing.
	ra.WaitFor(t, "the expired member's leave", func(es []*service.Event) bool {
		return slices.ContainsFunc(es, func(e *service.Event) bool {
			return e.Kind == service.EventLeave && e.Member.ConnectionID == "cb"
		})
	})
	// And the channel counts only a's subscriber.
	infos, _, err := a.Channels(ctx, "", func(string) bool { return true }, 10)
	if err != nil || !slices.Equal(infos, []service.ChannelInfo{{Name: "ch", Subscribers: 1}}) {
		t.Errorf("Channels = %+v, %v; want ch with 1 subscriber", infos, err)
	}
}

func presenceOf(t *testing.T, e *redis.Engine, channel string) []service.Member {
	t.Helper()
	members, err := e.Presence(context.Background(), channel)
	if err != nil {
		t.Fatalf("Presence: %v", err)
	}
	return members
}

// Every node lists the channels published to or subscribed to on any
// node, and none removed on any.
func TestChannelsAcrossNodes(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a := openEngine(t, redis.Options{URL: srv.URL(), Node: "a"})
	b := openEngine(t, redis.Options{URL: srv.URL(), Node: "b"})
	ctx := context.Background()
	for _, ch := range []string{"x", "y", "y"} {
		if _, err := a.Publish(ctx, publication(ch, 1), ""); err != nil {
			t.Fatal(err)
		}
	}
	r := enginetest.NewReceiver("u", "c")
	if _, err := b.Subscribe(ctx, "z", r, false); err != nil {
		t.Fatal(err)
	}
	// Subscribers is left out: service.ChannelInfo says it counts this
	// node's subscriptions, and this engine counts every node's.
	check := func(e *redis.Engine, want []service.ChannelInfo) {
		t.Helper()
		var infos []service.ChannelInfo
		var err error
		listed := func() bool {
			infos, _, err = e.Channels(ctx, "", func(string) bool { return true }, 10)
			for i := range infos {
				infos[i].Subscribers = 0
			}
			return err == nil && slices.Equal(infos, want)
		}
		deadline := time.Now().Add(wait)
		for !listed() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if !slices.Equal(infos, want) {
			t.Errorf("Channels = %+v, %v; want %+v", infos, err, want)
		}
	}
	all := []service.ChannelInfo{{Name: "x", Offset: 1}, {Name: "y", Offset: 2}, {Name: "z"}}
	check(a, all)
	check(b, all)
	if _, err := b.Remove(ctx, "y"); err != nil {
		t.Fatal(err)
	}
	check(a, []service.ChannelInfo{all[0], all[2]})
	b.Unsubscribe("z", r)
	check(a, all[:1])
	check(b, all[:1])
}

// TestBrokenIndexFailsNothing: the channel index is bookkeeping for
// channelList. When it cannot be written (in a Cluster, its master may be
// down while the channel's is up), publishing and subscribing still work,
// since what they did is done and an error would have the client repeat
// it, and the channel is listed once the index works again.
func TestBrokenIndexFailsNothing(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	e := openEngine(t, redis.Options{URL: srv.URL(), Node: "a", Prefix: "p"})
	ctx := context.Background()
	// An index of the wrong type makes every write to it fail.
	if reply, err := srv.Command("SET", "p:channels", "not a sorted set"); err != nil || reply != "+OK" {
		t.Fatalf("SET = %q, %v", reply, err)
	}
	r := enginetest.NewReceiver("u", "c")
	if _, err := e.Subscribe(ctx, "ch", r, false); err != nil {
		t.Fatalf("Subscribe with a broken index: %v", err)
	}
	if p, err := e.Publish(ctx, service.Publication{Channel: "ch", Data: []byte(`1`), Time: time.Now()}, ""); err != nil || p.Offset != 1 {
		t.Fatalf("Publish with a broken index = %+v, %v", p, err)
	}
	r.WaitOffset(t, 1)
	if _, _, err := e.Channels(ctx, "", func(string) bool { return true }, 10); err == nil {
		t.Fatal("Channels read a broken index without error; the test tests nothing")
	}
	if reply, err := srv.Command("DEL", "p:channels"); err != nil || reply != ":1" {
		t.Fatalf("DEL = %q, %v", reply, err)
	}
	if _, err := e.Publish(ctx, service.Publication{Channel: "ch", Data: []byte(`2`), Time: time.Now()}, ""); err != nil {
		t.Fatal(err)
	}
	infos, _, err := e.Channels(ctx, "", func(string) bool { return true }, 10)
	if err != nil || len(infos) != 1 || infos[0].Name != "ch" || infos[0].Offset != 2 {
		t.Fatalf("Channels once the index works = %+v, %v; want ch at offset 2", infos, err)
	}
}

// A listener hears each join on its own node once, though the node's
// renewals may list a member in Redis before its queued join is written.
func TestEachJoinAnnouncedOnce(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	// Renewals every 100 ms, among a burst of joins.
	e := openEngine(t, redis.Options{URL: srv.URL(), Node: "a", PresenceTTL: 300 * time.Millisecond})
	ctx := context.Background()
	listener := enginetest.NewReceiver("l", "listener")
	if _, err := e.Subscribe(ctx, "ch", listener, true); err != nil {
		t.Fatal(err)
	}
	// Many at once, so that joins wait in the presence queue.
	const workers, each = 32, 40
	const n = workers * each
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := e.Subscribe(ctx, "ch", enginetest.NewReceiver("u", fmt.Sprint("c", w*each+i)), false); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	poll.Until(t, wait, "every member in presence", func() bool { return len(presenceOf(t, e, "ch")) == n+1 })
	time.Sleep(time.Second) // several renewals, whose news must change nothing
	joins := map[string]int{}
	for _, ev := range listener.Events() {
		if ev.Kind == service.EventJoin {
			joins[ev.Member.ConnectionID]++
		}
	}
	for i := range n {
		if c := joins[fmt.Sprint("c", i)]; c != 1 {
			t.Errorf("c%d: %d joins heard, want 1", i, c)
		}
	}
}
