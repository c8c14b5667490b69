package redis_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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

// wait bounds the waits for what Redis and the engines do in the
// background: generous, for a loaded machine.
const wait = 10 * time.Second

func publication(channel string, n int) service.Publication {
	return service.Publication{Channel: channel, Data: json.RawMessage(fmt.Sprint(n)), Publisher: "p", Time: time.Now()}
}

// span returns the offsets from from to to.
func span(from, to uint64) []uint64 {
	o := []uint64{}
	for i := from; i <= to; i++ {
		o = append(o, i)
	}
	return o
}

func historyOffsets(t *testing.T, e *redis.Engine, channel string) []uint64 {
	t.Helper()
	h, err := e.History(context.Background(), channel, service.HistoryQuery{Limit: 1 << 20})
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	o := []uint64{}
	for _, p := range h.Publications {
		o = append(o, p.Offset)
	}
	return o
}

// Publications that a node's Pub/Sub connection missed, because Redis
// dropped it, reach its subscribers from the history: every offset once,
// in order.
func TestGapFilledFromHistory(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a := openEngine(t, redis.Options{URL: srv.URL(), Node: "a"})
	b := openEngine(t, redis.Options{URL: srv.URL(), Node: "b"})
	r := enginetest.NewReceiver("u", "c")
	if _, err := b.Subscribe(context.Background(), "ch", r, false); err != nil {
		t.Fatal(err)
	}
	const n = 400
	kills := 0
	for i := 1; i <= n; i++ {
		if _, err := a.Publish(context.Background(), publication("ch", i), ""); err != nil {
			t.Fatalf("Publish %d: %v", i, err)
		}
		// Drop every Pub/Sub connection now and then, so that the
		// publications right after it are lost to b's.
		if i%50 == 25 {
			reply, err := srv.Command("CLIENT", "KILL", "TYPE", "pubsub")
			if err != nil || !strings.HasPrefix(reply, ":") {
				t.Fatalf("CLIENT KILL TYPE pubsub = %q, %v", reply, err)
			}
			if reply != ":0" {
				kills++
			}
		}
	}
	if kills == 0 {
		t.Fatal("no Pub/Sub connection was killed: the test tested nothing")
	}
	r.WaitOffset(t, n)
	if got := r.Offsets(); !slices.Equal(got, span(1, n)) {
		t.Errorf("subscriber got %v, want 1 to %d once each, in order", got, n)
	}
	if es := r.Events(); len(es) != n {
		t.Errorf("subscriber got %d events, want %d publications: %s", len(es), n, enginetest.Describe(es))
	}
}

// A Redis that comes back without the channel's data ends the
// subscriptions, which cannot be recovered, and the channel goes on in
// a new epoch.
func TestRedisRestartedEmpty(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	e := openEngine(t, redis.Options{URL: srv.URL(), Node: "a"})
	r := enginetest.NewReceiver("u", "c")
	pos, err := e.Subscribe(context.Background(), "ch", r, false)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if _, err := e.Publish(context.Background(), publication("ch", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	r.WaitOffset(t, 3)
	srv.Kill()
	srv.Wipe()
	srv.Restart()
	r.WaitEnded(t)
	if got, want := enginetest.Describe(r.Events()), "[pub ch 1 pub ch 2 pub ch 3 unsubscribed ch interrupted]"; got != want {
		t.Errorf("subscriber got %s, want %s", got, want)
	}
	poll.Until(t, wait, "the engine to see Redis again", func() bool { return e.Err() == nil })
	again, err := e.Subscribe(context.Background(), "ch", r, false)
	if err != nil {
		t.Fatal(err)
	}
	if again.Offset != 0 || again.Epoch == pos.Epoch || again.Epoch == "" {
		t.Errorf("Subscribe after Redis lost the channel = %+v; it was in %q", again, pos.Epoch)
	}
}

// A Redis killed and restarted from its append-only file keeps every
// publication it acknowledged, and a subscriber that stayed subscribed
// gets every offset once, in order, without being interrupted.
func TestRedisRestartedFromAppendOnlyFile(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendFsyncAlways: true})
	a := openEngine(t, redis.Options{URL: srv.URL(), Node: "a"})
	b := openEngine(t, redis.Options{URL: srv.URL(), Node: "b"})
	r := enginetest.NewReceiver("u", "c")
	if _, err := b.Subscribe(context.Background(), "ch", r, false); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var acked []uint64
	failures := map[string]int{} // error codes of the publications refused
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			res, err := a.Publish(context.Background(), publication("ch", i), "")
			mu.Lock()
			if err != nil {
				failures[service.ErrorCode(err)]++
			} else {
				acked = append(acked, res.Offset)
			}
			mu.Unlock()
			if err != nil {
				time.Sleep(10 * time.Millisecond) // Redis is down; don't spin
			}
		}
	})
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	poll.Until(t, wait, "publications before the kill", func() bool { return count() >= 100 })
	srv.Kill()
	before := count()
	srv.Restart()
	poll.Until(t, wait, "publications after the restart", func() bool { return count() >= before+100 })
	close(stop)
	wg.Wait()

	last := acked[len(acked)-1]
	hist := historyOffsets(t, a, "ch")
	for _, o := range acked {
		if !slices.Contains(hist, o) {
			t.Errorf("acknowledged offset %d is not in the history after the restart", o)
		}
	}
	if !slices.Equal(hist, span(1, last)) {
		t.Errorf("history after the restart = %v, want 1 to %d", hist, last)
	}
	r.WaitOffset(t, last)
	if got := r.Offsets(); !slices.Equal(got, span(1, last)) {
		t.Errorf("subscriber got %v, want 1 to %d once each, in order", got, last)
	}
	if es := r.Events(); len(es) != int(last) {
		t.Errorf("subscriber got %d events for %d publications: %s", len(es), last, enginetest.Describe(es))
	}
	for code := range failures {
		if code != service.EUNAVAILABLE {
			t.Errorf("publications refused with %v, want only %q", failures, service.EUNAVAILABLE)
		}
	}
}

