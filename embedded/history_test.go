package embedded

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/service"
)

func TestRemoveStartsNewEpoch(t *testing.T) {
	path := tempPath(t)
	opts := Options{IdempotencyWindow: time.Hour}
	s := openEngine(t, path, opts)
	changes := watch(s)
	for i := 1; i <= 3; i++ {
		mustPublish(t, s, pub("a", i), fmt.Sprint("k", i))
	}
	mustPublish(t, s, pub("b", 1), "")
	old := s.seq.epoch

	pos, err := s.Remove(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	if pos.Offset != 0 || pos.Epoch == "" || pos.Epoch == old {
		t.Fatalf("Remove = %+v; the old epoch was %q", pos, old)
	}
	if got := readAll(t, s, "a"); len(got) != 0 {
		t.Errorf("after Remove, history %v", offsets(got))
	}
	if got := offsets(readAll(t, s, "b")); !sameOffsets(got, []uint64{1}) {
		t.Errorf("another channel's history changed: %v", got)
	}
	positions := positionsOf(t, s, "a", "b")
	if positions["a"] != pos || positions["b"] != (service.Position{Offset: 1, Epoch: old}) {
		t.Errorf("Positions = %v", positions)
	}
	if s.seq.epoch != old {
		t.Errorf("the store's epoch changed from %q to %q", old, s.seq.epoch)
	}

	// The channel starts again in the new epoch, keys forgotten.
	res := mustPublish(t, s, pub("a", 4), "k1")
	if res != (service.Published{Position: service.Position{Offset: 1, Epoch: pos.Epoch}}) {
		t.Errorf("Append after Remove = %+v, want offset 1 in epoch %q", res, pos.Epoch)
	}
	res = mustPublish(t, s, pub("a", 5), "k1")
	if res != (service.Published{Position: service.Position{Offset: 1, Epoch: pos.Epoch}, Duplicate: true}) {
		t.Errorf("Append with a key seen after Remove = %+v", res)
	}

	// Removing a channel never published makes it a new epoch too.
	fresh, err := s.Remove(context.Background(), "never")
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Offset != 0 || fresh.Epoch == old || fresh.Epoch == pos.Epoch || fresh.Epoch == "" {
		t.Errorf("Remove of an unknown channel = %+v", fresh)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range changes() {
		switch {
		case c.pub == nil:
			got = append(got, fmt.Sprintf("%s removed %d %s", c.channel, c.pos.Offset, c.pos.Epoch))
		default:
			got = append(got, fmt.Sprintf("%s %d %s", c.channel, c.pos.Offset, c.pos.Epoch))
		}
	}
	want := []string{
		"a 1 " + old, "a 2 " + old, "a 3 " + old, "b 1 " + old,
		"a removed 0 " + pos.Epoch,
		"a 1 " + pos.Epoch,
		"never removed 0 " + fresh.Epoch,
	}
	if !slices.Equal(got, want) {
		t.Errorf("watcher told of\n%q\nwant\n%q", got, want)
	}

	// The removal and the new epochs survive a restart.
	s = openEngine(t, path, opts)
	if s.seq.epoch != old {
		t.Errorf("after reopening, the store's epoch is %q, want %q", s.seq.epoch, old)
	}
	positions = positionsOf(t, s, "a", "b", "never")
	want2 := map[string]service.Position{
		"a":     {Offset: 1, Epoch: pos.Epoch},
		"b":     {Offset: 1, Epoch: old},
		"never": {Offset: 0, Epoch: fresh.Epoch},
	}
	if !mapsEqual(positions, want2) {
		t.Errorf("after reopening, Positions = %v, want %v", positions, want2)
	}
	if res := mustPublish(t, s, pub("a", 6), "k2"); res != (service.Published{Position: service.Position{Offset: 2, Epoch: pos.Epoch}}) {
		t.Errorf("after reopening, Append = %+v, want offset 2 in epoch %q (keys from before Remove forgotten)", res, pos.Epoch)
	}
	if res := mustPublish(t, s, pub("a", 7), "k1"); res != (service.Published{Position: service.Position{Offset: 1, Epoch: pos.Epoch}, Duplicate: true}) {
		t.Errorf("after reopening, Append with a key seen after Remove = %+v", res)
	}
	if res := mustPublish(t, s, pub("never", 1), ""); res != (service.Published{Position: service.Position{Offset: 1, Epoch: fresh.Epoch}}) {
		t.Errorf("after reopening, Append to a removed channel = %+v, want offset 1 in epoch %q", res, fresh.Epoch)
	}
}

func TestEpoch(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "history.db")
	s := openEngine(t, path, Options{})
	e1 := s.seq.epoch
	if e1 == "" {
		t.Fatal("empty epoch")
	}
	mustPublish(t, s, pub("a", 1), "")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openEngine(t, path, Options{})
	if s.seq.epoch != e1 {
		t.Errorf("after reopening, epoch %q, want %q", s.seq.epoch, e1)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	s = openEngine(t, path, Options{})
	if s.seq.epoch == e1 || s.seq.epoch == "" {
		t.Errorf("a new database has epoch %q; the deleted one had %q", s.seq.epoch, e1)
	}
	res := mustPublish(t, s, pub("a", 1), "")
	if res.Offset != 1 || res.Epoch != s.seq.epoch {
		t.Errorf("Append to a new database = %+v", res)
	}
	// Two databases do not share an epoch.
	other := openEngine(t, filepath.Join(dir, "other.db"), Options{})
	if other.seq.epoch == s.seq.epoch {
		t.Errorf("two databases have epoch %q", s.seq.epoch)
	}
}

func TestPositionsAfterReopen(t *testing.T) {
	path := tempPath(t)
	s := openEngine(t, path, Options{})
	for i, ch := range []string{"a", "b", "b", "c.d", "c.d", "c.d"} {
		mustPublish(t, s, pub(ch, i), "")
	}
	if _, err := s.Remove(context.Background(), "e"); err != nil {
		t.Fatal(err)
	}
	before := positionsOf(t, s, "a", "b", "c.d", "e")
	if len(before) != 4 || before["a"].Offset != 1 || before["b"].Offset != 2 || before["c.d"].Offset != 3 || before["e"].Offset != 0 {
		t.Errorf("Positions = %v", before)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openEngine(t, path, Options{})
	after := positionsOf(t, s, "a", "b", "c.d", "e")
	if !mapsEqual(before, after) {
		t.Errorf("Positions before closing %v, after reopening %v", before, after)
	}
	for ch, pos := range before {
		res := mustPublish(t, s, pub(ch, 9), "")
		if res.Offset != pos.Offset+1 || res.Epoch != pos.Epoch {
			t.Errorf("%s: after reopening, Append = %+v, want the offset after %+v", ch, res, pos)
		}
	}
}

// A reopened history goes on numbering, and trimming, from what it kept.
func TestMaxPublicationsAfterReopen(t *testing.T) {
	path := tempPath(t)
	s := openEngine(t, path, Options{MaxPublications: 5})
	for i := 1; i <= 12; i++ {
		mustPublish(t, s, pub("a", i), "")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openEngine(t, path, Options{MaxPublications: 5})
	if res := mustPublish(t, s, pub("a", 13), ""); res.Offset != 13 {
		t.Errorf("after reopening, offset %d, want 13", res.Offset)
	}
	if got := offsets(readAll(t, s, "a")); !sameOffsets(got, span(9, 13)) {
		t.Errorf("after reopening kept %v, want 9 to 13", got)
	}
}

// A history trimmed to nothing by age goes on numbering after a reopen.
func TestMaxAgeAfterReopen(t *testing.T) {
	const maxAge = 300 * time.Millisecond
	path := tempPath(t)
	s := openEngine(t, path, Options{MaxAge: maxAge})
	old := pub("b", 1)
	old.Time = old.Time.Add(-time.Hour)
	mustPublish(t, s, old, "")
	poll.Until(t, 5*time.Second, "the old publication to be trimmed", func() bool { return len(readAll(t, s, "b")) == 0 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openEngine(t, path, Options{MaxAge: maxAge})
	if res := mustPublish(t, s, pub("b", 2), ""); res.Offset != 2 {
		t.Errorf("after trimming and reopening, offset %d, want 2", res.Offset)
	}
}
