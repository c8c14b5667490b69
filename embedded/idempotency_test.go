package embedded

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/service"
)

func TestIdempotency(t *testing.T) {
	path := tempPath(t)
	opts := Options{IdempotencyWindow: time.Hour}
	s := openEngine(t, path, opts)
	first := mustPublish(t, s, pub("a", 1), "k")
	if first.Offset != 1 || first.Duplicate || first.Epoch != s.seq.epoch {
		t.Fatalf("first Append = %+v", first)
	}
	mustPublish(t, s, pub("a", 2), "")
	mustPublish(t, s, pub("a", 3), "other")
	again := mustPublish(t, s, pub("a", 99), "k")
	if again != (service.Published{Position: first.Position, Duplicate: true}) {
		t.Errorf("Append with a seen key = %+v, want %+v as a duplicate", again, first.Position)
	}
	// Keys are per channel.
	if res := mustPublish(t, s, pub("b", 1), "k"); res.Duplicate || res.Offset != 1 {
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
	s = openEngine(t, path, opts)
	if res := mustPublish(t, s, pub("a", 100), "k"); res != (service.Published{Position: first.Position, Duplicate: true}) {
		t.Errorf("after reopening, Append with a seen key = %+v, want %+v as a duplicate", res, first.Position)
	}
	if res := mustPublish(t, s, pub("a", 101), "other"); !res.Duplicate || res.Offset != 3 {
		t.Errorf("after reopening, Append with a seen key = %+v, want offset 3 as a duplicate", res)
	}
	if res := mustPublish(t, s, pub("a", 102), "new"); res.Duplicate || res.Offset != 4 {
		t.Errorf("after reopening, Append with a new key = %+v, want offset 4", res)
	}
	if got := offsets(readAll(t, s, "a")); !sameOffsets(got, span(1, 4)) {
		t.Errorf("history %v, want 1 to 4", got)
	}
}

func TestIdempotencyWindow(t *testing.T) {
	s := openEngine(t, tempPath(t), Options{IdempotencyWindow: time.Minute})
	// A key is remembered from the publication's time.
	p := pub("a", 1)
	p.Time = p.Time.Add(-2 * time.Minute)
	mustPublish(t, s, p, "k")
	if res := mustPublish(t, s, pub("a", 2), "k"); res.Duplicate || res.Offset != 2 {
		t.Errorf("Append with a key older than the window = %+v, want offset 2", res)
	}
	// And the new publication is remembered under it.
	if res := mustPublish(t, s, pub("a", 3), "k"); !res.Duplicate || res.Offset != 2 {
		t.Errorf("Append with a seen key = %+v, want offset 2 as a duplicate", res)
	}
}

func TestIdempotencyConcurrent(t *testing.T) {
	s := openEngine(t, tempPath(t), Options{IdempotencyWindow: time.Hour})
	const n = 30
	results := make([]service.Published, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res, err := s.Publish(context.Background(), pub("a", i), "k")
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
		if res.Offset != 1 || res.Epoch != s.seq.epoch {
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
	s := openEngine(t, path, Options{})
	for i := 1; i <= 3; i++ {
		if res := mustPublish(t, s, pub("a", i), "k"); res.Duplicate || res.Offset != uint64(i) {
			t.Errorf("Append %d without a window = %+v", i, res)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Keys written with a window are ignored without one.
	s = openEngine(t, path, Options{IdempotencyWindow: time.Hour})
	mustPublish(t, s, pub("a", 4), "w")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openEngine(t, path, Options{})
	if res := mustPublish(t, s, pub("a", 5), "w"); res.Duplicate || res.Offset != 5 {
		t.Errorf("Append without a window after one with = %+v, want offset 5", res)
	}
}
