// Command queuebench fills a queue database with many records and reports
// the process's peak memory (VmHWM, and its anonymous and file-backed parts
// sampled while filling), the disk the database occupies, and how long
// filling, reopening and draining took. It is how the figures in the queue
// package doc were measured:
//
//	go run ./storeforward/queue/internal/queuebench -n 1000000
//	GOMEMLIMIT=96MiB go run ./storeforward/queue/internal/queuebench -n 1000000
//
// It is a measuring tool, not part of outpost.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpost-iot/outpost/storeforward/queue"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "queuebench:", err)
		os.Exit(1)
	}
}

func run() error {
	n := flag.Int("n", 1_000_000, "records to queue")
	size := flag.Int("size", 200, "record size in bytes")
	inflight := flag.Int("inflight", 4096, "appends in flight at once")
	dir := flag.String("dir", "", "data dir (default: a new temporary directory, removed afterwards)")
	drain := flag.Bool("drain", true, "after filling and reopening, read and ack everything")
	profile := flag.String("profile", queue.ProfileSmall, "memory profile")
	trim := flag.Duration("trim", 0, "Options.TrimInterval (0 = default, negative = off)")
	memprofile := flag.String("memprofile", "", "write a heap profile here after filling")
	flag.Parse()

	if *dir == "" {
		d, err := os.MkdirTemp("", "queuebench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts := queue.Options{Logger: log, MemoryProfile: *profile, TrimInterval: *trim}

	peak := startSampler()
	db, err := queue.Open(*dir, opts)
	if err != nil {
		return err
	}
	rec := make([]byte, *size)
	for i := range rec {
		rec[i] = byte(i * 7)
	}
	start := time.Now()
	sem := make(chan struct{}, *inflight)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range *n {
		sem <- struct{}{}
		wg.Add(1)
		db.Append("bench", rec, func(err error) {
			if err != nil {
				failed.Add(1)
			}
			<-sem
			wg.Done()
		})
	}
	wg.Wait()
	fill := time.Since(start)
	if failed.Load() > 0 {
		return fmt.Errorf("%d appends failed", failed.Load())
	}
	m := db.Metrics()
	used, _ := db.DiskUsage()
	fmt.Printf("filled %d x %d B in %v (%.0f/s), %d transactions, disk %s (allocated blocks)\n",
		*n, *size, fill.Round(time.Millisecond), float64(*n)/fill.Seconds(), m.Txns, mib(used))
	fmt.Printf("while filling: %s\n", peak.report())
	fmt.Printf("resident now by kind: %s\n", residentByKind())
	if *memprofile != "" {
		f, err := os.Create(*memprofile)
		if err != nil {
			return err
		}
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return err
		}
		f.Close()
	}
	if err := db.Close(); err != nil {
		return err
	}

	start = time.Now()
	db, err = queue.Open(*dir, opts)
	if err != nil {
		return err
	}
	st := db.Stat("bench")
	fmt.Printf("reopened in %v: depth %d, %s\n", time.Since(start).Round(time.Millisecond), st.Depth, mib(st.Bytes))
	if *drain {
		start = time.Now()
		var lat []time.Duration
		for {
			recs, err := db.Read("bench", 0, 1000)
			if err != nil {
				return err
			}
			if len(recs) == 0 {
				break
			}
			t0 := time.Now()
			if err := db.AckThrough("bench", recs[len(recs)-1].Seq); err != nil {
				return err
			}
			lat = append(lat, time.Since(t0))
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		used, _ := db.DiskUsage()
		fmt.Printf("drained in %v (reads of 1000 + AckThrough; AckThrough p50 %v p99 %v); disk after %s\n",
			time.Since(start).Round(time.Millisecond), lat[len(lat)/2], lat[len(lat)*99/100], mib(used))
		// A fresh read from the head must not crawl over a million tombstones.
		t0 := time.Now()
		if _, err := db.Read("bench", 0, 1); err != nil {
			return err
		}
		fmt.Printf("read at the head after draining: %v\n", time.Since(t0))
	}
	if err := db.Close(); err != nil {
		return err
	}
	fmt.Printf("overall: %s\n", peak.report())
	fmt.Printf("disk: %s\n", filepath.Join(*dir, "db"))
	return nil
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

type sampler struct {
	anon, file, rss atomic.Int64
}

// startSampler records the peaks of RssAnon, RssFile and VmRSS every 20 ms.
func startSampler() *sampler {
	s := &sampler{}
	go func() { // runs until the process exits
		for {
			st := status()
			for _, p := range []struct {
				v *atomic.Int64
				k string
			}{{&s.anon, "RssAnon"}, {&s.file, "RssFile"}, {&s.rss, "VmRSS"}} {
				if st[p.k] > p.v.Load() {
					p.v.Store(st[p.k])
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return s
}

func (s *sampler) report() string {
	st := status()
	return fmt.Sprintf("VmHWM %s, peak RssAnon %s, peak RssFile %s (now VmRSS %s)",
		mib(st["VmHWM"]), mib(s.anon.Load()), mib(s.file.Load()), mib(st["VmRSS"]))
}

// status reads the kB figures of /proc/self/status, in bytes.
func status() map[string]int64 {
	out := map[string]int64{}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 2 && fields[1] == "kB" {
			if n, err := strconv.ParseInt(fields[0], 10, 64); err == nil {
				out[k] = n << 10
			}
		}
	}
	return out
}

// residentByKind sums Rss of /proc/self/smaps by file suffix.
func residentByKind() string {
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return err.Error()
	}
	sums := map[string]int64{}
	kind := "anon"
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			kind = "anon"
			if len(f) >= 6 {
				kind = filepath.Ext(f[5])
				if kind == "" {
					kind = f[5]
				}
			}
			continue
		}
		if len(f) == 3 && f[0] == "Rss:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			sums[kind] += n << 10
		}
	}
	var parts []string
	for k, v := range sums {
		if v >= 1<<20 {
			parts = append(parts, fmt.Sprintf("%s %s", k, mib(v)))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
