package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/service"
)

func TestWatchInOrder(t *testing.T) {
	s := openStore(t, tempPath(t), Options{})
	changes := watch(s)
	channels := []string{"x", "y"}
	const writers, each = 4, 30
	var wg sync.WaitGroup
	for _, ch := range channels {
		for w := 0; w < writers; w++ {
			wg.Go(func() {
				for i := 0; i < each; i++ {
					if _, err := s.Append(context.Background(), pub(ch, w*each+i), ""); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	// Close waits for the committer, which tells the watcher.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	per := map[string][]uint64{}
	for _, c := range changes() {
		if c.pub == nil {
			t.Fatalf("a removal reported: %+v", c)
		}
		if c.pub.Channel != c.channel || c.pub.Offset != c.pos.Offset || c.pos.Epoch != s.Epoch() {
			t.Errorf("change %q %+v with publication %+v", c.channel, c.pos, *c.pub)
		}
		per[c.channel] = append(per[c.channel], c.pos.Offset)
	}
	for _, ch := range channels {
		if !sameOffsets(per[ch], span(1, writers*each)) {
			t.Errorf("%s: watcher told of offsets %v, want 1 to %d in order", ch, per[ch], writers*each)
		}
	}
}

func TestWatchAfterCommit(t *testing.T) {
	// The watcher is told of a publication once it can be read.
	s := openStore(t, tempPath(t), Options{})
	readable := make(chan bool, 10)
	s.Watch(watchFunc(func(channel string, pos service.Position, p *service.Publication) {
		pubs, err := s.Read(context.Background(), channel, service.HistoryQuery{After: pos.Offset - 1, Limit: 1})
		readable <- err == nil && len(pubs) == 1 && pubs[0].Offset == pos.Offset
	}))
	for i := 0; i < 3; i++ {
		mustAppend(t, s, pub("a", i), "")
		if !<-readable {
			t.Fatalf("publication %d was not readable when the watcher was told of it", i+1)
		}
	}
}

func TestRead(t *testing.T) {
	s := openStore(t, tempPath(t), Options{})
	var want []service.Publication
	for i := 1; i <= 10; i++ {
		p := pub("ch", i)
		p.Time = p.Time.Add(time.Duration(i) * time.Second)
		res := mustAppend(t, s, p, "")
		p.Offset = res.Offset
		want = append(want, p)
	}
	mustAppend(t, s, pub("other", 1), "")
	mustAppend(t, s, pub("ch.sub", 1), "")

	all := readAll(t, s, "ch")
	if len(all) != 10 {
		t.Fatalf("read %d publications, want 10", len(all))
	}
	for i, p := range all {
		w := want[i]
		if p.Channel != w.Channel || p.Offset != w.Offset || string(p.Data) != string(w.Data) ||
			p.Publisher != w.Publisher || !p.Time.Equal(w.Time) || p.Time.Location() != time.UTC {
			t.Errorf("read %+v, want %+v", p, w)
		}
	}

	const maxU = ^uint64(0)
	for _, tt := range []struct {
		q    service.HistoryQuery
		want []uint64
	}{
		{service.HistoryQuery{Limit: 100}, span(1, 10)},
		{service.HistoryQuery{Limit: 3}, span(1, 3)},
		{service.HistoryQuery{After: 3, Limit: 4}, span(4, 7)},
		{service.HistoryQuery{After: 3, Limit: 100}, span(4, 10)},
		{service.HistoryQuery{After: 3, Before: 7, Limit: 100}, span(4, 6)},
		{service.HistoryQuery{After: 3, Before: 4, Limit: 100}, nil},
		{service.HistoryQuery{After: 3, Before: 3, Limit: 100}, nil},
		{service.HistoryQuery{After: 10, Limit: 100}, nil},
		{service.HistoryQuery{Before: 1, Limit: 100}, nil},
		{service.HistoryQuery{Before: 2, Limit: 100}, []uint64{1}},
		{service.HistoryQuery{Before: maxU, Limit: 100}, span(1, 10)},
		{service.HistoryQuery{Limit: 100, Reverse: true}, []uint64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}},
		{service.HistoryQuery{Limit: 3, Reverse: true}, []uint64{10, 9, 8}},
		{service.HistoryQuery{Before: 5, Limit: 100, Reverse: true}, []uint64{4, 3, 2, 1}},
		{service.HistoryQuery{Before: 5, Limit: 2, Reverse: true}, []uint64{4, 3}},
		{service.HistoryQuery{After: 3, Before: 8, Limit: 100, Reverse: true}, []uint64{7, 6, 5, 4}},
		{service.HistoryQuery{After: 3, Limit: 2, Reverse: true}, []uint64{10, 9}},
		{service.HistoryQuery{Before: 1, Limit: 100, Reverse: true}, nil},
		{service.HistoryQuery{Before: maxU, Limit: 2, Reverse: true}, []uint64{10, 9}},
		{service.HistoryQuery{Limit: 0}, nil},
		{service.HistoryQuery{Limit: 0, Reverse: true}, nil},
		{service.HistoryQuery{Limit: -1}, nil},
	} {
		pubs, err := s.Read(context.Background(), "ch", tt.q)
		if err != nil {
			t.Errorf("Read(%+v): %v", tt.q, err)
			continue
		}
		if !sameOffsets(offsets(pubs), tt.want) {
			t.Errorf("Read(%+v) = %v, want %v", tt.q, offsets(pubs), tt.want)
		}
	}

	// After beyond any offset reads nothing, however large: offsets are
	// uint64 on the wire, and SQLite's integers are int64.
	for _, after := range []uint64{11, 1<<63 - 1, 1 << 63, maxU - 1, maxU} {
		for _, reverse := range []bool{false, true} {
			q := service.HistoryQuery{After: after, Limit: 100, Reverse: reverse}
			if pubs, err := s.Read(context.Background(), "ch", q); err != nil || len(pubs) != 0 {
				t.Errorf("Read(%+v) = %v, %v; want nothing", q, offsets(pubs), err)
			}
		}
	}

	pubs, err := s.Read(context.Background(), "nothing", service.HistoryQuery{Limit: 10})
	if err != nil || len(pubs) != 0 {
		t.Errorf("Read of an unknown channel = %v, %v", pubs, err)
	}
}

func TestMaxPublications(t *testing.T) {
	path := tempPath(t)
	s := openStore(t, path, Options{MaxPublications: 5})
	for i := 1; i <= 12; i++ {
		if res := mustAppend(t, s, pub("a", i), ""); res.Offset != uint64(i) {
			t.Fatalf("publication %d got offset %d", i, res.Offset)
		}
	}
	if got := offsets(readAll(t, s, "a")); !sameOffsets(got, span(8, 12)) {
		t.Errorf("after 12 publications kept %v, want 8 to 12", got)
	}
	// Publications appended together are trimmed all the same.
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Go(func() {
			if _, err := s.Append(context.Background(), pub("a", i), ""); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := offsets(readAll(t, s, "a")); !sameOffsets(got, span(28, 32)) {
		t.Errorf("after 32 publications kept %v, want 28 to 32", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, path, Options{MaxPublications: 5})
	if res := mustAppend(t, s, pub("a", 33), ""); res.Offset != 33 {
		t.Errorf("after reopening, offset %d, want 33", res.Offset)
	}
	if got := offsets(readAll(t, s, "a")); !sameOffsets(got, span(29, 33)) {
		t.Errorf("after reopening kept %v, want 29 to 33", got)
	}
}

func TestMaxAge(t *testing.T) {
	const maxAge = 300 * time.Millisecond
	path := tempPath(t)
	s := openStore(t, path, Options{MaxAge: maxAge})
	old := pub("a", 1)
	old.Time = old.Time.Add(-time.Hour)
	mustAppend(t, s, old, "")
	mustAppend(t, s, old, "")
	start := time.Now()
	mustAppend(t, s, pub("a", 3), "")
	mustAppend(t, s, pub("b", 1), "")
	eventually(t, "old publications to be trimmed", func() bool {
		o := offsets(readAll(t, s, "a"))
		return len(o) == 0 || o[0] == 3
	})
	// Publication 3 was published after start: until start+MaxAge, it
	// must be kept.
	if got := offsets(readAll(t, s, "a")); !sameOffsets(got, []uint64{3}) && time.Since(start) < maxAge {
		t.Errorf("a publication younger than MaxAge was trimmed: kept %v", got)
	}
	eventually(t, "young publications to be trimmed once old", func() bool {
		return len(readAll(t, s, "a")) == 0 && len(readAll(t, s, "b")) == 0
	})
	if time.Since(start) < maxAge {
		t.Errorf("publications trimmed after %v, before MaxAge %v", time.Since(start), maxAge)
	}
	// Numbering goes on from where it was.
	if res := mustAppend(t, s, pub("a", 4), ""); res.Offset != 4 {
		t.Errorf("after trimming, offset %d, want 4", res.Offset)
	}
	if got := offsets(readAll(t, s, "a")); !sameOffsets(got, []uint64{4}) {
		t.Errorf("read %v, want [4]", got)
	}
	positions := s.Positions()
	if positions["a"].Offset != 4 || positions["b"].Offset != 1 {
		t.Errorf("Positions = %v", positions)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, path, Options{MaxAge: maxAge})
	if res := mustAppend(t, s, pub("b", 2), ""); res.Offset != 2 {
		t.Errorf("after trimming and reopening, offset %d, want 2", res.Offset)
	}
}

func TestRemove(t *testing.T) {
	path := tempPath(t)
	opts := Options{IdempotencyWindow: time.Hour}
	s := openStore(t, path, opts)
	changes := watch(s)
	for i := 1; i <= 3; i++ {
		mustAppend(t, s, pub("a", i), fmt.Sprint("k", i))
	}
	mustAppend(t, s, pub("b", 1), "")
	old := s.Epoch()

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
	positions := s.Positions()
	if positions["a"] != pos || positions["b"] != (service.Position{Offset: 1, Epoch: old}) {
		t.Errorf("Positions = %v", positions)
	}
	if s.Epoch() != old {
		t.Errorf("the store's epoch changed from %q to %q", old, s.Epoch())
	}

	// The channel starts again in the new epoch, keys forgotten.
	res := mustAppend(t, s, pub("a", 4), "k1")
	if res != (service.Published{Position: service.Position{Offset: 1, Epoch: pos.Epoch}}) {
		t.Errorf("Append after Remove = %+v, want offset 1 in epoch %q", res, pos.Epoch)
	}
	res = mustAppend(t, s, pub("a", 5), "k1")
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
	s = openStore(t, path, opts)
	if s.Epoch() != old {
		t.Errorf("after reopening, the store's epoch is %q, want %q", s.Epoch(), old)
	}
	positions = s.Positions()
	want2 := map[string]service.Position{
		"a":     {Offset: 1, Epoch: pos.Epoch},
		"b":     {Offset: 1, Epoch: old},
		"never": {Offset: 0, Epoch: fresh.Epoch},
	}
	if !mapsEqual(positions, want2) {
		t.Errorf("after reopening, Positions = %v, want %v", positions, want2)
	}
	if res := mustAppend(t, s, pub("a", 6), "k2"); res != (service.Published{Position: service.Position{Offset: 2, Epoch: pos.Epoch}}) {
		t.Errorf("after reopening, Append = %+v, want offset 2 in epoch %q (keys from before Remove forgotten)", res, pos.Epoch)
	}
	if res := mustAppend(t, s, pub("a", 7), "k1"); res != (service.Published{Position: service.Position{Offset: 1, Epoch: pos.Epoch}, Duplicate: true}) {
		t.Errorf("after reopening, Append with a key seen after Remove = %+v", res)
	}
	if res := mustAppend(t, s, pub("never", 1), ""); res != (service.Published{Position: service.Position{Offset: 1, Epoch: fresh.Epoch}}) {
		t.Errorf("after reopening, Append to a removed channel = %+v, want offset 1 in epoch %q", res, fresh.Epoch)
	}
}

func TestEpoch(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "history.db")
	s := openStore(t, path, Options{})
	e1 := s.Epoch()
	if e1 == "" {
		t.Fatal("empty epoch")
	}
	mustAppend(t, s, pub("a", 1), "")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, path, Options{})
	if s.Epoch() != e1 {
		t.Errorf("after reopening, epoch %q, want %q", s.Epoch(), e1)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	s = openStore(t, path, Options{})
	if s.Epoch() == e1 || s.Epoch() == "" {
		t.Errorf("a new database has epoch %q; the deleted one had %q", s.Epoch(), e1)
	}
	res := mustAppend(t, s, pub("a", 1), "")
	if res.Offset != 1 || res.Epoch != s.Epoch() {
		t.Errorf("Append to a new database = %+v", res)
	}
	// Two databases do not share an epoch.
	other := openStore(t, filepath.Join(dir, "other.db"), Options{})
	if other.Epoch() == s.Epoch() {
		t.Errorf("two databases have epoch %q", s.Epoch())
	}
}

func TestPositionsAfterReopen(t *testing.T) {
	path := tempPath(t)
	s := openStore(t, path, Options{})
	for i, ch := range []string{"a", "b", "b", "c.d", "c.d", "c.d"} {
		mustAppend(t, s, pub(ch, i), "")
	}
	if _, err := s.Remove(context.Background(), "e"); err != nil {
		t.Fatal(err)
	}
	before := s.Positions()
	if len(before) != 4 || before["a"].Offset != 1 || before["b"].Offset != 2 || before["c.d"].Offset != 3 || before["e"].Offset != 0 {
		t.Errorf("Positions = %v", before)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, path, Options{})
	after := s.Positions()
	if !mapsEqual(before, after) {
		t.Errorf("Positions before closing %v, after reopening %v", before, after)
	}
	for ch, pos := range before {
		res := mustAppend(t, s, pub(ch, 9), "")
		if res.Offset != pos.Offset+1 || res.Epoch != pos.Epoch {
			t.Errorf("%s: after reopening, Append = %+v, want the offset after %+v", ch, res, pos)
		}
	}
}

func TestReadStopsAtMaxBytes(t *testing.T) {
	s := openStore(t, tempPath(t), Options{})
	data := json.RawMessage(`"` + strings.Repeat("x", 98) + `"`) // 100 bytes
	for range 10 {
		p := pub("a", 0)
		p.Data = data
		mustAppend(t, s, p, "")
	}
	for _, tc := range []struct {
		maxBytes int
		reverse  bool
		want     []uint64
	}{
		{0, false, span(1, 10)},
		{250, false, span(1, 3)}, // the third reaches 250; no more after it
		{300, false, span(1, 3)},
		{301, false, span(1, 4)},
		{1, false, span(1, 1)}, // the first always comes
		{250, true, []uint64{10, 9, 8}},
	} {
		got, err := s.Read(context.Background(), "a", service.HistoryQuery{Limit: 100, MaxBytes: tc.maxBytes, Reverse: tc.reverse})
		if err != nil {
			t.Fatal(err)
		}
		if !sameOffsets(offsets(got), tc.want) {
			t.Errorf("MaxBytes %d, reverse %v: offsets %v, want %v", tc.maxBytes, tc.reverse, offsets(got), tc.want)
		}
	}
}

// History that older servers stored without checking its UTF-8 is read
// back as valid UTF-8, and still as the same JSON shape: every bad byte
// becomes U+FFFD, which clients can put in a text frame.
func TestReadRepairsInvalidUTF8(t *testing.T) {
	path := tempPath(t)
	s := openStore(t, path, Options{})
	bad := pub("a", 0)
	bad.Data = json.RawMessage("{\"t\":\"a\xffb\",\"u\":[\"\xed\xa0\x80\"]}")
	mustAppend(t, s, bad, "")
	mustAppend(t, s, pub("a", 2), "")
	s.Close()

	s = openStore(t, path, Options{})
	got := readAll(t, s, "a")
	if len(got) != 2 {
		t.Fatalf("read %d publications, want 2", len(got))
	}
	want := "{\"t\":\"a\uFFFDb\",\"u\":[\"\uFFFD\"]}"
	if d := string(got[0].Data); d != want || !json.Valid(got[0].Data) {
		t.Errorf("data %q, want %q (valid JSON)", d, want)
	}
	if d := string(got[1].Data); d != `{"n":2}` {
		t.Errorf("a valid publication came back as %q", d)
	}
}
