package rpc_test

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/rpc"
)

// An inline call must leave the shutdown gate only once its reply is
// queued; otherwise Shutdown can close the outbox in between, and the
// client gets 1001 without the reply of a call that ran.
func TestShutdownKeepsRepliesOfInlineCalls(t *testing.T) {
	for i := range 300 {
		entered := make(chan struct{})
		release := make(chan struct{})
		ts := newTestServer(t, rpc.Limits{}, func(reg *rpc.Registry) {
			rpc.Register(reg, rpc.Method{Name: "inline.block", Inline: true},
				func(context.Context, *rpc.Session, none) (int, error) {
					close(entered)
					<-release
					return 7, nil
				})
		})
		c := ts.dial()
		c.send(`{"jsonrpc":"2.0","method":"inline.block","id":1}`)
		<-entered
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		done := ts.shutdown(ctx)
		poll.Until(t, 5*time.Second, "draining", ts.rpc.Draining)
		time.Sleep(time.Millisecond)
		close(release)
		msg, err := c.read(5 * time.Second)
		if err != nil {
			cancel()
			t.Fatalf("iteration %d: reply of a call that ran was lost: %v", i, err)
		}
		checkReply(t, msg, false, []want{{id: `1`, result: `7`}})
		if code := c.closeCode(5 * time.Second); code != rpc.CloseGoingAway {
			t.Fatalf("close code %v, want %v", code, rpc.CloseGoingAway)
		}
		<-done
		cancel()
	}
}
