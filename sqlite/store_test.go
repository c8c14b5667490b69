package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
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

func TestAppendConcurrentGapless(t *testing.T) {
	s := openStore(t, tempPath(t), Options{})
	channels := []string{"a", "b.c", "d"}
	const writers, each = 8, 40 // per channel
	var mu sync.Mutex
	got := map[string][]uint64{}
	var wg sync.WaitGroup
	for _, ch := range channels {
		for w := 0; w < writers; w++ {
			wg.Go(func() {
				for i := 0; i < each; i++ {
					res, err := s.Append(context.Background(), pub(ch, w*each+i), "")
					if err != nil {
						t.Error(err)
						return
					}
					if res.Epoch != s.Epoch() || res.Duplicate {
						t.Errorf("Append to %s = %+v; the store's epoch is %q", ch, res, s.Epoch())
					}
					mu.Lock()
					got[ch] = append(got[ch], res.Offset)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	const n = writers * each
	positions, err := s.Positions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range channels {
		o := got[ch]
		slices.Sort(o)
		if !sameOffsets(o, span(1, n)) {
			t.Errorf("%s: Append returned offsets %v, want 1 to %d once each", ch, o, n)
		}
		pubs := readAll(t, s, ch)
		if !sameOffsets(offsets(pubs), span(1, n)) {
			t.Errorf("%s: Read returned offsets %v, want 1 to %d", ch, offsets(pubs), n)
		}
		// Every publication is stored as it was appended.
		seen := map[string]bool{}
		for _, p := range pubs {
			if p.Channel != ch || seen[string(p.Data)] {
				t.Errorf("%s: read %+v", ch, p)
			}
			seen[string(p.Data)] = true
		}
		if want := (service.Position{Offset: n, Epoch: s.Epoch()}); positions[ch] != want {
			t.Errorf("%s: position %+v, want %+v", ch, positions[ch], want)
		}
	}
	if len(positions) != len(channels) {
		t.Errorf("Positions = %v, want %d channels", positions, len(channels))
	}
}

type change struct {
	channel string
	pos     service.Position
	pub     *service.Publication
}

// watch records the store's changes.
func watch(s *Store) func() []change {
	var mu sync.Mutex
	var changes []change
	s.Watch(func(channel string, pos service.Position, p *service.Publication) {
		mu.Lock()
		defer mu.Unlock()
		changes = append(changes, change{channel, pos, p})
	})
	return func() []change {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(changes)
	}
}

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
	s.Watch(func(channel string, pos service.Position, p *service.Publication) {
		pubs, err := s.Read(context.Background(), channel, service.HistoryQuery{After: pos.Offset - 1, Limit: 1})
		readable <- err == nil && len(pubs) == 1 && pubs[0].Offset == pos.Offset
	})
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
	positions, err := s.Positions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
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

func TestIdempotency(t *testing.T) {
	path := tempPath(t)
	opts := Options{IdempotencyWindow: time.Hour}
	s := openStore(t, path, opts)
	first := mustAppend(t, s, pub("a", 1), "k")
	if first.Offset != 1 || first.Duplicate || first.Epoch != s.Epoch() {
		t.Fatalf("first Append = %+v", first)
	}
	mustAppend(t, s, pub("a", 2), "")
	mustAppend(t, s, pub("a", 3), "other")
	again := mustAppend(t, s, pub("a", 99), "k")
	if again != (service.Published{Position: first.Position, Duplicate: true}) {
		t.Errorf("Append with a seen key = %+v, want %+v as a duplicate", again, first.Position)
	}
	// Keys are per channel.
	if res := mustAppend(t, s, pub("b", 1), "k"); res.Duplicate || res.Offset != 1 {
		t.Errorf("the same key on another channel: %+v", res)
	}
	pubs := readAll(t, s, "a")
	if !sameOffsets(offsets(pubs), span(1, 3)) || string(pubs[0].Data) != `{"n":1}` {
		t.Errorf("history %+v: a duplicate was appended", pubs)
	}

	// Keys survive a restart.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, path, opts)
	if res := mustAppend(t, s, pub("a", 100), "k"); res != (service.Published{Position: first.Position, Duplicate: true}) {
		t.Errorf("after reopening, Append with a seen key = %+v, want %+v as a duplicate", res, first.Position)
	}
	if res := mustAppend(t, s, pub("a", 101), "other"); !res.Duplicate || res.Offset != 3 {
		t.Errorf("after reopening, Append with a seen key = %+v, want offset 3 as a duplicate", res)
	}
	if res := mustAppend(t, s, pub("a", 102), "new"); res.Duplicate || res.Offset != 4 {
		t.Errorf("after reopening, Append with a new key = %+v, want offset 4", res)
	}
	if got := offsets(readAll(t, s, "a")); !sameOffsets(got, span(1, 4)) {
		t.Errorf("history %v, want 1 to 4", got)
	}
}

func TestIdempotencyWindow(t *testing.T) {
	s := openStore(t, tempPath(t), Options{IdempotencyWindow: time.Minute})
	// A key is remembered from the publication's time.
	p := pub("a", 1)
	p.Time = p.Time.Add(-2 * time.Minute)
	mustAppend(t, s, p, "k")
	if res := mustAppend(t, s, pub("a", 2), "k"); res.Duplicate || res.Offset != 2 {
		t.Errorf("Append with a key older than the window = %+v, want offset 2", res)
	}
	// And the new publication is remembered under it.
	if res := mustAppend(t, s, pub("a", 3), "k"); !res.Duplicate || res.Offset != 2 {
		t.Errorf("Append with a seen key = %+v, want offset 2 as a duplicate", res)
	}
}

func TestIdempotencyConcurrent(t *testing.T) {
	s := openStore(t, tempPath(t), Options{IdempotencyWindow: time.Hour})
	const n = 30
	results := make([]service.Published, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res, err := s.Append(context.Background(), pub("a", i), "k")
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		})
	}
	wg.Wait()
	firsts := 0
	for _, res := range results {
		if !res.Duplicate {
			firsts++
		}
		if res.Offset != 1 || res.Epoch != s.Epoch() {
			t.Errorf("Append = %+v, want offset 1", res)
		}
	}
	if firsts != 1 {
		t.Errorf("%d publications were not duplicates, want 1", firsts)
	}
	if got := offsets(readAll(t, s, "a")); !sameOffsets(got, []uint64{1}) {
		t.Errorf("history %v, want [1]", got)
	}
}

func TestIdempotencyWindowZero(t *testing.T) {
	path := tempPath(t)
	s := openStore(t, path, Options{})
	for i := 1; i <= 3; i++ {
		if res := mustAppend(t, s, pub("a", i), "k"); res.Duplicate || res.Offset != uint64(i) {
			t.Errorf("Append %d without a window = %+v", i, res)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Keys written with a window are ignored without one.
	s = openStore(t, path, Options{IdempotencyWindow: time.Hour})
	mustAppend(t, s, pub("a", 4), "w")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, path, Options{})
	if res := mustAppend(t, s, pub("a", 5), "w"); res.Duplicate || res.Offset != 5 {
		t.Errorf("Append without a window after one with = %+v, want offset 5", res)
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
	positions, err := s.Positions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
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
	positions, err = s.Positions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
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

func TestClosed(t *testing.T) {
	s := openStore(t, tempPath(t), Options{})
	mustAppend(t, s, pub("a", 1), "")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.Append(ctx, pub("a", 2), ""); service.ErrorCode(err) != service.EUNAVAILABLE {
		t.Errorf("Append after Close: error %v, want %q", err, service.EUNAVAILABLE)
	}
	if _, err := s.Remove(ctx, "a"); service.ErrorCode(err) != service.EUNAVAILABLE {
		t.Errorf("Remove after Close: error %v, want %q", err, service.EUNAVAILABLE)
	}
	// Closing twice is harmless.
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
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
	before, err := s.Positions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 4 || before["a"].Offset != 1 || before["b"].Offset != 2 || before["c.d"].Offset != 3 || before["e"].Offset != 0 {
		t.Errorf("Positions = %v", before)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, path, Options{})
	after, err := s.Positions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
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

func TestCloseCommitsQueued(t *testing.T) {
	path := tempPath(t)
	s := openStore(t, path, Options{})
	channels := []string{"a", "b"}
	var mu sync.Mutex
	done := map[string][]uint64{}
	started := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		ch := channels[w%len(channels)]
		wg.Go(func() {
			for i := 0; ; i++ {
				res, err := s.Append(context.Background(), pub(ch, i), "")
				if err != nil {
					if service.ErrorCode(err) != service.EUNAVAILABLE {
						t.Errorf("Append while closing: %v", err)
					}
					return
				}
				mu.Lock()
				done[ch] = append(done[ch], res.Offset)
				n := len(done[ch])
				mu.Unlock()
				if n >= 20 {
					once.Do(func() { close(started) })
				}
			}
		})
	}
	<-started
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	s = openStore(t, path, Options{})
	positions, err := s.Positions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range channels {
		got := done[ch]
		slices.Sort(got)
		n := uint64(len(got))
		if !sameOffsets(got, span(1, n)) {
			t.Errorf("%s: Appends returned offsets %v, want 1 to %d", ch, got, n)
		}
		// Every write queued before Close was committed, and every
		// committed write was acknowledged.
		if stored := offsets(readAll(t, s, ch)); !sameOffsets(stored, span(1, n)) {
			t.Errorf("%s: stored %v; Appends returned 1 to %d", ch, stored, n)
		}
		if positions[ch].Offset != n {
			t.Errorf("%s: position %+v, want offset %d", ch, positions[ch], n)
		}
	}
}

func TestAppendCancelledWaitingForSlot(t *testing.T) {
	s := openStore(t, tempPath(t), Options{QueueSize: 1})
	// The watcher holds the committer on the first publication.
	entered := make(chan struct{})
	release := make(chan struct{})
	var releaseOnce sync.Once
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	// Registered before openStore's Close runs (cleanups run last first):
	// a failing test must not leave the committer held and Close waiting.
	t.Cleanup(letGo)
	var once sync.Once
	s.Watch(func(string, service.Position, *service.Publication) {
		once.Do(func() {
			close(entered)
			<-release
		})
	})
	first := make(chan error, 1)
	go func() {
		_, err := s.Append(context.Background(), pub("a", 1), "")
		first <- err
	}()
	<-entered
	// The second publication takes the only slot (once the first has
	// given it back, if it has yet) and waits for a commit that cannot
	// happen yet.
	second := make(chan error, 1)
	go func() {
		res, err := s.Append(context.Background(), pub("a", 2), "")
		if err == nil && res.Offset != 2 {
			err = fmt.Errorf("offset %d, want 2", res.Offset)
		}
		second <- err
	}()
	eventually(t, "the second publication to take the slot", func() bool { return len(s.slots) == cap(s.slots) })

	ctx, cancel := context.WithCancel(context.Background())
	third := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, pub("a", 3), "")
		third <- err
	}()
	cancel()
	select {
	case err := <-third:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Append with a cancelled context: error %v, want %v", err, context.Canceled)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Append waiting for a slot did not return when its context was cancelled")
	}
	rctx, rcancel := context.WithCancel(context.Background())
	rcancel()
	if _, err := s.Remove(rctx, "a"); !errors.Is(err, context.Canceled) {
		t.Errorf("Remove with a cancelled context: error %v, want %v", err, context.Canceled)
	}

	letGo()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	// The cancelled publication took no offset.
	if res := mustAppend(t, s, pub("a", 4), ""); res.Offset != 3 {
		t.Errorf("next Append got offset %d, want 3", res.Offset)
	}
	if got := offsets(readAll(t, s, "a")); !sameOffsets(got, span(1, 3)) {
		t.Errorf("history %v, want 1 to 3", got)
	}
}

func TestAppendCancelledAfterQueueing(t *testing.T) {
	// An Append whose context ends after it was given an offset returns
	// the context's error, and the publication is committed all the same.
	s := openStore(t, tempPath(t), Options{})
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	s.Watch(func(string, service.Position, *service.Publication) {
		once.Do(func() {
			close(entered)
			<-release
		})
	})
	first := make(chan error, 1)
	go func() {
		_, err := s.Append(context.Background(), pub("a", 1), "")
		first <- err
	}()
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, pub("a", 2), "")
		errc <- err
	}()
	eventually(t, "the publication to be queued", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.queue) == 1
	})
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Append: error %v, want %v", err, context.Canceled)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if res := mustAppend(t, s, pub("a", 3), ""); res.Offset != 3 {
		t.Errorf("next Append got offset %d, want 3", res.Offset)
	}
	if got := offsets(readAll(t, s, "a")); !sameOffsets(got, span(1, 3)) {
		t.Errorf("history %v, want 1 to 3", got)
	}
}

