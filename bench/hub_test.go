package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// startHub runs the real binary with anonymous callers allowed to publish
// and subscribe everywhere, and history trimmed as by default.
func startHub(tb testing.TB) *proc {
	return startSwitchboard(tb, "SWITCHBOARD_ANONYMOUS_PUBLISH=>", "SWITCHBOARD_ANONYMOUS_SUBSCRIBE=>")
}

// payload is the data of every benchmark publication: 100 bytes of JSON,
// a typical dashboard update.
var payload = `{"metric":"cpu","host":"web-17","value":0.4213,"unit":"ratio","tags":["prod","eu-west-1"],"seq":1}`

// appendPublish appends a channelPublish call with id to dst.
func appendPublish(dst []byte, id int, channel, data string) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = strconv.AppendInt(dst, int64(id), 10)
	dst = append(dst, `,"method":"channelPublish","params":{"channel":"`...)
	dst = append(dst, channel...)
	dst = append(dst, `","data":`...)
	dst = append(dst, data...)
	return append(dst, `}}`...)
}

// BenchmarkPublish measures acknowledged, durable publications: one op is
// one publication whose reply said it was committed. Each publisher is a
// connection keeping 64 publications in flight, all on one channel.
func BenchmarkPublish(b *testing.B) {
	srv := startHub(b)
	benchPublish(b, srv, func(b *testing.B) func() {
		cpu := startCPU(b, srv)
		return func() { cpu.stop(b, b.N, "pub") }
	})
}

// benchPublish runs BenchmarkPublish's rounds against srv, measuring
// each with measure: it starts a measurement and returns what ends it.
func benchPublish(b *testing.B, srv *proc, measure func(*testing.B) (stop func())) {
	for _, publishers := range []int{1, 16} {
		b.Run(fmt.Sprintf("publishers=%d", publishers), func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), roundTimeout)
			defer cancel()
			conns := dialN(ctx, b, srv, publishers)
			if err := publishFrom(ctx, conns, 2000); err != nil { // warm up
				b.Fatal(err)
			}
			b.ResetTimer()
			stop := measure(b)
			if err := publishFrom(ctx, conns, b.N); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			stop()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pubs/s")
		})
	}
}

