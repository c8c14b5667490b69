package rpc

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/sourcegraph/jsonrpc2"
	"github.com/switchboard/switchboard/ratelimit"
)

// conn is one WebSocket connection being served. Its goroutines are the
// jsonrpc2 read loop (which owns reading; none while parked, see idle),
// one goroutine per running call (at most MaxConcurrentCalls), at most
// one running its writer, and short-lived ones for pings and the closing
// handshake. All of them end when the connection does.
type conn struct {
	srv  *Server
	ws   *websocket.Conn
	sess Session

	// ctx is cancelled when the connection ends; every call's context
	// derives from it.
	ctx    context.Context
	cancel context.CancelFunc

	handover handover
	w        writer
	sem      chan struct{}     // one slot per running call
	heavy    chan struct{}     // one slot per running call of a Heavy method; made on first use
	calls    *ratelimit.Single // nil without Limits.CallRate
	// waits is odd while the read loop waits for a free slot and counts
	// up with every such wait; see ping.
	waits atomic.Uint64
	// closing is set once the connection starts to close: no call starts
	// after it, though the read loop may still hand over calls it had
	// already read (the rest of a batch).
	closing atomic.Bool

	mu     sync.Mutex
	reason string        // why the connection ended, for metrics and logs
	closer chan struct{} // non-nil once closeWith has begun; closed when its handshake is over
	ended  sync.Once

	expiry tokenClock // guarded by mu

	released chan struct{} // closed once end has released everything
	onClose  func()        // see Server.Upgrade

	pinger *time.Timer
	// ping's own, between its runs: whether a ping awaits an answer, and
	// the read and wait counts when it was sent.
	pingSent             bool
	pingReads, pingWaits uint64

	// readGate is held by the read loop while it waits between messages
	// (idle) and by closeWith while the library closes, which reads.
	readGate sync.Mutex
	parked   atomic.Bool // its read loop has ended until the parker wakes it
	noPark   atomic.Bool // parking failed once: it reads on
	// The parker's, under its lock: c's id there, and whether c has
	// ended, after which it is not watched again.
	parkID    uint64
	unwatched bool
}

func newConn(s *Server, ws *websocket.Conn, sock *corkConn, p Peer) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{
		srv:      s,
		ws:       ws,
		sess:     Session{ID: p.ID, RemoteAddr: p.RemoteAddr},
		ctx:      ctx,
		cancel:   cancel,
		sem:      make(chan struct{}, s.limits.MaxConcurrentCalls),
		released: make(chan struct{}),
	}
	c.sess.caller.Store(&p.Caller)
	c.sess.conn = c
	c.w = newWriter(c, sock)
	sock.beforeRead = c.w.release
	sock.pinged = c.pong
	if l := s.limits; l.CallRate > 0 {
		c.calls = ratelimit.NewSingle(l.CallRate, l.CallBurst)
	}
	return c
}

func (c *conn) start() {
	c.ws.SetReadLimit(c.srv.limits.MaxMessageSize)
	c.pinger = time.AfterFunc(c.srv.limits.PingInterval, c.ping)
	caller := c.sess.Caller()
	c.mu.Lock()
	c.armExpiry(caller.ExpiresAt)
	c.mu.Unlock()
	c.srv.log.Debug("connection opened", "conn", c.sess.ID, "user", caller.User, "remote", c.sess.RemoteAddr)
	if c.srv.parker != nil && c.w.sock.parkable {
		context.AfterFunc(c.ctx, c.wake) // a parked connection's end needs its read loop
	}
	c.read()
}

// notify queues n for this connection. See Session.Notify.
func (c *conn) notify(n Notification) error {
	run, err := c.w.enqueue(n.frame, notificationFrame)
	switch {
	case err == nil:
		c.srv.obs.NotificationSent()
		if run {
			c.w.run(notifier)
		}
	case errors.Is(err, ErrSlowConsumer):
		c.srv.obs.NotificationDropped()
		c.closeSlow()
	default:
		c.srv.obs.NotificationDropped()
	}
	return err
}

// closeSlow closes a client that cannot keep up with its notifications,
// without waiting to write what is queued: the queue is what is too long.
func (c *conn) closeSlow() {
	c.closeWith(CloseSlowConsumer, "slow consumer: reconnect and recover", ReasonSlowConsumer, false)
}

