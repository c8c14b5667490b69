package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/service"
)

// store is a Database opened for a test, with the position of each
// channel appended to, from which mustAppend gives the next offset, as a
// sequencer would.
type store struct {
	*Database
	positions map[string]service.Position
}

// openStore opens the database at path, closing it when the test ends.
func openStore(t *testing.T, path string, opts Options) *store {
	t.Helper()
	db, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() }) // Close may be called twice
	return &store{db, map[string]service.Position{}}
}

// load loads channel, failing the test on an error.
func load(t *testing.T, s *store, channel string) Stored {
	t.Helper()
	st, err := s.Load(context.Background(), channel)
	if err != nil {
		t.Fatal(err)
	}
	return st
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

// mustAppend appends p, made with key, at its channel's next offset.
func mustAppend(t *testing.T, s *store, p service.Publication, key string) service.Published {
	t.Helper()
	pos, ok := s.positions[p.Channel]
	if !ok {
		pos = load(t, s, p.Channel).Position
	}
	pos.Offset++
	p.Offset = pos.Offset
	if err := s.Append([]*Change{{Kind: Publication, Pub: p, Epoch: pos.Epoch, Key: key}}); err != nil {
		t.Fatalf("Append to %s: %v", p.Channel, err)
	}
	s.positions[p.Channel] = pos
	return service.Published{Position: pos}
}

// readAll reads channel's whole history, oldest first.
func readAll(t *testing.T, s *store, channel string) []service.Publication {
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
