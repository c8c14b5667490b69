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
package sqlite

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"
	"unicode/utf8"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/switchboard/switchboard/service"
)

// Options configure a Store. Zero values mean no limit.
type Options struct {
	// MaxPublications is the most publications kept per channel.
	MaxPublications int
	// MaxAge is how long publications are kept.
	MaxAge time.Duration
	// IdempotencyWindow is how long an idempotency key is remembered.
	IdempotencyWindow time.Duration
	// QueueSize bounds the publications waiting to be committed; further
	// publishers wait. Default 65536.
	QueueSize int
	// Logger gets the store's errors; nil discards them.
	Logger *slog.Logger
}

// Store is a SQLite-backed history of publications. Offsets are assigned
// in memory, in publish order, and made durable in batches by one
// committing goroutine; see Append.
type Store struct {
	w, r  *sql.DB // w has one connection: SQLite has one writer at a time
	stmts *statements
	opts  Options
	log   *slog.Logger
	epoch string // the database's own; channels start with it

	slots chan struct{} // one per queued write: bounds the queue
	wake  chan struct{} // tells the committer there is work
	stop  chan struct{}
	ended chan struct{} // closed when the committer has returned

	mu       sync.Mutex
	channels map[string]*channel
	queue    []*write
	failed   error // set when a commit failed: offsets given out were lost
	onChange func(channel string, pos service.Position, p *service.Publication)
}

// channel is what the store remembers of a channel between commits.
type channel struct {
	last     uint64    // the last offset given out, committed or not
	lastTime time.Time // the time of publication last
	epoch    string
	keys     map[string]*keyed
}

// keyed is a publication made with an idempotency key.
type keyed struct {
	w      *write // nil once committed
	offset uint64
	at     time.Time
}

// Open opens (creating if need be) the database at path.
func Open(path string, opts Options) (*Store, error) {
	if opts.QueueSize <= 0 {
		opts.QueueSize = 65536
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	w, err := openDB(path, 1, "")
	if err != nil {
		return nil, err
	}
	r, err := openDB(path, 4, "&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, err
	}
	s := &Store{
		w: w, r: r, opts: opts, log: opts.Logger,
		slots:    make(chan struct{}, opts.QueueSize),
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		ended:    make(chan struct{}),
		channels: map[string]*channel{},
		onChange: func(string, service.Position, *service.Publication) {},
	}
	err = s.load(context.Background())
	if err == nil {
		s.stmts, err = prepare(context.Background(), w)
	}
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	go s.commitLoop()
	return s, nil
}

func openDB(path string, conns int, extra string) (*sql.DB, error) {
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate" + extra
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxIdleTime(0)
	return db, nil
}

const schema = `
CREATE TABLE IF NOT EXISTS meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS channels (
	name        TEXT PRIMARY KEY,
	epoch       TEXT NOT NULL,
	last_offset INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS publications (
	channel   TEXT NOT NULL,
	offset    INTEGER NOT NULL,
	data      BLOB NOT NULL,
	publisher TEXT NOT NULL,
	time      INTEGER NOT NULL, -- Unix microseconds
	PRIMARY KEY (channel, offset)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idempotency_keys (
	channel TEXT NOT NULL,
	key     TEXT NOT NULL,
	offset  INTEGER NOT NULL,
	time    INTEGER NOT NULL, -- Unix microseconds
	PRIMARY KEY (channel, key)
) WITHOUT ROWID;
-- Trimming by age finds what to delete through these, instead of reading
-- every row; times never go down along a channel's offsets, so what it
-- deletes is always each channel's oldest.
CREATE INDEX IF NOT EXISTS publications_by_time ON publications (time);
CREATE INDEX IF NOT EXISTS idempotency_keys_by_time ON idempotency_keys (time);
`

// load creates the schema and reads what the store keeps in memory.
func (s *Store) load(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	err := s.w.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'epoch'`).Scan(&s.epoch)
	if errors.Is(err, sql.ErrNoRows) {
		// A new database is a new incarnation of every channel's history.
		s.epoch = newEpoch()
		_, err = s.w.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('epoch', ?)`, s.epoch)
	}
	if err != nil {
		return fmt.Errorf("read epoch: %w", err)
	}
	rows, err := s.w.QueryContext(ctx, `SELECT name, epoch, last_offset FROM channels`)
	if err != nil {
		return fmt.Errorf("read channels: %w", err)
	}
	for rows.Next() {
		var name string
		ch := &channel{keys: map[string]*keyed{}}
		if err := rows.Scan(&name, &ch.epoch, &ch.last); err != nil {
			rows.Close()
			return fmt.Errorf("read channels: %w", err)
		}
		s.channels[name] = ch
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("read channels: %w", err)
	}
	if err := s.loadTimes(ctx); err != nil {
		return err
	}
	return s.loadKeys(ctx)
}

