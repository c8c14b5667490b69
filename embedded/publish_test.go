package embedded

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/service"
)

func TestClosed(t *testing.T) {
	s := openEngine(t, tempPath(t), Options{})
	mustPublish(t, s, pub("a", 1), "")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.Publish(ctx, pub("a", 2), ""); service.ErrorCode(err) != service.EUNAVAILABLE {
		t.Errorf("Append after Close: error %v, want %q", err, service.EUNAVAILABLE)
	}
	if _, err := s.Remove(ctx, "a"); service.ErrorCode(err) != service.EUNAVAILABLE {
		t.Errorf("Remove after Close: error %v, want %q", err, service.EUNAVAILABLE)
	}
	// Closing twice is harmless.
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCloseCommitsQueued(t *testing.T) {
	path := tempPath(t)
	s := openEngine(t, path, Options{})
	channels := []string{"a", "b"}
	var mu sync.Mutex
	done := map[string][]uint64{}
	started := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		ch := channels[w%len(channels)]
		wg.Go(func() {
			for i := 0; ; i++ {
				res, err := s.Publish(context.Background(), pub(ch, i), "")
				if err != nil {
					if service.ErrorCode(err) != service.EUNAVAILABLE {
						t.Errorf("Append while closing: %v", err)
					}
					return
				}
				mu.Lock()
				done[ch] = append(done[ch], res.Offset)
				n := len(done[ch])
				mu.Unlock()
				if n >= 20 {
					once.Do(func() { close(started) })
				}
			}
		})
	}
	<-started
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	s = openEngine(t, path, Options{})
	positions := positionsOf(t, s, channels...)
	for _, ch := range channels {
		got := done[ch]
		slices.Sort(got)
		n := uint64(len(got))
		if !sameOffsets(got, span(1, n)) {
			t.Errorf("%s: Appends returned offsets %v, want 1 to %d", ch, got, n)
		}
		// Every write queued before Close was committed, and every
		// committed write was acknowledged.
		if stored := offsets(readAll(t, s, ch)); !sameOffsets(stored, span(1, n)) {
			t.Errorf("%s: stored %v; Appends returned 1 to %d", ch, stored, n)
		}
		if positions[ch].Offset != n {
			t.Errorf("%s: position %+v, want offset %d", ch, positions[ch], n)
		}
	}
}

func TestAppendCancelledWaitingForSlot(t *testing.T) {
	s := openEngine(t, tempPath(t), Options{QueueSize: 1})
	// The watcher holds the committer on the first publication.
	entered, letGo := holdCommitter(t, s)
	first := make(chan error, 1)
	go func() {
		_, err := s.Publish(context.Background(), pub("a", 1), "")
		first <- err
	}()
	<-entered
	// The second publication takes the only slot (once the first has
	// given it back, if it has yet) and waits for a commit that cannot
	// happen yet.
	second := make(chan error, 1)
	go func() {
		res, err := s.Publish(context.Background(), pub("a", 2), "")
		if err == nil && res.Offset != 2 {
			err = fmt.Errorf("offset %d, want 2", res.Offset)
		}
		second <- err
	}()
	poll.Until(t, 5*time.Second, "the second publication to take the slot", func() bool { return len(s.slots) == cap(s.slots) })

	ctx, cancel := context.WithCancel(context.Background())
	third := make(chan error, 1)
	go func() {
		_, err := s.Publish(ctx, pub("a", 3), "")
		third <- err
	}()
	cancel()
	select {
	case err := <-third:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Append with a cancelled context: error %v, want %v", err, context.Canceled)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Append waiting for a slot did not return when its context was cancelled")
	}
	rctx, rcancel := context.WithCancel(context.Background())
	rcancel()
	if _, err := s.Remove(rctx, "a"); !errors.Is(err, context.Canceled) {
		t.Errorf("Remove with a cancelled context: error %v, want %v", err, context.Canceled)
	}

	letGo()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	// The cancelled publication took no offset.
	if res := mustPublish(t, s, pub("a", 4), ""); res.Offset != 3 {
		t.Errorf("next Append got offset %d, want 3", res.Offset)
	}
	if got := offsets(readAll(t, s, "a")); !sameOffsets(got, span(1, 3)) {
		t.Errorf("history %v, want 1 to 3", got)
	}
}

func TestAppendCancelledAfterQueueing(t *testing.T) {
	// An Append whose context ends after it was given an offset returns
	// the context's error, and the publication is committed all the same.
	s := openEngine(t, tempPath(t), Options{})
	entered, letGo := holdCommitter(t, s)
	first := make(chan error, 1)
	go func() {
		_, err := s.Publish(context.Background(), pub("a", 1), "")
		first <- err
	}()
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := s.Publish(ctx, pub("a", 2), "")
		errc <- err
	}()
	poll.Until(t, 5*time.Second, "the publication to be queued", func() bool {
		s.seq.mu.Lock()
		defer s.seq.mu.Unlock()
		return len(s.seq.queue) == 1
	})
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Append: error %v, want %v", err, context.Canceled)
	}
	letGo()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if res := mustPublish(t, s, pub("a", 3), ""); res.Offset != 3 {
		t.Errorf("next Append got offset %d, want 3", res.Offset)
	}
	if got := offsets(readAll(t, s, "a")); !sameOffsets(got, span(1, 3)) {
		t.Errorf("history %v, want 1 to 3", got)
	}
}

// The committer may be woken with nothing queued (a wake left over from
// writes it already took): it must lose nothing, and mix nothing up,
// however often that happens while writes come in.
func TestAppendSpuriousWakes(t *testing.T) {
	s := openEngine(t, tempPath(t), Options{})
	changes := watch(s)
	stop := make(chan struct{})
	spammed := make(chan struct{})
	go func() {
		defer close(spammed)
		for {
			select {
			case <-stop:
				return
			case s.commits.wake <- struct{}{}:
			default:
				runtime.Gosched()
			}
		}
	}()
	const writers, each = 6, 100
	var mu sync.Mutex
	var got []uint64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				res, err := s.Publish(context.Background(), pub("a", w*each+i), "")
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got = append(got, res.Offset)
				mu.Unlock()
			}
		})
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		t.Fatal("Appends did not return")
	}
	close(stop)
	<-spammed
	const n = writers * each
	slices.Sort(got)
	if !sameOffsets(got, span(1, n)) {
		t.Errorf("Append returned offsets %v, want 1 to %d once each", got, n)
	}
	pubs := readAll(t, s, "a")
	if !sameOffsets(offsets(pubs), span(1, n)) {
		t.Errorf("Read returned offsets %v, want 1 to %d", offsets(pubs), n)
	}
	data := map[string]bool{}
	for _, p := range pubs {
		data[string(p.Data)] = true
	}
	if len(data) != n {
		t.Errorf("%d different publications stored, want %d", len(data), n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var told []uint64
	for _, c := range changes() {
		told = append(told, c.pos.Offset)
	}
	if !sameOffsets(told, span(1, n)) {
		t.Errorf("watcher told of offsets %v, want 1 to %d in order", told, n)
	}
}
