package console

import (
	"math"
	"strconv"
	"time"
)

// ring is a bounded time series of fixed-width buckets: values added within
// one bucket are averaged, and the oldest bucket goes when the ring is full.
// Memory is fixed at creation: 16 bytes per bucket (a 24 h ring of minutes
// is 1440 × 16 = 23 KiB), plus the bucket being filled.
type ring struct {
	width time.Duration
	ts    []int64   // bucket start, unix seconds
	vs    []float32 // mean of the bucket
	n     []uint32  // values averaged into the bucket
	head  int       // index of the oldest bucket
	size  int
}

func newRing(width time.Duration, buckets int) *ring {
	return &ring{width: width, ts: make([]int64, buckets), vs: make([]float32, buckets), n: make([]uint32, buckets)}
}

// add puts v into the bucket of t. A t older than the newest bucket is
// dropped (clocks going backwards must not reorder the series).
func (r *ring) add(t time.Time, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	start := t.Truncate(r.width).Unix()
	if r.size > 0 {
		last := (r.head + r.size - 1) % len(r.ts)
		switch {
		case r.ts[last] == start:
			c := float64(r.n[last])
			r.vs[last] = float32((float64(r.vs[last])*c + v) / (c + 1))
			r.n[last]++
			return
		case r.ts[last] > start:
			return
		}
	}
	var i int
	if r.size < len(r.ts) {
		i = (r.head + r.size) % len(r.ts)
		r.size++
	} else {
		i = r.head
		r.head = (r.head + 1) % len(r.ts)
	}
	r.ts[i], r.vs[i], r.n[i] = start, float32(v), 1
}

// points returns the series as [[unix seconds, value], ...], oldest first,
// only buckets at or after since.
func (r *ring) points(since time.Time) [][2]float64 {
	out := make([][2]float64, 0, r.size)
	s := since.Unix()
	for k := 0; k < r.size; k++ {
		i := (r.head + k) % len(r.ts)
		if r.ts[i] < s {
			continue
		}
		out = append(out, [2]float64{float64(r.ts[i]), round4(float64(r.vs[i]))})
	}
	return out
}

// last returns the newest value.
func (r *ring) last() (float64, bool) {
	if r.size == 0 {
		return 0, false
	}
	return float64(r.vs[(r.head+r.size-1)%len(r.ts)]), true
}

func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }

func appendFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	return strconv.AppendFloat(dst, f, 'f', -1, 64)
}
