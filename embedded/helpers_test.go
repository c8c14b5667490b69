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

	"github.com/switchboard/switchboard/service"
)

// receiver records the events it is given.
type receiver struct {
	member service.Member

	mu      sync.Mutex
	events  []*service.Event
	changed chan struct{} // signalled after each event
}

func newReceiver(user, conn string) *receiver {
	return &receiver{
		member:  service.Member{User: user, ConnectionID: conn, Since: time.Now()},
		changed: make(chan struct{}, 1),
	}
}

func (r *receiver) Receive(e *service.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *receiver) Member() service.Member { return r.member }

func (r *receiver) Events() []*service.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// offsets returns the offsets of the publications r received.
func (r *receiver) offsets() []uint64 {
	var o []uint64
	for _, e := range r.Events() {
		if e.Kind == service.EventPublication {
			o = append(o, e.Publication.Offset)
		}
	}
	return o
}

// waitFor waits up to 5 seconds for cond to hold of r's events.
func (r *receiver) waitFor(t *testing.T, what string, cond func([]*service.Event) bool) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for !cond(r.Events()) {
		select {
		case <-r.changed:
		case <-timeout:
			t.Fatalf("%s: timed out waiting for %s; events: %s", r.member.ConnectionID, what, describe(r.Events()))
		}
	}
}

// waitOffset waits for r to receive the publication at offset.
func (r *receiver) waitOffset(t *testing.T, offset uint64) {
	t.Helper()
	r.waitFor(t, fmt.Sprintf("offset %d", offset), func(es []*service.Event) bool {
		return slices.ContainsFunc(es, func(e *service.Event) bool {
			return e.Kind == service.EventPublication && e.Publication.Offset >= offset
		})
	})
}

func describe(es []*service.Event) string {
	var s []string
	for _, e := range es {
		switch e.Kind {
		case service.EventPublication:
			s = append(s, fmt.Sprintf("pub %s %d", e.Channel, e.Publication.Offset))
		case service.EventJoin:
			s = append(s, fmt.Sprintf("join %s %s", e.Channel, e.Member.ConnectionID))
		case service.EventLeave:
			s = append(s, fmt.Sprintf("leave %s %s", e.Channel, e.Member.ConnectionID))
		case service.EventUnsubscribed:
			s = append(s, fmt.Sprintf("unsubscribed %s %s", e.Channel, e.Reason))
		default:
			s = append(s, fmt.Sprintf("kind %d", e.Kind))
		}
	}
	return fmt.Sprint(s)
}

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
