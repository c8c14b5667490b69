package sqlite

import (
	"time"

	"github.com/switchboard/switchboard/service"
)

// commitLoop commits what is queued, in batches, until Close. Each batch
// is whatever queued up while the previous one was being written.
func (s *Store) commitLoop() {
	defer close(s.ended)
	var spare []*change
	trim := time.NewTicker(trimInterval(s.opts))
	defer trim.Stop()
	for {
		stopping := false
		select {
		case <-s.wake:
		case <-trim.C:
			s.trim()
			continue
		case <-s.stop:
			// Changes queued before the sequencer stopped are committed
			// below; later ones were refused.
			stopping = true
		}
		if batch := s.seq.take(spare); len(batch) > 0 {
			s.commit(batch)
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

// commit writes batch in one transaction, then tells the watcher and then
// the writers, in order. Once a commit has failed, nothing more is
// written: the offsets it held are lost, and writing the ones given out
// after them would leave holes.
func (s *Store) commit(batch []*change) {
	var err error
	if s.seq.failure() != nil {
		err = errFailed
	} else if werr := s.db.append(batch, s.opts.IdempotencyWindow > 0, s.opts.MaxPublications); werr != nil {
		s.opts.Logger.Error("commit failed; refusing publications from now on", "err", werr, "publications", len(batch))
		s.seq.fail(werr)
		err = errFailed
	}
	// The watcher hears of the batch before anyone is answered, the
	// repeaters of idempotency keys included: a client told "offset N"
	// must find N in what it reads next.
	if err == nil {
		s.tell(batch)
		s.seq.committed(batch)
	}
	for _, c := range batch {
		c.err = err
		close(c.done)
		c.release()
	}
}

// tell tells the watcher of batch, committed.
func (s *Store) tell(batch []*change) {
	for _, c := range batch {
		switch c.kind {
		case publication:
			s.watcher.Published(service.Position{Offset: c.pub.Offset, Epoch: c.epoch}, &c.pub)
		case removal:
			s.watcher.Removed(c.pub.Channel, service.Position{Epoch: c.epoch})
		}
	}
}

// trim deletes publications older than MaxAge and forgets idempotency
// keys older than the window. It runs on the committer, between batches.
func (s *Store) trim() {
	now := time.Now()
	if s.opts.MaxAge > 0 {
		if err := s.db.trimBefore(now.Add(-s.opts.MaxAge)); err != nil {
			s.opts.Logger.Error("trim history", "err", err)
		}
	}
	if s.opts.IdempotencyWindow <= 0 {
		return
	}
	cutoff := now.Add(-s.opts.IdempotencyWindow)
	if err := s.db.forgetKeys(cutoff); err != nil {
		s.opts.Logger.Error("forget idempotency keys", "err", err)
	}
	s.seq.forgetKeys(cutoff)
}
