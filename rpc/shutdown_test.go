package rpc_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/rpc"
)

// shutdown runs ts.rpc.Shutdown(ctx) in the background and returns
// where its result will arrive.
func (ts *testServer) shutdown(ctx context.Context) <-chan error {
	done := make(chan error, 1)
	go func() { done <- ts.rpc.Shutdown(ctx) }()
	return done
}

func TestShutdownDrainsCallsInFlight(t *testing.T) {
	g := newGauge()
	ts := newTestServer(t, rpc.Limits{}, func(reg *rpc.Registry) {
		rpc.Register(reg, rpc.Method{Name: "test.hold"}, g.hold)
	})
	t.Cleanup(g.open)
	c := ts.dial()
	c.send(`{"jsonrpc":"2.0","method":"test.hold","params":{"n":1},"id":"in flight"}`)
	g.waitEntered(t, 1)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := ts.shutdown(ctx)
	poll.Until(t, 5*time.Second, "the server to start draining", ts.rpc.Draining)

	// New calls are turned away while the call in flight goes on, over
	// either transport; so are new connections.
	checkReply(t, c.call(`{"jsonrpc":"2.0","method":"get_data","id":"late"}`), false,
		[]want{{id: `"late"`, code: rpc.CodeUnavailable}})
	status, body := ts.post(`{"jsonrpc":"2.0","method":"get_data","id":"late"}`)
	if status != http.StatusOK {
		t.Fatalf("status %d, body %s", status, body)
	}
	checkReply(t, body, false, []want{{id: `"late"`, code: rpc.CodeUnavailable}})
	if code := ts.dial().closeCode(5 * time.Second); code != rpc.CloseGoingAway {
		t.Fatalf("a connection opened during shutdown was closed with %v, want %v", code, rpc.CloseGoingAway)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with a call in flight", err)
	default:
	}

	g.open()
	checkReply(t, c.recv(5*time.Second), false, []want{{id: `"in flight"`, result: `1`}})
	if code := c.closeCode(5 * time.Second); code != rpc.CloseGoingAway {
		t.Fatalf("close code %v, want %v", code, rpc.CloseGoingAway)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return within 5s of the last call finishing")
	}
	if n := ts.obs.closedFor(rpc.ReasonShutdown); n != 1 {
		t.Fatalf("observer reported %d shutdown closes, want 1", n)
	}
	if n := ts.rpc.Connections(); n != 0 {
		t.Fatalf("%d connections open after Shutdown", n)
	}
}

func TestShutdownGivesUpWhenContextEnds(t *testing.T) {
	stuck := make(chan struct{})
	started := make(chan struct{}, 1)
	ts := newTestServer(t, rpc.Limits{}, func(reg *rpc.Registry) {
		// test.stuck ignores its context, as a buggy handler might.
		rpc.Register(reg, rpc.Method{Name: "test.stuck"}, func(context.Context, *rpc.Session, none) (int, error) {
			started <- struct{}{}
			<-stuck
			return 0, nil
		})
	})
	t.Cleanup(func() { close(stuck) })
	c := ts.dial()
	c.send(`{"jsonrpc":"2.0","method":"test.stuck","id":1}`)
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("test.stuck did not start")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := ts.shutdown(ctx)
	// Once the deadline has passed, connections are dropped without
	// ceremony, so the close frame may or may not make it.
	if code := c.closeCode(5 * time.Second); code != rpc.CloseGoingAway && code != -1 {
		t.Fatalf("close code %v, want %v or none", code, rpc.CloseGoingAway)
	}
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown returned %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return within 5s of its context ending")
	}
	poll.Until(t, 5*time.Second, "the connection to be forgotten", func() bool {
		return ts.rpc.Connections() == 0
	})
}

// A client that has stopped reading cannot answer the close handshake.
// Once its context ends, Shutdown must not wait for it.
func TestShutdownDoesNotWaitForUnresponsiveClients(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, rpc.Limits{}, nil)
	ts.dial() // and never read

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	done := ts.shutdown(ctx)
	select {
	case err := <-done:
		// Closing an idle connection may beat the deadline, or not.
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	// The websocket library waits 5s for a close handshake; Shutdown's
	// deadline is far shorter, so it must not wait for that.
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Fatalf("Shutdown took %v with a 200ms deadline", elapsed)
	}
	// The socket itself may be let go in the background, within the
	// library's timeouts.
	poll.Until(t, 15*time.Second, "the connection to be forgotten", func() bool {
		return ts.rpc.Connections() == 0
	})
}
