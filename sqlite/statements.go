package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// insertRows is how many publications one INSERT writes at most.
const insertRows = 32

// statements are Append's statements, prepared once: parsing SQL
// for every batch cost as much as the rows it wrote.
type statements struct {
	insertOne, insertMany *sql.Stmt
	key                   *sql.Stmt
	upsertChannel, trim   *sql.Stmt
	deletePubs, deleteKey *sql.Stmt
}

const insertPublication = `INSERT INTO publications (channel, offset, data, publisher, time) VALUES `

func prepare(ctx context.Context, db *sql.DB) (*statements, error) {
	var st statements
	var errs []error
	p := func(dst **sql.Stmt, query string) {
		var err error
		*dst, err = db.PrepareContext(ctx, query)
		errs = append(errs, err)
	}
	p(&st.insertOne, insertPublication+`(?, ?, ?, ?, ?)`)
	p(&st.insertMany, insertPublication+strings.Repeat(`(?, ?, ?, ?, ?), `, insertRows-1)+`(?, ?, ?, ?, ?)`)
	p(&st.key, `INSERT OR REPLACE INTO idempotency_keys (channel, key, offset, time) VALUES (?, ?, ?, ?)`)
	p(&st.upsertChannel, `INSERT INTO channels (name, epoch, last_offset) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET epoch = excluded.epoch, last_offset = excluded.last_offset`)
	p(&st.trim, `DELETE FROM publications WHERE channel = ? AND offset <= ?`)
	p(&st.deletePubs, `DELETE FROM publications WHERE channel = ?`)
	p(&st.deleteKey, `DELETE FROM idempotency_keys WHERE channel = ?`)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("prepare statements: %w", err)
	}
	return &st, nil
}

// in returns the statements bound to tx.
func (st *statements) in(ctx context.Context, tx *sql.Tx) *statements {
	return &statements{
		insertOne:     tx.StmtContext(ctx, st.insertOne),
		insertMany:    tx.StmtContext(ctx, st.insertMany),
		key:           tx.StmtContext(ctx, st.key),
		upsertChannel: tx.StmtContext(ctx, st.upsertChannel),
		trim:          tx.StmtContext(ctx, st.trim),
		deletePubs:    tx.StmtContext(ctx, st.deletePubs),
		deleteKey:     tx.StmtContext(ctx, st.deleteKey),
	}
}

func (st *statements) close() {
	for _, s := range []*sql.Stmt{st.insertOne, st.insertMany, st.key, st.upsertChannel, st.trim, st.deletePubs, st.deleteKey} {
		s.Close()
	}
}

// insert writes cs, all publications, with their idempotency keys when
// keys are kept.
func (st *statements) insert(ctx context.Context, cs []*Change, keys bool) error {
	args := make([]any, 0, 5*len(cs))
	for _, c := range cs {
		p := &c.Pub
		args = append(args, p.Channel, int64(p.Offset), []byte(p.Data), p.Publisher, p.Time.UnixMicro())
	}
	var err error
	if len(cs) == insertRows {
		_, err = st.insertMany.ExecContext(ctx, args...)
	} else {
		for i := 0; i < len(args) && err == nil; i += 5 {
			_, err = st.insertOne.ExecContext(ctx, args[i:i+5]...)
		}
	}
	if err != nil {
		return fmt.Errorf("insert publications: %w", err)
	}
	if !keys {
		return nil
	}
	for _, c := range cs {
		if c.Key == "" {
			continue
		}
		p := &c.Pub
		if _, err := st.key.ExecContext(ctx, p.Channel, c.Key, int64(p.Offset), p.Time.UnixMicro()); err != nil {
			return fmt.Errorf("insert idempotency key: %w", err)
		}
	}
	return nil
}

// remove deletes a channel's publications and idempotency keys.
func (st *statements) remove(ctx context.Context, channel string) error {
	for _, s := range []*sql.Stmt{st.deletePubs, st.deleteKey} {
		if _, err := s.ExecContext(ctx, channel); err != nil {
			return fmt.Errorf("remove %s: %w", channel, err)
		}
	}
	return nil
}
