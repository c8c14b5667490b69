// Package sqlite stores channels' histories in a SQLite database: the
// embedded engine's durable log. It only stores: what is appended comes
// with its offsets, epochs and times already given, by the caller's
// sequencer.
//
// It uses modernc.org/sqlite, a translation of SQLite's C source to Go,
// so that the binary needs no cgo and cross-compiles like any Go program;
// it is the pure-Go driver most of the ecosystem uses. The database runs
// in WAL mode with synchronous=FULL: Append returns once its transaction
// is on disk. A caller appending many changes in one batch (group
// commit) pays for that sync once per batch.
package sqlite

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"time"
	"unicode/utf8"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/switchboard/switchboard/service"
)

// Database is the storage of histories: it appends batches of changes
// in one transaction each, reads and trims history, and reads back one
// channel's position when its sequencer first needs it. It gives out no
// offsets and starts no goroutines.
type Database struct {
	w, r  *sql.DB // w has one connection: SQLite has one writer at a time
	stmts *statements
	opts  Options
	epoch string
}

// Options configure a Database. Zero fields keep every publication and
// no idempotency keys.
type Options struct {
	// MaxPublications is the most publications kept per channel; Append
	// trims each channel it touches to it.
	MaxPublications int
	// KeyWindow is how long idempotency keys are kept: Load reads those
	// this recent, and Append writes keys only when it is set.
	KeyWindow time.Duration
}

// Kind says what a Change does to its channel.
type Kind uint8

const (
	// Publication appends Pub at Pub.Offset.
	Publication Kind = iota + 1
	// Removal deletes the channel's history and keys; the channel goes
	// on at offset 0 in Epoch.
	Removal
)

// Change is one change of a channel, given its place by the caller.
type Change struct {
	Kind  Kind
	Pub   service.Publication // a Removal uses only its Channel
	Epoch string              // the channel's epoch after the change
	Key   string              // the publication's idempotency key, if any
}

// Stored is what the database holds of one channel that sequencing goes
// on from.
type Stored struct {
	// Position is the channel's last committed offset and its epoch; a
	// channel never written is at offset 0 in the database's epoch.
	Position service.Position
	// LastTime is the time of the publication at Position, zero when it
	// is not kept.
	LastTime time.Time
	Keys     []Key // those within the KeyWindow
}

// Key is an idempotency key a publication was made with.
type Key struct {
	Key    string
	Offset uint64
	Time   time.Time // the publication's
}

// Open opens (creating if need be) the database at path. It reads no
// channel: each is read with Load when first used, so that opening takes
// the same time whatever the number of channels.
func Open(path string, opts Options) (*Database, error) {
	w, err := openDB(path, 1, "")
	if err != nil {
		return nil, err
	}
	r, err := openDB(path, 4, "&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, err
	}
	db := &Database{w: w, r: r, opts: opts}
	db.epoch, err = db.init(context.Background())
	if err == nil {
		db.stmts, err = prepare(context.Background(), w)
	}
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
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

// init creates the schema and returns the database's epoch.
func (db *Database) init(ctx context.Context) (string, error) {
	if _, err := db.w.ExecContext(ctx, schema); err != nil {
		return "", fmt.Errorf("create schema: %w", err)
	}
	var epoch string
	err := db.w.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'epoch'`).Scan(&epoch)
	if errors.Is(err, sql.ErrNoRows) {
		// A new database is a new incarnation of every channel's history.
		epoch = NewEpoch()
		_, err = db.w.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('epoch', ?)`, epoch)
	}
	if err != nil {
		return "", fmt.Errorf("read epoch: %w", err)
	}
	return epoch, nil
}

// Epoch returns the database's epoch, that channels never written (nor
// removed) are in.
func (db *Database) Epoch() string { return db.epoch }

