package rpc

import (
	"github.com/sourcegraph/jsonrpc2"
)

// Parking. jsonrpc2 keeps two goroutines per connection, and their stacks
// were most of what an idle connection cost. So when a client has sent
// nothing for Limits.ParkAfter and none of its calls is running, its
// connection parks: the read loop tells jsonrpc2 that the stream ended,
// both goroutines end, and the server's parker watches the socket. When
// the client sends again, goes away, or the connection is closed from
// this side, the connection gets a new jsonrpc2 connection, which reads
// and dispatches as before. Nothing else waits for the read loop:
// notifications are written by whoever queues them, and pings are
// answered by any read (see ping).

// idle waits between messages for the client's next one, and reports
// whether the read loop should park: nothing came within ParkAfter, and
// no call is running. While calls run it goes on waiting, ParkAfter at a
// time.
func (c *conn) idle() bool {
	if c.srv.parker == nil || !c.w.sock.parkable || c.noPark.Load() {
		return false
	}
	// The websocket library reads the client's close frame itself once it
	// has sent one (see closeWith), from the same buffers.
	c.readGate.Lock()
	defer c.readGate.Unlock()
	for !c.closing.Load() && c.ctx.Err() == nil && !c.w.sock.buffered() {
		c.w.release() // replies held back leave before the wait
		if c.w.sock.await(c.srv.limits.ParkAfter) {
			return false
		}
		if len(c.sem) == 0 {
			return !c.closing.Load()
		}
	}
	return false
}

// park hands the socket to the parker, once jsonrpc2 has let go of the
// stream. A connection that cannot park reads on as before.
func (c *conn) park() {
	c.parked.Store(true)
	if err := c.srv.parker.register(c); err != nil {
		c.noPark.Store(true)
		c.srv.log.Warn("connection cannot park; it keeps its read loop", "conn", c.sess.ID, "err", err)
		c.wake()
		return
	}
	if c.ctx.Err() != nil {
		c.wake() // it ended meanwhile: its read loop must see it
	}
}

// pong answers a ping that the read loop took off the socket itself.
func (c *conn) pong(payload []byte) {
	frame := append([]byte{0x8A, byte(len(payload))}, payload...)
	if run, err := c.w.enqueue(frame, notificationFrame); err == nil && run {
		c.w.run(readLoop)
	}
}

// wake gives a parked connection a read loop again. The parker calls it
// when the socket is readable, and the connection's end when it comes.
func (c *conn) wake() {
	if c.parked.CompareAndSwap(true, false) {
		c.read()
	}
}

// read starts a read loop: jsonrpc2's, on the connection's stream.
func (c *conn) read() {
	jsonrpc2.NewConn(c.ctx, &parsingStream{c: c}, c, jsonrpc2.SetLogger(c.srv.jsonrpc2Log))
}
