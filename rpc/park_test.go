//go:build linux

package rpc_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/rpc"
)

// parkLimits park a connection 50ms after its client's last message.
var parkLimits = rpc.Limits{ParkAfter: 50 * time.Millisecond}

// sessions is where test.listen keeps the sessions to notify.
type sessions struct {
	mu   sync.Mutex
	list []*rpc.Session
}

func (s *sessions) register(reg *rpc.Registry) {
	rpc.Register(reg, rpc.Method{Name: "test.listen"}, func(_ context.Context, sess *rpc.Session, _ none) (bool, error) {
		s.mu.Lock()
		s.list = append(s.list, sess)
		s.mu.Unlock()
		return true, nil
	})
}

func (s *sessions) notifyAll(t *testing.T, n int) {
	t.Helper()
	note, err := rpc.NewNotification("test.note", []int{n})
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sess := range s.list {
		if err := sess.Notify(note); err != nil {
			t.Fatalf("notify: %v", err)
		}
	}
}

func TestIdleConnectionsParkAndWake(t *testing.T) {
	var ss sessions
	ts := newTestServer(t, parkLimits, ss.register)
	base := settledGoroutines()

	const conns = 20
	clients := make([]*wsClient, conns)
	for i := range clients {
		clients[i] = ts.dial()
		checkReply(t, clients[i].call(`{"jsonrpc":"2.0","method":"test.listen","id":1}`), false, []want{{id: `1`, result: `true`}})
	}
	poll.Until(t, 5*time.Second, "every connection to park", func() bool {
		return rpc.ParkedConns(ts.rpc) == conns
	})
	// A parked connection holds no goroutine; the clients' own are not
	// running either (none reads now).
	if n := settledGoroutines(); n > base+conns/2 {
		t.Fatalf("%d goroutines with %d parked connections, %d before they opened:\n%s", n, conns, base, goroutines())
	}

	// Notifications reach parked connections, which stay parked.
	for i := range 3 {
		ss.notifyAll(t, i)
	}
	for _, c := range clients {
		for i := range 3 {
			if got, want := c.recv(5*time.Second), fmt.Sprintf(`{"jsonrpc":"2.0","method":"test.note","params":[%d]}`, i); got != want {
				t.Fatalf("got %s, want %s", got, want)
			}
		}
	}
	if n := rpc.ParkedConns(ts.rpc); n != conns {
		t.Fatalf("%d connections parked after notifications, want %d", n, conns)
	}

	// Calls wake them, in a batch too.
	for _, c := range clients {
		checkReply(t, c.call(getData), false, []want{{id: `1`, result: `["hello",5]`}})
		checkReply(t, c.call(`[{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1},{"jsonrpc":"2.0","method":"sum","params":[3,4],"id":2}]`), true,
			[]want{{id: `1`, result: `3`}, {id: `2`, result: `7`}})
	}
	poll.Until(t, 5*time.Second, "every connection to park again", func() bool {
		return rpc.ParkedConns(ts.rpc) == conns
	})

	// The client going away ends a parked connection.
	for _, c := range clients {
		c.ws.Close(websocket.StatusNormalClosure, "")
	}
	poll.Until(t, 5*time.Second, "every connection to be forgotten", func() bool {
		return ts.rpc.Connections() == 0
	})
	if n := ts.obs.closedFor(rpc.ReasonClient); n != conns {
		t.Fatalf("observer reported %d closes by the client, want %d; all closes: %v", n, conns, ts.obs.closedReasons())
	}
	// The parker's goroutine ends with the last connection it watched.
	poll.Until(t, 5*time.Second, "the goroutines to end", func() bool { return runtime.NumGoroutine() <= base })
}

// Answering pings reads from a parked connection: the pongs must not
// keep it awake, nor be missed.
func TestParkedConnectionAnswersPings(t *testing.T) {
	t.Parallel()
	limits := pingLimits
	limits.ParkAfter = parkLimits.ParkAfter
	ts := newTestServer(t, limits, nil)
	c := ts.dial()
	read := make(chan error, 1)
	go func() {
		_, err := c.read(3 * pingWatch) // answers pings while it reads
		read <- err
	}()
	poll.Until(t, 5*time.Second, "the connection to park", func() bool { return rpc.ParkedConns(ts.rpc) == 1 })

	// Some 25 pings, each answered, each pong read and taken off by the
	// parked connection: it is parked most of the time.
	parked, samples := 0, 0
	for start := time.Now(); time.Since(start) < pingWatch; samples++ {
		parked += rpc.ParkedConns(ts.rpc)
		time.Sleep(10 * time.Millisecond)
	}
	if parked < samples/2 {
		t.Fatalf("parked in %d of %d samples: pongs keep it awake", parked, samples)
	}
	select {
	case err := <-read:
		t.Fatalf("connection ended: %v (ping timeouts: %d)", err, ts.obs.closedFor(rpc.ReasonPingTimeout))
	default:
	}
	c.send(getData)
	if err := <-read; err != nil {
		t.Fatalf("read: %v", err)
	}
}

