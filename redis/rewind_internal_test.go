package redis

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/enginetest"
	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/service"
)

// Redis gone back to an older copy, and other nodes already publishing
// the new timeline past what this node had delivered, when this node
// looks after its reconnect: the offset alone says nothing is wrong, the
// publication at the last offset delivered does. The channel gets a new
// epoch and its subscriptions end.
func TestCatchUpSeesAnotherTimeline(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	open := func(node string) *Engine {
		e, err := Open(Options{URL: srv.URL(), Node: node})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	a, b := open("a"), open("b")
	ctx := context.Background()
	r := enginetest.NewReceiver("u", "c")
	pos, err := a.Subscribe(ctx, "ch", r, false)
	if err != nil {
		t.Fatal(err)
	}
	publish := func(e *Engine, n int) {
		t.Helper()
		if _, err := e.Publish(ctx, service.Publication{Channel: "ch", Data: []byte{'0' + byte(n)}, Time: time.Now()}, ""); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 5; i++ {
		publish(b, i)
	}
	r.WaitOffset(t, 5)
	// a stops hearing the channel, as while its connection is down.
	sh := a.live.shard("ch")
	k := a.keys("ch")
	sh.mu.Lock()
	err = sh.ps.Unsubscribe(ctx, k.events)
	sh.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	// Redis back at offset 3 in the same epoch, as from an older copy;
	// then b publishes a new 4, 5 and 6.
	for _, cmd := range [][]string{{"HSET", k.meta, "o", "3"}, {"XDEL", k.history, "4-0", "5-0"}, {"XSETID", k.history, "3-0"}} {
		if _, err := srv.Command(cmd...); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(5 * time.Millisecond) // the new publications' times differ from the old ones'
	for i := 4; i <= 6; i++ {
		publish(b, i)
	}
	sh.catchUp(ctx, "ch")
	r.WaitEnded(t)
	if got, want := enginetest.Describe(r.Events()), "[pub ch 1 pub ch 2 pub ch 3 pub ch 4 pub ch 5 unsubscribed ch interrupted]"; got != want {
		t.Errorf("subscriber got %s, want %s", got, want)
	}
	now, err := a.position(ctx, "ch")
	if err != nil || now.Epoch == pos.Epoch {
		t.Errorf("position after the catch-up = %+v, %v; want an epoch other than %q", now, err, pos.Epoch)
	}
}
