package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard/switchboard/service"
)

// write is one change waiting to be committed: a publication, or a
// channel's removal (pub.Offset 0).
type write struct {
	pub   service.Publication
	epoch string
	key   string
	done  chan struct{} // closed once committed, or once the commit failed
	err   error
}

var (
	// errStopped is returned by writes after Close.
	errStopped = service.Errorf(service.EUNAVAILABLE, "the server is shutting down")
	// errFailed is returned by writes once a commit has failed.
	errFailed = service.Errorf(service.EUNAVAILABLE, "history storage failed; see the server's log")
)

// Append gives p the channel's next offset and returns once p is
// committed. Offsets are given out in the order Append is called, and the
// committer writes in that order, so a channel's history has no holes.
//
// When ctx ends first Append returns its error, but p is committed all
// the same: once given, an offset is never taken back. Publishers that
// retry should use idempotency keys.
func (s *Store) Append(ctx context.Context, p service.Publication, key string) (service.Published, error) {
	if err := s.lockSlot(ctx); err != nil {
		return service.Published{}, err
	}
	ch := s.channel(p.Channel)
	if k := ch.keys[key]; key != "" && k != nil && (s.opts.IdempotencyWindow <= 0 || time.Since(k.at) < s.opts.IdempotencyWindow) {
		pending, offset, epoch := k.w, k.offset, ch.epoch
		s.mu.Unlock()
		<-s.slots
		return duplicate(ctx, pending, offset, epoch)
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
	w := &write{pub: p, epoch: ch.epoch, key: key, done: make(chan struct{})}
	if key != "" && s.opts.IdempotencyWindow > 0 {
		ch.keys[key] = &keyed{w: w, offset: p.Offset, at: p.Time}
	}
	s.enqueue(w)
	s.mu.Unlock()

	if err := w.wait(ctx); err != nil {
		return service.Published{}, err
	}
	return service.Published{Position: service.Position{Offset: p.Offset, Epoch: w.epoch}}, nil
}

// wait waits for w to be committed and returns the commit's error, or
// ctx's if it ends first.
func (w *write) wait(ctx context.Context) error {
	select {
	case <-w.done:
		return w.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// duplicate answers a publication whose key was seen, at offset in
// epoch, once the first publication with that key, w (nil once it was
// committed), is committed.
func duplicate(ctx context.Context, w *write, offset uint64, epoch string) (service.Published, error) {
	if w != nil {
		if err := w.wait(ctx); err != nil {
			return service.Published{}, err
		}
		epoch = w.epoch
	}
	return service.Published{Position: service.Position{Offset: offset, Epoch: epoch}, Duplicate: true}, nil
}

// Remove deletes channel's history and starts it again in a new epoch.
func (s *Store) Remove(ctx context.Context, name string) (service.Position, error) {
	if err := s.lockSlot(ctx); err != nil {
		return service.Position{}, err
	}
	ch := s.channel(name)
	ch.last = 0
	ch.epoch = newEpoch()
	clear(ch.keys)
	w := &write{pub: service.Publication{Channel: name}, epoch: ch.epoch, done: make(chan struct{})}
	s.enqueue(w)
	s.mu.Unlock()
	<-w.done // a removal is quick, and must not look undone while it is not
	return service.Position{Epoch: w.epoch}, w.err
}

// lockSlot takes a place in the queue, waiting for one, and locks s.mu.
// When it returns an error it holds neither.
func (s *Store) lockSlot(ctx context.Context) error {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.mu.Lock()
	if err := s.refuse(); err != nil {
		s.mu.Unlock()
		<-s.slots
		return err
	}
	return nil
}

// refuse says why no write may be queued now, if none may. s.mu is held.
func (s *Store) refuse() error {
	if s.failed != nil {
		return errFailed
	}
	select {
	case <-s.stop:
		return errStopped
	default:
		return nil
	}
}

// channel returns the state of the named channel, creating it. s.mu is held.
func (s *Store) channel(name string) *channel {
	ch := s.channels[name]
	if ch == nil {
		ch = &channel{epoch: s.epoch, keys: map[string]*keyed{}}
		s.channels[name] = ch
	}
	return ch
}

// enqueue queues w for the committer. s.mu is held.
func (s *Store) enqueue(w *write) {
	s.queue = append(s.queue, w)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// commitLoop commits what is queued, in batches, until Close. Each batch
// is whatever queued up while the previous one was being written.
func (s *Store) commitLoop() {
	defer close(s.ended)
	var spare []*write
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
			// Writes queued before stop was closed are committed below;
			// later ones were refused.
			stopping = true
		}
		// The queue and spare swap storage; only a non-empty queue is
		// taken, or the two would end up sharing one array.
		s.mu.Lock()
		batch := s.queue
		if len(batch) > 0 {
			s.queue = spare[:0]
		}
		s.mu.Unlock()
		if len(batch) > 0 {
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
func (s *Store) commit(batch []*write) {
	s.mu.Lock()
	failed := s.failed != nil
	onChange := s.onChange
	s.mu.Unlock()
	var err error
	if failed {
		err = errFailed
	} else if werr := s.writeBatch(batch); werr != nil {
		s.log.Error("commit failed; refusing publications from now on", "err", werr, "publications", len(batch))
		s.mu.Lock()
		s.failed = werr
		s.mu.Unlock()
		err = errFailed
	}
	// The watcher hears of the batch before anyone is answered, the
	// repeaters of idempotency keys included: a client told "offset N"
	// must find N in what it reads next.
	for _, w := range batch {
		switch {
		case err != nil:
		case w.pub.Offset == 0:
			onChange(w.pub.Channel, service.Position{Epoch: w.epoch}, nil)
		default:
			onChange(w.pub.Channel, service.Position{Offset: w.pub.Offset, Epoch: w.epoch}, &w.pub)
		}
	}
	if err == nil {
		// A failed write stays with its key, so that a repeat gets its
		// error rather than an offset that was never written.
		s.mu.Lock()
		for _, w := range batch {
			if k := s.channels[w.pub.Channel].keys[w.key]; w.key != "" && k != nil && k.w == w {
				k.w = nil
			}
		}
		s.mu.Unlock()
	}
	for _, w := range batch {
		w.err = err
		close(w.done)
		<-s.slots
	}
}

// writeBatch writes batch in one transaction, trimming each channel it
// touches to MaxPublications.
func (s *Store) writeBatch(batch []*write) error {
	ctx := context.Background()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	st := s.stmts.in(ctx, tx)
	last := map[string]*write{} // each channel's last write
	for _, w := range batch {
		last[w.pub.Channel] = w
	}
	for i := 0; i < len(batch); {
		w := batch[i]
		if w.pub.Offset == 0 {
			if err := st.remove(ctx, w.pub.Channel); err != nil {
				return err
			}
			i++
			continue
		}
		// Runs of publications go in as multi-row inserts: SQLite's cost
		// is mostly per statement, not per row.
		j := i + 1
		for j < len(batch) && j-i < insertRows && batch[j].pub.Offset != 0 {
			j++
		}
		if err := st.insert(ctx, batch[i:j], s.opts.IdempotencyWindow > 0); err != nil {
			return err
		}
		i = j
	}
	for name, w := range last {
		if _, err := st.upsertChannel.ExecContext(ctx, name, w.epoch, int64(w.pub.Offset)); err != nil {
			return fmt.Errorf("update channel %s: %w", name, err)
		}
		if max := uint64(s.opts.MaxPublications); max > 0 && w.pub.Offset > max {
			if _, err := st.trim.ExecContext(ctx, name, int64(w.pub.Offset-max)); err != nil {
				return fmt.Errorf("trim %s: %w", name, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// trim deletes publications older than MaxAge and forgets idempotency
// keys older than the window. It runs on the committer, between batches.
func (s *Store) trim() {
	ctx := context.Background()
	now := time.Now()
	if s.opts.MaxAge > 0 {
		if _, err := s.w.ExecContext(ctx, `DELETE FROM publications WHERE time < ?`, now.Add(-s.opts.MaxAge).UnixMicro()); err != nil {
			s.log.Error("trim history", "err", err)
		}
	}
	if s.opts.IdempotencyWindow <= 0 {
		return
	}
	cutoff := now.Add(-s.opts.IdempotencyWindow)
	if _, err := s.w.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE time < ?`, cutoff.UnixMicro()); err != nil {
		s.log.Error("forget idempotency keys", "err", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.channels {
		for key, k := range ch.keys {
			if k.w == nil && k.at.Before(cutoff) {
				delete(ch.keys, key)
			}
		}
	}
}
