package rpc_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/rpc"
)

// settledGoroutines waits for goroutines left over by earlier tests
// (closing sockets, finishing handlers) to end, and returns the count
// once it has held still for a while.
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for range 100 {
		time.Sleep(50 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			return n
		}
		n = m
	}
	return n
}

func TestConnectionsLeaveNoGoroutines(t *testing.T) {
	failures := make(chan error, 100)
	g := newGauge() // never opened: its calls end only when cancelled
	ts := newTestServer(t, rpc.Limits{SendQueue: sendQueue}, func(reg *rpc.Registry) {
		registerFlood(failures)(reg)
		rpc.Register(reg, rpc.Method{Name: "test.hold"}, g.hold)
	})
	base := settledGoroutines()

	const conns = 20
	clients := make([]*wsClient, conns)
	for i := range clients {
		clients[i] = ts.dial()
	}
	// All the connections are open at once while each is put to work.
	for i, c := range clients {
		checkReply(t, c.call(getData), false, []want{{id: `1`, result: `["hello",5]`}})
		checkReply(t, c.call(`[{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1},
			{"jsonrpc":"2.0","method":"notify_sum","params":[3]},
			{"jsonrpc":"2.0","method":"nope","id":2}]`), true,
			[]want{{id: `1`, result: `3`}, {id: `2`, code: rpc.CodeMethodNotFound}})
		if i%4 == 0 {
			c.flood()
		}
		if i%5 == 0 {
			// Left running when the client goes.
			c.send(`{"jsonrpc":"2.0","method":"test.hold","params":{"n":1},"id":"held"}`)
			g.waitEntered(t, 1)
		}
	}
	if n := ts.rpc.Connections(); n != conns {
		t.Fatalf("%d connections open, want %d", n, conns)
	}
	for _, c := range clients {
		c.ws.Close(websocket.StatusNormalClosure, "")
	}

	poll.Until(t, 5*time.Second, "every connection to be forgotten", func() bool {
		return ts.rpc.Connections() == 0
	})
	// Every goroutine a connection started must end with it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= base {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before the connections opened:\n%s", n, base, goroutines())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := ts.obs.closedFor(rpc.ReasonClient); n != conns {
		t.Fatalf("observer reported %d closes by the client, want %d; all closes: %v", n, conns, ts.obs.closedReasons())
	}
}

// goroutines dumps every goroutine's stack, to show what leaked.
func goroutines() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}
