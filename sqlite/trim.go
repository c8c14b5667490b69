package sqlite

import (
	"context"
	"fmt"
	"time"
)

// TrimBefore deletes up to limit of the publications older than cutoff,
// the oldest first, and reports how many it deleted: fewer than limit
// means none older are left. A limit of 0 or less deletes them all. The
// limit keeps each transaction short, so that a writer that trims
// between its commits (as the embedded engine's committer does) holds
// up no commit for long even when a million channels expire at once.
func (db *Database) TrimBefore(cutoff time.Time, limit int) (int, error) {
	n, err := db.deleteBefore(`DELETE FROM publications WHERE time < ?`,
		`DELETE FROM publications WHERE (channel, offset) IN
			(SELECT channel, offset FROM publications WHERE time < ? ORDER BY time LIMIT ?)`, cutoff, limit)
	if err != nil {
		return n, fmt.Errorf("trim history: %w", err)
	}
	return n, nil
}

// ForgetKeys deletes up to limit of the idempotency keys older than
// cutoff, as TrimBefore deletes publications.
func (db *Database) ForgetKeys(cutoff time.Time, limit int) (int, error) {
	n, err := db.deleteBefore(`DELETE FROM idempotency_keys WHERE time < ?`,
		`DELETE FROM idempotency_keys WHERE (channel, key) IN
			(SELECT channel, key FROM idempotency_keys WHERE time < ? ORDER BY time LIMIT ?)`, cutoff, limit)
	if err != nil {
		return n, fmt.Errorf("forget idempotency keys: %w", err)
	}
	return n, nil
}

func (db *Database) deleteBefore(all, some string, cutoff time.Time, limit int) (int, error) {
	query, args := all, []any{cutoff.UnixMicro()}
	if limit > 0 {
		query, args = some, append(args, limit)
	}
	res, err := db.w.ExecContext(context.Background(), query, args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}
