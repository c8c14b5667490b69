package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

func TestKeyedAllowsBurstsThenSaysWhenToRetry(t *testing.T) {
	k := New(10, 3) // one event every 100ms, three at once
	for i := range 3 {
		if ok, _ := k.Allow("alice"); !ok {
			t.Fatalf("event %d of the burst refused", i+1)
		}
	}
	ok, wait := k.Allow("alice")
	if ok || wait <= 0 || wait > 100*time.Millisecond {
		t.Fatalf("past the burst: ok %v, retry after %v; want a refusal within 100ms", ok, wait)
	}
	if ok, _ := k.Allow("bob"); !ok {
		t.Fatal("another key shares the first one's bucket")
	}
	time.Sleep(wait)
	if ok, _ := k.Allow("alice"); !ok {
		t.Fatalf("refused again after waiting the %v it said", wait)
	}
}

func TestKeyedForgetsIdleKeys(t *testing.T) {
	k := New(1000, 1) // a bucket is full again 1ms after its event
	for i := range 1024 {
		k.Allow(fmt.Sprint(i))
	}
	time.Sleep(10 * time.Millisecond)
	k.Allow("new") // the map is at its sweep size: the full buckets go
	if n := k.Len(); n > 2 {
		t.Fatalf("%d buckets kept, want those of the keys used in the last millisecond", n)
	}
	// Buckets not yet full are kept, however many: the map grows instead.
	slow := New(1, 1)
	for i := range 3000 {
		slow.Allow(fmt.Sprint(i))
	}
	if n := slow.Len(); n != 3000 {
		t.Fatalf("%d buckets for 3000 keys used within the second", n)
	}
}

func TestSingle(t *testing.T) {
	s := NewSingle(1, 2)
	s.Allow()
	s.Allow()
	if ok, wait := s.Allow(); ok || wait <= 500*time.Millisecond {
		t.Fatalf("third event of a burst of 2 at 1/s: ok %v, retry after %v", ok, wait)
	}
}

func TestAddressKey(t *testing.T) {
	for ip, want := range map[string]string{
		"192.0.2.7":                        "192.0.2.7",
		"::ffff:192.0.2.7":                 "192.0.2.7",
		"2001:db8:1:2::1":                  "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff:ffff:ffff:ffff": "2001:db8:1:2::/64",
		"2001:db8:1:3::1":                  "2001:db8:1:3::/64",
		"::1":                              "::/64",
		"not an address":                   "not an address",
	} {
		if got := AddressKey(ip); got != want {
			t.Errorf("AddressKey(%q) = %q, want %q", ip, got, want)
		}
	}
}
