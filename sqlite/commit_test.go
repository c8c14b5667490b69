package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"testing"
	"time"

	"github.com/switchboard/switchboard/service"
)

// TestNothingCommittedAfterAFailedCommit: a failed commit must not leave a
// hole. Writes queued while the failing batch was being written hold the
// offsets after the lost ones; committing them would skip the lost
// offsets, so they fail too.
func TestNothingCommittedAfterAFailedCommit(t *testing.T) {
	path := tempPath(t)
	s := openStore(t, path, Options{})
	ctx := context.Background()
	// Any commit failure will do (disk full, I/O error); a trigger makes
	// one on demand: inserting the data "boom" fails.
	if _, err := s.db.w.ExecContext(ctx, `CREATE TRIGGER review_boom BEFORE INSERT ON publications
		WHEN NEW.data = X'22626F6F6D22' BEGIN SELECT RAISE(ABORT, 'boom'); END`); err != nil {
		t.Fatal(err)
	}
	// Another connection holds the write lock, so that the committer takes
	// the first write and then waits in BEGIN while the second queues.
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}

	first := make(chan error, 1)
	go func() {
		p := pub("c", 1)
		p.Data = json.RawMessage(`"boom"`)
		_, err := s.Append(ctx, p, "")
		first <- err
	}()
	eventually(t, "the committer to take offset 1", func() bool {
		s.seq.mu.Lock()
		defer s.seq.mu.Unlock()
		ch := s.seq.channels["c"]
		return ch != nil && ch.last == 1 && len(s.seq.queue) == 0
	})
	type result struct {
		res service.Published
		err error
	}
	second := make(chan result, 1)
	go func() {
		res, err := s.Append(ctx, pub("c", 2), "")
		second <- result{res, err}
	}()
	eventually(t, "offset 2 to queue", func() bool {
		s.seq.mu.Lock()
		defer s.seq.mu.Unlock()
		return len(s.seq.queue) == 1
	})
	time.Sleep(20 * time.Millisecond)
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	if err := <-first; err == nil {
		t.Fatal("offset 1 committed despite the trigger")
	}
	r := <-second
	pubs := readAll(t, s, "c")
	if r.err == nil || len(pubs) != 0 {
		t.Fatalf("the commit of offset 1 failed, yet the write queued behind it was acknowledged (%+v, err %v) and the history holds offsets %v: a hole at 1",
			r.res, r.err, offsets(pubs))
	}
}

// TestAgeTrimTakesOnlyTheOldest: trimming by MaxAge deletes by
// publication time, and times are stamped before offsets are given (and
// clocks step back), so the store must keep times from going down along
// the offsets, or the trim would delete from the middle of the history.
func TestAgeTrimTakesOnlyTheOldest(t *testing.T) {
	s := openStore(t, tempPath(t), Options{MaxAge: time.Hour})
	now := time.Now().UTC().Truncate(time.Microsecond)
	for _, age := range []time.Duration{59 * time.Minute, 61 * time.Minute, 0} {
		p := pub("c", 0)
		p.Time = now.Add(-age)
		mustAppend(t, s, p, "")
	}
	s.trim()
	got := offsets(readAll(t, s, "c"))
	if !sameOffsets(got, []uint64{1, 2, 3}) && !sameOffsets(got, []uint64{2, 3}) && !sameOffsets(got, []uint64{3}) {
		t.Fatalf("after trimming by age the history holds offsets %v: a hole, not a trimmed prefix", got)
	}
}

// TestDuplicateWaitsForTheWatcher: a repeated idempotency key must not be
// answered "duplicate, offset N" before the watcher has heard of N, or a
// client told N may not find it in what it reads next (channelHistory
// reads up to the engine's position).
func TestDuplicateWaitsForTheWatcher(t *testing.T) {
	s := openStore(t, tempPath(t), Options{IdempotencyWindow: time.Minute})
	entered, letGo := holdCommitter(t, s) // a fan-out taking its time
	go s.Append(context.Background(), pub("c", 1), "k")
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res, err := s.Append(ctx, pub("c", 1), "k")
	if err == nil {
		letGo()
		t.Fatalf("the duplicate was answered (%+v) while the watcher had not yet been told of offset %d", res, res.Offset)
	}
}
