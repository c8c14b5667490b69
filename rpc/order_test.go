package rpc_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/rpc"
)

// placeParams drive test.place: it records N in the order of effects,
// fails before it is placed with Fail "before" and after with "after",
// and with Await waits until that many calls have been placed.
type placeParams struct {
	N     int    `json:"n"`
	Fail  string `json:"fail,omitempty"`
	Await int    `json:"await,omitempty"`
}

// effects is what test.place calls did, in order.
type effects struct {
	mu       sync.Mutex
	order    []int
	placed   int
	more     *sync.Cond
	deadline time.Time // when every await gives up
}

func newEffects() *effects {
	e := &effects{deadline: time.Now().Add(10 * time.Second)}
	e.more = sync.NewCond(&e.mu)
	return e
}

func (e *effects) register(reg *rpc.Registry) {
	rpc.Register(reg, rpc.Method{Name: "test.place", Ordered: true}, func(ctx context.Context, _ *rpc.Session, p placeParams) (string, error) {
		if p.Fail == "before" {
			return "", rpc.Errorf(rpc.CodeForbidden, "call %d fails", p.N)
		}
		e.mu.Lock()
		e.order = append(e.order, p.N)
		e.placed++
		e.more.Broadcast()
		e.mu.Unlock()
		rpc.Placed(ctx)
		if p.Fail == "after" {
			return "", rpc.Errorf(rpc.CodeUnavailable, "call %d fails once placed", p.N)
		}
		if p.Await > 0 && !e.await(p.Await) {
			return "gave up", nil // seen by the test as a wrong result
		}
		return "done", nil
	})
}

// await waits until n calls are placed, or until e's deadline.
func (e *effects) await(n int) bool {
	timer := time.AfterFunc(time.Until(e.deadline), func() { e.mu.Lock(); e.more.Broadcast(); e.mu.Unlock() })
	defer timer.Stop()
	e.mu.Lock()
	defer e.mu.Unlock()
	for e.placed < n && time.Now().Before(e.deadline) {
		e.more.Wait()
	}
	return e.placed >= n
}

func (e *effects) seen() []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.order)
}

func placeBatch(calls ...string) string {
	return "[" + strings.Join(calls, ",") + "]"
}

func place(id int, extra string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"test.place","params":{"n":%d%s}}`, id, id, extra)
}

// A batch's Ordered calls take effect in the batch's order, yet each
// goes on once placed: the first call returns only once the last one is
// placed, which would never happen if they ran one after another.
func TestOrderedCallsTakeEffectInOrderAndOverlap(t *testing.T) {
	const n = 40
	for _, transport := range []string{"websocket", "http"} {
		t.Run(transport, func(t *testing.T) {
			e := newEffects()
			ts := newTestServer(t, rpc.Limits{}, e.register)
			var calls []string
			var wants []want
			for i := 1; i <= n; i++ {
				calls = append(calls, place(i, fmt.Sprintf(`,"await":%d`, n)))
				wants = append(wants, want{id: itoa(i), result: `"done"`})
			}
			reply := sendBatch(t, ts, transport, placeBatch(calls...))
			checkReply(t, reply, true, wants)
			want := make([]int, n)
			for i := range want {
				want[i] = i + 1
			}
			if got := e.seen(); !slices.Equal(got, want) {
				t.Fatalf("effects in order %v, want %v", got, want)
			}
		})
	}
}

// The first Ordered call that fails before it is placed stops the
// batch's later Ordered calls; other calls still run, and a call that
// fails once placed stops nothing.
func TestOrderedCallsStopAtTheFirstFailure(t *testing.T) {
	for _, transport := range []string{"websocket", "http"} {
		t.Run(transport, func(t *testing.T) {
			e := newEffects()
			ts := newTestServer(t, rpc.Limits{}, e.register)
			batch := placeBatch(
				place(1, `,"fail":"after"`),
				place(2, ""),
				place(3, `,"fail":"before"`),
				`{"jsonrpc":"2.0","id":"p","method":"get_data"}`,
				place(4, ""),
				`{"jsonrpc":"2.0","method":"test.place","params":{"n":5}}`, // a notification: not run, not answered
				place(6, ""),
			)
			reply := sendBatch(t, ts, transport, batch)
			checkReply(t, reply, true, []want{
				{id: `1`, code: rpc.CodeUnavailable},
				{id: `2`, result: `"done"`},
				{id: `3`, code: rpc.CodeForbidden},
				{id: `"p"`, result: `["hello",5]`},
				{id: `4`, code: rpc.CodeConflict},
				{id: `6`, code: rpc.CodeConflict},
			})
			if !strings.Contains(reply, "the call with id 3, earlier in this batch, failed or was refused") {
				t.Errorf("the not-run errors do not name the call that failed: %s", reply)
			}
			if got := e.seen(); !slices.Equal(got, []int{1, 2}) {
				t.Fatalf("effects %v, want [1 2]", got)
			}
			// The next batch starts afresh.
			checkReply(t, sendBatch(t, ts, transport, placeBatch(place(7, ""), place(8, ""))), true,
				[]want{{id: `7`, result: `"done"`}, {id: `8`, result: `"done"`}})
		})
	}
}

// Calls sent on their own are not chained: one failing stops nothing.
func TestOrderedMethodOutsideABatch(t *testing.T) {
	e := newEffects()
	ts := newTestServer(t, rpc.Limits{}, e.register)
	c := ts.dial()
	checkReply(t, c.call(place(1, `,"fail":"before"`)), false, []want{{id: `1`, code: rpc.CodeForbidden}})
	checkReply(t, c.call(place(2, "")), false, []want{{id: `2`, result: `"done"`}})
}

func sendBatch(t *testing.T, ts *testServer, transport, batch string) string {
	t.Helper()
	if transport == "http" {
		_, body := ts.post(batch)
		return body
	}
	c := ts.dial()
	c.t = t
	c.send(batch)
	return c.recv(20 * time.Second)
}

// An Ordered method that is also Heavy takes its turn before the Heavy
// slots, or a later call of the batch holding them while it waits for its
// turn would never let the earlier one run.
func TestOrderedHeavyBatch(t *testing.T) {
	ts := newTestServer(t, rpc.Limits{}, func(reg *rpc.Registry) {
		rpc.Register(reg, rpc.Method{Name: "test.heavyPlace", Ordered: true, Heavy: true}, func(ctx context.Context, _ *rpc.Session, p placeParams) (int, error) {
			time.Sleep(time.Millisecond) // long enough for the later calls to run into the slots
			return p.N, nil
		})
	})
	var calls []string
	var wants []want
	for i := 1; i <= 20; i++ {
		calls = append(calls, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"test.heavyPlace","params":{"n":%d}}`, i, i))
		wants = append(wants, want{id: itoa(i), result: itoa(i)})
	}
	for round := range 50 {
		transport := []string{"websocket", "http"}[round%2]
		t.Logf("round %d over %s", round, transport)
		checkReply(t, sendBatch(t, ts, transport, placeBatch(calls...)), true, wants)
	}
}
