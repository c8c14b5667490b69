package bench

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

const (
	idleConns   = 1000 // connections measured
	warmConns   = 10   // connections opened before the baseline is taken
	idleHoldMin = 2 * time.Second
)

// serveMemStats answers the echo baseline's GET /memstats with the same
// samples the switchboard binary's /metrics has, in the same format.
func serveMemStats(w http.ResponseWriter) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintf(w, "go_memstats_heap_inuse_bytes %d\n", ms.HeapInuse)
	fmt.Fprintf(w, "go_memstats_stack_inuse_bytes %d\n", ms.StackInuse)
	fmt.Fprintf(w, "go_goroutines %d\n", runtime.NumGoroutine())
}

// BenchmarkIdleConnection opens idleConns WebSockets that say nothing,
// holds them for a while (at least 2s) and reports what each costs the
// server: the growth of its resident set (rss-B/conn), of its Go heap and
// goroutine stacks in use (heap+stack-B/conn, from its metrics) and of
// its goroutine count, divided by idleConns. Each round starts a fresh
// server, so there is nothing to repeat: the round ignores b.N and holds
// the connections for at least -benchtime, so that there is one round
// (ns/op is then just the length of the experiment; ignore it).
//
// gogc=100 is the default garbage collector setting, the memory a real
// server holds; with gogc=5 the collector runs so often that what is in
// use is close to what is live, which shows the connection's own size.
func BenchmarkIdleConnection(b *testing.B) {
	for _, server := range []string{"switchboard", roleEcho} {
		for _, gogc := range []string{"100", "5"} {
			b.Run(fmt.Sprintf("server=%s/gogc=%s", server, gogc), func(b *testing.B) {
				benchIdle(b, server, "GOGC="+gogc)
			})
		}
	}
}

type memSample struct {
	rss, heapStack, goroutines float64
}

func sampleMem(ctx context.Context, tb testing.TB, p *proc) memSample {
	tb.Helper()
	path := "/metrics"
	if p.name == roleEcho {
		path = "/memstats"
	}
	page, err := scrape(ctx, p.metricsAddr(), path)
	if err != nil {
		tb.Fatal(err)
	}
	v, err := metricValues(page, "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes", "go_goroutines")
	if err != nil {
		tb.Fatal(err)
	}
	rss, err := vmRSS(p.pid)
	if err != nil {
		tb.Fatal(err)
	}
	return memSample{
		rss:        float64(rss),
		heapStack:  v["go_memstats_heap_inuse_bytes"] + v["go_memstats_stack_inuse_bytes"],
		goroutines: v["go_goroutines"],
	}
}

func benchIdle(b *testing.B, server string, env ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), roundTimeout)
	defer cancel()
	var p *proc
	if server == roleEcho {
		p = startRole(b, roleEcho, env...)
	} else {
		p = startSwitchboard(b, env...)
	}

	var conns []*websocket.Conn
	defer func() {
		for _, c := range conns {
			c.CloseNow()
		}
	}()
	conns = append(conns, openIdle(ctx, b, p.addr, warmConns)...)
	time.Sleep(500 * time.Millisecond)
	sampleMem(ctx, b, p) // the first scrape allocates what later ones reuse
	before := sampleMem(ctx, b, p)

	b.ResetTimer()
	conns = append(conns, openIdle(ctx, b, p.addr, idleConns)...)
	time.Sleep(max(idleHoldMin, benchtime()))
	after := sampleMem(ctx, b, p)
	b.StopTimer()

	if server != roleEcho {
		page, err := scrape(ctx, p.metricsAddr(), "/metrics")
		if err != nil {
			b.Fatal(err)
		}
		v, err := metricValues(page, "switchboard_connections_open")
		if err != nil {
			b.Fatal(err)
		}
		if got := int(v["switchboard_connections_open"]); got != warmConns+idleConns {
			b.Fatalf("server has %d connections open, want %d", got, warmConns+idleConns)
		}
	}
	b.ReportMetric((after.rss-before.rss)/idleConns, "rss-B/conn")
	b.ReportMetric((after.heapStack-before.heapStack)/idleConns, "heap+stack-B/conn")
	b.ReportMetric((after.goroutines-before.goroutines)/idleConns, "goroutines/conn")
}

// openIdle opens n connections, a few at a time. They never send, and
// nothing reads them: the server's pings, every 25s by default, come
// after the benchmark is over.
func openIdle(ctx context.Context, tb testing.TB, addr string, n int) []*websocket.Conn {
	tb.Helper()
	const workers = 4
	conns := make([]*websocket.Conn, n)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if conns[i], errs[w] = dial(ctx, addr); errs[w] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			for _, c := range conns {
				if c != nil {
					c.CloseNow()
				}
			}
			tb.Fatalf("opening %d connections: %v", n, err)
		}
	}
	return conns
}

// benchtime returns -test.benchtime when it is a duration, 0 otherwise.
func benchtime() time.Duration {
	f := flag.Lookup("test.benchtime")
	if f == nil {
		return 0
	}
	s := f.Value.String()
	if strings.HasSuffix(s, "x") {
		return 0
	}
	d, _ := time.ParseDuration(s)
	return d
}
