package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/rpc"
)

// registerFlood registers test.flood, which queues n notifications of
// size bytes each and then answers with n. When Notify fails, it stops and
// reports the error on failures, which must have room for one error per
// call that fails.
func registerFlood(failures chan<- error) func(*rpc.Registry) {
	return func(reg *rpc.Registry) {
		rpc.Register(reg, rpc.Method{Name: "test.flood"}, func(_ context.Context, s *rpc.Session, p struct {
			N    int `json:"n"`
			Size int `json:"size"`
		}) (int, error) {
			note, err := rpc.NewNotification("test.flood", strings.Repeat("x", p.Size))
			if err != nil {
				return 0, err
			}
			for i := range p.N {
				if err := s.Notify(note); err != nil {
					failures <- fmt.Errorf("notification %d: %w", i, err)
					return i, err
				}
			}
			return p.N, nil
		})
	}
}

// Every flood queues exactly as many notifications as the send queue
// holds. A client that reads each reply before its next call finds the
// queue empty each time, so it never overflows, however slow the machine.
// Floods to a client that reads nothing overflow it sooner or later: at
// once when they run concurrently, at the latest when the socket buffers
// of both ends are full, which takes a few MiB; 64 floods of 512 KiB are
// well beyond that, so even a writer that kept up perfectly would be
// stopped by the client.
const (
	sendQueue = 8
	floodCall = `{"jsonrpc":"2.0","method":"test.flood","params":{"n":8,"size":65536},"id":1}`
	floods    = 64
)

// flood makes one test.flood call and reads all it brings.
func (c *wsClient) flood() {
	c.t.Helper()
	c.send(floodCall)
	for i := range sendQueue {
		if msg := c.recv(5 * time.Second); !strings.HasPrefix(msg, `{"jsonrpc":"2.0","method":"test.flood"`) {
			c.t.Fatalf("message %d: got %.80s…, want a test.flood notification", i, msg)
		}
	}
	checkReply(c.t, c.recv(5*time.Second), false, []want{{id: `1`, result: `8`}})
}

// waitSlowConsumer waits for a Notify to fail with ErrSlowConsumer. The
// other floods of the same connection may fail too, once it is closing.
func waitSlowConsumer(t *testing.T, failures <-chan error) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case err := <-failures:
			if errors.Is(err, rpc.ErrSlowConsumer) {
				return
			}
		case <-timeout:
			t.Fatal("Notify never failed with ErrSlowConsumer for a client that reads nothing")
		}
	}
}

func TestSlowConsumerIsDisconnected(t *testing.T) {
	failures := make(chan error, 2*floods)
	ts := newTestServer(t, rpc.Limits{SendQueue: sendQueue}, registerFlood(failures))
	reader := ts.dial()
	slow := ts.dial()

	for range floods {
		slow.send(floodCall) // and read nothing for now
	}
	waitSlowConsumer(t, failures)
	if _, dropped := ts.obs.notifications(); dropped == 0 {
		t.Error("observer counted no dropped notification")
	}

	// A client that keeps reading is served meanwhile, floods included.
	for range 4 {
		reader.flood()
		checkReply(t, reader.call(getData), false, []want{{id: `1`, result: `["hello",5]`}})
	}

	// When the slow client reads at last, it finds what was already in
	// flight and then the close code that says why it was dropped.
	if code := slow.closeCode(10 * time.Second); code != rpc.CloseSlowConsumer {
		t.Fatalf("close code %v, want %v", code, rpc.CloseSlowConsumer)
	}
	poll.Until(t, 10*time.Second, "the observer to report slow_consumer", func() bool {
		return ts.obs.closedFor(rpc.ReasonSlowConsumer) == 1
	})
	if n := ts.rpc.Connections(); n != 1 {
		t.Fatalf("%d connections open, want only the reader's", n)
	}
}

// A client that never reads again must still be let go. When it reads at
// last, it finds the messages that were on their way and then its close
// code: the close frame went ahead of everything still queued, which was
// dropped.
func TestSlowConsumerThatNeverReadsIsDropped(t *testing.T) {
	t.Parallel()
	failures := make(chan error, 2*floods)
	ts := newTestServer(t, rpc.Limits{SendQueue: sendQueue}, registerFlood(failures))
	slow := ts.dial()
	for range floods {
		slow.send(floodCall)
	}
	waitSlowConsumer(t, failures)
	// The websocket library gives the close frame 5s to be written and
	// the client another 5s to answer it.
	poll.Until(t, 15*time.Second, "the slow connection to be dropped", func() bool {
		return ts.rpc.Connections() == 0
	})
	if n := ts.obs.closedFor(rpc.ReasonSlowConsumer); n != 1 {
		t.Fatalf("observer reported %d slow_consumer closes, want 1", n)
	}
	if code := slow.closeCode(10 * time.Second); code != rpc.CloseSlowConsumer {
		t.Fatalf("close code %v, want %v", code, rpc.CloseSlowConsumer)
	}
}

