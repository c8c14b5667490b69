package rpc

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/sourcegraph/jsonrpc2"
)

// Conn is one WebSocket connection being served. Its goroutines are the
// jsonrpc2 read loop (which owns reading), a writer that drains the
// outbox, one goroutine per running call (at most MaxConcurrentCalls),
// and short-lived ones for pings and the closing handshake. All of them
// end when the connection does.
type Conn struct {
	srv  *Server
	ws   *websocket.Conn
	sess Session

	// ctx is cancelled when the connection ends; every call's context
	// derives from it.
	ctx    context.Context
	cancel context.CancelFunc

	in  inbox
	out outbox
	sem chan struct{} // one slot per running call
	// waits is odd while the read loop waits for a free slot and counts
	// up with every such wait; see ping.
	waits atomic.Uint64

	mu     sync.Mutex
	reason string        // why the connection ended, for metrics and logs
	closer chan struct{} // non-nil once closeWith has begun; closed when its handshake is over
	ended  sync.Once

	writerDone chan struct{}
	done       chan struct{} // closed once everything is released
	pinger     *time.Timer
	expiry     *time.Timer
}

func newConn(s *Server, ws *websocket.Conn, sess Session) *Conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Conn{
		srv:        s,
		ws:         ws,
		sess:       sess,
		ctx:        ctx,
		cancel:     cancel,
		out:        newOutbox(s.limits.SendQueue),
		sem:        make(chan struct{}, s.limits.MaxConcurrentCalls),
		writerDone: make(chan struct{}),
		done:       make(chan struct{}),
	}
	c.sess.conn = c
	return c
}

func (c *Conn) start() {
	c.ws.SetReadLimit(c.srv.limits.MaxMessageSize)
	go c.writeLoop()
	c.pinger = time.AfterFunc(c.srv.limits.PingInterval, c.ping)
	if exp := c.sess.Caller.ExpiresAt; !exp.IsZero() {
		c.expiry = time.AfterFunc(time.Until(exp), func() {
			c.closeWith(CloseTokenExpired, "token expired", ReasonTokenExpired, true)
		})
	}
	c.srv.log.Debug("connection opened", "conn", c.sess.ID, "user", c.sess.Caller.User, "remote", c.sess.RemoteAddr)
	jsonrpc2.NewConn(c.ctx, &stream{c: c}, c, jsonrpc2.SetLogger(c.srv.jsonrpc2Log))
}

// Notify queues n for this connection. See Session.Notify.
func (c *Conn) Notify(n Notification) error {
	err := c.out.push(n.frame, false, c.ctx.Done())
	switch {
	case err == nil:
		c.srv.obs.NotificationSent()
	case errors.Is(err, ErrSlowConsumer):
		c.srv.obs.NotificationDropped()
		c.closeWith(CloseSlowConsumer, "slow consumer: reconnect and recover", ReasonSlowConsumer, false)
	default:
		c.srv.obs.NotificationDropped()
	}
	return err
}

// Handle implements jsonrpc2.Handler. It runs in jsonrpc2's read loop, so
// when MaxConcurrentCalls calls are running it waits, and the client's
// further messages stay unread until a slot frees up.
func (c *Conn) Handle(ctx context.Context, _ *jsonrpc2.Conn, r *jsonrpc2.Request) {
	cl, ok := c.in.take(r.ID.Num)
	if !ok {
		c.srv.log.Error("jsonrpc2 handed over a call the stream did not read", "conn", c.sess.ID, "id", r.ID.String())
		return
	}
	if !c.srv.gate.enter() {
		c.deliver(cl, c.srv.refuse(&cl.req))
		return
	}
	if !c.takeSlot(ctx) {
		c.srv.gate.leave()
		return
	}
	go func() {
		defer func() {
			<-c.sem
			c.srv.gate.leave()
		}()
		c.deliver(cl, c.srv.invoke(ctx, &c.sess, &cl.req))
	}()
}