// The committer may be woken with nothing queued (a wake left over from
// writes it already took): it must lose nothing, and mix nothing up,
// however often that happens while writes come in.
func TestAppendSpuriousWakes(t *testing.T) {
	s := openStore(t, tempPath(t), Options{})
	changes := watch(s)
	stop := make(chan struct{})
	spammed := make(chan struct{})
	go func() {
		defer close(spammed)
		for {
			select {
			case <-stop:
				return
			case s.wake <- struct{}{}:
			default:
				runtime.Gosched()
			}
		}
	}()
	const writers, each = 6, 100
	var mu sync.Mutex
	var got []uint64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				res, err := s.Append(context.Background(), pub("a", w*each+i), "")
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got = append(got, res.Offset)
				mu.Unlock()
			}
		})
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		t.Fatal("Appends did not return")
	}
	close(stop)
	<-spammed
	const n = writers * each
	slices.Sort(got)
	if !sameOffsets(got, span(1, n)) {
		t.Errorf("Append returned offsets %v, want 1 to %d once each", got, n)
	}
	pubs := readAll(t, s, "a")
	if !sameOffsets(offsets(pubs), span(1, n)) {
		t.Errorf("Read returned offsets %v, want 1 to %d", offsets(pubs), n)
	}
	data := map[string]bool{}
	for _, p := range pubs {
		data[string(p.Data)] = true
	}
	if len(data) != n {
		t.Errorf("%d different publications stored, want %d", len(data), n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var told []uint64
	for _, c := range changes() {
		told = append(told, c.pos.Offset)
	}
	if !sameOffsets(told, span(1, n)) {
		t.Errorf("watcher told of offsets %v, want 1 to %d in order", told, n)
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
