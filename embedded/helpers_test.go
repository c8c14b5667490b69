package embedded

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/service"
)

// receiver is a subscriber that ignores what it is given: the tests
// here look at what the engine keeps, and the contract tests
// (internal/enginetest) at what it delivers.
type receiver struct{ member service.Member }

func newReceiver(user, conn string) *receiver {
	return &receiver{member: service.Member{User: user, ConnectionID: conn, Since: time.Now()}}
}

func (r *receiver) Receive(*service.Event) {}

func (r *receiver) Member() service.Member { return r.member }

type fixture struct {
	engine *Engine
	path   string
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	f := &fixture{path: tempPath(t)}
	f.open(t, opts)
	return f
}

func (f *fixture) open(t *testing.T, opts Options) {
	t.Helper()
	f.engine = openEngine(t, f.path, opts)
}

// closeStore closes the engine, which waits until every committed change
// has been fanned out.
func (f *fixture) closeStore(t *testing.T) {
	t.Helper()
	if err := f.engine.Close(); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) publish(t *testing.T, channel string, n int) service.Published {
	t.Helper()
	return mustPublish(t, f.engine, service.Publication{
		Channel:   channel,
		Data:      json.RawMessage(fmt.Sprint(n)),
		Publisher: "p",
		Time:      time.Now(),
	}, "")
}

func (f *fixture) subscribe(t *testing.T, channel string, r service.Receiver, joinLeave bool) service.Position {
	t.Helper()
	pos, err := f.engine.Subscribe(context.Background(), channel, r, joinLeave)
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

// openEngine opens the engine over the history at path, closing it when
// the test ends.
func openEngine(t *testing.T, path string, opts Options) *Engine {
	t.Helper()
	e, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() }) // Close may be called twice
	return e
}

func tempPath(t *testing.T) string {
	return filepath.Join(t.TempDir(), "history.db")
}

// pub is a publication to channel, published now.
func pub(channel string, n int) service.Publication {
	return service.Publication{
		Channel:   channel,
		Data:      json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)),
		Publisher: "user" + fmt.Sprint(n),
		Time:      time.Now().UTC().Truncate(time.Microsecond),
	}
}

func mustPublish(t *testing.T, e *Engine, p service.Publication, key string) service.Published {
	t.Helper()
	res, err := e.Publish(context.Background(), p, key)
	if err != nil {
		t.Fatalf("Publish to %s: %v", p.Channel, err)
	}
	return res
}

// readAll reads channel's whole history, oldest first, from the
// database: all that is committed.
func readAll(t *testing.T, e *Engine, channel string) []service.Publication {
	t.Helper()
	pubs, err := e.db.Read(context.Background(), channel, service.HistoryQuery{Limit: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	return pubs
}

func offsets(pubs []service.Publication) []uint64 {
	o := make([]uint64, len(pubs))
	for i, p := range pubs {
		o[i] = p.Offset
	}
	return o
}

// span returns the offsets from to to.
func span(from, to uint64) []uint64 {
	o := []uint64{}
	for i := from; i <= to; i++ {
		o = append(o, i)
	}
	return o
}

func sameOffsets(got, want []uint64) bool {
	return len(got) == len(want) && (len(got) == 0 || slices.Equal(got, want))
}

// execSQL runs query on the database at path through a connection of its
// own, as another process would.
func execSQL(ctx context.Context, path, query string) (sql.Result, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return db.ExecContext(ctx, query)
}

// told is a change the watcher was told of: a publication (pub
// non-nil) or a removal (pub nil).
type told struct {
	channel string
	pos     service.Position
	pub     *service.Publication
}

// watchFunc is a watcher made of one function, told of a removal with p
// nil.
type watchFunc func(channel string, pos service.Position, p *service.Publication)

func (f watchFunc) Published(pos service.Position, p *service.Publication) { f(p.Channel, pos, p) }
func (f watchFunc) Removed(channel string, pos service.Position)           { f(channel, pos, nil) }

// watch makes the committer tell a recorder, instead of the engine's
// fan-out, of the engine's changes. Call it before the first change.
func watch(e *Engine) func() []told {
	var mu sync.Mutex
	var changes []told
	e.commits.watcher = watchFunc(func(channel string, pos service.Position, p *service.Publication) {
		mu.Lock()
		defer mu.Unlock()
		changes = append(changes, told{channel, pos, p})
	})
	return func() []told {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(changes)
	}
}

// positionsOf returns the committed positions of the named channels,
// loaded from the database if need be, as a subscriber would get them.
func positionsOf(t *testing.T, e *Engine, names ...string) map[string]service.Position {
	t.Helper()
	pos := map[string]service.Position{}
	for _, name := range names {
		p, _, err := e.seq.settled(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		pos[name] = p
	}
	return pos
}

func mapsEqual(a, b map[string]service.Position) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// holdCommitter makes e's watcher hold the committer at the first change
// it is told of, as a slow fan-out would, until letGo is called; the
// test's end calls it too, before openEngine's Close, so that a failing
// test does not leave Close waiting. entered is closed once the committer
// is held.
func holdCommitter(t *testing.T, e *Engine) (entered <-chan struct{}, letGo func()) {
	in, release := make(chan struct{}), make(chan struct{})
	var held, released sync.Once
	letGo = func() { released.Do(func() { close(release) }) }
	t.Cleanup(letGo)
	e.commits.watcher = watchFunc(func(string, service.Position, *service.Publication) {
		held.Do(func() {
			close(in)
			<-release
		})
	})
	return in, letGo
}

// lockWrites takes SQLite's write lock on the database at path from a
// connection of its own, so that the committer waits in BEGIN, until the
// returned function rolls back and lets go.
func lockWrites(t *testing.T, ctx context.Context, path string) (unlock func()) {
	t.Helper()
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := other.Conn(ctx)
	if err != nil {
		other.Close()
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		conn.Close()
		other.Close()
		t.Fatal(err)
	}
	var once sync.Once
	unlock = func() {
		once.Do(func() {
			if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
				t.Error(err)
			}
			conn.Close()
			other.Close()
		})
	}
	t.Cleanup(unlock)
	return unlock
}

// awaitTaken waits until the committer has taken the publication at
// offset of channel, and nothing else is queued.
func awaitTaken(t *testing.T, e *Engine, channel string, offset uint64) {
	t.Helper()
	poll.Until(t, 5*time.Second, fmt.Sprintf("%s's offset %d to be taken by the committer", channel, offset), func() bool {
		e.seq.mu.Lock()
		defer e.seq.mu.Unlock()
		ch := e.seq.channels[channel]
		return ch != nil && ch.last == offset && len(e.seq.queue) == 0
	})
}