// takeSlot takes a call slot, waiting for one if need be. While it waits
// the read loop reads nothing, the client's pongs included, so the wait
// is recorded in waits for ping to see.
func (c *Conn) takeSlot(ctx context.Context) bool {
	select {
	case c.sem <- struct{}{}:
		return true
	default:
	}
	c.waits.Add(1)
	defer c.waits.Add(1)
	select {
	case c.sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// deliver sends reply, or files it with its batch and sends the batch's
// reply once every call of it has finished.
func (c *Conn) deliver(cl call, reply []byte) {
	if cl.batch != nil {
		reply = cl.batch.finish(cl.slot, reply)
	}
	if reply != nil {
		c.send(reply)
	}
}

// send queues a reply, waiting for room: a client that pipelines calls
// without reading the replies slows only itself.
func (c *Conn) send(frame []byte) {
	_ = c.out.push(frame, true, c.ctx.Done()) // fails only once the connection is closing
}

func (c *Conn) writeLoop() {
	defer close(c.writerDone)
	var spare [][]byte
	for {
		frames := c.out.take(spare)
		if frames == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.srv.limits.WriteTimeout)
		for i, f := range frames {
			if err := c.ws.Write(ctx, websocket.MessageText, f); err != nil {
				cancel()
				c.out.close()
				c.out.discard()
				// A write refused because the connection is already
				// closing did not end it, and whoever is closing it will
				// finish; cutting the socket now could lose the close
				// frame on its way to the client.
				if !errors.Is(err, net.ErrClosed) {
					c.setReason(ReasonWriteError)
					c.cancel()
				}
				return
			}
			frames[i] = nil
		}
		cancel()
		spare = frames
	}
}

func (c *Conn) ping() {
	waits := c.waits.Load()
	ctx, cancel := context.WithTimeout(c.ctx, c.srv.limits.PongTimeout)
	err := c.ws.Ping(ctx)
	cancel()
	if c.ctx.Err() != nil {
		return
	}
	// A pong can arrive only while the read loop reads. If it stopped to
	// wait for a call slot, the client is waiting for us, not dead.
	stalled := waits%2 == 1 || c.waits.Load() != waits
	if err != nil && !stalled {
		c.closeWith(ClosePingTimeout, "ping timeout", ReasonPingTimeout, false)
		return
	}
	c.pinger.Reset(c.srv.limits.PingInterval)
}

// closeWith starts closing the connection with a close frame of code. With
// flush, messages already queued are written first. The handshake runs in
// its own goroutine, bounded by the websocket library's timeouts, so that
// callers on hot paths never wait for it.
func (c *Conn) closeWith(code websocket.StatusCode, text, reason string, flush bool) {
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

	c.out.close()
	if !flush {
		c.out.discard()
	}
	go func() {
		defer close(closer)
		if flush {
			<-c.writerDone
		}
		c.ws.Close(code, text)
		c.cancel()
	}()
}

func (c *Conn) setReason(reason string) {
	c.mu.Lock()
	if c.reason == "" {
		c.reason = reason
	}
	c.mu.Unlock()
}

// end releases everything the connection holds. It runs once, when the
// read loop stops.
func (c *Conn) end() {
	c.ended.Do(func() {
		c.setReason(ReasonClient)
		c.pinger.Stop()
		if c.expiry != nil {
			c.expiry.Stop()
		}
		c.mu.Lock()
		closer := c.closer
		c.mu.Unlock()
		if closer != nil {
			// Let the close frame we chose reach the client.
			<-closer
		}
		c.cancel()
		c.out.close()
		c.out.discard()
		c.ws.CloseNow()
		<-c.writerDone
		c.srv.forget(c)
		c.mu.Lock()
		reason := c.reason
		c.mu.Unlock()
		c.srv.obs.ConnClosed(reason)
		c.srv.log.Debug("connection closed", "conn", c.sess.ID, "reason", reason)
		close(c.done)
	})
}
