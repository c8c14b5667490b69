package subscriptions

import (
	"fmt"
	"testing"
)

// A session's subscriptions are found by channel on either side of
// fewSubs, where they move from the slice to a map.
func TestSessionSubsByChannel(t *testing.T) {
	for _, n := range []int{fewSubs, 3 * fewSubs} {
		t.Run(fmt.Sprint(n), func(t *testing.T) { testSessionSubs(t, n) })
	}
}

func testSessionSubs(t *testing.T, n int) {
	ss := &sessionSubs{}
	for i := range n {
		ss.put(&subscription{channel: fmt.Sprint("ch", i)})
		if ss.len() != i+1 {
			t.Fatalf("%d subscriptions put, len %d", i+1, ss.len())
		}
	}
	for i := 0; i < n; i += 2 {
		if s := ss.remove(fmt.Sprint("ch", i)); s == nil || s.channel != fmt.Sprint("ch", i) {
			t.Fatalf("remove ch%d: %v", i, s)
		}
	}
	for i := range n {
		if got := ss.get(fmt.Sprint("ch", i)) != nil; got != (i%2 == 1) {
			t.Fatalf("get ch%d: found %v", i, got)
		}
	}
	if s := ss.remove("ch0"); s != nil {
		t.Fatalf("ch0 removed twice: %v", s)
	}
	if all := ss.take(); len(all) != n/2 || ss.len() != 0 {
		t.Fatalf("take: %d, then len %d; want %d, then 0", len(all), ss.len(), n/2)
	}
}

// One subscription, the common case, costs its session no map: one
// allocation, of a one-element slice, dropped again once unsubscribed.
func TestOneSubscriptionMakesNoMap(t *testing.T) {
	ss := &sessionSubs{}
	s := &subscription{channel: "room"}
	allocs := testing.AllocsPerRun(100, func() {
		ss.put(s)
		if ss.many != nil {
			t.Fatal("one subscription made a map")
		}
		ss.remove("room")
	})
	if allocs > 1 {
		t.Fatalf("a subscription's place in its session took %v allocations, want 1", allocs)
	}
	if ss.few != nil {
		t.Fatal("a session without subscriptions keeps a slice")
	}
}
