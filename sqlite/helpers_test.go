package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/service"
)

// openStore opens the store at path, closing it when the test ends.
func openStore(t *testing.T, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() }) // Close may be called twice
	return s
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

func mustAppend(t *testing.T, s *Store, p service.Publication, key string) service.Published {
	t.Helper()
	res, err := s.Append(context.Background(), p, key)
	if err != nil {
		t.Fatalf("Append to %s: %v", p.Channel, err)
	}
	return res
}

// readAll reads channel's whole history, oldest first.
func readAll(t *testing.T, s *Store, channel string) []service.Publication {
	t.Helper()
	pubs, err := s.Read(context.Background(), channel, service.HistoryQuery{Limit: 1 << 30})
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

// eventually waits up to 5 seconds for cond to hold.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// told is a change the watcher was told of: a publication (pub
// non-nil) or a removal (pub nil).
type told struct {
	channel string
	pos     service.Position
	pub     *service.Publication
}

// watchFunc is a Watcher made of one function, told of a removal with p
// nil.
type watchFunc func(channel string, pos service.Position, p *service.Publication)

func (f watchFunc) Published(pos service.Position, p *service.Publication) { f(p.Channel, pos, p) }
func (f watchFunc) Removed(channel string, pos service.Position)           { f(channel, pos, nil) }

// watch records the store's changes.
func watch(s *Store) func() []told {
	var mu sync.Mutex
	var changes []told
	s.Watch(watchFunc(func(channel string, pos service.Position, p *service.Publication) {
		mu.Lock()
		defer mu.Unlock()
		changes = append(changes, told{channel, pos, p})
	}))
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

// holdCommitter makes s's watcher hold the committer at the first change
// it is told of, as a slow fan-out would, until letGo is called; the
// test's end calls it too, before openStore's Close, so that a failing
// test does not leave Close waiting. entered is closed once the committer
// is held.
func holdCommitter(t *testing.T, s *Store) (entered <-chan struct{}, letGo func()) {
	in, release := make(chan struct{}), make(chan struct{})
	var held, released sync.Once
	letGo = func() { released.Do(func() { close(release) }) }
	t.Cleanup(letGo)
	s.Watch(watchFunc(func(string, service.Position, *service.Publication) {
		held.Do(func() {
			close(in)
			<-release
		})
	}))
	return in, letGo
}
