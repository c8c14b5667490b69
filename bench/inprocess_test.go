package bench

import (
	"context"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/server"
)

// BenchmarkRPCPipelinedInProcess is BenchmarkCallPipelined (window 16)
// with the server in this process, for CPU profiles: the server as the
// binary wires it (server.New), letting anonymous callers in, logging as
// the binary does by default (text, info). Every goroutine of the server
// side carries the pprof label side=server, so that
//
//	go tool pprof -top -cum -tagfocus side=server bench.test cpu.out
//
// shows where the server's time goes. process-ns/op is the CPU of the
// whole process, server and client together.
func BenchmarkRPCPipelinedInProcess(b *testing.B) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(server.Config{Listen: "127.0.0.1:0", DataDir: b.TempDir(), Version: "bench", Anonymous: true}, logger)
	if err != nil {
		b.Fatal(err)
	}
	// Goroutines inherit the labels of the goroutine that starts them: the
	// server's all descend from the Serve loops Open starts.
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels("side", "server")))
	err = srv.Open()
	pprof.SetGoroutineLabels(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			b.Error(err)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), roundTimeout)
	defer cancel()
	pprof.SetGoroutineLabels(pprof.WithLabels(ctx, pprof.Labels("side", "client")))
	defer pprof.SetGoroutineLabels(context.Background())
	c := mustDial(ctx, b, srv.Addr().String())
	defer c.CloseNow()
	const window = 16
	if err := callPipelined(ctx, c, 1, 2000, window); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start, err := processCPU(os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	if err := callPipelined(ctx, c, 1_000_000, b.N, window); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	end, err := processCPU(os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64((end-start).Nanoseconds())/float64(b.N), "process-ns/op")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	c.Close(websocket.StatusNormalClosure, "")
}
