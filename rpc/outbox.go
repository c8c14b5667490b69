package rpc

import (
	"errors"
	"sync"
)

// ErrSlowConsumer is returned by Notify when a client's send queue is
// full. The client has been disconnected with CloseSlowConsumer.
var ErrSlowConsumer = errors.New("rpc: client too slow, disconnected")

var errConnClosed = errors.New("rpc: connection closed")

// outbox is a connection's bounded queue of encoded messages waiting to be
// written. It holds no memory while empty, so idle connections stay cheap.
type outbox struct {
	mu     sync.Mutex
	queue  [][]byte
	limit  int
	closed bool
	space  chan struct{} // made by a waiting pusher, closed when the writer makes room
	ready  chan struct{} // has a value while messages wait
}

func newOutbox(limit int) outbox {
	return outbox{limit: limit, ready: make(chan struct{}, 1)}
}

// push queues frame. When the queue is full it fails with ErrSlowConsumer
// if wait is false, and otherwise waits for room until done is closed.
func (o *outbox) push(frame []byte, wait bool, done <-chan struct{}) error {
	o.mu.Lock()
	for len(o.queue) >= o.limit && !o.closed {
		if !wait {
			o.mu.Unlock()
			return ErrSlowConsumer
		}
		if o.space == nil {
			o.space = make(chan struct{})
		}
		space := o.space
		o.mu.Unlock()
		select {
		case <-space:
		case <-done:
			return errConnClosed
		}
		o.mu.Lock()
	}
	if o.closed {
		o.mu.Unlock()
		return errConnClosed
	}
	o.queue = append(o.queue, frame)
	o.mu.Unlock()
	select {
	case o.ready <- struct{}{}:
	default:
	}
	return nil
}

// take waits until messages are queued and returns them all, leaving
// spare (emptied) as the new queue. After close it returns what is left,
// then nil once the queue is empty.
func (o *outbox) take(spare [][]byte) [][]byte {
	for {
		o.mu.Lock()
		if len(o.queue) > 0 {
			q := o.queue
			o.queue = spare[:0]
			if o.space != nil {
				close(o.space)
				o.space = nil
			}
			o.mu.Unlock()
			return q
		}
		closed := o.closed
		o.mu.Unlock()
		if closed {
			return nil
		}
		<-o.ready
	}
}

// close refuses further messages and wakes the writer so that it can
// write what is queued and stop.
func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	if o.space != nil {
		close(o.space)
		o.space = nil
	}
	o.mu.Unlock()
	select {
	case o.ready <- struct{}{}:
	default:
	}
}

// discard drops whatever is queued, for connections closed in haste.
func (o *outbox) discard() {
	o.mu.Lock()
	o.queue = nil
	o.mu.Unlock()
}
