package embedded

import (
	"sync"
	"time"

	"github.com/switchboard/switchboard/service"
	"github.com/switchboard/switchboard/sqlite"
)

// watcher is told of each committed change, in commit order, on the
// committer, before the publishers are answered; it must not block. The
// engine's is its fanout.Local.
type watcher interface {
	// Published reports p committed at pos.
	Published(pos service.Position, p *service.Publication)
	// Removed reports the channel's removal: pos is its new epoch, at
	// offset 0.
	Removed(channel string, pos service.Position)
}

// committer is the one goroutine that writes: it takes what the
// sequencer queued, commits it in one transaction, tells the watcher and
// then answers the publishers; between batches it trims.
type committer struct {
	db      *sqlite.Database
	seq     *sequencer
	watcher watcher
	opts    Options
	wake    chan struct{} // tells the committer there is work
	stop    chan struct{} // closed by close, once the sequencer refuses changes
	ended   chan struct{} // closed when the loop has returned

	// tells is held, to write, while the watcher is told of a batch and
	// the sequencer's committed positions move past it; a subscriber
	// holds it to read while it joins, and starts from the committed
	// position. Without it, a subscriber could read a position that the
	// fan-out has not been told of yet, and be given that publication
	// again; or one it has, and miss it.
	tells sync.RWMutex

	rows     []*sqlite.Change // the batch as the database takes it, reused
	trimming bool             // a trim is under way: trimStep has more to do
}

// trimRows is how many publications, or keys, one step of a trim
// deletes at most: a few milliseconds of the committer's time, after
// which a waiting commit goes first.
const trimRows = 4096

// ready is always ready to receive from.
var ready = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// startCommitter starts the committer of what seq queues; close ends it.
func startCommitter(db *sqlite.Database, seq *sequencer, w watcher, opts Options) *committer {
	cm := &committer{db: db, seq: seq, watcher: w, opts: opts,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), ended: make(chan struct{})}
	go cm.loop()
	return cm
}

// loop commits what is queued, in batches, until close. Each batch is
// whatever queued up while the previous one was being written.
func (cm *committer) loop() {
	defer close(cm.ended)
	var spare []*change
	trim := time.NewTicker(trimInterval(cm.opts))
	defer trim.Stop()
	for {
		stopping := false
		var more chan struct{} // nil: blocks
		if cm.trimming {
			more = ready
		}
		select {
		case <-cm.wake:
		case <-trim.C:
			cm.trimming = true
			continue
		case <-more:
			// A trim step and a waiting commit are both ready: select
			// takes either, so a long trim and commits take turns.
			cm.trimming = cm.trimStep()
			continue
		case <-cm.stop:
			// Changes queued before the sequencer stopped are committed
			// below; later ones were refused.
			stopping = true
		}
		if batch := cm.seq.take(spare); len(batch) > 0 {
			cm.commit(batch)
			clear(batch)
			spare = batch
		}
		if stopping {
			return
		}
	}
}

func trimInterval(o Options) time.Duration {
	d := time.Minute
	for _, w := range []time.Duration{o.MaxAge / 10, o.IdempotencyWindow / 10} {
		if w > 0 && w < d {
			d = w
		}
	}
	return max(d, 100*time.Millisecond)
}

// wakeUp tells the committer that a change is queued. A wake it finds
// with nothing queued is harmless.
func (cm *committer) wakeUp() {
	select {
	case cm.wake <- struct{}{}:
	default:
	}
}

// close stops the committer once what was queued before it is committed;
// later changes are refused. It may be called more than once.
func (cm *committer) close() {
	if cm.seq.stop() {
		close(cm.stop)
	}
	<-cm.ended
}

// commit writes batch in one transaction, then tells the watcher and then
// the writers, in order. Once a commit has failed, nothing more is
// written: the offsets it held are lost, and writing the ones given out
// after them would leave holes.
func (cm *committer) commit(batch []*change) {
	var err error
	if cm.seq.failure() != nil {
		err = errFailed
	} else if werr := cm.append(batch); werr != nil {
		cm.opts.Logger.Error("commit failed; refusing publications from now on", "err", werr, "publications", len(batch))
		cm.seq.fail(werr)
		err = errFailed
	}
	// The watcher hears of the batch before anyone is answered, the
	// repeaters of idempotency keys included: a client told "offset N"
	// must find N in what it reads next.
	if err == nil {
		cm.tells.Lock()
		cm.tell(batch)
		cm.seq.committed(batch, true)
		cm.tells.Unlock()
	} else {
		cm.seq.committed(batch, false)
	}
	for _, c := range batch {
		c.err = err
		close(c.done)
		c.release()
	}
}

// append writes batch to the database in one transaction.
func (cm *committer) append(batch []*change) error {
	for _, c := range batch {
		cm.rows = append(cm.rows, &c.Change)
	}
	err := cm.db.Append(cm.rows)
	clear(cm.rows)
	cm.rows = cm.rows[:0]
	return err
}

// tell tells the watcher of batch, committed.
func (cm *committer) tell(batch []*change) {
	for _, c := range batch {
		switch c.Kind {
		case sqlite.Publication:
			cm.watcher.Published(service.Position{Offset: c.Pub.Offset, Epoch: c.Epoch}, &c.Pub)
		case sqlite.Removal:
			cm.watcher.Removed(c.Pub.Channel, service.Position{Epoch: c.Epoch})
		}
	}
}

// trim trims until there is nothing left to trim.
func (cm *committer) trim() {
	for cm.trimStep() {
	}
}

// trimStep deletes up to trimRows of the publications older than MaxAge
// and of the idempotency keys older than the window, and reports whether
// there may be more. It runs between batches, so that no commit is under
// way. A channel whose history is all trimmed keeps its row in the
// channels table, which the sequencer loads its position from: see the
// package doc.
func (cm *committer) trimStep() (more bool) {
	now := time.Now()
	if cm.opts.MaxAge > 0 {
		n, err := cm.db.TrimBefore(now.Add(-cm.opts.MaxAge), trimRows)
		if err != nil {
			cm.opts.Logger.Error("trim history", "err", err)
		}
		if err == nil && n == trimRows {
			return true
		}
	}
	if cm.opts.IdempotencyWindow <= 0 {
		return false
	}
	cutoff := now.Add(-cm.opts.IdempotencyWindow)
	n, err := cm.db.ForgetKeys(cutoff, trimRows)
	if err != nil {
		cm.opts.Logger.Error("forget idempotency keys", "err", err)
	}
	if err == nil && n == trimRows {
		return true
	}
	cm.seq.forgetKeys(cutoff)
	return false
}
