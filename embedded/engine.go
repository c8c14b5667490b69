// Package embedded is the engine a single Switchboard node runs on its
// own: sequencing and group commit in this process, history in SQLite
// (package sqlite), fan-out and presence through package fanout.
//
// A publication goes: Publish reserves a queue slot → the sequencer
// gives it its offset, epoch and time and queues it, under one lock →
// the committer goroutine takes everything queued as one batch → writes
// it in one transaction → tells the fanout.Local of each change, in
// order → answers the publishers and gives back their slots. Offsets are
// given and queued under one lock so that a channel is written and
// fanned out in offset order; the fan-out is told before anyone is
// answered so that a publisher told "offset N" finds N in what it reads
// next; and nothing is fanned out before it is on disk.
//
// A channel's state is in memory only while the channel is in use: the
// sequencer loads it from the database when a publish, subscribe or read
// first needs it, and drops it once nothing holds it and other channels
// were used since (see cache.go); the fan-out keeps only channels with
// local subscribers. Opening reads no channel, and channelList pages
// through the database's index of names. A channel whose history has all
// expired (MaxAge) keeps its row in the channels table, its epoch and
// last offset, and nothing else: a client holding {epoch, offset N} must
// never be told that a new publication at N is the one it saw. Keeping
// the row, rather than forgetting it and giving the channel a new epoch,
// keeps what the Redis engine and earlier versions do: numbering goes on,
// and a client that saw the last offset still recovers, having missed
// nothing, however long it was away. The row costs some 40 bytes of disk
// and no memory.
package embedded

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/switchboard/switchboard/fanout"
	"github.com/switchboard/switchboard/service"
	"github.com/switchboard/switchboard/sqlite"
)

// Options configure an Engine. Zero fields take DefaultOptions' values;
// for MaxPublications, MaxAge and IdempotencyWindow that is 0: no limit,
// and no keys remembered.
type Options struct {
	// MaxPublications is the most publications kept per channel.
	MaxPublications int
	// MaxAge is how long publications are kept.
	MaxAge time.Duration
	// IdempotencyWindow is how long an idempotency key is remembered.
	IdempotencyWindow time.Duration
	// QueueSize bounds the changes waiting to be committed; further
	// publishers wait.
	QueueSize int
	// CachedChannels is how many channels not in use stay in memory,
	// the most recently used, so that a channel published to now and
	// then is not read from the database each time; below 0, none do.
	CachedChannels int
	// Logger gets the engine's errors.
	Logger *slog.Logger
}

// DefaultOptions are the values of Options' zero fields. A queue of
// 65536 holds about a second of the most one node commits; 4096 cached
// channels are about a megabyte.
var DefaultOptions = Options{
	QueueSize:      65536,
	CachedChannels: 4096,
	Logger:         slog.New(slog.DiscardHandler),
}

func (o Options) withDefaults() Options {
	d := DefaultOptions
	d.MaxPublications, d.MaxAge, d.IdempotencyWindow = o.MaxPublications, o.MaxAge, o.IdempotencyWindow // zero: no limit
	if o.QueueSize > 0 {
		d.QueueSize = o.QueueSize
	}
	if o.CachedChannels != 0 {
		d.CachedChannels = max(o.CachedChannels, 0)
	}
	if o.Logger != nil {
		d.Logger = o.Logger
	}
	return d
}

// Engine implements service.Engine over a SQLite history, fanning out
// locally.
type Engine struct {
	db      *sqlite.Database
	seq     *sequencer
	slots   slots // one per queued change: bounds the queue
	commits *committer
	local   *fanout.Local
}

var _ service.Engine = (*Engine)(nil)

// Open opens (creating if need be) the history at path and starts
// committing to it, until Close.
func Open(path string, opts Options) (*Engine, error) {
	opts = opts.withDefaults()
	db, err := sqlite.Open(path, sqlite.Options{MaxPublications: opts.MaxPublications, KeyWindow: opts.IdempotencyWindow})
	if err != nil {
		return nil, err
	}
	seq := newSequencer(db, db.Epoch(), opts.IdempotencyWindow, opts.CachedChannels)
	// The fan-out keeps a channel only while it has subscribers here; the
	// first starts from the sequencer's committed position, which holds
	// the channel in memory until the last leaves.
	local := fanout.New(db.Epoch(), nil, fanout.Hooks{
		First: func(_ context.Context, name string, _ service.Position) (service.Position, error) {
			return seq.subscribed(name)
		},
		Last: seq.unsubscribed,
	})
	return &Engine{db: db, seq: seq, slots: make(slots, opts.QueueSize),
		commits: startCommitter(db, seq, local, opts), local: local}, nil
}

