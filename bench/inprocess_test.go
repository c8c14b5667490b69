package bench

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/metrics"
	"github.com/switchboard/switchboard/rpc"
	"github.com/switchboard/switchboard/service"
	"github.com/switchboard/switchboard/subscriptions"
)

// BenchmarkRPCPipelinedInProcess is BenchmarkCallPipelined (window 16)
// with the server in this process, for CPU profiles: the rpc server with
// the binary's methods and metrics observer, behind a plain net/http
// server, connections served by rpc.Upgrade as in the binary. Every goroutine of the server side carries the pprof label
// side=server, so that
//
//	go tool pprof -top -cum -tagfocus side=server bench.test cpu.out
//
// shows where the server's time goes. process-ns/op is the CPU of the
// whole process, server and client together.
func BenchmarkRPCPipelinedInProcess(b *testing.B) {
	reg := rpc.NewRegistry()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil)) // as the binary: text, info
	rs := rpc.NewServer(reg, rpc.Options{Logger: logger, Observer: metrics.New()})
	api.RegisterMethods(reg, service.Node{ID: "bench", Version: "bench", StartedAt: time.Now()}, api.Stats{Conns: rs},
		service.NewHub(nil, service.HubLimits{}), subscriptions.Limits{})
	serverCtx := pprof.WithLabels(context.Background(), pprof.Labels("side", "server"))
	caller := service.Caller{Anonymous: true}
	hs := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Goroutines inherit the labels of the goroutine that starts
			// them: the rpc connection's all start from here.
			pprof.SetGoroutineLabels(serverCtx)
			rs.Upgrade(w, r, rpc.Session{ID: rpc.NewID(), Caller: caller, RemoteAddr: r.RemoteAddr}, nil) // as the binary does
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go hs.Serve(ln)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(ctx)
		rs.Shutdown(ctx)
	})

	ctx, cancel := context.WithTimeout(context.Background(), roundTimeout)
	defer cancel()
	pprof.SetGoroutineLabels(pprof.WithLabels(ctx, pprof.Labels("side", "client")))
	defer pprof.SetGoroutineLabels(context.Background())
	c := mustDial(ctx, b, ln.Addr().String())
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
