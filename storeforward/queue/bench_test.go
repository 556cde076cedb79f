package queue

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAppend measures durable appends of 200-byte records by 1, 8 and
// 64 appenders, each waiting for its append's done before the next (as a
// QoS 1 publisher waits for its PUBACK). It reports msgs/s, the append
// (publisher ack) latency p50/p99, and records per transaction.
func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("appenders=%d", n), func(b *testing.B) {
			db := openTest(b, b.TempDir(), Options{})
			rec := make([]byte, 200)
			lat := make([]time.Duration, b.N)
			var next atomic.Int64
			txns := db.Metrics().Txns
			b.ResetTimer()
			var wg sync.WaitGroup
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						t0 := time.Now()
						if err := db.AppendSync("bench", rec); err != nil {
							b.Error(err)
							return
						}
						lat[i] = time.Since(t0)
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			reportLatency(b, lat, "ack")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(b.N)/float64(max(db.Metrics().Txns-txns, 1)), "msgs/txn")
		})
	}
}

// BenchmarkAck measures Ack of one record at a time, in order, as the
// uplink does on each PUBACK, with the queue holding 10k records.
func BenchmarkAck(b *testing.B) {
	db := openTest(b, b.TempDir(), Options{})
	rec := make([]byte, 200)
	fill := func(n int) {
		var wg sync.WaitGroup
		wg.Add(n)
		for range n {
			db.Append("ack", rec, func(err error) {
				if err != nil {
					b.Error(err)
				}
				wg.Done()
			})
		}
		wg.Wait()
	}
	fill(10000 + b.N)
	lat := make([]time.Duration, b.N)
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		if err := db.Ack("ack", uint64(i+1)); err != nil {
			b.Fatal(err)
		}
		lat[i] = time.Since(t0)
	}
	b.StopTimer()
	reportLatency(b, lat, "ack")
}

func reportLatency(b *testing.B, lat []time.Duration, what string) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), what+"-p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), what+"-p99-µs")
}