// Publish implements service.Engine: it gives p the channel's next
// offset and returns once p is committed and fanned out. Offsets are
// given out in the order Publish is called, and the committer writes in
// that order, so a channel's history has no holes.
//
// When ctx ends first Publish returns its error, but p is committed all
// the same: once given, an offset is never taken back. Publishers that
// retry should use idempotency keys.
func (e *Engine) Publish(ctx context.Context, p service.Publication, key string) (service.Published, error) {
	release, err := e.slots.reserve(ctx)
	if err != nil {
		return service.Published{}, err
	}
	c, again, err := e.seq.publish(ctx, p, key, release)
	if c == nil {
		release()
	}
	if err != nil {
		return service.Published{}, err
	}
	service.Placed(ctx)
	if again != nil {
		return again.answer(ctx)
	}
	e.commits.wakeUp()
	if err := c.wait(ctx); err != nil {
		return service.Published{}, err
	}
	return service.Published{Position: service.Position{Offset: c.Pub.Offset, Epoch: c.Epoch}}, nil
}

// Remove implements service.Engine: it deletes channel's history and
// starts it again in a new epoch.
func (e *Engine) Remove(ctx context.Context, name string) (service.Position, error) {
	release, err := e.slots.reserve(ctx)
	if err != nil {
		return service.Position{}, err
	}
	c, err := e.seq.remove(ctx, name, release)
	if err != nil {
		release()
		return service.Position{}, err
	}
	service.Placed(ctx)
	e.commits.wakeUp()
	<-c.done // a removal is quick, and must not look undone while it is not
	return service.Position{Epoch: c.Epoch}, c.err
}

// History implements service.Engine. The publications read are never
// beyond the position returned with them.
func (e *Engine) History(ctx context.Context, name string, q service.HistoryQuery) (service.History, error) {
	for {
		// With a removal under way, before the read or during it, the
		// database may hold the new epoch's publications while pos is
		// still the old one's: they would be passed off as its. The
		// committer tells of a removal within its batch; try again then.
		pos, settled, err := e.seq.settled(ctx, name)
		if err != nil {
			return service.History{}, err
		}
		if settled {
			rq := q
			if rq.Before == 0 || rq.Before > pos.Offset+1 {
				rq.Before = pos.Offset + 1
			}
			pubs, err := e.db.Read(ctx, name, rq)
			if err != nil {
				return service.History{}, err
			}
			now, settled, err := e.seq.settled(ctx, name)
			if err != nil {
				return service.History{}, err
			}
			if settled && now.Epoch == pos.Epoch {
				return service.History{Publications: pubs, Position: pos}, nil
			}
		}
		select {
		case <-time.After(100 * time.Microsecond):
		case <-ctx.Done():
			return service.History{}, ctx.Err()
		}
	}
}

// Subscribe implements service.Engine. The channel is loaded first,
// and held while r joins: the fan-out's First hook reads its committed
// position from the sequencer, with the fan-out's lock of the channel
// held, which must not wait for the database. The committer's tells lock
// keeps the batch being told from passing the subscriber half-told.
func (e *Engine) Subscribe(ctx context.Context, name string, r service.Receiver, joinLeave bool) (service.Position, error) {
	release, err := e.seq.hold(ctx, name)
	if err != nil {
		return service.Position{}, err
	}
	defer release()
	e.commits.tells.RLock()
	defer e.commits.tells.RUnlock()
	return e.local.Subscribe(ctx, name, r, joinLeave)
}

// Unsubscribe implements service.Engine.
func (e *Engine) Unsubscribe(name string, r service.Receiver) bool {
	return e.local.Unsubscribe(name, r)
}

// Presence implements service.Engine: on one node, the local
// subscribers are all of them.
func (e *Engine) Presence(_ context.Context, name string) ([]service.Member, error) {
	return e.local.Presence(name), nil
}

// Err reports why the engine refuses writes: a commit failed. It is nil
// while the engine works.
func (e *Engine) Err() error {
	if err := e.seq.failure(); err != nil {
		return fmt.Errorf("history storage failed: %w", err)
	}
	return nil
}

// Close stops committing, once what was queued is committed and fanned
// out, and closes the history. Writes after Close fail.
func (e *Engine) Close() error {
	e.commits.close()
	return e.db.Close()
}
