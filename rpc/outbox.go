package rpc

import (
	"errors"
	"math"
	"sync"
)

// ErrSlowConsumer is returned by Notify when a client's send queue is
// full. The client has been disconnected with CloseSlowConsumer.
var ErrSlowConsumer = errors.New("rpc: client too slow, disconnected")

var errConnClosed = errors.New("rpc: connection closed")

// outbox is a connection's bounded queue of encoded messages waiting to be
// written, the writer's. There is no goroutine waiting on it: whoever
// queues a message while nobody is writing becomes the drainer and writes
// until the queue is empty, taking along whatever others queue meanwhile.
// An idle connection thus holds neither a goroutine nor a buffer for
// writing, and a burst of messages is written in one go.
type outbox struct {
	mu    sync.Mutex
	queue [][]byte
	spare [][]byte // the drainer's last batch, reused for the next queue
	// queued and out count the bytes of the frames queued and of those
	// the drainer is writing: they are held in memory until written.
	// Notifications and replies are counted apart, each up to maxBytes,
	// so that a client that reads its megabyte history page is not taken
	// for a slow consumer by the notification that follows it. The frame
	// that reaches maxBytes may go beyond, so that a reply bigger than the
	// whole budget still goes out, and nobody waits for room that a stream
	// of small frames never leaves.
	queued, out byteCount
	maxBytes    int
	// limit is the most frames queued; an int32 beside the flags keeps
	// the conn that holds the outbox in a smaller size class.
	limit   int32
	writing bool // a drainer is at work
	closed  bool
	space   chan struct{} // made by a waiting pusher, closed when the drainer makes room
	drained chan struct{} // made by whenDrained, closed once closed and not writing
}

// byteCount counts bytes of notifications and of replies.
type byteCount struct{ notes, replies int }

func (b *byteCount) add(n int, reply bool) {
	if reply {
		b.replies += n
	} else {
		b.notes += n
	}
}

func newOutbox(limit, maxBytes int) outbox {
	return outbox{limit: int32(min(limit, math.MaxInt32)), maxBytes: maxBytes}
}

// held is the bytes of replies, or of notifications, held in memory.
func (o *outbox) held(reply bool) int {
	if reply {
		return o.queued.replies + o.out.replies
	}
	return o.queued.notes + o.out.notes
}

// full reports whether a reply, or a notification, must wait, or be
// refused, for want of room.
func (o *outbox) full(reply bool) bool {
	return len(o.queue) >= int(o.limit) || o.held(reply) >= o.maxBytes
}

// wake lets pushers waiting for room try again.
func (o *outbox) wake() {
	if o.space != nil {
		close(o.space)
		o.space = nil
	}
}

// push queues frame and reports whether the caller must now drain the
// queue (call next until it returns nil). A reply waits for room until
// stop is closed; a notification (reply false) that finds the queue full
// fails with ErrSlowConsumer.
func (o *outbox) push(frame []byte, reply bool, stop <-chan struct{}) (drain bool, err error) {
	wait := reply
	o.mu.Lock()
	for o.full(reply) && !o.closed {
		if !wait {
			o.mu.Unlock()
			return false, ErrSlowConsumer
		}
		if o.space == nil {
			o.space = make(chan struct{})
		}
		space := o.space
		o.mu.Unlock()
		select {
		case <-space:
		case <-stop:
			return false, errConnClosed
		}
		o.mu.Lock()
	}
	defer o.mu.Unlock()
	if o.closed {
		return false, errConnClosed
	}
	o.queue = append(o.queue, frame)
	o.queued.add(len(frame), reply)
	if o.writing {
		return false, nil
	}
	o.writing = true
	return true, nil
}

// hold queues frame without electing a drainer, for the reply of an
// inline call that should leave with the ones that follow it; a later
// kick starts the drain, unless a push has already. It reports false,
// queueing nothing, when the queue is closed or mayHold refuses.
func (o *outbox) hold(frame []byte) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed || !o.mayHold(len(frame)) {
		return false
	}
	o.queue = append(o.queue, frame)
	o.queued.add(len(frame), true)
	return true
}

// mayHold reports whether a frame of n bytes may wait in the queue with
// nobody writing. Such frames may take at most half the queue, in frames
// and in bytes (counting whatever else is queued too): then a full queue
// always has a drainer at work (whoever pushed the rest), and push never
// waits for room that nobody will make; notifications keep room too.
func (o *outbox) mayHold(n int) bool {
	return len(o.queue) < int(o.limit)/2 && o.held(true)+n <= o.maxBytes/2
}

// kick reports whether the caller must drain the queue: something waits in
// it and nobody is writing.
func (o *outbox) kick() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.writing || len(o.queue) == 0 {
		return false
	}
	o.writing = true
	return true
}

// next hands the drainer everything queued. When nothing is, it returns
// nil and the caller stops being the drainer.
func (o *outbox) next() [][]byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.queue) == 0 {
		o.queue = nil // an idle connection keeps no queue
		o.writing = false
		if o.closed && o.drained != nil {
			close(o.drained)
			o.drained = nil
		}
		return nil
	}
	q := o.queue
	o.queue = o.spare[:0]
	o.spare = nil
	o.out, o.queued = o.queued, byteCount{} // the batch handed out
	o.wake()
	return q
}

// written tells the outbox that a batch from next is written, which frees
// its bytes, and takes the batch back to reuse it. An idle connection
// keeps no batch: only a drainer that finds more work reuses it.
func (o *outbox) written(batch [][]byte) {
	clear(batch)
	o.mu.Lock()
	o.out = byteCount{}
	if len(o.queue) > 0 {
		o.spare = batch[:0]
	}
	o.wake()
	o.mu.Unlock()
}

// close refuses further messages. What is queued is still written unless
// discard drops it.
func (o *outbox) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	o.wake()
	if !o.writing && o.drained != nil {
		close(o.drained)
		o.drained = nil
	}
}

// discard drops whatever is queued, for connections closed in haste.
func (o *outbox) discard() {
	o.mu.Lock()
	o.queue = nil
	o.queued = byteCount{}
	o.mu.Unlock()
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// whenDrained returns a channel that is closed once the outbox is closed
// and no drainer is at work.
func (o *outbox) whenDrained() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed && !o.writing {
		return closedChan
	}
	if o.drained == nil {
		o.drained = make(chan struct{})
	}
	return o.drained
}
