// Package sqlite keeps channels' histories in a SQLite database: the
// embedded engine's durable log.
//
// It uses modernc.org/sqlite, a translation of SQLite's C source to Go,
// so that the binary needs no cgo and cross-compiles like any Go program;
// it is the pure-Go driver most of the ecosystem uses. The database runs
// in WAL mode with synchronous=FULL: a publication is acknowledged only
// once its transaction is on disk. Many publications share a transaction
// (group commit), so the cost of that sync is paid per batch, not per
// publication.
//
// A Store is three parts with one owner each: the sequencer gives every
// change its place (offsets, epochs, times, idempotency keys) in memory,
// the committer goroutine writes what queued up in one transaction and
// then tells the Watcher and the publishers, and the database stores,
// reads and trims.
package sqlite

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/switchboard/switchboard/service"
)

// Options configure a Store. Zero fields take DefaultOptions' values;
// for MaxPublications, MaxAge and IdempotencyWindow that is 0: no limit,
// and no keys remembered.
type Options struct {
	// MaxPublications is the most publications kept per channel.
	MaxPublications int
	// MaxAge is how long publications are kept.
	MaxAge time.Duration
	// IdempotencyWindow is how long an idempotency key is remembered.
	IdempotencyWindow time.Duration
	// QueueSize bounds the publications waiting to be committed; further
	// publishers wait.
	QueueSize int
	// Logger gets the store's errors.
	Logger *slog.Logger
}

// DefaultOptions are the values of Options' zero fields. A queue of
// 65536 holds about a second of the most one node commits.
var DefaultOptions = Options{
	QueueSize: 65536,
	Logger:    slog.New(slog.DiscardHandler),
}

func (o Options) withDefaults() Options {
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultOptions.QueueSize
	}
	if o.Logger == nil {
		o.Logger = DefaultOptions.Logger
	}
	return o
}

// Watcher is told of each committed change, in commit order, on the
// committing goroutine, before the publishers are answered; it must not
// block. The embedded engine's fan-out is one.
type Watcher interface {
	// Published reports p committed at pos.
	Published(pos service.Position, p *service.Publication)
	// Removed reports the channel's removal: pos is its new epoch, at
	// offset 0.
	Removed(channel string, pos service.Position)
}

// Store is a SQLite-backed history of publications. Offsets are assigned
// in memory, in publish order, and made durable in batches by one
// committing goroutine; see Append.
type Store struct {
	db    *database
	seq   *sequencer
	opts  Options
	slots slots         // one per queued change: bounds the queue
	wake  chan struct{} // tells the committer there is work
	stop  chan struct{} // closed by Close, once the sequencer refuses changes
	ended chan struct{} // closed when the committer has returned

	watcher Watcher // set by Watch, before the first change
}

// Open opens (creating if need be) the database at path.
func Open(path string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	db, st, err := openDatabase(path, opts.IdempotencyWindow)
	if err != nil {
		return nil, err
	}
	s := &Store{
		db: db, seq: newSequencer(st, opts.IdempotencyWindow), opts: opts,
		slots:   make(slots, opts.QueueSize),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		ended:   make(chan struct{}),
		watcher: ignore{},
	}
	go s.commitLoop()
	return s, nil
}

// ignore is the Watcher of a store nobody watches.
type ignore struct{}

func (ignore) Published(service.Position, *service.Publication) {}
func (ignore) Removed(string, service.Position)                 {}

// Watch sets the Watcher told of each committed change. Call it before
// the first Append.
func (s *Store) Watch(w Watcher) {
	s.watcher = w
}

// Append gives p the channel's next offset and returns once p is
// committed. Offsets are given out in the order Append is called, and the
// committer writes in that order, so a channel's history has no holes.
//
// When ctx ends first Append returns its error, but p is committed all
// the same: once given, an offset is never taken back. Publishers that
// retry should use idempotency keys.
func (s *Store) Append(ctx context.Context, p service.Publication, key string) (service.Published, error) {
	release, err := s.slots.reserve(ctx)
	if err != nil {
		return service.Published{}, err
	}
	c, again, err := s.seq.publish(p, key, release)
	if c == nil {
		release()
	}
	if err != nil {
		return service.Published{}, err
	}
	if again != nil {
		return again.answer(ctx)
	}
	s.wakeCommitter()
	if err := c.wait(ctx); err != nil {
		return service.Published{}, err
	}
	return service.Published{Position: service.Position{Offset: c.pub.Offset, Epoch: c.epoch}}, nil
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
		pos.Epoch = r.first.epoch
	}
	return service.Published{Position: pos, Duplicate: true}, nil
}

// Remove deletes channel's history and starts it again in a new epoch.
func (s *Store) Remove(ctx context.Context, name string) (service.Position, error) {
	release, err := s.slots.reserve(ctx)
	if err != nil {
		return service.Position{}, err
	}
	c, err := s.seq.remove(name, release)
	if err != nil {
		release()
		return service.Position{}, err
	}
	s.wakeCommitter()
	<-c.done // a removal is quick, and must not look undone while it is not
	return service.Position{Epoch: c.epoch}, c.err
}

// wakeCommitter tells the committer that a change is queued. A wake it
// finds with nothing queued is harmless.
func (s *Store) wakeCommitter() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Err reports why the store refuses writes: a commit failed. It is nil
// while the store works.
func (s *Store) Err() error {
	if err := s.seq.failure(); err != nil {
		return fmt.Errorf("history storage failed: %w", err)
	}
	return nil
}

// Epoch is the epoch of channels that were never removed.
func (s *Store) Epoch() string { return s.seq.epoch }

// Positions returns the position of every channel the store knows: the
// committed ones, while no Append or Remove is under way. Open has read
// them already.
func (s *Store) Positions() map[string]service.Position {
	return s.seq.positions()
}

// Read returns publications of channel as q selects them. Limit 0 reads
// none.
func (s *Store) Read(ctx context.Context, channel string, q service.HistoryQuery) ([]service.Publication, error) {
	return s.db.read(ctx, channel, q)
}

// Close stops committing, once what is queued is committed, and closes
// the database. Appends after Close fail.
func (s *Store) Close() error {
	if s.seq.stop() {
		close(s.stop)
	}
	<-s.ended
	return s.db.close()
}
