package embedded

import (
	"container/list"
	"context"
	"sync"
	"time"

	"github.com/switchboard/switchboard/service"
	"github.com/switchboard/switchboard/sqlite"
)

// change is one change of a channel, given its place by the sequencer
// and waiting to be committed.
type change struct {
	sqlite.Change
	release func()        // gives back the queue slot the change holds
	done    chan struct{} // closed once committed, or once the commit failed
	err     error
}

var (
	// errStopped is returned by writes after Close.
	errStopped = service.Errorf(service.EUNAVAILABLE, "the server is shutting down")
	// errFailed is returned by writes once a commit has failed.
	errFailed = service.Errorf(service.EUNAVAILABLE, "history storage failed; see the server's log")
)

// wait waits for c to be committed and returns the commit's error, or
// ctx's if it ends first.
func (c *change) wait(ctx context.Context) error {
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// slots bound the changes waiting to be committed: one slot each.
type slots chan struct{}

// reserve takes a slot, waiting for one until ctx ends, and returns the
// function that gives it back.
func (s slots) reserve(ctx context.Context) (release func(), err error) {
	select {
	case s <- struct{}{}:
		return func() { <-s }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// sequencer gives changes their places: each channel's offsets, from 1
// and rising by exactly 1, in the order changes come; its epochs; times
// that never go down along its offsets; and the idempotency keys seen in
// the window. It queues the changes in that order for the committer,
// under the same lock, so that the order they are written and fanned out
// in is the order of their offsets. It knows nothing of SQL: it loads a
// channel's state from the store when first used (see cache.go), and
// keeps it only while the channel is in use or among the recently used.
type sequencer struct {
	epoch  string        // the database's own; channels start with it
	window time.Duration // how long keys are kept; 0 keeps none
	store  store
	cache  int // how many channels not in use are kept loaded

	mu       sync.Mutex
	channels map[string]*channel // loaded, or being loaded
	idle     list.List           // of *channel not in use, most recently used first
	queue    []*change           // placed, not yet taken by the committer
	failed   error               // set when a commit failed: offsets given out were lost
	stopped  bool
}

// channel is what the sequencer knows of a channel: its place, and what
// holds it in memory.
type channel struct {
	name      string
	last      uint64    // the last offset given out, committed or not
	lastTime  time.Time // the time of publication last
	epoch     string
	keys      map[string]*keyed // nil until a key is kept
	committed service.Position  // as the fan-out was last told: where a subscriber starts

	// What holds the channel in memory; with none of them, it is idle,
	// and dropped once cache others are idler.
	pending int           // changes queued and not yet committed
	subs    bool          // it has local subscribers (fanout's First to Last)
	holds   int           // calls between hold and its release
	loading chan struct{} // closed once loaded; nil after
	idleAt  *list.Element // its place in idle, while idle
}

// keyed is a publication made with an idempotency key.
type keyed struct {
	c      *change // nil once committed
	offset uint64
	at     time.Time
}

// repeat is a publication whose key was seen: it answers first's place,
// once first (nil if already committed) is committed.
type repeat struct {
	first *change
	pos   service.Position
}

// answer answers a repeated key with its first publication's place, once
// that is committed: a client told "offset N" must find N in what it
// reads next.
func (r *repeat) answer(ctx context.Context) (service.Published, error) {
	pos := r.pos
	if r.first != nil {
		if err := r.first.wait(ctx); err != nil {
			return service.Published{}, err
		}
		pos.Epoch = r.first.Epoch
	}
	return service.Published{Position: pos, Duplicate: true}, nil
}

// newSequencer sequences channels stored in st, whose epoch is epoch,
// keeping up to cache idle channels loaded.
func newSequencer(st store, epoch string, window time.Duration, cache int) *sequencer {
	return &sequencer{epoch: epoch, window: window, store: st, cache: cache, channels: map[string]*channel{}}
}

// publish places p, made with key, and queues it, the change holding
// release; or, when key was seen within the window, returns the repeat
// and queues nothing. The caller keeps release unless a change is
// returned.
func (q *sequencer) publish(ctx context.Context, p service.Publication, key string, release func()) (c *change, again *repeat, err error) {
	err = q.use(ctx, p.Channel, func(ch *channel) error {
		if err := q.refusal(); err != nil {
			return err
		}
		if k := ch.keys[key]; key != "" && k != nil && (q.window <= 0 || time.Since(k.at) < q.window) {
			again = &repeat{first: k.c, pos: service.Position{Offset: k.offset, Epoch: ch.epoch}}
			return nil
		}
		ch.last++
		p.Offset = ch.last
		// Times never go down along a channel's offsets, so that trimming
		// by age takes the oldest offsets and leaves no holes, even when
		// two publishers' clocks were read in one order and their offsets
		// given in the other. Times are kept to the microsecond, so the
		// publication fanned out now carries the time that history will
		// show.
		p.Time = p.Time.Truncate(time.Microsecond)
		if p.Time.Before(ch.lastTime) {
			p.Time = ch.lastTime
		}
		ch.lastTime = p.Time
		c = &change{Change: sqlite.Change{Kind: sqlite.Publication, Pub: p, Epoch: ch.epoch, Key: key}, release: release, done: make(chan struct{})}
		if key != "" && q.window > 0 {
			if ch.keys == nil {
				ch.keys = map[string]*keyed{}
			}
			ch.keys[key] = &keyed{c: c, offset: p.Offset, at: p.Time}
		}
		q.enqueue(ch, c)
		return nil
	})
	return c, again, err
}

// remove starts the channel again at offset 0 in a new epoch, its keys
// forgotten, and queues the removal, which holds release. The caller
// keeps release when remove fails.
func (q *sequencer) remove(ctx context.Context, name string, release func()) (c *change, err error) {
	err = q.use(ctx, name, func(ch *channel) error {
		if err := q.refusal(); err != nil {
			return err
		}
		ch.last = 0
		ch.epoch = sqlite.NewEpoch()
		ch.keys = nil
		c = &change{Change: sqlite.Change{Kind: sqlite.Removal, Pub: service.Publication{Channel: name}, Epoch: ch.epoch}, release: release, done: make(chan struct{})}
		q.enqueue(ch, c)
		return nil
	})
	return c, err
}

// enqueue queues c, a change of ch, which stays in memory until c is
// committed: the store is behind it until then. q.mu is held.
func (q *sequencer) enqueue(ch *channel, c *change) {
	ch.pending++
	q.queue = append(q.queue, c)
}

// refusal says why no change may be queued now, if none may. q.mu is
// held.
func (q *sequencer) refusal() error {
	switch {
	case q.failed != nil:
		return errFailed
	case q.stopped:
		return errStopped
	}
	return nil
}

// take returns what is queued, leaving spare's storage as the queue.
// Only a non-empty queue is taken, or the two would end up sharing one
// array.
func (q *sequencer) take(spare []*change) []*change {
	q.mu.Lock()
	defer q.mu.Unlock()
	batch := q.queue
	if len(batch) > 0 {
		q.queue = spare[:0]
	}
	return batch
}

// committed records batch as committed, or as failed when ok is false,
// and lets go of what of its channels it held. A committed change moves
// its channel's committed position, and lets go of its key: a repeat no
// longer waits for it. A failed change stays with its key, so that a
// repeat gets its error rather than an offset that was never written.
func (q *sequencer) committed(batch []*change, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, c := range batch {
		ch := q.channels[c.Pub.Channel] // held by c until now
		if ok {
			ch.committed = service.Position{Offset: c.Pub.Offset, Epoch: c.Epoch}
			if k := ch.keys[c.Key]; c.Key != "" && k != nil && k.c == c {
				k.c = nil
			}
		}
		ch.pending--
		q.settle(ch)
	}
}

// fail makes every later change fail: the offsets of a failed commit
// are lost, and writing the ones given out after them would leave holes.
func (q *sequencer) fail(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.failed = err
}

// failure returns the error of the commit that failed, if one did.
func (q *sequencer) failure() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.failed
}

// stop refuses every later change. It reports whether it was the first
// to.
func (q *sequencer) stop() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	first := !q.stopped
	q.stopped = true
	return first
}

// forgetKeys forgets the committed keys seen before cutoff, of the
// channels loaded; the others' are read from the store, which forgets
// them too, when they are loaded.
func (q *sequencer) forgetKeys(cutoff time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, ch := range q.channels {
		for key, k := range ch.keys {
			if k.c == nil && k.at.Before(cutoff) {
				delete(ch.keys, key)
			}
		}
	}
}
