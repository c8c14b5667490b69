package rpc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/rpc"
)

// What one connection or one request can make the server hold is bounded:
// calls of Heavy methods run a few at a time, a batch's replies stop at a
// budget, and the send queue is counted in bytes as well as messages.

// registerBig registers test.big, a Heavy method answering with a string
// of size bytes.
func registerBig(reg *rpc.Registry) {
	rpc.Register(reg, rpc.Method{Name: "test.big", Heavy: true}, func(_ context.Context, _ *rpc.Session, p struct {
		Size int `json:"size"`
	}) (string, error) {
		return strings.Repeat("x", p.Size), nil
	})
}

func bigBatch(n, size int) string {
	calls := make([]string, n)
	for i := range calls {
		calls[i] = fmt.Sprintf(`{"jsonrpc":"2.0","method":"test.big","params":{"size":%d},"id":%d}`, size, i)
	}
	return "[" + strings.Join(calls, ",") + "]"
}

func TestHeavyCallsAreBounded(t *testing.T) {
	const serverWide = 3
	g := newGauge()
	ts := newTestServer(t, rpc.Limits{MaxHeavyCalls: serverWide}, func(reg *rpc.Registry) {
		rpc.Register(reg, rpc.Method{Name: "test.hold", Heavy: true}, g.hold)
	})
	t.Cleanup(g.open)
	hold := func(c *wsClient, n int) {
		for i := range n {
			c.send(fmt.Sprintf(`{"jsonrpc":"2.0","method":"test.hold","params":{"n":%d},"id":%d}`, i, i))
		}
	}
	a, b := ts.dial(), ts.dial()
	hold(a, 5)
	g.waitEntered(t, 2)
	time.Sleep(100 * time.Millisecond) // a broken limit would let a third in
	if n := g.maxRunning(); n != 2 {
		t.Fatalf("one connection ran %d heavy calls at once, want 2", n)
	}
	// Other calls of the connection go on meanwhile.
	checkReply(t, a.call(getData), false, []want{{id: `1`, result: `["hello",5]`}})

	hold(b, 5)
	g.waitEntered(t, 1)
	time.Sleep(100 * time.Millisecond)
	if n := g.maxRunning(); n != serverWide {
		t.Fatalf("%d heavy calls ran at once on the server, want %d", n, serverWide)
	}
	g.open()
	for _, c := range []*wsClient{a, b} {
		for range 5 {
			if r := decode(t, c.recv(5*time.Second)); r.Error != nil {
				t.Fatalf("a held call failed: %+v", r.Error)
			}
		}
	}
}

func TestBatchRepliesAreBounded(t *testing.T) {
	// Each reply is a little over 3000 bytes: four pass 10000.
	const budget, size, calls = 10000, 3000, 10
	ts := newTestServer(t, rpc.Limits{MaxBatchReplySize: budget}, registerBig)

	_, body := ts.post(bigBatch(calls, size))
	if answered := checkBudgetReplies(t, body, calls); answered != 4 {
		t.Fatalf("over HTTP, %d calls were run, want the 4 whose replies reach past %d bytes", answered, budget)
	}
	// Over a socket the calls of a batch run concurrently, two heavy ones
	// at a time: one more may start before the fourth reply is filed.
	answered := checkBudgetReplies(t, ts.dial().call(bigBatch(calls, size)), calls)
	if answered < 4 || answered > 5 {
		t.Fatalf("over a WebSocket, %d calls were run, want 4 or 5", answered)
	}
}

// checkBudgetReplies checks that each of the n replies is a result or a
// -32029 error, and returns how many results there are.
func checkBudgetReplies(t *testing.T, body string, n int) int {
	t.Helper()
	var replies []response
	if err := json.Unmarshal([]byte(body), &replies); err != nil || len(replies) != n {
		t.Fatalf("batch reply %.200s: %v, want %d replies", body, err, n)
	}
	answered := 0
	for _, r := range replies {
		switch {
		case r.Error == nil:
			answered++
		case r.Error.Code != rpc.CodeLimitExceeded || !strings.Contains(r.Error.Message, "--max-batch-reply-size"):
			t.Fatalf("error %+v, want -32029 naming --max-batch-reply-size", r.Error)
		}
	}
	return answered
}