// publisher connects to addr and returns the connection and what
// publishes count publications to channel on it, 16 in flight.
func publisher(ctx context.Context, b *testing.B, addr, channel string) (*websocket.Conn, func(count int)) {
	pub := mustDial(ctx, b, addr)
	return pub, func(count int) {
		if err := pipeline(ctx, pub, count, 16, func(dst []byte, i int) []byte {
			return appendPublish(dst, i+1, channel, payload)
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// dialN opens n connections to srv, closed when the benchmark ends.
func dialN(ctx context.Context, b *testing.B, srv *proc, n int) []*websocket.Conn {
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i] = mustDial(ctx, b, srv.addr)
	}
	b.Cleanup(func() {
		for _, c := range conns {
			c.CloseNow()
		}
	})
	return conns
}

// publishFrom publishes n publications to bench.publish, shared among
// conns, each keeping 64 in flight.
func publishFrom(ctx context.Context, conns []*websocket.Conn, n int) error {
	var wg sync.WaitGroup
	errs := make([]error, len(conns))
	for p, c := range conns {
		share := n / len(conns)
		if p < n%len(conns) {
			share++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[p] = pipeline(ctx, c, share, 64, func(dst []byte, i int) []byte {
				return appendPublish(dst, i+1, "bench.publish", payload)
			})
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// BenchmarkPublishBatched measures acknowledged, durable publications
// made in batches of 100: one op is one publication. Each of 16
// publishers is a connection keeping 4 batches in flight, to a channel of
// its own or all to one.
func BenchmarkPublishBatched(b *testing.B) {
	const publishers, perBatch, window = 16, 100, 4
	srv := startHub(b)
	for _, channels := range []int{1, publishers} {
		b.Run(fmt.Sprintf("channels=%d", channels), func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), roundTimeout)
			defer cancel()
			conns := dialN(ctx, b, srv, publishers)
			publish := func(n int) error {
				var wg sync.WaitGroup
				errs := make([]error, publishers)
				for p, c := range conns {
					channel := fmt.Sprintf("bench.batched.%d", p%channels)
					wg.Go(func() {
						errs[p] = pipeline(ctx, c, (n/publishers+perBatch-1)/perBatch, window, func(dst []byte, i int) []byte {
							dst = append(dst, '[')
							for j := range perBatch {
								if j > 0 {
									dst = append(dst, ',')
								}
								dst = appendPublish(dst, j+1, channel, payload)
							}
							return append(dst, ']')
						})
					})
				}
				wg.Wait()
				return errors.Join(errs...)
			}
			if err := publish(20000); err != nil { // warm up
				b.Fatal(err)
			}
			b.ResetTimer()
			cpu := startCPU(b, srv)
			if err := publish(b.N); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			cpu.stop(b, b.N, "pub")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pubs/s")
		})
	}
}

// hubAudience is a set of subscribers of one channel, each read by a
// goroutine of its own that counts the publications it gets and, when
// asked, the time each took to arrive.
type hubAudience struct {
	ctx       context.Context
	cancel    context.CancelFunc
	conns     []*websocket.Conn
	delivered atomic.Int64
	failed    chan error
	readers   sync.WaitGroup

	mu        sync.Mutex
	latencies []time.Duration // when timed
	timed     atomic.Bool
}

var publicationPrefix = []byte(`{"jsonrpc":"2.0","method":"channelPublication","params":`)

// subscribeAudience connects n clients subscribed to channel.
func subscribeAudience(tb testing.TB, srv *proc, channel string, n int) *hubAudience {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a := &hubAudience{ctx: ctx, cancel: cancel, failed: make(chan error, n)}
	tb.Cleanup(a.close)
	req := []byte(`{"jsonrpc":"2.0","id":1,"method":"channelSubscribe","params":{"channel":"` + channel + `"}}`)
	for range n {
		c := mustDial(ctx, tb, srv.addr)
		a.conns = append(a.conns, c)
		if err := callOnce(ctx, c, req); err != nil {
			tb.Fatalf("channelSubscribe: %v", err)
		}
		a.readers.Add(1)
		go a.read(c)
	}
	return a
}

func (a *hubAudience) read(c *websocket.Conn) {
	defer a.readers.Done()
	buf := make([]byte, 0, 512)
	var err error
	for {
		if buf, err = readFrame(a.ctx, c, buf); err != nil {
			if a.ctx.Err() == nil {
				a.failed <- fmt.Errorf("subscriber read: %w", err)
			}
			return
		}
		if !bytes.HasPrefix(buf, publicationPrefix) {
			a.failed <- fmt.Errorf("unexpected message %.200q", buf)
			return
		}
		if a.timed.Load() {
			if sent, ok := sentAt(buf); ok {
				d := time.Since(sent)
				a.mu.Lock()
				a.latencies = append(a.latencies, d)
				a.mu.Unlock()
			}
		}
		a.delivered.Add(1)
	}
}

// sentAt reads the send time a latency publication carries as {"t":NANOS}.
func sentAt(frame []byte) (time.Time, bool) {
	_, rest, ok := bytes.Cut(frame, []byte(`"data":{"t":`))
	if !ok {
		return time.Time{}, false
	}
	end := bytes.IndexByte(rest, '}')
	if end < 0 {
		return time.Time{}, false
	}
	ns, err := strconv.ParseInt(string(rest[:end]), 10, 64)
	return time.Unix(0, ns), err == nil
}

// await waits until the audience has received want publications in all.
func (a *hubAudience) await(tb testing.TB, want int64) {
	tb.Helper()
	deadline := time.After(120 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for a.delivered.Load() < want {
		select {
		case err := <-a.failed:
			tb.Fatal(err)
		case <-deadline:
			tb.Fatalf("%d of %d deliveries after 120s", a.delivered.Load(), want)
		case <-tick.C:
		}
	}
}

func (a *hubAudience) close() {
	a.cancel()
	for _, c := range a.conns {
		c.CloseNow()
	}
	a.readers.Wait()
}

// BenchmarkHubFanout measures channel fan-out through the real hub: one op
// is one publication delivered to one subscriber. A publisher keeps 16
// publications in flight on a channel with n subscribers.
func BenchmarkHubFanout(b *testing.B) {
	srv := startHub(b)
	for _, n := range []int{100, 1000} {
		channel := fmt.Sprintf("bench.fanout.%d", n)
		a := subscribeAudience(b, srv, channel, n)
		ctx, cancel := context.WithTimeout(context.Background(), roundTimeout)
		pub, publish := publisher(ctx, b, srv.addr, channel)
		publish(200) // warm up
		a.await(b, int64(200*n))
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			messages := (b.N + n - 1) / n
			start := a.delivered.Load()
			b.ResetTimer()
			cpu := startCPU(b, srv)
			publish(messages)
			a.await(b, start+int64(messages*n))
			b.StopTimer()
			deliveries := messages * n
			cpu.stop(b, deliveries, "delivery")
			b.ReportMetric(float64(deliveries)/b.Elapsed().Seconds(), "deliveries/s")
		})
		pub.CloseNow()
		cancel()
		a.close()
	}
}

// BenchmarkPublishLatency measures the time from sending a publication to
// its arrival at each subscriber, at a steady rate well under what the
// machine can do (20 k deliveries/s at most, where the two vCPUs, server
// and subscribers together, manage some 60 k one message at a time): one
// op is one publication, and p50-µs and p99-µs are over every delivery.
// Publisher and subscribers share this process's clock.
func BenchmarkPublishLatency(b *testing.B) {
	srv := startHub(b)
	for _, tc := range []struct{ subscribers, rate int }{{1, 1000}, {100, 200}, {1000, 20}} {
		channel := fmt.Sprintf("bench.latency.%d", tc.subscribers)
		a := subscribeAudience(b, srv, channel, tc.subscribers)
		b.Run(fmt.Sprintf("subscribers=%d/rate=%d", tc.subscribers, tc.rate), func(b *testing.B) {
			measureLatency(b, srv, channel, tc.rate, []*hubAudience{a})
		})
		a.close()
	}
}

// measureLatency publishes b.N timed publications to channel through
// srv at rate a second, waits until every audience has them all, and
// reports p50-µs and p99-µs over every delivery.
func measureLatency(b *testing.B, srv *proc, channel string, rate int, audiences []*hubAudience) {
	ctx, cancel := context.WithTimeout(context.Background(), roundTimeout)
	defer cancel()
	pub := mustDial(ctx, b, srv.addr)
	defer pub.CloseNow()
	var starts []int64
	for _, a := range audiences {
		a.mu.Lock()
		a.latencies = a.latencies[:0]
		a.mu.Unlock()
		a.timed.Store(true)
		starts = append(starts, a.delivered.Load())
	}
	interval := time.Second / time.Duration(rate)
	next := time.Now()
	b.ResetTimer()
	err := pipeline(ctx, pub, b.N, 1024, func(dst []byte, i int) []byte {
		time.Sleep(time.Until(next))
		next = next.Add(interval)
		return appendPublish(dst, i+1, channel, `{"t":`+strconv.FormatInt(time.Now().UnixNano(), 10)+`}`)
	})
	if err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	for i, a := range audiences {
		a.await(b, starts[i]+int64(b.N*len(a.conns)))
		a.timed.Store(false)
		a.mu.Lock()
		lat = append(lat, a.latencies...)
		a.mu.Unlock()
	}
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) == 0 {
		b.Fatal("no latencies recorded")
	}
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
