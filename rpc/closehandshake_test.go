package rpc_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/rpc"
)

// A client that closes while the server is writing to it gets the
// server's close frame back: the answer the websocket library writes
// while a drain holds writes back must not be dropped with the socket.
// (The soak test found one close in 34,000 ending in EOF.)
func TestCloseHandshakeWhileWriting(t *testing.T) {
	failures := make(chan error, 100000) // a flood cut short by a close reports one
	ts := newTestServer(t, rpc.Limits{}, registerFlood(failures))
	url := "ws" + ts.url[len("http"):]
	const closes, parallel = 6000, 8
	var broken atomic.Int64
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for range closes / parallel {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				ws, _, err := websocket.Dial(ctx, url, nil)
				cancel()
				if err != nil {
					t.Errorf("dial: %v", err)
					return
				}
				ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
				ws.Write(ctx, websocket.MessageText, []byte(`{"jsonrpc":"2.0","method":"test.flood","params":{"n":32,"size":256},"id":1}`))
				cancel()
				if err := ws.Close(websocket.StatusNormalClosure, ""); err != nil {
					broken.Add(1)
					t.Logf("close: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if n := broken.Load(); n > 0 {
		t.Fatalf("%d of %d close handshakes did not get the server's close frame", n, closes)
	}
}

// A client that drops its connection while the server writes to it left
// of its own accord: the metrics say client, not write_error.
func TestClientDropWhileWritingIsTheClients(t *testing.T) {
	failures := make(chan error, 100000)
	ts := newTestServer(t, rpc.Limits{}, registerFlood(failures))
	const conns = 200
	for range conns {
		c := ts.dial()
		c.send(`{"jsonrpc":"2.0","method":"test.flood","params":{"n":256,"size":4096},"id":1}`)
		c.recv(5 * time.Second) // the flood is under way
		c.ws.CloseNow()
	}
	waitFor(t, 10*time.Second, "every connection to end", func() bool { return ts.rpc.Connections() == 0 })
	if n := ts.obs.closedFor(rpc.ReasonWriteError); n > 0 {
		t.Fatalf("%d of %d dropped connections counted as write errors (%d as the client's)", n, conns, ts.obs.closedFor(rpc.ReasonClient))
	}
}
