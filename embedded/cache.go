package embedded

import (
	"context"

	"github.com/switchboard/switchboard/service"
	"github.com/switchboard/switchboard/sqlite"
)

// store is where the sequencer reads a channel's state from when it
// first needs it: the database, which has every committed change.
type store interface {
	Load(ctx context.Context, channel string) (sqlite.Stored, error)
}

// The sequencer keeps a channel's state in memory only while something
// holds it there: changes queued and not yet committed (the store is
// behind them), local subscribers (the fan-out starts each from the
// committed position kept here, see subscribed), or a caller between
// hold and release. Any other channel is idle: kept while it is among
// the cache most recently used, so that a busy channel is not read again
// for every publication, and then dropped. A channel dropped and loaded
// again comes back as it was, since the store has all of it: its
// position, its latest time and its keys within the window.
//
// Loading reads the store without q.mu, which every publication needs:
// a placeholder in channels (loading not nil) makes the others who want
// the channel meanwhile wait for it, and keeps it out of idle, so that
// nobody places a change on a channel not yet read.

var errNotLoaded = service.Errorf(service.EINTERNAL, "channel state not loaded")

// use calls fn with the named channel's state, q.mu held, loading it
// first when it is not in memory, and then settles the channel: fn may
// have made it busy or idle. Whoever loads a channel uses it before
// anyone else can settle it: a channel dropped as soon as it is idle
// (no cache) would otherwise go again between its load and its use.
func (q *sequencer) use(ctx context.Context, name string, fn func(ch *channel) error) error {
	for {
		q.mu.Lock()
		ch := q.channels[name]
		if loading := ch.loadingNow(); loading != nil {
			q.mu.Unlock()
			select {
			case <-loading:
			case <-ctx.Done():
				return ctx.Err()
			}
			continue // loaded, or dropped when loading failed
		}
		var err error
		if ch == nil {
			ch = &channel{name: name, loading: make(chan struct{})}
			q.channels[name] = ch
			q.mu.Unlock()
			st, lerr := q.store.Load(ctx, name)
			q.mu.Lock()
			err = q.loaded(ch, st, lerr)
		}
		if err == nil {
			err = fn(ch)
			q.settle(ch)
		}
		q.mu.Unlock()
		return err
	}
}

// loadingNow returns ch's loading, nil when ch is nil or loaded.
func (ch *channel) loadingNow() chan struct{} {
	if ch == nil {
		return nil
	}
	return ch.loading
}

// loaded fills ch, a placeholder, with st, read from the store, and
// tells whoever waits for it. When the read failed (err), ch is dropped,
// and they try again. q.mu is held.
func (q *sequencer) loaded(ch *channel, st sqlite.Stored, err error) error {
	close(ch.loading)
	ch.loading = nil
	if err != nil {
		delete(q.channels, ch.name)
		if refusal := q.refusal(); refusal != nil {
			return refusal // the store closed under us: say why
		}
		return err
	}
	ch.last, ch.epoch, ch.lastTime, ch.committed = st.Position.Offset, st.Position.Epoch, st.LastTime, st.Position
	if len(st.Keys) > 0 {
		ch.keys = make(map[string]*keyed, len(st.Keys))
		for _, k := range st.Keys {
			ch.keys[k.Key] = &keyed{offset: k.Offset, at: k.Time}
		}
	}
	return nil
}

// settle moves ch into idle, most recently used, or out of it when
// something holds it, and drops the idlest channels beyond the cache.
// q.mu is held.
func (q *sequencer) settle(ch *channel) {
	if ch.pending > 0 || ch.subs || ch.holds > 0 || ch.loading != nil {
		if ch.idleAt != nil {
			q.idle.Remove(ch.idleAt)
			ch.idleAt = nil
		}
		return
	}
	if ch.idleAt != nil {
		q.idle.MoveToFront(ch.idleAt)
	} else {
		ch.idleAt = q.idle.PushFront(ch)
	}
	for q.idle.Len() > q.cache {
		old := q.idle.Remove(q.idle.Back()).(*channel)
		old.idleAt = nil
		delete(q.channels, old.name)
	}
}

// hold loads the named channel and keeps it in memory until release is
// called.
func (q *sequencer) hold(ctx context.Context, name string) (release func(), err error) {
	var held *channel
	err = q.use(ctx, name, func(ch *channel) error {
		ch.holds++
		held = ch
		return nil
	})
	if err != nil {
		return nil, err
	}
	return func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		held.holds--
		q.settle(held)
	}, nil
}

// settled returns the channel's committed position, and whether no
// removal is under way: its epoch as placed is still the committed one.
// Until a removal queued is told, the database may already hold the new
// epoch's history while the committed position is still the old one's.
func (q *sequencer) settled(ctx context.Context, name string) (pos service.Position, ok bool, err error) {
	err = q.use(ctx, name, func(ch *channel) error {
		pos, ok = ch.committed, ch.epoch == ch.committed.Epoch
		return nil
	})
	return pos, ok, err
}

// subscribed marks the channel, held, as having local subscribers, and
// returns its committed position, where the first of them starts: the
// fan-out's First hook. The committer moves that position and tells the
// fan-out under one lock that Subscribe also takes, so the subscriber
// gets every change after it and none up to it.
func (q *sequencer) subscribed(name string) (service.Position, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	ch := q.channels[name]
	if ch == nil || ch.loading != nil {
		return service.Position{}, errNotLoaded // Subscribe holds it: a bug
	}
	ch.subs = true
	q.settle(ch)
	return ch.committed, nil
}

// unsubscribed marks the channel as having no local subscribers left:
// the fan-out's Last hook.
func (q *sequencer) unsubscribed(name string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if ch := q.channels[name]; ch != nil {
		ch.subs = false
		q.settle(ch)
	}
}

// inMemory reports how many channels are in memory, and how many of
// them are idle: for tests and measurements.
func (q *sequencer) inMemory() (all, idle int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.channels), q.idle.Len()
}
