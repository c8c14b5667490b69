package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/metrics"
	"github.com/switchboard/switchboard/rpc"
	"github.com/switchboard/switchboard/service"
)

// The fan-out server. No public method fans out yet, so the fanout role
// serves an rpc.Server, wired as the binary wires it (same limits, the
// Prometheus observer), with two methods of its own: bench.join, which
// adds the caller to the audience, and bench.broadcast, which encodes one
// notification per message and hands it to every session with
// Session.Notify: what a channel publish will do. Connections are served
// by rpc.Upgrade, as in the binary.

type joinParams struct{}

type countResult struct {
	Sessions int `json:"sessions"`
}

type broadcastParams struct {
	Count int `json:"count"`
}

type broadcastResult struct {
	Sessions  int `json:"sessions"`
	Delivered int `json:"delivered"`
	Dropped   int `json:"dropped"`
}

type tickParams struct {
	Seq int `json:"seq"`
}

type audience struct {
	mu       sync.Mutex
	sessions map[*rpc.Session]struct{}
	list     []*rpc.Session // sessions as a slice; nil after a change
	seq      int
}

func (a *audience) snapshot() []*rpc.Session {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.list == nil {
		a.list = make([]*rpc.Session, 0, len(a.sessions))
		for s := range a.sessions {
			a.list = append(a.list, s)
		}
	}
	return a.list
}

func fanoutHandler() http.Handler {
	a := &audience{sessions: map[*rpc.Session]struct{}{}}
	reg := rpc.NewRegistry()
	rs := rpc.NewServer(reg, rpc.Options{Observer: metrics.New(), Logger: slog.New(slog.DiscardHandler)})

	rpc.Register(reg, rpc.Method{Name: "bench.join", NeedsSocket: true},
		func(_ context.Context, s *rpc.Session, _ joinParams) (countResult, error) {
			a.mu.Lock()
			a.sessions[s] = struct{}{}
			a.list = nil
			n := len(a.sessions)
			a.mu.Unlock()
			go func() {
				<-s.Done()
				a.mu.Lock()
				delete(a.sessions, s)
				a.list = nil
				a.mu.Unlock()
			}()
			return countResult{Sessions: n}, nil
		})
	rpc.Register(reg, rpc.Method{Name: "bench.sessions"},
		func(_ context.Context, _ *rpc.Session, _ joinParams) (countResult, error) {
			return countResult{Sessions: len(a.snapshot())}, nil
		})
	rpc.Register(reg, rpc.Method{Name: "bench.broadcast"},
		func(_ context.Context, _ *rpc.Session, p broadcastParams) (broadcastResult, error) {
			sessions := a.snapshot()
			res := broadcastResult{Sessions: len(sessions)}
			for range p.Count {
				a.mu.Lock()
				a.seq++
				seq := a.seq
				a.mu.Unlock()
				n, err := rpc.NewNotification("bench.tick", tickParams{Seq: seq})
				if err != nil {
					return res, err
				}
				for _, s := range sessions {
					if s.Notify(n) == nil {
						res.Delivered++
					} else {
						res.Dropped++
					}
				}
			}
			return res, nil
		})

	caller := service.Caller{User: "bench"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /rpc", func(w http.ResponseWriter, r *http.Request) {
		// As the binary does (api.(*Server).upgrade): the handshake and
		// the corked socket are rpc.Upgrade's.
		rs.Upgrade(w, r, rpc.Peer{ID: rpc.NewID(), Caller: caller, RemoteAddr: r.RemoteAddr}, nil)
	})
	return mux
}

// Flow control of the fan-out benchmark. Messages are broadcast in
// batches (bursts) of at most burst messages, and at most batchWindow
// batches are outstanding (broadcast but not yet read by every client),
// so a client never has more than burst*batchWindow notifications
// queued: with burst ≤ 64, well under the default SendQueue of 256, so
// nobody is dropped as a slow consumer. A batch is complete when every
// client has read it.
const (
	batchWindow = 2
	batchSlots  = batchWindow + 1
)

// fanoutFixture is an audience of n clients joined to a fan-out server,
// each with a reader goroutine, and a driver connection that broadcasts.
// It lasts for all the rounds of one sub-benchmark.
type fanoutFixture struct {
	srv     *proc
	n       int
	burst   int // messages per broadcast call
	driver  *websocket.Conn
	clients []*websocket.Conn
	ctx     context.Context // ends with the fixture
	cancel  context.CancelFunc

	// Batch g uses slot g%batchSlots: end is the number of messages
	// every client has read once g is complete, pending the number of
	// clients yet to read all of g.
	end       [batchSlots]atomic.Int64
	pending   [batchSlots]atomic.Int64
	completed chan int64 // batch numbers, in order
	nextBatch int64
	sent      int64 // messages broadcast so far
	failed    chan error
	readers   sync.WaitGroup
	nextID    int
}

