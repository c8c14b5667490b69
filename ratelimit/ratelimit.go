// Package ratelimit limits events per key (a user, a client address) with
// token buckets from golang.org/x/time/rate, holding buckets only for the
// keys seen lately: a bucket that has filled up again says no more than a
// new one would, so it is dropped.
package ratelimit

import (
	"math"
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Keyed is a set of token buckets, one per key, each refilled at the same
// rate up to the same burst. It is safe for concurrent use.
type Keyed struct {
	limit rate.Limit
	burst int

	mu        sync.Mutex
	buckets   map[string]*rate.Limiter
	sweepSize int // sweep when the map grows past this
}

// New returns buckets of perSecond events a second, with bursts of burst;
// a burst of 0 is one second's worth.
func New(perSecond float64, burst int) *Keyed {
	return &Keyed{limit: rate.Limit(perSecond), burst: burstOf(perSecond, burst), buckets: map[string]*rate.Limiter{}, sweepSize: 1024}
}

// burstOf is burst, or one second's worth of perSecond, and at least 1.
func burstOf(perSecond float64, burst int) int {
	if burst <= 0 {
		burst = int(math.Ceil(perSecond))
	}
	return max(burst, 1)
}

// Allow takes one event from key's bucket. When it is empty, Allow takes
// nothing and says how long until it holds one.
func (k *Keyed) Allow(key string) (ok bool, retryAfter time.Duration) {
	now := time.Now()
	k.mu.Lock()
	b := k.buckets[key]
	if b == nil {
		if len(k.buckets) >= k.sweepSize {
			k.sweep(now)
		}
		b = rate.NewLimiter(k.limit, k.burst)
		k.buckets[key] = b
	}
	k.mu.Unlock()
	return take(b, now)
}

// sweep drops the buckets that are full again, and sets when to sweep
// next: when the map has doubled, so that sweeping costs O(1) an event.
func (k *Keyed) sweep(now time.Time) {
	for key, b := range k.buckets {
		if b.TokensAt(now) >= float64(k.burst) {
			delete(k.buckets, key)
		}
	}
	k.sweepSize = max(1024, 2*len(k.buckets))
}

// Len is how many keys have a bucket now.
func (k *Keyed) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.buckets)
}

// Single is one token bucket, for one connection.
type Single struct{ b *rate.Limiter }

// NewSingle returns a bucket of perSecond events a second, with bursts of
// burst, as New does.
func NewSingle(perSecond float64, burst int) *Single {
	return &Single{b: rate.NewLimiter(rate.Limit(perSecond), burstOf(perSecond, burst))}
}

// Allow takes one event, as Keyed.Allow does.
func (s *Single) Allow() (ok bool, retryAfter time.Duration) {
	return take(s.b, time.Now())
}

func take(b *rate.Limiter, now time.Time) (bool, time.Duration) {
	r := b.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second // burst 0 cannot happen: New makes it at least 1
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// AddressKey is the key a client address is limited under: an IPv4
// address as it is, an IPv6 one by its /64, the least a site is given,
// within which a host may take any address it likes. What is not an
// address is its own key.
func AddressKey(ip string) string {
	a := net.ParseIP(ip)
	switch {
	case a == nil:
		return ip
	case a.To4() != nil:
		return a.To4().String()
	}
	return a.Mask(net.CIDRMask(64, 128)).String() + "/64"
}
