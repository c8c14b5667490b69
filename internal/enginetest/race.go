package enginetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/service"
)

// Subscribing to a channel never published while its last subscriber
// leaves must not lose the new subscription.
func testSubscribeWhileLastLeaves(t *testing.T, open Opener) {
	e, _ := open(t, Options{})
	const iterations = 5000
	lost := make([]int, 2)
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Go(func() {
			// Come and go, often leaving the channel without subscribers.
			r := NewReceiver(fmt.Sprint("u", g), fmt.Sprint("c", g))
			for range iterations {
				mustSubscribe(t, e, "a", r, false)
				// Presence may list a member a moment after Subscribe.
				listed := waitUntil(func() bool { return slices.Contains(presence(t, e, "a"), r.member) })
				if !listed || !e.Unsubscribe("a", r) {
					lost[g]++
				}
			}
		})
	}
	wg.Wait()
	if lost[0]+lost[1] > 0 {
		t.Errorf("of %d subscriptions, %d were not in the channel's presence or could not be unsubscribed", 2*iterations, lost[0]+lost[1])
	}

	// And a subscription so lost misses publications.
	var stayed []*Receiver
	for i := range 100 {
		channel := fmt.Sprint("ch", i)
		leaving := NewReceiver("u1", "leaving")
		staying := NewReceiver("u2", channel)
		stayed = append(stayed, staying)
		wg.Go(func() {
			for range 50 {
				mustSubscribe(t, e, channel, leaving, false)
				e.Unsubscribe(channel, leaving)
			}
		})
		wg.Go(func() { mustSubscribe(t, e, channel, staying, false) })
		wg.Wait()
		mustPublish(t, e, pub(channel, 1), "")
	}
	var missed []string
	for _, r := range stayed {
		if !waitUntil(func() bool { return len(r.Offsets()) > 0 }) || !slices.Equal(r.Offsets(), []uint64{1}) {
			missed = append(missed, fmt.Sprint(r.member.ConnectionID, r.Offsets()))
		}
	}
	if len(missed) > 0 {
		t.Errorf("%d of %d subscribers did not get the publication that followed their subscription once: %v", len(missed), len(stayed), missed)
	}
}

// The first publication to a channel, made while its last subscriber
// leaves, must not be forgotten.
func testFirstPublicationWhileLastLeaves(t *testing.T, open Opener) {
	e, _ := open(t, Options{})
	const rounds = 100
	for i := range rounds {
		channel := fmt.Sprint("ch", i)
		published := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			// Come and go until a little after the publication.
			r := NewReceiver("u1", "leaving")
			for n := 0; n < 100; {
				mustSubscribe(t, e, channel, r, false)
				e.Unsubscribe(channel, r)
				select {
				case <-published:
					n++
				default:
				}
			}
		})
		mustPublish(t, e, pub(channel, 1), "")
		close(published)
		wg.Wait()
	}
	listed := map[string]uint64{}
	waitUntil(func() bool {
		infos, _, err := e.Channels(context.Background(), "", all, rounds+1)
		if err != nil {
			t.Fatal(err)
		}
		clear(listed)
		for _, info := range infos {
			listed[info.Name] = info.Offset
		}
		// Subscribers' leaves may take a moment to be seen: wait until
		// only history keeps the channels listed.
		return !slices.ContainsFunc(infos, func(i service.ChannelInfo) bool { return i.Subscribers > 0 })
	})
	var unlisted, wrong []string
	for i := range rounds {
		channel := fmt.Sprint("ch", i)
		if offset, ok := listed[channel]; !ok || offset != 1 {
			unlisted = append(unlisted, channel)
		}
		// Its position is the one published.
		r := NewReceiver("u2", "late")
		if pos := mustSubscribe(t, e, channel, r, false); pos.Offset != 1 {
			wrong = append(wrong, channel)
		}
	}
	if len(unlisted)+len(wrong) > 0 {
		t.Errorf("of %d channels published to once, %d were not listed at offset 1 (%v), and Subscribe gave %d a position other than offset 1 (%v)",
			rounds, len(unlisted), unlisted, len(wrong), wrong)
	}
}

// Receivers subscribing at random times, on any node, while others
// publish each get exactly the publications after the position Subscribe
// gave them.
func testSubscribeWhilePublishing(t *testing.T, open Opener) {
	e, another := open(t, Options{})
	engines := []service.Engine{e, another()}
	channels := []string{"x", "y"}
	const publishers, each = 4, 60 // per channel
	const subscribers = 40         // per channel

	type sub struct {
		r       *Receiver
		channel string
		pos     service.Position
	}
	var mu sync.Mutex
	var subs []sub
	var pubs, wg sync.WaitGroup
	published := make(chan struct{})
	for _, ch := range channels {
		for p := range publishers {
			pubs.Go(func() {
				for i := range each {
					if _, err := e.Publish(context.Background(), pub(ch, p*each+i), ""); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		for s := range subscribers {
			wg.Go(func() {
				// Subscribe once the channel reaches a random offset.
				rng := rand.New(rand.NewPCG(uint64(s), uint64(len(ch))))
				target := rng.Uint64N(publishers*each + 1)
				r := NewReceiver("u", fmt.Sprint(ch, s))
				on := engines[s%2]
			wait:
				for {
					hist, err := on.History(context.Background(), ch, service.HistoryQuery{})
					if err != nil {
						t.Error(err)
						return
					}
					if hist.Position.Offset >= target {
						break
					}
					select {
					case <-published:
						break wait
					default:
						runtime.Gosched()
					}
				}
				pos, err := on.Subscribe(context.Background(), ch, r, s%3 == 0)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				subs = append(subs, sub{r, ch, pos})
				mu.Unlock()
			})
		}
	}
	pubs.Wait()
	close(published)
	wg.Wait()
	const n = publishers * each
	for _, ch := range channels {
		epoch := position(t, e, ch).Epoch
		for _, s := range subs {
			if s.channel != ch {
				continue
			}
			if s.pos.Epoch != epoch || s.pos.Offset > n {
				t.Errorf("%s: Subscribe returned %+v; the channel is in %q", s.r.member.ConnectionID, s.pos, epoch)
				continue
			}
			if s.pos.Offset < n {
				s.r.WaitOffset(t, n)
			}
			if got := s.r.Offsets(); !slices.Equal(got, span(s.pos.Offset+1, n)) {
				t.Errorf("%s subscribed at %d and got %v, want %d to %d", s.r.member.ConnectionID, s.pos.Offset, got, s.pos.Offset+1, n)
			}
			for _, ev := range s.r.Events() {
				if ev.Channel != s.channel {
					t.Errorf("%s got an event of %s", s.r.member.ConnectionID, ev.Channel)
				}
			}
		}
	}
	if len(subs) != len(channels)*subscribers {
		t.Errorf("%d subscriptions, want %d", len(subs), len(channels)*subscribers)
	}
}
