package embedded

import (
	"testing"
	"time"

	"github.com/switchboard/switchboard/service"
)

// Keys survive a restart.
func TestIdempotencyAfterReopen(t *testing.T) {
	path := tempPath(t)
	opts := Options{IdempotencyWindow: time.Hour}
	s := openEngine(t, path, opts)
	first := mustPublish(t, s, pub("a", 1), "k")
	mustPublish(t, s, pub("a", 2), "")
	mustPublish(t, s, pub("a", 3), "other")
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

// Keys written with a window are ignored when reopened without one.
func TestIdempotencyWindowZeroAfterReopen(t *testing.T) {
	path := tempPath(t)
	s := openEngine(t, path, Options{IdempotencyWindow: time.Hour})
	mustPublish(t, s, pub("a", 1), "w")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openEngine(t, path, Options{})
	if res := mustPublish(t, s, pub("a", 2), "w"); res.Duplicate || res.Offset != 2 {
		t.Errorf("Append without a window after one with = %+v, want offset 2", res)
	}
}

// The embedded engine counts a key's window from its publication's time.
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
