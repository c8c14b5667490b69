package rpc

import (
	"sync"
	"time"
)

// delayer holds back the writers that notifications elect, for
// Limits.WriteDelay, before they drain: a connection that gets several
// notifications within the delay writes them in one system call, and
// its client reads them in one, instead of one each. A fan-out to many
// connections also leaves the publisher's reply to go first, so the next
// publication comes sooner and joins the last in those writes. Replies
// are never delayed. It is the server's one timer for this: a delay
// costs an idle connection nothing.
type delayer struct {
	delay   time.Duration
	mu      sync.Mutex
	waiting []*writer
	spare   []*writer // the last batch fired, reused
	timer   *time.Timer
}

func newDelayer(delay time.Duration) *delayer {
	d := &delayer{delay: delay}
	d.timer = time.AfterFunc(time.Hour, d.fire)
	d.timer.Stop()
	return d
}

// hold keeps w, elected to drain its queue, until the delay is over. The
// timer is never stopped while writers wait: each one's connection waits
// for its drain to end before it is released.
func (d *delayer) hold(w *writer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.waiting = append(d.waiting, w)
	if len(d.waiting) == 1 {
		d.timer.Reset(d.delay)
	}
}

// fire starts the drains of the writers held: a goroutine each, as any
// of them may block on a client that does not read.
func (d *delayer) fire() {
	d.mu.Lock()
	ws := d.waiting
	d.waiting, d.spare = d.spare[:0], nil
	d.mu.Unlock()
	for i, w := range ws {
		if w.takeOver() { // unless a reply took the drain over meanwhile
			go w.drain(nil)
		}
		ws[i] = nil
	}
	d.mu.Lock()
	if d.spare == nil && cap(ws) <= maxSpareWaiting {
		d.spare = ws[:0]
	}
	d.mu.Unlock()
}

// maxSpareWaiting keeps a burst to a million connections from pinning
// its slice.
const maxSpareWaiting = 1 << 14