func newFanoutFixture(tb testing.TB, srv *proc, n, burst int) *fanoutFixture {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &fanoutFixture{
		srv:       srv,
		n:         n,
		burst:     burst,
		ctx:       ctx,
		cancel:    cancel,
		completed: make(chan int64, batchSlots),
		failed:    make(chan error, n),
	}
	tb.Cleanup(f.close)
	f.driver = mustDial(ctx, tb, srv.addr)
	// Wait for the audience of an earlier fixture to leave.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var r countResult
		f.call(tb, "bench.sessions", nil, &r)
		if r.Sessions == 0 {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d sessions of an earlier run are still joined", r.Sessions)
		}
		time.Sleep(50 * time.Millisecond)
	}

	for i := range n {
		c := mustDial(ctx, tb, srv.addr)
		f.clients = append(f.clients, c)
		req := []byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"bench.join"}`, i))
		if err := callOnce(ctx, c, req); err != nil {
			tb.Fatalf("bench.join: %v", err)
		}
		// Read from now on: a client that does not read does not answer
		// the server's pings either, and would be dropped.
		f.readers.Add(1)
		go f.read(c)
	}
	var r countResult
	f.call(tb, "bench.sessions", nil, &r)
	if r.Sessions != n {
		tb.Fatalf("%d sessions joined, want %d", r.Sessions, n)
	}
	return f
}

// close disconnects every client and the driver. It may run twice.
func (f *fanoutFixture) close() {
	f.cancel()
	for _, c := range f.clients {
		c.CloseNow()
	}
	if f.driver != nil {
		f.driver.CloseNow()
	}
	f.readers.Wait()
}

var tickPrefix = []byte(`{"jsonrpc":"2.0","method":"bench.tick","params":`)

// read counts one client's notifications and reports each batch it
// completes.
func (f *fanoutFixture) read(c *websocket.Conn) {
	defer f.readers.Done()
	buf := make([]byte, 0, 256)
	var err error
	var count, batch int64
	for {
		if buf, err = readFrame(f.ctx, c, buf); err != nil {
			if f.ctx.Err() == nil { // not the fixture closing
				f.failed <- fmt.Errorf("client read: %w", err)
			}
			return
		}
		if !bytes.HasPrefix(buf, tickPrefix) {
			f.failed <- fmt.Errorf("unexpected message %.200q", buf)
			return
		}
		count++
		slot := batch % batchSlots
		if count == f.end[slot].Load() {
			if f.pending[slot].Add(-1) == 0 {
				f.completed <- batch
			}
			batch++
		}
	}
}

// call makes one call on the driver connection.
func (f *fanoutFixture) call(tb testing.TB, method string, params, result any) {
	tb.Helper()
	f.nextID++
	req := map[string]any{"jsonrpc": "2.0", "id": f.nextID, "method": method}
	if params != nil {
		req["params"] = params
	}
	data, _ := json.Marshal(req)
	ctx, cancel := context.WithTimeout(f.ctx, 60*time.Second)
	defer cancel()
	if err := f.driver.Write(ctx, websocket.MessageText, data); err != nil {
		tb.Fatalf("%s: %v", method, err)
	}
	reply, err := readFrame(ctx, f.driver, nil)
	if err != nil {
		tb.Fatalf("%s: %v", method, err)
	}
	var resp struct {
		Result json.RawMessage
		Error  *struct{ Message string }
	}
	if err := json.Unmarshal(reply, &resp); err != nil || resp.Error != nil {
		tb.Fatalf("%s: %s", method, reply)
	}
	if err := json.Unmarshal(resp.Result, result); err != nil {
		tb.Fatalf("%s: %v", method, err)
	}
}

// waitBatch waits for the oldest outstanding batch to complete.
func (f *fanoutFixture) waitBatch(tb testing.TB, want int64) {
	tb.Helper()
	select {
	case got := <-f.completed:
		if got != want {
			tb.Fatalf("batch %d completed, want %d", got, want)
		}
	case err := <-f.failed:
		tb.Fatal(err)
	case <-time.After(60 * time.Second):
		tb.Fatalf("batch %d: not read by every client within 60s", want)
	}
}

// broadcast sends messages notifications to every client and returns
// once every client has read them all.
func (f *fanoutFixture) broadcast(tb testing.TB, messages int) {
	tb.Helper()
	first := f.nextBatch
	for messages > 0 {
		g := f.nextBatch
		if g-first >= batchWindow {
			f.waitBatch(tb, g-batchWindow)
		}
		size := min(messages, f.burst)
		messages -= size
		f.sent += int64(size)
		slot := g % batchSlots
		f.end[slot].Store(f.sent)
		f.pending[slot].Store(int64(f.n))
		f.nextBatch++
		var r broadcastResult
		f.call(tb, "bench.broadcast", broadcastParams{Count: size}, &r)
		if r.Sessions != f.n || r.Delivered != size*f.n || r.Dropped != 0 {
			tb.Fatalf("broadcast of %d to %d clients: %+v", size, f.n, r)
		}
	}
	for g := max(first, f.nextBatch-batchWindow); g < f.nextBatch; g++ {
		f.waitBatch(tb, g)
	}
}

// BenchmarkFanout measures notification delivery: one op is one
// notification delivered to one client. The server is the fanout role in
// a subprocess of its own, so server-ns/delivery is the server's CPU
// alone; the clients, all in this process, account for client-ns/delivery.
//
// burst is how many messages one broadcast call sends in a row. With 64,
// each connection's queue holds many messages when it is written, which
// is as good as it gets for coalescing writes; with 1, messages come one
// broadcast at a time, as from a quiet channel.
func BenchmarkFanout(b *testing.B) {
	srv := startRole(b, roleFanout)
	for _, n := range []int{100, 1000} {
		for _, burst := range []int{1, 64} {
			f := newFanoutFixture(b, srv, n, burst)
			f.broadcast(b, 200) // warm up
			b.Run(fmt.Sprintf("clients=%d/burst=%d", n, burst), func(b *testing.B) {
				messages := (b.N + n - 1) / n
				b.ResetTimer()
				cpu := startCPU(b, srv)
				f.broadcast(b, messages)
				b.StopTimer()
				deliveries := messages * n
				cpu.stop(b, deliveries, "delivery")
				b.ReportMetric(float64(deliveries)/b.Elapsed().Seconds(), "deliveries/s")
			})
			f.close()
		}
	}
}
