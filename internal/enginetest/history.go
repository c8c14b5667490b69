package enginetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/service"
)

func testPublishThenHistory(t *testing.T, open Opener) {
	// A publication is in the history, and the channel's position at
	// least its offset, once Publish has returned, on every node.
	e, another := open(t, Options{})
	b := another()
	// Subscribers make fan-out take a while, as it does in production.
	for i := range 50 {
		mustSubscribe(t, e, "a", NewReceiver("u", fmt.Sprint(i)), false)
	}
	var mu sync.Mutex
	var behind []string
	check := func(reader service.Engine, res service.Published) error {
		hist, err := reader.History(context.Background(), "a", service.HistoryQuery{After: res.Offset - 1, Limit: 1})
		if err != nil {
			return err
		}
		if hist.Position.Offset < res.Offset || len(hist.Publications) != 1 {
			mu.Lock()
			defer mu.Unlock()
			behind = append(behind, fmt.Sprintf("offset %d: history at %d with %d publications", res.Offset, hist.Position.Offset, len(hist.Publications)))
		}
		return nil
	}
	const n = 300
	for i := range n {
		res := mustPublish(t, e, pub("a", i), "")
		reader := e
		if i%2 == 1 {
			reader = b
		}
		if err := check(reader, res); err != nil {
			t.Fatal(err)
		}
	}
	// And with publishers at once, so that batches hold several.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range 40 {
				res, err := e.Publish(context.Background(), pub("a", i), "")
				if err == nil {
					err = check(e, res)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if len(behind) > 0 {
		t.Errorf("of %d publications, %d were not in the history read right after Publish returned: %v", n+8*40, len(behind), behind[:min(len(behind), 3)])
	}
}

func testHistory(t *testing.T, open Opener) {
	e, _ := open(t, Options{})
	var last service.Published
	for i := 1; i <= 5; i++ {
		last = mustPublish(t, e, pub("a", i), "")
	}
	at := last.Position
	for _, tt := range []struct {
		q    service.HistoryQuery
		want []uint64
	}{
		{service.HistoryQuery{Limit: 10}, span(1, 5)},
		{service.HistoryQuery{After: 2, Limit: 2}, span(3, 4)},
		{service.HistoryQuery{After: 2, Before: 5, Limit: 10}, span(3, 4)},
		{service.HistoryQuery{After: 5, Limit: 10}, nil},
		{service.HistoryQuery{Limit: 10, Reverse: true}, []uint64{5, 4, 3, 2, 1}},
		{service.HistoryQuery{Before: 3, Limit: 10, Reverse: true}, []uint64{2, 1}},
		{service.HistoryQuery{After: 1, Before: 5, Limit: 2, Reverse: true}, []uint64{4, 3}},
		{service.HistoryQuery{Before: 100, Limit: 10}, span(1, 5)},
		{service.HistoryQuery{Limit: 0}, nil}, // the position alone
	} {
		hist, err := e.History(context.Background(), "a", tt.q)
		if err != nil {
			t.Fatal(err)
		}
		got := offsets(hist.Publications)
		if !sameOffsets(got, tt.want) || hist.Position != at {
			t.Errorf("History(%+v) = %v at %+v, want %v at %+v", tt.q, got, hist.Position, tt.want, at)
		}
		for _, p := range hist.Publications {
			want := pub("a", int(p.Offset))
			if p.Channel != "a" || string(p.Data) != string(want.Data) || p.Publisher != want.Publisher || p.Time.IsZero() {
				t.Errorf("History(%+v) read %+v", tt.q, p)
			}
		}
	}
	hist, err := e.History(context.Background(), "unknown", service.HistoryQuery{Limit: 10})
	if err != nil || len(hist.Publications) != 0 || hist.Position.Offset != 0 || hist.Position.Epoch == "" {
		t.Errorf("History of an unknown channel = %+v, %v", hist, err)
	}
	// Reading history does not make a channel.
	infos, _, err := e.Channels(context.Background(), "unknown", all, 10)
	if err != nil || len(infos) != 0 {
		t.Errorf("Channels lists %v (%v) after a read of its history", infos, err)
	}
}

// MaxBytes stops a page once its publications' data add up to it, the
// first coming whatever its size.
func testHistoryMaxBytes(t *testing.T, open Opener) {
	e, _ := open(t, Options{})
	data := json.RawMessage(`"` + strings.Repeat("x", 98) + `"`) // 100 bytes
	for range 10 {
		p := pub("a", 0)
		p.Data = data
		mustPublish(t, e, p, "")
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
		h, err := e.History(context.Background(), "a", service.HistoryQuery{Limit: 100, MaxBytes: tc.maxBytes, Reverse: tc.reverse})
		if err != nil {
			t.Fatal(err)
		}
		if got := offsets(h.Publications); !sameOffsets(got, tc.want) {
			t.Errorf("MaxBytes %d, reverse %v: offsets %v, want %v", tc.maxBytes, tc.reverse, got, tc.want)
		}
	}
}

func testMaxPublications(t *testing.T, open Opener) {
	e, _ := open(t, Options{MaxPublications: 5})
	for i := 1; i <= 12; i++ {
		if res := mustPublish(t, e, pub("a", i), ""); res.Offset != uint64(i) {
			t.Fatalf("publication %d got offset %d", i, res.Offset)
		}
	}
	if got := offsets(readAll(t, e, "a")); !sameOffsets(got, span(8, 12)) {
		t.Errorf("after 12 publications kept %v, want 8 to 12", got)
	}
	// Publications made at once are trimmed all the same.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if _, err := e.Publish(context.Background(), pub("a", i), ""); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := offsets(readAll(t, e, "a")); !sameOffsets(got, span(28, 32)) {
		t.Errorf("after 32 publications kept %v, want 28 to 32", got)
	}
}