// Handle implements jsonrpc2.Handler. It runs in jsonrpc2's read loop, so
// when MaxConcurrentCalls calls are running it waits, and the client's
// further messages stay unread until a slot frees up. Calls run in the
// connection's context, not in that of the jsonrpc2 connection, which
// ends when the connection parks.
func (c *conn) Handle(_ context.Context, _ *jsonrpc2.Conn, r *jsonrpc2.Request) {
	ctx := c.ctx
	cl, ok := c.handover.take()
	if !ok {
		c.srv.log.Error("jsonrpc2 handed over a call the stream did not read", "conn", c.sess.ID, "method", r.Method)
		return
	}
	if c.closing.Load() {
		cl.turn.end(true)
		return
	}
	if reply, refused := c.admit(&cl.req); refused {
		cl.turn.end(true)
		if c.deliver(cl, reply, nil) {
			c.w.run(readLoop)
		}
		return
	}
	m := c.srv.reg.lookup(cl.req.method)
	if m != nil && m.Inline {
		c.runInline(ctx, cl, m)
		return
	}
	if !c.takeSlot(ctx) {
		cl.turn.end(true)
		c.srv.gate.leave()
		return
	}
	go func() {
		// The slot is held until the reply is queued, so that a client
		// that does not read its replies stops being read from; it is
		// let go before draining, which may go on as long as others
		// keep queueing.
		reply, after, heavy := c.run(ctx, cl, m)
		cl.turn.end(true) // if nothing placed it: the call did not run
		write := c.deliver(cl, reply, after)
		if heavy != nil {
			release(heavy)
		}
		<-c.sem
		c.srv.gate.leave()
		if write {
			c.w.run(callGoroutine)
		}
	}()
}

// admit lets a call in, counting it in the server's gate, or returns the
// reply that refuses it (nil for a notification) and true: when the
// connection calls too fast, or the server is shutting down.
func (c *conn) admit(req *request) (refusal []byte, refused bool) {
	if c.calls != nil {
		if ok, wait := c.calls.Allow(); !ok {
			return c.srv.tooFast(req, wait), true
		}
	}
	if !c.srv.gate.enter() {
		return c.srv.refuse(req), true
	}
	return nil, false
}

// runInline runs cl, a call of an Inline method m, on the read loop, and
// holds its reply back for the calls read with it; see heldReplyFrame.
func (c *conn) runInline(ctx context.Context, cl call, m *method) {
	var reply []byte
	var after func()
	if cl.batch != nil && cl.batch.spent() {
		reply = c.srv.overBudget(&cl.req)
	} else {
		reply, after = c.srv.invoke(ctx, &c.sess, &cl.req, m, nil)
	}
	reply, after = cl.complete(reply, after)
	if reply != nil {
		if run, _ := c.w.enqueue(reply, heldReplyFrame); run {
			c.w.run(readLoop)
		}
	}
	if after != nil {
		after()
	}
	// Only now: Shutdown must not close the writer between the call and
	// its reply.
	c.srv.gate.leave()
}

// run runs cl, a call of m, unless it belongs to a batch whose replies
// have passed their budget. A call of a Heavy method first takes one of
// the connection's slots, which it holds until its reply is queued (run
// returns them as heavy, for the caller to release then): what a client
// that reads nothing makes the server hold is then the send queue and
// those replies. It also holds one
// of the server's while it runs, which bounds the memory that reads and
// encoding take at once; not while its reply waits for room, or clients
// that stop reading could keep everyone else's history reads waiting.
func (c *conn) run(ctx context.Context, cl call, m *method) (reply []byte, after func(), heavy chan struct{}) {
	// Its turn first: a later call of the batch holding the slots while
	// it waits for this one would never let this one run.
	if !cl.turn.wait(ctx) {
		cl.turn.skip()
		return c.srv.notRun(ctx, &cl.req, cl.turn), nil, nil
	}
	if m != nil && m.Heavy {
		slots := c.heavySlots()
		if err := acquire(ctx, slots); err != nil {
			return c.srv.answer(&cl.req, ErrorFrom(err)), nil, nil
		}
		if err := acquire(ctx, c.srv.heavy); err != nil {
			release(slots)
			return c.srv.answer(&cl.req, ErrorFrom(err)), nil, nil
		}
		defer release(c.srv.heavy)
		heavy = slots
	}
	// After the waits: the calls before it in the batch may have spent the
	// budget meanwhile.
	if cl.batch != nil && cl.batch.spent() {
		cl.turn.end(true)
		return c.srv.overBudget(&cl.req), nil, heavy
	}
	reply, after = c.srv.invoke(ctx, &c.sess, &cl.req, m, cl.turn)
	return reply, after, heavy
}

// heavySlots returns the connection's slots for Heavy calls, made when
// first needed: most connections never make one, and idle ones are many.
func (c *conn) heavySlots() chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.heavy == nil {
		c.heavy = make(chan struct{}, heavyPerConn)
	}
	return c.heavy
}