// A client that reads nothing is closed once its notifications pass the
// queue's bytes, long before they would pass its count.
func TestSendQueueIsBoundedInBytes(t *testing.T) {
	failures := make(chan error, 2)
	ts := newTestServer(t, rpc.Limits{SendQueue: 1000, SendQueueBytes: 256 << 10}, registerFlood(failures))
	slow := ts.dial()
	slow.send(`{"jsonrpc":"2.0","method":"test.flood","params":{"n":64,"size":65536},"id":1}`)
	waitSlowConsumer(t, failures)
	poll.Until(t, 15*time.Second, "the slow connection to be dropped", func() bool {
		return ts.rpc.Connections() == 0
	})
}

// A client that pipelines calls with megabyte replies and reads none of
// them costs the server its send queue and the replies of its heavy calls
// in flight, not one reply per call.
func TestUnreadRepliesHoldBoundedMemory(t *testing.T) {
	const size, calls = 1 << 20, 200
	ts := newTestServer(t, rpc.Limits{}, registerBig)
	c := ts.dial()
	before := heapInUse()
	for i := range calls {
		c.send(fmt.Sprintf(`{"jsonrpc":"2.0","method":"test.big","params":{"size":%d},"id":%d}`, size, i))
	}
	// Time for the server to run and queue what it will; the bound holds
	// however long it is given.
	time.Sleep(time.Second)
	grew := int64(heapInUse()) - int64(before)
	// The send queue (4 MiB, and the reply that reaches it), two replies
	// in flight and their encoding: about 10 MiB; unbounded it was 200.
	if grew > 48<<20 {
		t.Fatalf("the heap grew by %d MiB for a client that reads nothing", grew>>20)
	}
	t.Logf("the heap grew by %.1f MiB", float64(grew)/(1<<20))
	c.ws.CloseNow()
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// Calls past CallRate are answered -32029 with how long to wait, and not
// run; the connection goes on, and after the wait calls are served again.
func TestCallRate(t *testing.T) {
	ts := newTestServer(t, rpc.Limits{CallRate: 2, CallBurst: 3}, nil)
	calls := func(n int) string {
		cs := make([]string, n)
		for i := range cs {
			cs[i] = fmt.Sprintf(`{"jsonrpc":"2.0","method":"get_data","id":%d}`, i)
		}
		return "[" + strings.Join(cs, ",") + "]"
	}
	check := func(how, body string) time.Duration {
		t.Helper()
		var replies []struct {
			Result json.RawMessage
			Error  *struct {
				Code int
				Data struct{ RetryAfterMs int64 }
			}
		}
		if err := json.Unmarshal([]byte(body), &replies); err != nil {
			t.Fatalf("%s: %s: %v", how, body, err)
		}
		served, wait := 0, time.Duration(0)
		for _, r := range replies {
			switch {
			case r.Error == nil:
				served++
			case r.Error.Code == rpc.CodeLimitExceeded && r.Error.Data.RetryAfterMs > 0 && r.Error.Data.RetryAfterMs <= 500:
				wait = time.Duration(r.Error.Data.RetryAfterMs) * time.Millisecond
			default:
				t.Fatalf("%s: reply %+v, want a result or -32029 with retryAfterMs in (0, 500]", how, r.Error)
			}
		}
		if served != 3 {
			t.Fatalf("%s: %d of 5 calls served, want the burst of 3", how, served)
		}
		return wait
	}
	c := ts.dial()
	wait := check("websocket", c.call(calls(5)))
	_, body := ts.post(calls(5))
	check("http", body)

	time.Sleep(wait)
	checkReply(t, c.call(getData), false, []want{{id: `1`, result: `["hello",5]`}})
}

// Heavy replies waiting for a client that reads nothing hold that
// client's slots, not the server's: others' heavy calls go on.
func TestUnreadHeavyRepliesDoNotStallOthers(t *testing.T) {
	ts := newTestServer(t, rpc.Limits{MaxHeavyCalls: 1, WriteTimeout: time.Minute}, registerBig)
	stuck := ts.dial()
	for i := range 50 {
		stuck.send(fmt.Sprintf(`{"jsonrpc":"2.0","method":"test.big","params":{"size":%d},"id":%d}`, 1<<20, i))
	}
	time.Sleep(500 * time.Millisecond) // for its queue to fill and its replies to wait
	other := ts.dial()
	reply := other.call(`{"jsonrpc":"2.0","method":"test.big","params":{"size":10},"id":1}`)
	checkReply(t, reply, false, []want{{id: `1`, result: `"xxxxxxxxxx"`}})
	stuck.ws.CloseNow()
}
