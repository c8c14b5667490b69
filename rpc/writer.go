package rpc

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// writer owns what a connection writes: the send queue, the corked
// socket that turns a drain of it into one system call, and the replies
// of inline calls held back for the read loop.
//
// It has no goroutine of its own, so that an idle connection holds none:
// whoever enqueue elects writes, through run, until the queue is empty.
// Frames go in through enqueue, held replies out through release, and
// close ends it all.
type writer struct {
	// c is the connection written to. The writer takes its socket,
	// context and write timeout from there, rather than copies of them:
	// idle connections are many.
	c    *conn
	q    outbox
	sock *corkConn
	// held is set while replies of inline calls wait in the queue with
	// nobody elected to write them; see release.
	held atomic.Bool
	// delayed is set while the drainer elected is the delayer's, not yet
	// at work: a reply queued meanwhile takes the drain over, as replies
	// never wait for the write delay.
	delayed atomic.Bool
}

// frameKind says what a frame is, which decides what enqueue does when
// the queue is full.
type frameKind uint8

const (
	// replyFrame waits for room: a client that pipelines calls without
	// reading the replies slows only itself.
	replyFrame frameKind = iota
	// notificationFrame is refused with ErrSlowConsumer: the notifier
	// must not wait for this client.
	notificationFrame
	// heldReplyFrame is the reply of an inline call, enqueued by the read
	// loop: it waits for the calls read with it, and leaves with their
	// replies when release is called. When it may not wait (see
	// outbox.hold), it is a replyFrame.
	heldReplyFrame
)

// drainer says who runs the writer, which decides how long it may write.
type drainer uint8

const (
	// readLoop writes what is queued now and hands the rest to a
	// goroutine: it must not be kept from reading by a stream of
	// notifications for its client.
	readLoop drainer = iota
	// callGoroutine is the goroutine of a call, which may write until
	// the queue is empty.
	callGoroutine
	// bystander must not wait for this client's socket (jsonrpc2's own
	// send, a close): the writing gets a goroutine of its own.
	bystander
	// notifier is a bystander whose writing may wait for
	// Limits.WriteDelay, for more notifications to go with it.
	notifier
)

func newWriter(c *conn, sock *corkConn) writer {
	l := c.srv.limits
	return writer{c: c, q: newOutbox(l.SendQueue, l.SendQueueBytes), sock: sock}
}

// enqueue queues frame and reports whether the caller was elected to
// write the queue: it must then call run. It fails with ErrSlowConsumer
// for a notification that finds the queue full, and with errConnClosed
// once the writer is closed; a reply gives up waiting for room when the
// connection ends.
func (w *writer) enqueue(frame []byte, kind frameKind) (run bool, err error) {
	switch kind {
	case notificationFrame:
		return w.q.push(frame, false, w.c.ctx.Done())
	case heldReplyFrame:
		if w.q.hold(frame) {
			w.held.Store(true)
			return false, nil
		}
		// It leaves now, and the replies held before it along with it.
		w.held.Store(false)
	}
	run, err = w.q.push(frame, true, w.c.ctx.Done())
	return run || err == nil && w.takeOver(), err
}

// takeOver makes the caller the drainer in the delayer's place, when the
// delayer holds the drain: exactly one of the two gets it.
func (w *writer) takeOver() bool { return w.delayed.CompareAndSwap(true, false) }

// run writes the queue, as the drainer enqueue (or release) elected.
func (w *writer) run(by drainer) {
	switch by {
	case notifier:
		if d := w.c.srv.delayer; d != nil {
			w.delayed.Store(true)
			d.hold(w)
			return
		}
		go w.drain(nil)
	case bystander:
		go w.drain(nil)
	case callGoroutine:
		// Calls often finish together, as when a group commit answers a
		// hundred publishes at once. Letting the goroutines already
		// woken queue their replies first costs a trip through the
		// scheduler and sends them all in one write, not one write each.
		runtime.Gosched()
		w.drain(nil)
	case readLoop:
		frames := w.q.next()
		if frames == nil {
			return
		}
		w.writeOut(frames)
		if more := w.q.next(); more != nil {
			go w.drain(more)
		}
	}
}

// drain is the one loop that writes: frames (or, when nil, what is
// queued), then what is queued meanwhile, until the queue is empty and
// the drainer's role ends.
func (w *writer) drain(frames [][]byte) {
	if frames == nil {
		frames = w.q.next()
	}
	for ; frames != nil; frames = w.q.next() {
		w.writeOut(frames)
	}
}

// release writes the replies held back for the read loop, unless someone
// already is. Only the read loop calls it: the corked socket does before
// each read from the network, for the replies of the calls that came in
// the same read must leave before the read loop waits for more.
func (w *writer) release() {
	if w.held.Swap(false) && (w.q.kick() || w.takeOver()) {
		w.run(readLoop)
	}
}

// close refuses further frames. With flush, what is queued, held replies
// included, is still written; without, it is dropped.
func (w *writer) close(flush bool) {
	w.q.close()
	if !flush {
		w.q.discard()
		return
	}
	if w.q.kick() {
		w.run(bystander) // close is called on hot paths, which must not wait
	}
}

// whenDrained returns a channel that is closed once the writer is closed
// and nothing is being written.
func (w *writer) whenDrained() <-chan struct{} { return w.q.whenDrained() }

// writeOut writes frames, a batch from next, and gives up on the
// connection if that fails.
func (w *writer) writeOut(frames [][]byte) {
	err := w.write(frames)
	w.q.written(frames)
	if err != nil {
		w.q.close()
		w.q.discard()
		w.c.writeFailed(err)
	}
}

// write writes frames within the write timeout, in one system call. The
// deadline is the socket's: a context with a deadline would cost the
// websocket library a timer per frame.
func (w *writer) write(frames [][]byte) error {
	w.sock.cork(time.Now(), w.c.srv.limits.WriteTimeout)
	var err error
	for _, f := range frames {
		if isControl(f) {
			if !w.c.closing.Load() { // nothing after the close frame
				_, err = w.sock.Write(f)
			}
		} else {
			err = w.c.ws.Write(context.Background(), websocket.MessageText, f)
		}
		if err != nil {
			break
		}
	}
	if uerr := w.sock.uncork(); err == nil && uerr != nil {
		err = fmt.Errorf("write: %w", uerr)
	}
	return err
}

// pingFrame is a ping as a server sends it: FIN, opcode 0x9, unmasked,
// no payload.
var pingFrame = []byte{0x89, 0x00}

// isControl reports whether f is a control frame, a ping or a pong,
// which the writer writes as it is, between messages; the library writes
// those whole, and its own control frames (pongs, the close) in one go
// each, so none can come between. Every other frame queued is a message,
// JSON text, which cannot start with the byte that starts a ping or a
// pong: in UTF-8 it only continues a character.
func isControl(f []byte) bool { return len(f) > 0 && (f[0] == 0x89 || f[0] == 0x8A) }
