package embedded

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/service"
)

// A removal and a publication committed in one batch, the fan-out not yet
// told of them: History must not pass the new epoch's publication off as
// the old one's, nor the old epoch's position as the new one's. (Found by
// review; the code before lazy loading did the same.)
func TestHistoryWhileARemovalIsTold(t *testing.T) {
	path := tempPath(t)
	e := openEngine(t, path, Options{})
	for i := 1; i <= 3; i++ {
		mustPublish(t, e, pub("x", i), "")
	}
	old, _, _ := e.seq.settled(context.Background(), "x")

	in, release := make(chan struct{}), make(chan struct{})
	letGo := sync.OnceFunc(func() { close(release) })
	defer letGo()
	var once sync.Once
	e.commits.watcher = watchFunc(func(ch string, pos service.Position, p *service.Publication) {
		if ch == "x" && p == nil {
			once.Do(func() { close(in); <-release })
		}
	})

	ctx := context.Background()
	unlock := lockWrites(t, ctx, path)
	go e.Publish(ctx, pub("y", 1), "")
	awaitTaken(t, e, "y", 1)
	go e.Remove(ctx, "x")
	poll.Until(t, 5*time.Second, "removal queued", func() bool {
		e.seq.mu.Lock()
		defer e.seq.mu.Unlock()
		return len(e.seq.queue) == 1
	})
	go e.Publish(ctx, pub("x", 100), "")
	poll.Until(t, 5*time.Second, "publication queued", func() bool {
		e.seq.mu.Lock()
		defer e.seq.mu.Unlock()
		return len(e.seq.queue) == 2
	})
	unlock()
	<-in // removal and new publication are in the database; fan-out not told

	// History waits for the committer to tell of the removal.
	type result struct {
		h   service.History
		err error
	}
	got := make(chan result, 1)
	go func() {
		h, err := e.History(ctx, "x", service.HistoryQuery{Limit: 100})
		got <- result{h, err}
	}()
	select {
	case r := <-got:
		t.Fatalf("History answered while the removal was not told: %+v (old position %+v)", r.h, old)
	case <-time.After(50 * time.Millisecond):
	}
	letGo()
	r := <-got
	if r.err != nil {
		t.Fatal(r.err)
	}
	h := r.h
	if h.Position.Epoch == old.Epoch || h.Position.Offset != 1 || len(h.Publications) != 1 || string(h.Publications[0].Data) != string(pub("x", 100).Data) {
		t.Errorf("History after the removal: %+v; want the new epoch's offset 1 (old position %+v)", h, old)
	}
}