// What the README says a client sees when the socket's buffers, its own
// and the server's, were full when the server gave up on it: the close
// frame could not be written, the server gave it the websocket library's
// 5s and dropped the connection, and the client finds what was on its way
// and then the end of the connection, without a close frame (1006 to a
// browser).
//
// The test must make the queue overflow while the writer is stuck behind
// full buffers. Notifications cannot fill the buffers first: waiting for a
// flood to be written before sending the next takes a guess at how long
// writing takes, and on a loaded machine a writer that was merely not
// scheduled yet left the queue full early, with room for the close frame
// (code 4000). A reply can: it waits for room instead of overflowing the
// queue. One far bigger than the buffers keeps the writer stuck, in the
// middle of its frame, until the connection is dropped; once its first
// bytes reach the client the writer holds it and the queue is empty, so
// that sendQueue+1 notifications overflow it then, and not before. The
// write timeout is long, so the drop owes nothing to it.
func TestSlowConsumerBehindFullBuffers(t *testing.T) {
	t.Parallel()
	const bigReply = 16 << 20 // bytes; loopback buffers take a few MiB
	failures := make(chan error, sendQueue+1)
	ts := newTestServer(t, rpc.Limits{SendQueue: sendQueue, WriteTimeout: time.Minute}, func(reg *rpc.Registry) {
		registerBig(reg)
		registerFlood(failures)(reg)
	})
	slow := ts.dial()
	slow.send(fmt.Sprintf(`{"jsonrpc":"2.0","method":"test.big","params":{"size":%d},"id":1}`, bigReply))
	// The reader's context bounds every read of the reply, to the end of
	// the test; the client reads only the start of it for now.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, reply, err := slow.ws.Reader(ctx)
	if err != nil {
		t.Fatalf("waiting for the big reply: %v", err)
	}

	slow.send(fmt.Sprintf(`{"jsonrpc":"2.0","method":"test.flood","params":{"n":%d,"size":100},"id":2}`, sendQueue+1))
	select {
	case err := <-failures:
		if !errors.Is(err, rpc.ErrSlowConsumer) {
			t.Fatalf("flood: %v, want %v", err, rpc.ErrSlowConsumer)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Notify never failed for a queue that had no room")
	}
	poll.Until(t, 15*time.Second, "the slow connection to be dropped as a slow consumer", func() bool {
		return ts.obs.closedFor(rpc.ReasonSlowConsumer) == 1
	})
	n, err := io.Copy(io.Discard, reply)
	if err == nil {
		t.Fatalf("all of the %d MiB reply arrived: the socket buffers took it, and the test needs a bigger one", bigReply>>20)
	}
	if code := websocket.CloseStatus(err); code != -1 {
		t.Fatalf("close code %v, want none: the close frame had no room", code)
	}
	t.Logf("the client got %d KiB of the reply, then %v", n>>10, err)
}

func TestDeadPeerIsDropped(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, rpc.Limits{PingInterval: 100 * time.Millisecond, PongTimeout: 200 * time.Millisecond}, nil)
	// coder/websocket answers pings only while a Read is in progress, so
	// a client that never reads looks dead.
	ts.dial()
	// Dropping takes a ping interval, a pong timeout and the close
	// handshake, which the websocket library bounds at 5s.
	poll.Until(t, 15*time.Second, "the dead peer to be dropped", func() bool {
		return ts.obs.closedFor(rpc.ReasonPingTimeout) == 1
	})
	if n := ts.rpc.Connections(); n != 0 {
		t.Fatalf("%d connections still open", n)
	}
}

// Pings come often, but a pong may take its time on a busy machine; a
// server that failed to see pongs would give up on a client well within
// pingWatch.
var pingLimits = rpc.Limits{PingInterval: 100 * time.Millisecond, PongTimeout: time.Second}

const pingWatch = 2500 * time.Millisecond

func TestLivePeerSurvivesPings(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, pingLimits, nil)
	c := ts.dial()

	// A read that is under way answers the server's pings.
	type result struct {
		msg string
		err error
	}
	read := make(chan result, 1)
	go func() {
		msg, err := c.read(3 * pingWatch)
		read <- result{msg, err}
	}()
	time.Sleep(pingWatch)
	select {
	case r := <-read:
		t.Fatalf("connection ended while the client was reading: %v", r.err)
	default:
	}
	if n := ts.obs.closedFor(rpc.ReasonPingTimeout); n != 0 {
		t.Fatalf("observer reported %d ping timeouts, want 0", n)
	}
	c.send(getData)
	select {
	case r := <-read:
		if r.err != nil {
			t.Fatalf("read: %v", r.err)
		}
		checkReply(t, r.msg, false, []want{{id: `1`, result: `["hello",5]`}})
	case <-time.After(5 * time.Second):
		t.Fatal("no reply within 5s")
	}
}

// A client whose calls fill every slot is waiting for the server, not
// dead: while the server leaves its further calls unread, it cannot read
// the client's pongs either, and must not take that for a dead peer.
func TestBusyPeerSurvivesPings(t *testing.T) {
	t.Parallel()
	g := newGauge()
	limits := pingLimits
	limits.MaxConcurrentCalls = 2
	ts := newTestServer(t, limits, func(reg *rpc.Registry) {
		rpc.Register(reg, rpc.Method{Name: "test.hold"}, g.hold)
	})
	t.Cleanup(g.open)
	c := ts.dial()

	replies := make(chan string, 3)
	go func() {
		for {
			msg, err := c.read(3 * pingWatch)
			if err != nil {
				close(replies)
				return
			}
			replies <- msg
		}
	}()
	for i := 1; i <= 3; i++ {
		c.send(fmt.Sprintf(`{"jsonrpc":"2.0","method":"test.hold","params":{"n":%d},"id":%d}`, i, i))
	}
	g.waitEntered(t, 2)
	time.Sleep(pingWatch) // the third call waits, unread, all this time
	g.open()
	for range 3 {
		select {
		case msg, ok := <-replies:
			if !ok {
				t.Fatalf("connection ended before every reply arrived (ping timeouts: %d)",
					ts.obs.closedFor(rpc.ReasonPingTimeout))
			}
			if r := decode(t, msg); r.Error != nil {
				t.Fatalf("reply %s", msg)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no reply within 5s")
		}
	}
}
