package rpc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/rpc"
)

type none struct{}

func TestPanickingHandler(t *testing.T) {
	ts := newTestServer(t, rpc.Limits{}, func(reg *rpc.Registry) {
		rpc.Register(reg, rpc.Method{Name: "test.panic"}, func(context.Context, *rpc.Session, none) (int, error) {
			panic("boom")
		})
	})
	const panicCall = `{"jsonrpc":"2.0","method":"test.panic","id":7}`

	t.Run("websocket", func(t *testing.T) {
		c := ts.dial()
		c.t = t
		checkReply(t, c.call(panicCall), false, []want{{id: `7`, code: rpc.CodeInternalError}})
		// The connection survives the panic.
		checkReply(t, c.call(getData), false, []want{{id: `1`, result: `["hello",5]`}})
	})
	t.Run("http", func(t *testing.T) {
		status, body := ts.post(panicCall)
		if status != http.StatusOK {
			t.Fatalf("status %d, body %s", status, body)
		}
		checkReply(t, body, false, []want{{id: `7`, code: rpc.CodeInternalError}})
		_, body = ts.post(getData)
		checkReply(t, body, false, []want{{id: `1`, result: `["hello",5]`}})
	})
	if n := ts.obs.outcome("test.panic", "internal_error"); n != 2 {
		t.Errorf("observer saw %d internal errors from test.panic, want 2", n)
	}
}

// A result that would put bytes that are not UTF-8 in a text frame (raw
// JSON from storage, say) is a bug answered with -32603, never sent.
func TestResultThatIsNotUTF8IsNeverSent(t *testing.T) {
	ts := newTestServer(t, rpc.Limits{}, func(reg *rpc.Registry) {
		rpc.Register(reg, rpc.Method{Name: "test.raw"}, func(context.Context, *rpc.Session, none) (json.RawMessage, error) {
			return json.RawMessage("\"a\xffb\""), nil
		})
	})
	const rawCall = `{"jsonrpc":"2.0","method":"test.raw","id":7}`
	c := ts.dial()
	checkReply(t, c.call(rawCall), false, []want{{id: `7`, code: rpc.CodeInternalError}})
	_, body := ts.post(rawCall)
	checkReply(t, body, false, []want{{id: `7`, code: rpc.CodeInternalError}})
}

func TestCallContextEndsWithConnection(t *testing.T) {
	started := make(chan struct{}, 1)
	cancelled := make(chan error, 1)
	ts := newTestServer(t, rpc.Limits{}, func(reg *rpc.Registry) {
		rpc.Register(reg, rpc.Method{Name: "test.block"}, func(ctx context.Context, _ *rpc.Session, _ none) (int, error) {
			started <- struct{}{}
			<-ctx.Done()
			cancelled <- ctx.Err()
			return 0, ctx.Err()
		})
	})
	for _, tc := range []struct {
		name  string
		close func(*wsClient)
	}{
		{"close handshake", func(c *wsClient) { c.ws.Close(rpc.CloseNormal, "bye") }},
		{"dropped socket", func(c *wsClient) { c.ws.CloseNow() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ts.dial()
			c.t = t
			c.send(`{"jsonrpc":"2.0","method":"test.block","id":1}`)
			select {
			case <-started:
			case <-time.After(5 * time.Second):
				t.Fatal("test.block did not start")
			}
			tc.close(c)
			select {
			case err := <-cancelled:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("call context ended with %v, want context.Canceled", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("call context not cancelled within 5s of the connection closing")
			}
		})
	}
}

// gauge tracks how many calls run at once and the most it has seen.
type gauge struct {
	mu      sync.Mutex
	running int
	max     int
	entered chan struct{} // one value per call that started
	release chan struct{} // closed to let every call finish
	opened  sync.Once
}

func newGauge() *gauge {
	return &gauge{entered: make(chan struct{}, 100), release: make(chan struct{})}
}

// hold is a method that counts itself running until the gauge is opened,
// then answers with its param n.
func (g *gauge) hold(ctx context.Context, _ *rpc.Session, p struct {
	N int `json:"n"`
}) (int, error) {
	g.mu.Lock()
	g.running++
	g.max = max(g.max, g.running)
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.running--
		g.mu.Unlock()
	}()
	g.entered <- struct{}{}
	select {
	case <-g.release:
		return p.N, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// open lets every call, running or to come, finish.
func (g *gauge) open() { g.opened.Do(func() { close(g.release) }) }

func (g *gauge) maxRunning() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.max
}

// waitEntered waits until n more calls have started.
func (g *gauge) waitEntered(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		select {
		case <-g.entered:
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d calls started within 5s", i, n)
		}
	}
}

