package embedded

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/service"
)

// Subscribing to a channel never published while its last subscriber
// leaves must not lose the new subscription.
func TestSubscribeWhileLastLeaves(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	const iterations = 5000
	lost := make([]int, 2)
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Go(func() {
			// Come and go, often leaving the channel without subscribers.
			r := newReceiver(fmt.Sprint("u", g), fmt.Sprint("c", g))
			for range iterations {
				f.subscribe(t, "a", r, false)
				members, err := f.engine.Presence(ctx, "a")
				if err != nil {
					t.Error(err)
					return
				}
				if !slices.Contains(members, r.member) || !f.engine.Unsubscribe("a", r) {
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
	var stayed []*receiver
	for i := range 100 {
		channel := fmt.Sprint("ch", i)
		leaving := newReceiver("u1", "leaving")
		staying := newReceiver("u2", channel)
		stayed = append(stayed, staying)
		wg.Go(func() {
			for range 50 {
				f.subscribe(t, channel, leaving, false)
				f.engine.Unsubscribe(channel, leaving)
			}
		})
		wg.Go(func() { f.subscribe(t, channel, staying, false) })
		wg.Wait()
		f.publish(t, channel, 1)
	}
	f.closeStore(t) // every publication has been fanned out
	var missed []string
	for _, r := range stayed {
		if got := r.offsets(); !slices.Equal(got, []uint64{1}) {
			missed = append(missed, r.member.ConnectionID)
		}
	}
	if len(missed) > 0 {
		t.Errorf("%d of %d subscribers missed the publication that followed their subscription: %v", len(missed), len(stayed), missed)
	}
}

// The first publication to a channel, committed while its last
// subscriber leaves, must not be forgotten.
func TestFirstPublicationWhileLastLeaves(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	const rounds = 100
	for i := range rounds {
		channel := fmt.Sprint("ch", i)
		published := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			// Come and go until a little after the publication's commit.
			r := newReceiver("u1", "leaving")
			for n := 0; n < 100; {
				f.subscribe(t, channel, r, false)
				f.engine.Unsubscribe(channel, r)
				select {
				case <-published:
					n++
				default:
				}
			}
		})
		f.publish(t, channel, 1)
		close(published)
		wg.Wait()
	}
	f.closeStore(t) // every commit has been fanned out
	infos, _, err := f.engine.Channels(ctx, "", all, rounds+1)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]uint64{}
	for _, info := range infos {
		listed[info.Name] = info.Offset
	}
	var unlisted, wrong []string
	for i := range rounds {
		channel := fmt.Sprint("ch", i)
		if offset, ok := listed[channel]; !ok || offset != 1 {
			unlisted = append(unlisted, channel)
		}
		// Its position is the one committed.
		r := newReceiver("u2", "late")
		if pos := f.subscribe(t, channel, r, false); pos.Offset != 1 {
			wrong = append(wrong, channel)
		}
	}
	if len(unlisted)+len(wrong) > 0 {
		t.Errorf("of %d channels published to once, %d were not listed at offset 1 (%v), and Subscribe gave %d a position other than offset 1 (%v)",
			rounds, len(unlisted), unlisted, len(wrong), wrong)
	}
}

// Receivers subscribing at random times while others publish each get
// exactly the publications after the position Subscribe gave them.
func TestSubscribeWhilePublishing(t *testing.T) {
	f := newFixture(t, Options{})
	channels := []string{"x", "y"}
	const publishers, each = 4, 60 // per channel
	const subscribers = 40         // per channel

	type sub struct {
		r       *receiver
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
					if _, err := f.engine.Publish(context.Background(), service.Publication{
						Channel: ch, Data: json.RawMessage(fmt.Sprint(p*each + i)), Time: time.Now(),
					}, ""); err != nil {
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
				r := newReceiver("u", fmt.Sprint(ch, s))
			wait:
				for {
					hist, err := f.engine.History(context.Background(), ch, service.HistoryQuery{Limit: 0})
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
				pos, err := f.engine.Subscribe(context.Background(), ch, r, s%2 == 0)
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
	f.closeStore(t) // every publication has been fanned out
	const n = publishers * each
	epoch := f.engine.seq.epoch
	for _, s := range subs {
		if s.pos.Epoch != epoch || s.pos.Offset > n {
			t.Errorf("%s: Subscribe returned %+v", s.r.member.ConnectionID, s.pos)
			continue
		}
		if got := s.r.offsets(); !slices.Equal(got, span(s.pos.Offset+1, n)) {
			t.Errorf("%s subscribed at %d and got %v, want %d to %d", s.r.member.ConnectionID, s.pos.Offset, got, s.pos.Offset+1, n)
		}
		for _, e := range s.r.Events() {
			if e.Channel != s.channel {
				t.Errorf("%s got an event of %s", s.r.member.ConnectionID, e.Channel)
			}
		}
	}
	if len(subs) != len(channels)*subscribers {
		t.Errorf("%d subscriptions, want %d", len(subs), len(channels)*subscribers)
	}
}
