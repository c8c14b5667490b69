package rpc_test

import (
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/rpc"
)

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
	poll.Until(t, 10*time.Second, "every connection to end", func() bool { return ts.rpc.Connections() == 0 })
	if n := ts.obs.closedFor(rpc.ReasonWriteError); n > 0 {
		t.Fatalf("%d of %d dropped connections counted as write errors (%d as the client's)", n, conns, ts.obs.closedFor(rpc.ReasonClient))
	}
}