// Load reads what sequencing the channel goes on from: its position, the
// time of its latest publication, below which no later one may go, and
// its idempotency keys within the KeyWindow. It reads through the
// channel's primary keys only. A channel must not be loaded while changes
// to it are being appended: what Load returns is then already behind.
func (db *Database) Load(ctx context.Context, channel string) (Stored, error) {
	st := Stored{Position: service.Position{Epoch: db.epoch}}
	var at sql.NullInt64
	err := db.r.QueryRowContext(ctx, `SELECT c.epoch, c.last_offset, p.time FROM channels c
		LEFT JOIN publications p ON p.channel = c.name AND p.offset = c.last_offset
		WHERE c.name = ?`, channel).Scan(&st.Position.Epoch, &st.Position.Offset, &at)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return st, nil // never written: no keys either
	case err != nil:
		return st, fmt.Errorf("load channel %s: %w", channel, err)
	}
	if at.Valid {
		st.LastTime = time.UnixMicro(at.Int64).UTC()
	}
	if db.opts.KeyWindow > 0 {
		st.Keys, err = db.loadKeys(ctx, channel, time.Now().Add(-db.opts.KeyWindow))
	}
	return st, err
}

// loadKeys reads the channel's idempotency keys seen since cutoff.
func (db *Database) loadKeys(ctx context.Context, channel string, cutoff time.Time) ([]Key, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT key, offset, time FROM idempotency_keys WHERE channel = ? AND time >= ?`, channel, cutoff.UnixMicro())
	if err != nil {
		return nil, fmt.Errorf("load idempotency keys of %s: %w", channel, err)
	}
	defer rows.Close()
	var keys []Key
	for rows.Next() {
		var k Key
		var at int64
		if err := rows.Scan(&k.Key, &k.Offset, &at); err != nil {
			return nil, fmt.Errorf("load idempotency keys of %s: %w", channel, err)
		}
		k.Time = time.UnixMicro(at)
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// NewEpoch returns a new epoch, different from every other: a new
// incarnation of a channel's history.
func NewEpoch() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Append writes batch, in order, in one transaction, with the
// idempotency keys when a KeyWindow is set, and trims each channel it
// touches to MaxPublications. A channel's changes must come in the order
// of their offsets.
func (db *Database) Append(batch []*Change) error {
	keys, maxPublications := db.opts.KeyWindow > 0, db.opts.MaxPublications
	ctx := context.Background()
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	st := db.stmts.in(ctx, tx)
	last := map[string]*Change{} // each channel's last change
	for _, c := range batch {
		if c.Kind != Publication && c.Kind != Removal {
			return fmt.Errorf("change to %s: unknown kind %d", c.Pub.Channel, c.Kind)
		}
		last[c.Pub.Channel] = c
	}
	for i := 0; i < len(batch); {
		if batch[i].Kind == Removal {
			if err := st.remove(ctx, batch[i].Pub.Channel); err != nil {
				return err
			}
			i++
			continue
		}
		// Runs of publications go in as multi-row inserts: SQLite's cost
		// is mostly per statement, not per row.
		j := i + 1
		for j < len(batch) && j-i < insertRows && batch[j].Kind == Publication {
			j++
		}
		if err := st.insert(ctx, batch[i:j], keys); err != nil {
			return err
		}
		i = j
	}
	for name, c := range last {
		offset := c.Pub.Offset
		if c.Kind == Removal {
			offset = 0 // the channel starts again
		}
		if _, err := st.upsertChannel.ExecContext(ctx, name, c.Epoch, int64(offset)); err != nil {
			return fmt.Errorf("update channel %s: %w", name, err)
		}
		if max := uint64(maxPublications); max > 0 && offset > max {
			if _, err := st.trim.ExecContext(ctx, name, int64(offset-max)); err != nil {
				return fmt.Errorf("trim %s: %w", name, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Read returns publications of channel as q selects them. Limit 0 reads
// none.
func (db *Database) Read(ctx context.Context, channel string, q service.HistoryQuery) ([]service.Publication, error) {
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
	rows, err := db.r.QueryContext(ctx, query, channel, int64(q.After), before, q.Limit)
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

// Close closes the database. Nothing may be appended or read after.
func (db *Database) Close() error {
	db.stmts.close()
	return errors.Join(db.w.Close(), db.r.Close())
}
