// Package loadgen is the measuring side of "switchboard bench": pinned
// WebSocket connections to one server, pipelined calls on them, and a
// latency histogram of bounded size.
package loadgen

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// The histogram is log-linear, as HdrHistogram's: values below
// subBuckets are counted exactly, and above it each power of two is cut
// into subBuckets/2 equal buckets, so that a bucket is never wider than
// 1/64 of its lower bound. A quantile read from it is within 0.8% of the
// true one, whatever the run's length, in a fixed 30 KiB: no sample is
// kept, so a ten-minute run costs what a one-second one does, and the
// counters are atomic, so that every connection records into the same
// histogram without a lock.
const (
	subBits    = 7
	subBuckets = 1 << subBits // 128
	halfSub    = subBuckets / 2
	// numBuckets covers every non-negative int64: the top value has
	// bits.Len64 = 63, so e = 63-subBits.
	numBuckets = subBuckets + (63-subBits)*halfSub
)

// Histogram counts durations. The zero Histogram is empty and ready; its
// methods may be called from several goroutines.
type Histogram struct {
	counts [numBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Int64 // nanoseconds, for the mean
	max    atomic.Int64
}

// bucketOf is the index of v's bucket; v ≥ 0.
func bucketOf(v int64) int {
	if v < subBuckets {
		return int(v)
	}
	e := bits.Len64(uint64(v)) - subBits // ≥ 1
	m := v >> e                          // in [halfSub, subBuckets)
	return subBuckets + (e-1)*halfSub + int(m-halfSub)
}

// bucketRange is the smallest and largest value bucket i counts.
func bucketRange(i int) (lo, hi int64) {
	if i < subBuckets {
		return int64(i), int64(i)
	}
	e := (i-subBuckets)/halfSub + 1
	m := int64((i-subBuckets)%halfSub + halfSub)
	return m << e, (m+1)<<e - 1
}

// Record counts d; a negative d (a clock that went back) counts as 0.
func (h *Histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[bucketOf(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// Count is how many durations were recorded.
func (h *Histogram) Count() uint64 { return h.n.Load() }

// Max is the largest duration recorded, exactly.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Mean is the mean of the durations recorded; 0 when there are none.
func (h *Histogram) Mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / int64(n))
}

// Quantile is the duration below which a fraction q (0 < q ≤ 1) of the
// recorded ones lie: the middle of the bucket holding the sample of rank
// ⌈q·n⌉, and never above Max. It is 0 when nothing was recorded. Read it
// once the recording has stopped.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := max(uint64(math.Ceil(q*float64(n))), 1)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			lo, hi := bucketRange(i)
			return min(time.Duration(lo+(hi-lo)/2), h.Max())
		}
	}
	return h.Max()
}