// loadTimes reads the time of each channel's latest publication, below
// which no later publication's time may go.
func (s *Store) loadTimes(ctx context.Context) error {
	rows, err := s.w.QueryContext(ctx, `SELECT c.name, p.time FROM channels c
		JOIN publications p ON p.channel = c.name AND p.offset = c.last_offset`)
	if err != nil {
		return fmt.Errorf("read channels' latest times: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var at int64
		if err := rows.Scan(&name, &at); err != nil {
			return fmt.Errorf("read channels' latest times: %w", err)
		}
		if ch := s.channels[name]; ch != nil {
			ch.lastTime = time.UnixMicro(at).UTC()
		}
	}
	return rows.Err()
}

func (s *Store) loadKeys(ctx context.Context) error {
	if s.opts.IdempotencyWindow <= 0 {
		return nil
	}
	cutoff := time.Now().Add(-s.opts.IdempotencyWindow).UnixMicro()
	rows, err := s.w.QueryContext(ctx, `SELECT channel, key, offset, time FROM idempotency_keys WHERE time >= ?`, cutoff)
	if err != nil {
		return fmt.Errorf("read idempotency keys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, key string
		var offset uint64
		var at int64
		if err := rows.Scan(&name, &key, &offset, &at); err != nil {
			return fmt.Errorf("read idempotency keys: %w", err)
		}
		if ch := s.channels[name]; ch != nil {
			ch.keys[key] = &keyed{offset: offset, at: time.UnixMicro(at)}
		}
	}
	return rows.Err()
}

func newEpoch() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Watch sets the function told of each change once it is committed, in
// commit order: a publication (p non-nil, pos its offset and epoch), or a
// channel's removal (p nil, pos the channel's new epoch at offset 0). f
// runs on the committing goroutine and must not block. Call Watch before
// the first Append.
func (s *Store) Watch(f func(channel string, pos service.Position, p *service.Publication)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onChange = f
}

// Err reports why the store refuses writes: a commit failed. It is nil
// while the store works.
func (s *Store) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return fmt.Errorf("history storage failed: %w", s.failed)
	}
	return nil
}

// Epoch is the epoch of channels that were never removed.
func (s *Store) Epoch() string { return s.epoch }

// Positions returns the position of every channel the store knows: the
// committed ones, while no Append or Remove is under way. Open has read
// them already.
func (s *Store) Positions() map[string]service.Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	pos := make(map[string]service.Position, len(s.channels))
	for name, ch := range s.channels {
		pos[name] = service.Position{Offset: ch.last, Epoch: ch.epoch}
	}
	return pos
}

// Read returns publications of channel as q selects them. Limit 0 reads
// none.
func (s *Store) Read(ctx context.Context, channel string, q service.HistoryQuery) ([]service.Publication, error) {
	if q.Limit <= 0 || q.After >= 1<<63-1 {
		return nil, nil // SQLite's integers stop at 2^63-1
	}
	before := int64(q.Before)
	if q.Before == 0 || q.Before > 1<<63-1 {
		before = 1<<63 - 1
	}
	order := "ASC"
	if q.Reverse {
		order = "DESC"
	}
	query := `SELECT offset, data, publisher, time FROM publications
		WHERE channel = ? AND offset > ? AND offset < ? ORDER BY offset ` + order + ` LIMIT ?`
	rows, err := s.r.QueryContext(ctx, query, channel, int64(q.After), before, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("read history of %s: %w", channel, err)
	}
	defer rows.Close()
	pubs := make([]service.Publication, 0, min(q.Limit, 64))
	size := 0
	for rows.Next() && (q.MaxBytes <= 0 || len(pubs) == 0 || size < q.MaxBytes) {
		p := service.Publication{Channel: channel}
		var data []byte
		var at int64
		if err := rows.Scan(&p.Offset, &data, &p.Publisher, &at); err != nil {
			return nil, fmt.Errorf("read history of %s: %w", channel, err)
		}
		p.Data = repairUTF8(data)
		p.Time = time.UnixMicro(at).UTC()
		pubs = append(pubs, p)
		size += len(data)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read history of %s: %w", channel, err)
	}
	return pubs, nil
}

// repairUTF8 returns data with every byte that is not valid UTF-8
// replaced by U+FFFD. Publications are checked before they are stored, but
// older servers stored whatever came, and one bad byte in a text frame
// makes clients drop the connection. Such bytes can only be within JSON
// strings (anywhere else the data would not have been JSON), so the
// result is still JSON, with the same shape.
func repairUTF8(data []byte) []byte {
	if utf8.Valid(data) {
		return data
	}
	return bytes.ToValidUTF8(data, []byte("\uFFFD"))
}

// Close stops committing, once what is queued is committed, and closes
// the database. Appends after Close fail.
func (s *Store) Close() error {
	s.mu.Lock()
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.mu.Unlock()
	<-s.ended
	s.stmts.close()
	return errors.Join(s.w.Close(), s.r.Close())
}