// takeSlot takes a call slot, waiting for one if need be. While it waits
// the read loop reads nothing, the client's pongs included, so the wait
// is recorded in waits for ping to see.
func (c *conn) takeSlot(ctx context.Context) bool {
	if ctx.Err() != nil {
		return false
	}
	select {
	case c.sem <- struct{}{}:
		return true
	default:
	}
	// Replies held back must not wait for a slot to free up.
	c.w.release()
	c.waits.Add(1)
	defer c.waits.Add(1)
	select {
	case c.sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// deliver queues reply, or files it with its batch and queues the batch's
// reply once every call of it has finished, and then runs what was to run
// after it. It reports whether the caller must run the writer.
func (c *conn) deliver(cl call, reply []byte, after func()) (run bool) {
	reply, after = cl.complete(reply, after)
	if reply != nil {
		run = c.send(reply)
	}
	if after != nil {
		after()
	}
	return run
}

// send queues a reply, waiting for room, and reports whether the caller
// must run the writer.
func (c *conn) send(frame []byte) (run bool) {
	run, _ = c.w.enqueue(frame, replyFrame) // fails only once the connection is closing
	return run
}

// writeFailed ends the connection whose writer gave up after err.
func (c *conn) writeFailed(err error) {
	// A write refused because the connection is already closing did not
	// end it, and whoever is closing it will finish; cutting the socket
	// now could lose the close frame on its way to the client.
	if !errors.Is(err, net.ErrClosed) {
		reason := ReasonWriteError
		if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
			reason = ReasonClient // it went away while we wrote: not a failure of ours
		}
		c.setReason(reason)
		c.cancel()
	}
}

// ping sends the client a ping and, PongTimeout later, drops it unless
// something has been read from it since: its pong, or anything else,
// proves it alive. A pong can only be read while the read loop reads; if
// the loop stopped to wait for a call slot, the client is waiting for
// us, not dead. The ping is written by the writer, not by the websocket
// library, whose Ping would wait for its pong on a read loop, which a
// parked connection has not (see idle).
func (c *conn) ping() {
	if c.closing.Load() {
		return // and the timer stays stopped
	}
	l := c.srv.limits
	if c.pingSent {
		c.pingSent = false
		waits := c.pingWaits
		stalled := waits%2 == 1 || c.waits.Load() != waits
		if c.w.sock.reads.Load() == c.pingReads && !stalled {
			c.closeWith(ClosePingTimeout, "ping timeout", ReasonPingTimeout, false)
			return
		}
		c.pinger.Reset(max(l.PingInterval-l.PongTimeout, 0))
		return
	}
	c.pingReads, c.pingWaits = c.w.sock.reads.Load(), c.waits.Load()
	run, err := c.w.enqueue(pingFrame, notificationFrame)
	if err != nil {
		// A queue full of notifications: the writer is at work, and the
		// client will be dropped if it does not catch up.
		c.pinger.Reset(l.PingInterval)
		return
	}
	if run {
		c.w.run(callGoroutine)
	}
	c.pingSent = true
	c.pinger.Reset(l.PongTimeout)
}

// closeWith starts closing the connection with a close frame of code. With
// flush, messages already queued are written first. The handshake runs in
// its own goroutine, bounded by the websocket library's timeouts, so that
// callers on hot paths never wait for it.
func (c *conn) closeWith(code websocket.StatusCode, text, reason string, flush bool) {
	c.mu.Lock()
	if c.closer != nil {
		c.mu.Unlock()
		return
	}
	closer := make(chan struct{})
	c.closer = closer
	if c.reason == "" {
		c.reason = reason
	}
	c.mu.Unlock()
	c.closing.Store(true)
	c.w.sock.stopAwait() // the read loop must not hold the close up (see idle)

	c.w.close(flush)
	go func() {
		defer close(closer)
		if flush {
			<-c.w.whenDrained()
		}
		c.readGate.Lock() // see idle
		c.ws.Close(code, text)
		c.readGate.Unlock()
		c.cancel()
	}()
}

func (c *conn) setReason(reason string) {
	c.mu.Lock()
	if c.reason == "" {
		c.reason = reason
	}
	c.mu.Unlock()
}

// end releases everything the connection holds. It runs once, when the
// read loop stops.
func (c *conn) end() {
	c.ended.Do(func() {
		c.setReason(ReasonClient)
		c.closing.Store(true) // before stopping the timer: ping must not re-arm it
		c.pinger.Stop()
		c.mu.Lock()
		c.expiry.stop()
		closer := c.closer
		c.mu.Unlock()
		if closer != nil {
			// Let the close frame we chose reach the client.
			<-closer
		}
		c.cancel()
		c.w.close(false)
		c.srv.parker.forget(c)
		c.ws.CloseNow()
		<-c.w.whenDrained()
		c.srv.forget(c)
		c.mu.Lock()
		reason := c.reason
		c.mu.Unlock()
		c.srv.obs.ConnClosed(reason)
		c.srv.log.Debug("connection closed", "conn", c.sess.ID, "reason", reason)
		if c.onClose != nil {
			c.onClose()
		}
		close(c.released)
	})
}
