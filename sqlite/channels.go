package sqlite

import (
	"context"
	"fmt"
)

// Listed is a channel as Channels lists it.
type Listed struct {
	Name   string
	Offset uint64
}

// Channels lists up to limit channels with publications (offset above
// 0), in name order, whose names start with prefix and come after after
// ("" for from the start). It reads the channels table's primary key in
// order, from the prefix on, so that the cost is in the names listed,
// not in all there are; a caller pages by passing the last name listed
// as after.
func (db *Database) Channels(ctx context.Context, prefix, after string, limit int) ([]Listed, error) {
	from, cmp := prefix, ">="
	if after >= prefix {
		from, cmp = after, ">"
	}
	query := `SELECT name, last_offset FROM channels WHERE name ` + cmp + ` ? AND last_offset > 0`
	args := []any{from}
	if end, ok := prefixEnd(prefix); ok {
		query += ` AND name < ?`
		args = append(args, end)
	}
	rows, err := db.r.QueryContext(ctx, query+` ORDER BY name LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list channels: %w", err)
	}
	defer rows.Close()
	var listed []Listed
	for rows.Next() {
		var l Listed
		if err := rows.Scan(&l.Name, &l.Offset); err != nil {
			return nil, fmt.Errorf("list channels: %w", err)
		}
		listed = append(listed, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list channels: %w", err)
	}
	return listed, nil
}

// prefixEnd returns the least string above every string that starts
// with prefix, in SQLite's byte order (its default BINARY collation,
// which is also Go's): prefix with its last byte below 0xff raised by
// one. It reports false when there is none (no prefix, or all 0xff).
func prefixEnd(prefix string) (string, bool) {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}
