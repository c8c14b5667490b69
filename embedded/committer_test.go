package embedded

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/service"
)

// TestNothingCommittedAfterAFailedCommit: a failed commit must not leave a
// hole. Writes queued while the failing batch was being written hold the
// offsets after the lost ones; committing them would skip the lost
// offsets, so they fail too.
func TestNothingCommittedAfterAFailedCommit(t *testing.T) {
	path := tempPath(t)
	s := openEngine(t, path, Options{})
	ctx := context.Background()
	// Any commit failure will do (disk full, I/O error); a trigger makes
	// one on demand: inserting the data "boom" fails.
	if _, err := execSQL(ctx, path, `CREATE TRIGGER review_boom BEFORE INSERT ON publications
		WHEN NEW.data = X'22626F6F6D22' BEGIN SELECT RAISE(ABORT, 'boom'); END`); err != nil {
		t.Fatal(err)
	}
	// Another connection holds the write lock, so that the committer takes
	// the first write and then waits in BEGIN while the second queues.
	unlock := lockWrites(t, ctx, path)

	first := make(chan error, 1)
	go func() {
		p := pub("c", 1)
		p.Data = json.RawMessage(`"boom"`)
		_, err := s.Publish(ctx, p, "")
		first <- err
	}()
	awaitTaken(t, s, "c", 1)
	type result struct {
		res service.Published
		err error
	}
	second := make(chan result, 1)
	go func() {
		res, err := s.Publish(ctx, pub("c", 2), "")
		second <- result{res, err}
	}()
	poll.Until(t, 5*time.Second, "offset 2 to queue", func() bool {
		s.seq.mu.Lock()
		defer s.seq.mu.Unlock()
		return len(s.seq.queue) == 1
	})
	time.Sleep(20 * time.Millisecond)
	unlock()

	if err := <-first; err == nil {
		t.Fatal("offset 1 committed despite the trigger")
	}
	r := <-second
	pubs := readAll(t, s, "c")
	if r.err == nil || len(pubs) != 0 {
		t.Fatalf("the commit of offset 1 failed, yet the write queued behind it was acknowledged (%+v, err %v) and the history holds offsets %v: a hole at 1",
			r.res, r.err, offsets(pubs))
	}
}

// TestAgeTrimTakesOnlyTheOldest: trimming by MaxAge deletes by
// publication time, and times are stamped before offsets are given (and
// clocks step back), so the store must keep times from going down along
// the offsets, or the trim would delete from the middle of the history.
func TestAgeTrimTakesOnlyTheOldest(t *testing.T) {
	s := openEngine(t, tempPath(t), Options{MaxAge: time.Hour})
	now := time.Now().UTC().Truncate(time.Microsecond)
	for _, age := range []time.Duration{59 * time.Minute, 61 * time.Minute, 0} {
		p := pub("c", 0)
		p.Time = now.Add(-age)
		mustPublish(t, s, p, "")
	}
	s.commits.trim()
	got := offsets(readAll(t, s, "c"))
	if !sameOffsets(got, []uint64{1, 2, 3}) && !sameOffsets(got, []uint64{2, 3}) && !sameOffsets(got, []uint64{3}) {
		t.Fatalf("after trimming by age the history holds offsets %v: a hole, not a trimmed prefix", got)
	}
}

// TestDuplicateWaitsForTheWatcher: a repeated idempotency key must not be
// answered "duplicate, offset N" before the watcher has heard of N, or a
// client told N may not find it in what it reads next (channelHistory
// reads up to the engine's position).
func TestDuplicateWaitsForTheWatcher(t *testing.T) {
	s := openEngine(t, tempPath(t), Options{IdempotencyWindow: time.Minute})
	entered, letGo := holdCommitter(t, s) // a fan-out taking its time
	go s.Publish(context.Background(), pub("c", 1), "k")
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res, err := s.Publish(ctx, pub("c", 1), "k")
	if err == nil {
		letGo()
		t.Fatalf("the duplicate was answered (%+v) while the watcher had not yet been told of offset %d", res, res.Offset)
	}
}

func TestWatchInOrder(t *testing.T) {
	s := openEngine(t, tempPath(t), Options{})
	changes := watch(s)
	channels := []string{"x", "y"}
	const writers, each = 4, 30
	var wg sync.WaitGroup
	for _, ch := range channels {
		for w := 0; w < writers; w++ {
			wg.Go(func() {
				for i := 0; i < each; i++ {
					if _, err := s.Publish(context.Background(), pub(ch, w*each+i), ""); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	// Close waits for the committer, which tells the watcher.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	per := map[string][]uint64{}
	for _, c := range changes() {
		if c.pub == nil {
			t.Fatalf("a removal reported: %+v", c)
		}
		if c.pub.Channel != c.channel || c.pub.Offset != c.pos.Offset || c.pos.Epoch != s.seq.epoch {
			t.Errorf("change %q %+v with publication %+v", c.channel, c.pos, *c.pub)
		}
		per[c.channel] = append(per[c.channel], c.pos.Offset)
	}
	for _, ch := range channels {
		if !sameOffsets(per[ch], span(1, writers*each)) {
			t.Errorf("%s: watcher told of offsets %v, want 1 to %d in order", ch, per[ch], writers*each)
		}
	}
}

func TestWatchAfterCommit(t *testing.T) {
	// The watcher is told of a publication once it can be read.
	s := openEngine(t, tempPath(t), Options{})
	readable := make(chan bool, 10)
	s.commits.watcher = watchFunc(func(channel string, pos service.Position, p *service.Publication) {
		pubs, err := s.db.Read(context.Background(), channel, service.HistoryQuery{After: pos.Offset - 1, Limit: 1})
		readable <- err == nil && len(pubs) == 1 && pubs[0].Offset == pos.Offset
	})
	for i := 0; i < 3; i++ {
		mustPublish(t, s, pub("a", i), "")
		if !<-readable {
			t.Fatalf("publication %d was not readable when the watcher was told of it", i+1)
		}
	}
}