func testMaxAge(t *testing.T, open Opener) {
	const maxAge = 300 * time.Millisecond
	e, _ := open(t, Options{MaxAge: maxAge})
	old := pub("a", 1)
	old.Time = old.Time.Add(-time.Hour)
	mustPublish(t, e, old, "")
	mustPublish(t, e, old, "")
	start := time.Now()
	mustPublish(t, e, pub("a", 3), "")
	mustPublish(t, e, pub("b", 1), "")
	poll.Until(t, wait, "old publications to be trimmed", func() bool {
		o := offsets(readAll(t, e, "a"))
		return len(o) == 0 || o[0] == 3
	})
	// Publication 3 was published after start: until start+MaxAge, it
	// must be kept.
	if got := offsets(readAll(t, e, "a")); !sameOffsets(got, []uint64{3}) && time.Since(start) < maxAge {
		t.Errorf("a publication younger than MaxAge was trimmed: kept %v", got)
	}
	poll.Until(t, wait, "young publications to be trimmed once old", func() bool {
		return len(readAll(t, e, "a")) == 0 && len(readAll(t, e, "b")) == 0
	})
	if time.Since(start) < maxAge {
		t.Errorf("publications trimmed after %v, before MaxAge %v", time.Since(start), maxAge)
	}
	// Numbering goes on from where it was.
	if res := mustPublish(t, e, pub("a", 4), ""); res.Offset != 4 {
		t.Errorf("after trimming, offset %d, want 4", res.Offset)
	}
	if got := offsets(readAll(t, e, "a")); !sameOffsets(got, []uint64{4}) {
		t.Errorf("read %v, want [4]", got)
	}
	if got := position(t, e, "b"); got.Offset != 1 {
		t.Errorf("after trimming, b is at %+v, want offset 1", got)
	}
}

func testIdempotency(t *testing.T, open Opener) {
	e, another := open(t, Options{IdempotencyWindow: time.Hour})
	first := mustPublish(t, e, pub("a", 1), "k")
	if first.Offset != 1 || first.Duplicate || first.Epoch == "" {
		t.Fatalf("first Publish = %+v", first)
	}
	mustPublish(t, e, pub("a", 2), "")
	mustPublish(t, e, pub("a", 3), "other")
	again := mustPublish(t, e, pub("a", 99), "k")
	if again != (service.Published{Position: first.Position, Duplicate: true}) {
		t.Errorf("Publish with a seen key = %+v, want %+v as a duplicate", again, first.Position)
	}
	// Every node knows the key.
	if res := mustPublish(t, another(), pub("a", 100), "other"); res != (service.Published{Position: service.Position{Offset: 3, Epoch: first.Epoch}, Duplicate: true}) {
		t.Errorf("Publish on another node with a seen key = %+v, want offset 3 as a duplicate", res)
	}
	// Keys are per channel.
	if res := mustPublish(t, e, pub("b", 1), "k"); res.Duplicate || res.Offset != 1 {
		t.Errorf("the same key on another channel: %+v", res)
	}
	pubs := readAll(t, e, "a")
	if !sameOffsets(offsets(pubs), span(1, 3)) || string(pubs[0].Data) != `{"n":1}` {
		t.Errorf("history %+v: a duplicate was appended", pubs)
	}
	// A removal forgets the keys, in the new epoch.
	pos := mustRemove(t, e, "a")
	if res := mustPublish(t, e, pub("a", 4), "k"); res != (service.Published{Position: service.Position{Offset: 1, Epoch: pos.Epoch}}) {
		t.Errorf("Publish after Remove = %+v, want offset 1 in %q", res, pos.Epoch)
	}
	if res := mustPublish(t, e, pub("a", 5), "k"); res != (service.Published{Position: service.Position{Offset: 1, Epoch: pos.Epoch}, Duplicate: true}) {
		t.Errorf("Publish with a key seen after Remove = %+v", res)
	}
}

