package bench

import (
	"context"
	"fmt"
	"testing"

	"github.com/coder/websocket"
)

// callServers starts the servers the call benchmarks compare: the real
// switchboard binary and the raw coder/websocket echo baseline. Both live
// as long as the parent benchmark, so the -count repetitions of each
// sub-benchmark run against the same, warm, process.
func callServers(b *testing.B) []*proc {
	return []*proc{startSwitchboard(b), startRole(b, roleEcho)}
}

// BenchmarkCallSequential is one client calling serverPing and waiting
// for each reply: ns/op is the round-trip latency over loopback.
func BenchmarkCallSequential(b *testing.B) {
	for _, srv := range callServers(b) {
		b.Run("server="+srv.name, func(b *testing.B) {
			benchCalls(b, srv, 0)
		})
	}
}

// BenchmarkCallPipelined is one client keeping window calls in flight. 16
// is the server's default MaxConcurrentCalls.
func BenchmarkCallPipelined(b *testing.B) {
	for _, srv := range callServers(b) {
		for _, window := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("server=%s/window=%d", srv.name, window), func(b *testing.B) {
				benchCalls(b, srv, window)
			})
		}
	}
}

// benchCalls runs b.N calls on a fresh connection, sequentially when
// window is 0, and reports the server's and the client's CPU per call.
func benchCalls(b *testing.B, srv *proc, window int) {
	ctx, cancel := context.WithTimeout(context.Background(), roundTimeout)
	defer cancel()
	c := mustDial(ctx, b, srv.addr)
	defer c.CloseNow()
	run := func(firstID, n int) error {
		if window == 0 {
			return callSequential(ctx, c, firstID, n)
		}
		return callPipelined(ctx, c, firstID, n, window)
	}
	// Warm up the connection and the server's pools.
	if err := run(1, 2000); err != nil {
		b.Fatal(err)
	}

	b.ResetTimer()
	cpu := startCPU(b, srv)
	if err := run(1_000_000, b.N); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	cpu.stop(b, b.N, "op")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	c.Close(websocket.StatusNormalClosure, "")
}
