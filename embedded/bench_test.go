package embedded_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/embedded"
	"github.com/switchboard/switchboard/service"
)

// counter is a receiver that only counts: the fan-out's own cost.
type counter struct {
	member service.Member
	n      *atomic.Int64
}

func (c counter) Receive(*service.Event) { c.n.Add(1) }
func (c counter) Member() service.Member { return c.member }

// benchEngine opens an engine over a new history, closed when b ends.
func benchEngine(b *testing.B) *embedded.Engine {
	e, err := embedded.Open(filepath.Join(b.TempDir(), "history.db"), embedded.Options{MaxPublications: 1000})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	return e
}

// cpuTime is the CPU time this process has used: on a shared host it
// varies less than the wall clock.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time used since start per op.
func reportCPU(b *testing.B, start time.Duration, ops int) {
	b.ReportMetric(float64(cpuTime(b)-start)/float64(ops), "cpu-ns/op")
}

// publishAll makes n publications to channel from goroutines
// publishers, as many connections' calls would, so that commits batch.
func publishAll(b *testing.B, e *embedded.Engine, channel string, publishers, n int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	data := json.RawMessage(`{"text":"a publication of about one hundred bytes, as the end-to-end benchmarks make"}`)
	for range publishers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if _, err := e.Publish(context.Background(), service.Publication{Channel: channel, Data: data, Publisher: "p", Time: time.Now()}, ""); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkEnginePublish: one op is one durable publication, 64
// publishers at once on one channel, nobody subscribed.
func BenchmarkEnginePublish(b *testing.B) {
	e := benchEngine(b)
	b.ResetTimer()
	start := cpuTime(b)
	publishAll(b, e, "a", 64, b.N)
	reportCPU(b, start, b.N)
}

// BenchmarkEngineFanout: one op is one publication delivered to one of
// n subscribers, 16 publishers at once.
func BenchmarkEngineFanout(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			e := benchEngine(b)
			var got atomic.Int64
			for i := range n {
				r := counter{member: service.Member{User: "u", ConnectionID: fmt.Sprint(i), Since: time.Now()}, n: &got}
				if _, err := e.Subscribe(context.Background(), "a", r, false); err != nil {
					b.Fatal(err)
				}
			}
			pubs := (b.N + n - 1) / n
			b.ResetTimer()
			start := cpuTime(b)
			publishAll(b, e, "a", 16, pubs)
			b.StopTimer()
			reportCPU(b, start, pubs*n)
			if got.Load() != int64(pubs*n) {
				b.Fatalf("%d deliveries, want %d", got.Load(), pubs*n)
			}
		})
	}
}

// BenchmarkEngineHistory: one op is one page of history read, its last
// 100 of 1000 publications, from 4 readers at once.
func BenchmarkEngineHistory(b *testing.B) {
	e := benchEngine(b)
	publishAll(b, e, "a", 16, 1000)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := cpuTime(b)
	for range 4 {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				h, err := e.History(context.Background(), "a", service.HistoryQuery{Limit: 100, Reverse: true})
				if err != nil || len(h.Publications) != 100 {
					b.Errorf("history: %d publications, %v", len(h.Publications), err)
					return
				}
			}
		})
	}
	wg.Wait()
	reportCPU(b, start, b.N)
}
