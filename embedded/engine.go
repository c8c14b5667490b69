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
	// Logger gets the engine's errors.
	Logger *slog.Logger
}

// DefaultOptions are the values of Options' zero fields. A queue of
// 65536 holds about a second of the most one node commits.
var DefaultOptions = Options{
	QueueSize: 65536,
	Logger:    slog.New(slog.DiscardHandler),
}

func (o Options) withDefaults() Options {
	d := DefaultOptions
	d.MaxPublications, d.MaxAge, d.IdempotencyWindow = o.MaxPublications, o.MaxAge, o.IdempotencyWindow // zero: no limit
	if o.QueueSize > 0 {
		d.QueueSize = o.QueueSize
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
	db, st, err := sqlite.Open(path, sqlite.Options{MaxPublications: opts.MaxPublications, KeyWindow: opts.IdempotencyWindow})
	if err != nil {
		return nil, err
	}
	seq := newSequencer(st, opts.IdempotencyWindow)
	// Every committed change reaches the fan-out whether or not anyone
	// here subscribes: no hooks.
	local := fanout.New(st.Epoch, seq.positions(), fanout.Hooks{})
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
	c, again, err := e.seq.publish(p, key, release)
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
	c, err := e.seq.remove(name, release)
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
		pos := e.local.Position(name)
		rq := q
		if rq.Before == 0 || rq.Before > pos.Offset+1 {
			rq.Before = pos.Offset + 1
		}
		pubs, err := e.db.Read(ctx, name, rq)
		if err != nil {
			return service.History{}, err
		}
		// A removal between the two reads would pass off the new
		// epoch's publications as the old one's.
		if e.local.Position(name).Epoch == pos.Epoch {
			return service.History{Publications: pubs, Position: pos}, nil
		}
	}
}

// Subscribe implements service.Engine.
func (e *Engine) Subscribe(ctx context.Context, name string, r service.Receiver, joinLeave bool) (service.Position, error) {
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

// Channels implements service.Engine.
func (e *Engine) Channels(_ context.Context, prefix string, visible func(string) bool, limit int) ([]service.ChannelInfo, bool, error) {
	infos, more := e.local.Channels(prefix, visible, limit)
	return infos, more, nil
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
