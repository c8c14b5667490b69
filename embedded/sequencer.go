package embedded

import (
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
// in is the order of their offsets. It knows nothing of SQL: it starts
// from what the database has stored.
type sequencer struct {
	epoch  string        // the database's own; channels start with it
	window time.Duration // how long keys are kept; 0 keeps none

	mu       sync.Mutex
	channels map[string]*channel
	queue    []*change // placed, not yet taken by the committer
	failed   error     // set when a commit failed: offsets given out were lost
	stopped  bool
}

// channel is what the sequencer remembers of a channel between commits.
type channel struct {
	last     uint64    // the last offset given out, committed or not
	lastTime time.Time // the time of publication last
	epoch    string
	keys     map[string]*keyed
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

// newSequencer goes on from what the database has stored.
func newSequencer(st sqlite.Stored, window time.Duration) *sequencer {
	q := &sequencer{epoch: st.Epoch, window: window, channels: make(map[string]*channel, len(st.Positions))}
	for name, pos := range st.Positions {
		q.channels[name] = &channel{last: pos.Offset, epoch: pos.Epoch, lastTime: st.LastTimes[name], keys: map[string]*keyed{}}
	}
	for _, k := range st.Keys {
		if ch := q.channels[k.Channel]; ch != nil {
			ch.keys[k.Key] = &keyed{offset: k.Offset, at: k.Time}
		}
	}
	return q
}

// publish places p, made with key, and queues it, the change holding
// release; or, when key was seen within the window, returns the repeat
// and queues nothing. The caller keeps release unless a change is
// returned.
func (q *sequencer) publish(p service.Publication, key string, release func()) (*change, *repeat, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.refusal(); err != nil {
		return nil, nil, err
	}
	ch := q.channel(p.Channel)
	if k := ch.keys[key]; key != "" && k != nil && (q.window <= 0 || time.Since(k.at) < q.window) {
		return nil, &repeat{first: k.c, pos: service.Position{Offset: k.offset, Epoch: ch.epoch}}, nil
	}
	ch.last++
	p.Offset = ch.last
	// Times never go down along a channel's offsets, so that trimming by
	// age takes the oldest offsets and leaves no holes, even when two
	// publishers' clocks were read in one order and their offsets given
	// in the other. Times are kept to the microsecond, so the publication
	// fanned out now carries the time that history will show.
	p.Time = p.Time.Truncate(time.Microsecond)
	if p.Time.Before(ch.lastTime) {
		p.Time = ch.lastTime
	}
	ch.lastTime = p.Time
	c := &change{Change: sqlite.Change{Kind: sqlite.Publication, Pub: p, Epoch: ch.epoch, Key: key}, release: release, done: make(chan struct{})}
	if key != "" && q.window > 0 {
		ch.keys[key] = &keyed{c: c, offset: p.Offset, at: p.Time}
	}
	q.queue = append(q.queue, c)
	return c, nil, nil
}

// remove starts the channel again at offset 0 in a new epoch, its keys
// forgotten, and queues the removal, which holds release. The caller
// keeps release when remove fails.
func (q *sequencer) remove(name string, release func()) (*change, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.refusal(); err != nil {
		return nil, err
	}
	ch := q.channel(name)
	ch.last = 0
	ch.epoch = sqlite.NewEpoch()
	clear(ch.keys)
	c := &change{Change: sqlite.Change{Kind: sqlite.Removal, Pub: service.Publication{Channel: name}, Epoch: ch.epoch}, release: release, done: make(chan struct{})}
	q.queue = append(q.queue, c)
	return c, nil
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

// channel returns the state of the named channel, creating it. q.mu is
// held.
func (q *sequencer) channel(name string) *channel {
	ch := q.channels[name]
	if ch == nil {
		ch = &channel{epoch: q.epoch, keys: map[string]*keyed{}}
		q.channels[name] = ch
	}
	return ch
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

// committed lets go of the keyed changes of batch, now committed: a
// repeat no longer waits for them. A failed change stays with its key,
// so that a repeat gets its error rather than an offset that was never
// written.
func (q *sequencer) committed(batch []*change) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, c := range batch {
		if k := q.channels[c.Pub.Channel].keys[c.Key]; c.Key != "" && k != nil && k.c == c {
			k.c = nil
		}
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

// forgetKeys forgets the committed keys seen before cutoff.
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

// positions returns the position of every channel the sequencer knows.
func (q *sequencer) positions() map[string]service.Position {
	q.mu.Lock()
	defer q.mu.Unlock()
	pos := make(map[string]service.Position, len(q.channels))
	for name, ch := range q.channels {
		pos[name] = service.Position{Offset: ch.last, Epoch: ch.epoch}
	}
	return pos
}