func TestConcurrentCallsAreBoundedPerConnection(t *testing.T) {
	const limit, calls = 4, 20
	g := newGauge()
	ts := newTestServer(t, rpc.Limits{MaxConcurrentCalls: limit}, func(reg *rpc.Registry) {
		rpc.Register(reg, rpc.Method{Name: "test.hold"}, g.hold)
	})
	t.Cleanup(g.open)
	c := ts.dial()
	for i := 1; i <= calls; i++ {
		c.send(fmt.Sprintf(`{"jsonrpc":"2.0","method":"test.hold","params":{"n":%d},"id":%d}`, i, i))
	}
	g.waitEntered(t, limit)
	// Give a broken limit the chance to let a fifth call in. This only
	// makes the test stricter; it passes at any speed when the limit works.
	time.Sleep(200 * time.Millisecond)
	if n := g.maxRunning(); n != limit {
		t.Fatalf("%d calls ran at once, want %d", n, limit)
	}

	// The limit is per connection: another one is served meanwhile.
	checkReply(t, ts.dial().call(getData), false, []want{{id: `1`, result: `["hello",5]`}})

	g.open()
	seen := map[string]bool{}
	for range calls {
		r := decode(t, c.recv(5*time.Second))
		if r.Error != nil || string(r.ID) != string(r.Result) {
			t.Fatalf("reply id %s result %s error %v; want the id echoed as the result", r.ID, r.Result, r.Error)
		}
		seen[string(r.ID)] = true
	}
	if len(seen) != calls {
		t.Fatalf("got replies for %d distinct ids, want %d", len(seen), calls)
	}
	if n := g.maxRunning(); n != limit {
		t.Fatalf("%d calls ran at once, want %d", n, limit)
	}
}

func TestBatchOverLimitIsOneError(t *testing.T) {
	const maxBatch = 3
	ts := newTestServer(t, rpc.Limits{MaxBatch: maxBatch}, nil)
	batchOf := func(n int) string {
		calls := make([]string, n)
		for i := range calls {
			calls[i] = fmt.Sprintf(`{"jsonrpc":"2.0","method":"get_data","id":%d}`, i)
		}
		return "[" + strings.Join(calls, ",") + "]"
	}
	full := []want{{id: `0`, result: `["hello",5]`}, {id: `1`, result: `["hello",5]`}, {id: `2`, result: `["hello",5]`}}
	tooLong := []want{{id: `null`, code: rpc.CodeInvalidRequest}}

	c := ts.dial()
	checkReply(t, c.call(batchOf(maxBatch)), true, full)
	checkReply(t, c.call(batchOf(maxBatch+1)), false, tooLong)

	_, body := ts.post(batchOf(maxBatch))
	checkReply(t, body, true, full)
	_, body = ts.post(batchOf(maxBatch + 1))
	checkReply(t, body, false, tooLong)
}