// While Redis is down, publishing fails at once, as unavailable, and Err
// says why; once it is back, both recover.
func TestPublishWhileRedisDown(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	e := openEngine(t, redis.Options{URL: srv.URL(), Node: "a"})
	if _, err := e.Publish(context.Background(), publication("ch", 1), ""); err != nil {
		t.Fatal(err)
	}
	if err := e.Err(); err != nil {
		t.Fatalf("Err with Redis up = %v", err)
	}
	srv.Kill()
	for i := range 2 { // the first finds the connection gone; the second, Err set
		start := time.Now()
		_, err := e.Publish(context.Background(), publication("ch", 2), "")
		took := time.Since(start)
		var serr *service.Error
		if !errors.As(err, &serr) || serr.Code != service.EUNAVAILABLE {
			t.Errorf("Publish %d with Redis down: error %v, want a *service.Error %q", i+1, err, service.EUNAVAILABLE)
		}
		if took > 500*time.Millisecond {
			t.Errorf("Publish %d with Redis down took %v, want well under a second", i+1, took)
		}
		if e.Err() == nil {
			t.Errorf("after Publish %d failed, Err = nil with Redis down", i+1)
		}
	}
	srv.Restart()
	poll.Until(t, wait, "Err to clear once Redis is back", func() bool { return e.Err() == nil })
	if _, err := e.Publish(context.Background(), publication("ch", 3), ""); err != nil {
		t.Errorf("Publish once Redis is back: %v", err)
	}
}

// A Redis restarted from an older copy of its data, as after a power cut
// with appendfsync everysec or a failover to a replica that lagged, has
// the channel back at an offset below what was delivered, in the same
// epoch. The node that sees it gives the channel a new epoch and ends
// the subscription, so that clients do not take the new publications at
// those offsets for the ones they saw.
func TestRedisWentBackInTime(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendFsyncAlways: true})
	e := openEngine(t, redis.Options{URL: srv.URL(), Node: "a"})
	ctx := context.Background()
	r := enginetest.NewReceiver("u", "c")
	pos, err := e.Subscribe(ctx, "ch", r, false)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if _, err := e.Publish(ctx, publication("ch", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	older := t.TempDir()
	if err := os.CopyFS(older, os.DirFS(filepath.Join(srv.Dir, "appendonlydir"))); err != nil {
		t.Fatal(err)
	}
	for i := 4; i <= 5; i++ {
		if _, err := e.Publish(ctx, publication("ch", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	r.WaitOffset(t, 5)
	srv.Kill()
	if err := os.RemoveAll(filepath.Join(srv.Dir, "appendonlydir")); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(srv.Dir, "appendonlydir"), os.DirFS(older)); err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	r.WaitEnded(t)
	if got, want := enginetest.Describe(r.Events()), "[pub ch 1 pub ch 2 pub ch 3 pub ch 4 pub ch 5 unsubscribed ch interrupted]"; got != want {
		t.Errorf("subscriber got %s, want %s", got, want)
	}
	poll.Until(t, wait, "the engine to see Redis again", func() bool { return e.Err() == nil })
	h, err := e.History(ctx, "ch", service.HistoryQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if h.Position.Offset != 3 || h.Position.Epoch == pos.Epoch {
		t.Errorf("position after Redis went back = %+v; want offset 3 in an epoch other than %q", h.Position, pos.Epoch)
	}
}
