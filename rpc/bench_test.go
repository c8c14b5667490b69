package rpc_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/rpc"
)

// BenchmarkPipelinedCalls runs calls over one real socket with up to 16 in
// flight, client and server in this process. It is the handle for CPU
// profiles of the call path (-cpuprofile); the figures that count, server
// CPU alone, come from the bench package, which runs the server as its own
// process.
func BenchmarkPipelinedCalls(b *testing.B) {
	const window = 16
	ts := newTestServer(b, rpc.Limits{}, nil)
	c := ts.dial().ws
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// inFlight holds a token per call sent and not yet answered.
	inFlight := make(chan struct{}, window)
	replies := make(chan error, 1)
	go func() {
		for i := 0; i < b.N; i++ {
			if _, _, err := c.Read(ctx); err != nil {
				replies <- err
				return
			}
			<-inFlight
		}
		replies <- nil
	}()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		inFlight <- struct{}{}
		msg := `{"jsonrpc":"2.0","method":"get_data","id":` + strconv.Itoa(i) + `}`
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-replies; err != nil {
		b.Fatal(err)
	}
}