func TestSocketOnlyMethods(t *testing.T) {
	note, err := rpc.NewNotification("test.note", map[string]int{"n": 1})
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, rpc.Limits{}, func(reg *rpc.Registry) {
		rpc.Register(reg, rpc.Method{Name: "test.subscribe", NeedsSocket: true},
			func(_ context.Context, s *rpc.Session, _ none) (string, error) {
				return s.Transport(), nil
			})
		// test.notify reports what Session.Notify returned.
		rpc.Register(reg, rpc.Method{Name: "test.notify"},
			func(_ context.Context, s *rpc.Session, _ none) (string, error) {
				switch err := s.Notify(note); {
				case err == nil:
					return "sent", nil
				case errors.Is(err, rpc.ErrNoSocket):
					return "no socket", nil
				default:
					return err.Error(), nil
				}
			})
	})

	_, body := ts.post(`{"jsonrpc":"2.0","method":"test.subscribe","id":1}`)
	checkReply(t, body, false, []want{{id: `1`, code: rpc.CodeSocketRequired}})
	_, body = ts.post(`{"jsonrpc":"2.0","method":"test.notify","id":2}`)
	checkReply(t, body, false, []want{{id: `2`, result: `"no socket"`}})

	c := ts.dial()
	checkReply(t, c.call(`{"jsonrpc":"2.0","method":"test.subscribe","id":1}`), false,
		[]want{{id: `1`, result: `"websocket"`}})
	// The notification is queued before the reply, so it arrives first.
	c.send(`{"jsonrpc":"2.0","method":"test.notify","id":2}`)
	if got := compact(c.recv(5 * time.Second)); got != `{"jsonrpc":"2.0","method":"test.note","params":{"n":1}}` {
		t.Fatalf("got %s, want the test.note notification", got)
	}
	checkReply(t, c.recv(5*time.Second), false, []want{{id: `2`, result: `"sent"`}})
}

type paramsProbe struct {
	Name  string   `json:"name"`
	Count int      `json:"count"`
	Tags  []string `json:"tags,omitempty"`
}

func TestParamErrorsNameTheParam(t *testing.T) {
	ts := newTestServer(t, rpc.Limits{}, func(reg *rpc.Registry) {
		rpc.Register(reg, rpc.Method{Name: "test.params"}, func(context.Context, *rpc.Session, paramsProbe) (int, error) {
			return 0, nil
		})
	})
	cases := []struct {
		name, params, mention string
	}{
		{"missing by name", `{"count":1}`, `"name"`},
		{"missing by position", `["a"]`, `"count"`},
		{"unknown by name", `{"name":"a","count":1,"colour":"red"}`, `"colour"`},
		{"wrong type by name", `{"name":"a","count":"many"}`, `"count"`},
		{"wrong type by position", `[1,2]`, `"name"`},
		{"wrong element type", `{"name":"a","count":1,"tags":[1]}`, `"tags"`},
		{"too many by position", `["a",1,[],4]`, `name, count, tags`},
		{"not UTF-8 by name", "{\"name\":\"a\xffb\",\"count\":1}", `"name" is not valid UTF-8`},
		{"not UTF-8 within an array", "[\"a\",1,[\"ok\",\"\xf0\x28\x8c\xbc\"]]", `"tags" is not valid UTF-8`},
	}
	c := ts.dial()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			req := `{"jsonrpc":"2.0","method":"test.params","params":` + tc.params + `,"id":1}`
			_, body := ts.post(req)
			for transport, reply := range map[string]string{"http": body, "websocket": c.call(req)} {
				r := decode(t, reply)
				if r.Error == nil || r.Error.Code != rpc.CodeInvalidParams {
					t.Fatalf("%s: reply %s, want code %d", transport, reply, rpc.CodeInvalidParams)
				}
				if !strings.Contains(r.Error.Message, tc.mention) {
					t.Errorf("%s: message %q does not mention %s", transport, r.Error.Message, tc.mention)
				}
			}
		})
	}
}

// A client that goes away while its calls run ended the connection, even
// though the cancelled calls then try to answer on a closing socket.
func TestClientGoneWithCallsInFlight(t *testing.T) {
	const conns = 50
	g := newGauge() // never opened: its calls end when cancelled
	ts := newTestServer(t, rpc.Limits{}, func(reg *rpc.Registry) {
		rpc.Register(reg, rpc.Method{Name: "test.hold"}, g.hold)
	})
	for range conns {
		c := ts.dial()
		c.send(`{"jsonrpc":"2.0","method":"test.hold","params":{"n":1},"id":1}`)
		g.waitEntered(t, 1)
		c.ws.Close(rpc.CloseNormal, "")
	}
	poll.Until(t, 5*time.Second, "every connection to be forgotten", func() bool {
		return ts.rpc.Connections() == 0
	})
	if n := ts.obs.closedFor(rpc.ReasonClient); n != conns {
		t.Fatalf("observer reported %d closes by the client, want %d; all closes: %v", n, conns, ts.obs.closedReasons())
	}
}
