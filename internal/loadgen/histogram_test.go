package loadgen

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsCoverEveryValueOnce(t *testing.T) {
	for _, v := range []int64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 40, 1<<62 + 12345, 1<<63 - 1} {
		i := bucketOf(v)
		if i < 0 || i >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d, outside [0, %d)", v, i, numBuckets)
		}
		lo, hi := bucketRange(i)
		if v < lo || v > hi {
			t.Errorf("bucketOf(%d) = %d, whose range is [%d, %d]", v, i, lo, hi)
		}
		if i > 0 {
			if _, prevHi := bucketRange(i - 1); prevHi != lo-1 {
				t.Errorf("bucket %d starts at %d, but bucket %d ends at %d", i, lo, i-1, prevHi)
			}
		}
	}
}

// The quantiles agree, within the histogram's precision, with those of
// the sorted samples.
func TestQuantilesMatchSortedSamples(t *testing.T) {
	var h Histogram
	r := rand.New(rand.NewPCG(1, 2))
	samples := make([]time.Duration, 100000)
	for i := range samples {
		// Log-normal-ish: most around 100µs, a tail up to ~100ms.
		samples[i] = time.Duration(50_000 + r.ExpFloat64()*r.ExpFloat64()*100_000)
		h.Record(samples[i])
	}
	slices.Sort(samples)
	for _, q := range []float64{0.5, 0.99, 0.999, 1} {
		want := samples[int(q*float64(len(samples)))-1]
		got := h.Quantile(q)
		if diff := float64(got-want) / float64(want); diff > 0.01 || diff < -0.01 {
			t.Errorf("Quantile(%v) = %v, sorted samples say %v", q, got, want)
		}
	}
	if h.Count() != uint64(len(samples)) || h.Max() != samples[len(samples)-1] {
		t.Errorf("Count %d, Max %v; want %d, %v", h.Count(), h.Max(), len(samples), samples[len(samples)-1])
	}
}

func TestEmptyHistogram(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Mean() != 0 || h.Max() != 0 {
		t.Error("an empty histogram reports durations")
	}
}