// A key is forgotten once the window has passed.
func testIdempotencyWindow(t *testing.T, open Opener) {
	const window = time.Second
	e, _ := open(t, Options{IdempotencyWindow: window})
	start := time.Now()
	first := mustPublish(t, e, pub("a", 1), "k")
	acked := time.Now()
	res := mustPublish(t, e, pub("a", 2), "k")
	if time.Since(start) < window && res != (service.Published{Position: first.Position, Duplicate: true}) {
		t.Errorf("Publish with a key seen within the window = %+v, want %+v as a duplicate", res, first.Position)
	}
	// Waiting for the window to pass is not an assertion: the key,
	// remembered before Publish returned, must be forgotten by then.
	time.Sleep(time.Until(acked.Add(window + 50*time.Millisecond)))
	if res := mustPublish(t, e, pub("a", 3), "k"); res.Duplicate || res.Offset != 2 {
		t.Errorf("Publish with a key older than the window = %+v, want offset 2", res)
	}
	if res := mustPublish(t, e, pub("a", 4), "k"); !res.Duplicate || res.Offset != 2 {
		t.Errorf("Publish with the key seen again = %+v, want offset 2 as a duplicate", res)
	}
}

func testIdempotencyConcurrent(t *testing.T, open Opener) {
	e, another := open(t, Options{IdempotencyWindow: time.Hour})
	engines := []service.Engine{e, another()}
	const n = 30
	results := make([]service.Published, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res, err := engines[i%2].Publish(context.Background(), pub("a", i), "k")
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		})
	}
	wg.Wait()
	firsts := 0
	epoch := position(t, e, "a").Epoch
	for _, res := range results {
		if !res.Duplicate {
			firsts++
		}
		if res.Position != (service.Position{Offset: 1, Epoch: epoch}) {
			t.Errorf("Publish = %+v, want offset 1 in %q", res, epoch)
		}
	}
	if firsts != 1 {
		t.Errorf("%d publications were not duplicates, want 1", firsts)
	}
	if got := offsets(readAll(t, e, "a")); !sameOffsets(got, []uint64{1}) {
		t.Errorf("history %v, want [1]", got)
	}
}

func testIdempotencyWindowZero(t *testing.T, open Opener) {
	e, _ := open(t, Options{})
	for i := 1; i <= 3; i++ {
		if res := mustPublish(t, e, pub("a", i), "k"); res.Duplicate || res.Offset != uint64(i) {
			t.Errorf("Publish %d without a window = %+v", i, res)
		}
	}
}

func testPublishConcurrentGapless(t *testing.T, open Opener) {
	e, another := open(t, Options{})
	engines := []service.Engine{e, another()}
	channels := []string{"a", "b.c", "d"}
	const writers, each = 8, 40 // per channel
	var mu sync.Mutex
	got := map[string][]uint64{}
	epochs := map[string]map[string]bool{} // channel → the epochs Publish returned
	for _, ch := range channels {
		epochs[ch] = map[string]bool{}
	}
	var wg sync.WaitGroup
	for _, ch := range channels {
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					res, err := engines[w%2].Publish(context.Background(), pub(ch, w*each+i), "")
					if err != nil {
						t.Error(err)
						return
					}
					if res.Duplicate {
						t.Errorf("Publish to %s without a key = %+v", ch, res)
					}
					mu.Lock()
					got[ch] = append(got[ch], res.Offset)
					epochs[ch][res.Epoch] = true
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	const n = writers * each
	for _, ch := range channels {
		o := got[ch]
		slices.Sort(o)
		if !sameOffsets(o, span(1, n)) {
			t.Errorf("%s: Publish returned offsets %v, want 1 to %d once each", ch, o, n)
		}
		pubs := readAll(t, e, ch)
		if !sameOffsets(offsets(pubs), span(1, n)) {
			t.Errorf("%s: History returned offsets %v, want 1 to %d", ch, offsets(pubs), n)
		}
		// Every publication is stored as it was published.
		seen := map[string]bool{}
		for _, p := range pubs {
			if p.Channel != ch || seen[string(p.Data)] {
				t.Errorf("%s: read %+v", ch, p)
			}
			seen[string(p.Data)] = true
		}
		pos := position(t, e, ch)
		if len(epochs[ch]) != 1 || !epochs[ch][pos.Epoch] || pos.Offset != n {
			t.Errorf("%s: position %+v, want offset %d in the one epoch Publish returned, of %v", ch, pos, n, epochs[ch])
		}
	}
}