// A parked client that answers nothing is dropped, and a server that
// shuts down closes parked connections, and forgets them, even when the
// client does not answer the close.
func TestParkedConnectionsEnd(t *testing.T) {
	t.Parallel()
	limits := parkLimits
	limits.PingInterval, limits.PongTimeout = 100*time.Millisecond, 200*time.Millisecond
	ts := newTestServer(t, limits, nil)
	c := ts.dial()
	checkReply(t, c.call(getData), false, []want{{id: `1`, result: `["hello",5]`}})
	poll.Until(t, 15*time.Second, "the silent peer to be dropped", func() bool {
		return ts.obs.closedFor(rpc.ReasonPingTimeout) == 1
	})

	ts2 := newTestServer(t, parkLimits, nil)
	quiet := ts2.dial() // reads nothing: the close handshake never ends
	listening := ts2.dial()
	checkReply(t, quiet.call(getData), false, []want{{id: `1`, result: `["hello",5]`}})
	poll.Until(t, 5*time.Second, "both to park", func() bool { return rpc.ParkedConns(ts2.rpc) == 2 })
	codes := make(chan websocket.StatusCode, 1)
	go func() { codes <- listening.closeCode(5 * time.Second) }()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	ts2.rpc.Shutdown(ctx)
	if code := <-codes; code != rpc.CloseGoingAway {
		t.Fatalf("close code %d, want %d", code, rpc.CloseGoingAway)
	}
	poll.Until(t, 10*time.Second, "both connections to be forgotten", func() bool {
		return ts2.rpc.Connections() == 0
	})
}

// Clients that call about as often as connections park make them park
// and wake all the time: no call may be lost or wait for the next.
func TestParkingUnderChurn(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, rpc.Limits{ParkAfter: 2 * time.Millisecond}, nil)
	var wg sync.WaitGroup
	for range 8 {
		c := ts.dial()
		wg.Go(func() {
			for i := range 100 {
				time.Sleep(time.Duration(rand.IntN(4000)) * time.Microsecond)
				msg := fmt.Sprintf(`{"jsonrpc":"2.0","method":"sum","params":[%d,1],"id":%d}`, i, i)
				if i%10 == 0 {
					c.send(`{"jsonrpc":"2.0","method":"notify_sum","params":[1]}`)
				}
				c.send(msg)
				got, err := c.read(5 * time.Second)
				if err != nil {
					t.Errorf("call %d: %v", i, err)
					return
				}
				if want := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"result":%d}`, i, i+1); got != want {
					t.Errorf("got %s, want %s", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// Calls that come with the handshake, more than one read's buffer of
// them, are all answered even though nothing follows them.
func TestParkingWithEarlyCalls(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, rpc.Limits{ParkAfter: 20 * time.Millisecond}, nil)
	var frames [][]byte
	const calls = 40 // some 2.5 KiB
	for i := range calls {
		frames = append(frames, maskedTextFrame(fmt.Sprintf(`{"jsonrpc":"2.0","method":"sum","params":[%d,1],"id":%d}`, i, i)))
	}
	conn, br := dialWithFrames(t, ts, frames...)
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	want := map[string]bool{}
	for i := range calls {
		want[fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"result":%d}`, i, i+1)] = true
	}
	for range calls { // in any order: the calls run at once
		got := readServerFrame(t, br)
		if !want[got] {
			t.Fatalf("unexpected or repeated reply %s", got)
		}
		delete(want, got)
	}
}

// A client's ping to a parked connection is answered with its payload,
// and does not keep the connection awake.
func TestParkedConnectionAnswersClientPings(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, parkLimits, nil)
	conn, br := dialWithFrames(t, ts)
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	for round := range 3 {
		if _, err := conn.Write(maskedTextFrame(getData)); err != nil {
			t.Fatal(err)
		}
		checkReply(t, readServerFrame(t, br), false, []want{{id: `1`, result: `["hello",5]`}})
		poll.Until(t, 5*time.Second, "the connection to park", func() bool { return rpc.ParkedConns(ts.rpc) == 1 })

		payload := fmt.Sprintf("ping %d", round)
		mask := [4]byte{9, 8, 7, 6}
		ping := []byte{0x89, 0x80 | byte(len(payload)), mask[0], mask[1], mask[2], mask[3]}
		for i := range len(payload) {
			ping = append(ping, payload[i]^mask[i%4])
		}
		if _, err := conn.Write(ping); err != nil {
			t.Fatal(err)
		}
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, h[1]&0x7F)
		if _, err := io.ReadFull(br, got); err != nil {
			t.Fatal(err)
		}
		if h[0] != 0x8A || h[1]&0x80 != 0 || string(got) != payload {
			t.Fatalf("answer %#x %#x %q, want an unmasked pong with %q", h[0], h[1], got, payload)
		}
		// Well past ParkAfter: parked again, if it ever woke.
		time.Sleep(4 * parkLimits.ParkAfter)
		if n := rpc.ParkedConns(ts.rpc); n != 1 {
			t.Fatalf("%d connections parked after the ping, want 1", n)
		}
	}
}
