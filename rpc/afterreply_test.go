package rpc_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/rpc"
)

// A hook set with AfterReply runs once the call's reply is queued, so a
// notification it queues follows the reply; for a batch, the batch's
// reply. It does not run when the handler fails or panics.
func TestAfterReply(t *testing.T) {
	note, err := rpc.NewNotification("test.note", map[string]int{"n": 1})
	if err != nil {
		t.Fatal(err)
	}
	const noteFrame = `{"jsonrpc":"2.0","method":"test.note","params":{"n":1}}`
	var runs atomic.Int32
	hook := func(s *rpc.Session) func() {
		return func() {
			runs.Add(1)
			s.Notify(note)
		}
	}
	ts := newTestServer(t, rpc.Limits{}, func(reg *rpc.Registry) {
		rpc.Register(reg, rpc.Method{Name: "test.after", Notifies: true},
			func(ctx context.Context, s *rpc.Session, _ none) (string, error) {
				rpc.AfterReply(ctx, hook(s))
				return "reply", nil
			})
		rpc.Register(reg, rpc.Method{Name: "test.afterFails", Notifies: true},
			func(ctx context.Context, s *rpc.Session, _ none) (string, error) {
				rpc.AfterReply(ctx, hook(s))
				return "", errors.New("failed")
			})
		rpc.Register(reg, rpc.Method{Name: "test.afterPanics", Notifies: true},
			func(ctx context.Context, s *rpc.Session, _ none) (string, error) {
				rpc.AfterReply(ctx, hook(s))
				panic("after the hook")
			})
		rpc.Register(reg, rpc.Method{Name: "test.unmarked"},
			func(ctx context.Context, s *rpc.Session, _ none) (string, error) {
				rpc.AfterReply(ctx, hook(s)) // panics: the method is not marked Notifies
				return "reply", nil
			})
	})

	t.Run("websocket", func(t *testing.T) {
		c := ts.dial()
		c.t = t
		runs.Store(0)
		checkReply(t, c.call(`{"jsonrpc":"2.0","method":"test.after","id":1}`), false, []want{{id: `1`, result: `"reply"`}})
		if got := compact(c.recv(5 * time.Second)); got != noteFrame {
			t.Fatalf("got %s, want the test.note notification after the reply", got)
		}
		checkReply(t, c.call(`[{"jsonrpc":"2.0","method":"test.after","id":1},{"jsonrpc":"2.0","method":"get_data","id":2}]`), true,
			[]want{{id: `1`, result: `"reply"`}, {id: `2`, result: `["hello",5]`}})
		if got := compact(c.recv(5 * time.Second)); got != noteFrame {
			t.Fatalf("got %s, want the test.note notification after the batch's reply", got)
		}
		for _, m := range []string{"test.afterFails", "test.afterPanics", "test.unmarked"} {
			checkReply(t, c.call(`{"jsonrpc":"2.0","method":"`+m+`","id":3}`), false, []want{{id: `3`, code: rpc.CodeInternalError}})
		}
		// Nothing was queued by the failed calls: the next frame is the
		// next reply.
		checkReply(t, c.call(getData), false, []want{{id: `1`, result: `["hello",5]`}})
		if n := runs.Load(); n != 2 {
			t.Fatalf("hooks ran %d times, want 2", n)
		}
	})
	t.Run("http", func(t *testing.T) {
		runs.Store(0)
		_, body := ts.post(`{"jsonrpc":"2.0","method":"test.after","id":1}`)
		checkReply(t, body, false, []want{{id: `1`, result: `"reply"`}})
		if n := runs.Load(); n != 1 {
			t.Fatalf("hooks ran %d times by the reply, want 1", n)
		}
		_, body = ts.post(`{"jsonrpc":"2.0","method":"test.afterFails","id":2}`)
		checkReply(t, body, false, []want{{id: `2`, code: rpc.CodeInternalError}})
		if n := runs.Load(); n != 1 {
			t.Fatalf("hooks ran %d times, want 1: a failed call runs none", n)
		}
	})
}
