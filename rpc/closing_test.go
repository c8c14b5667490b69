package rpc_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/rpc"
)

// Calls that were read before the connection started closing (the rest
// of a batch) must not start after it: a client whose token expired, or
// that was closed as too slow, gets nothing more done on its behalf.
func TestNoCallStartsAfterConnectionEnded(t *testing.T) {
	var ranAfterEnd atomic.Bool
	var ended atomic.Bool
	ts := newTestServer(t, rpc.Limits{SendQueue: 1}, func(reg *rpc.Registry) {
		// test.kick closes the connection as a slow consumer, then (for
		// the test's sake) keeps the read loop until the connection has
		// ended, as a slow read loop might.
		rpc.Register(reg, rpc.Method{Name: "test.kick", Inline: true},
			func(_ context.Context, s *rpc.Session, _ none) (int, error) {
				note, _ := rpc.NewNotification("test.note", 1)
				for range 10000 {
					if err := s.Notify(note); errors.Is(err, rpc.ErrSlowConsumer) {
						break
					}
				}
				select {
				case <-s.Done():
					ended.Store(true)
				case <-time.After(5 * time.Second):
				}
				return 0, nil
			})
		rpc.Register(reg, rpc.Method{Name: "test.after"},
			func(_ context.Context, s *rpc.Session, _ none) (int, error) {
				select {
				case <-s.Done():
					ranAfterEnd.Store(true)
				default:
				}
				return 0, nil
			})
	})
	c := ts.dial()
	c.send(`[{"jsonrpc":"2.0","method":"test.kick"},{"jsonrpc":"2.0","method":"test.after","id":2}]`)
	if code := c.closeCode(5 * time.Second); code != rpc.CloseSlowConsumer {
		t.Fatalf("close code %v, want %v", code, rpc.CloseSlowConsumer)
	}
	poll.Until(t, 5*time.Second, "test.kick to see the connection end", ended.Load)
	time.Sleep(200 * time.Millisecond)
	if ranAfterEnd.Load() {
		t.Fatal("test.after was started after the connection had ended")
	}
}
