package queue

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/msg"
)

func testLogger(_ testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// openTest opens a DB in dir and closes it at the end of the test.
func openTest(t testing.TB, dir string, o Options) *DB {
	t.Helper()
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	db, err := Open(dir, o)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func mustAppend(t testing.TB, db *DB, lane string, rec string) {
	t.Helper()
	if err := db.AppendSync(lane, []byte(rec)); err != nil {
		t.Fatalf("Append(%q, %q): %v", lane, rec, err)
	}
}

func readAll(t testing.TB, db *DB, lane string) []Record {
	t.Helper()
	var out []Record
	from := uint64(0)
	for {
		recs, err := db.Read(lane, from, 1000)
		if err != nil {
			t.Fatalf("Read(%q, %d): %v", lane, from, err)
		}
		if len(recs) == 0 {
			return out
		}
		out = append(out, recs...)
		from = recs[len(recs)-1].Seq + 1
	}
}

func values(recs []Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, string(r.Value))
	}
	return out
}

func TestFIFOAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir, Options{})
	for i := range 5 {
		mustAppend(t, db, "p0", fmt.Sprintf("a%d", i))
	}
	mustAppend(t, db, "p1", "b0")
	if got := values(readAll(t, db, "p0")); strings.Join(got, ",") != "a0,a1,a2,a3,a4" {
		t.Fatalf("lane p0 = %v", got)
	}
	if err := db.Ack("p0", 1, 2); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openTest(t, dir, Options{})
	recs := readAll(t, db, "p0")
	if got := values(recs); strings.Join(got, ",") != "a2,a3,a4" {
		t.Fatalf("after reopen lane p0 = %v", got)
	}
	if recs[0].Seq != 3 || recs[0].Appended.IsZero() {
		t.Fatalf("first record after reopen = seq %d appended %v, want seq 3 with a time", recs[0].Seq, recs[0].Appended)
	}
	mustAppend(t, db, "p0", "a5")
	st := db.Stat("p0")
	if st.Depth != 4 || st.Head != 3 || st.Next != 7 || st.Bytes != int64(4*(recHeader+2)) {
		t.Fatalf("Stat(p0) = %+v, want depth 4 head 3 next 7 bytes %d", st, 4*(recHeader+2))
	}
	if got := values(readAll(t, db, "p1")); len(got) != 1 || got[0] != "b0" {
		t.Fatalf("lane p1 = %v", got)
	}
	if lanes := db.Lanes(); len(lanes) != 2 || lanes[0].Lane != "p0" || lanes[1].Lane != "p1" {
		t.Fatalf("Lanes() = %+v", lanes)
	}
	if db.TotalBytes() != st.Bytes+recHeader+2 {
		t.Fatalf("TotalBytes = %d, want %d", db.TotalBytes(), st.Bytes+recHeader+2)
	}
}

func TestOutOfOrderAck(t *testing.T) {
	db := openTest(t, t.TempDir(), Options{})
	for i := range 6 {
		mustAppend(t, db, "l", fmt.Sprint(i+1))
	}
	if err := db.Ack("l", 3, 5); err != nil {
		t.Fatal(err)
	}
	if st := db.Stat("l"); st.Head != 1 || st.Depth != 4 {
		t.Fatalf("after acking 3,5: %+v", st)
	}
	if err := db.Ack("l", 2, 1, 1, 99); err != nil { // 1 twice and an unknown seq are ignored
		t.Fatal(err)
	}
	if st := db.Stat("l"); st.Head != 4 || st.Depth != 2 || st.Bytes != 2*(recHeader+1) {
		t.Fatalf("after acking 1,2: %+v, want head 4 depth 2", st)
	}
	if got := values(readAll(t, db, "l")); strings.Join(got, ",") != "4,6" {
		t.Fatalf("records = %v", got)
	}
	// Reading from below the head starts at the head.
	recs, err := db.Read("l", 1, 1)
	if err != nil || len(recs) != 1 || recs[0].Seq != 4 {
		t.Fatalf("Read from 1 = %+v, %v", recs, err)
	}
	if err := db.AckThrough("l", 100); err != nil {
		t.Fatal(err)
	}
	if st := db.Stat("l"); st.Depth != 0 || st.Head != st.Next || st.Bytes != 0 || st.Age != 0 {
		t.Fatalf("after AckThrough: %+v", st)
	}
}

func TestCursorPersistsAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir, Options{})
	const n = 12000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	wg.Add(n)
	for i := range n {
		db.Append("c", []byte(fmt.Sprintf("r%05d", i)), func(err error) {
			if err != nil {
				errs <- err
			}
			wg.Done()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// 9000 deletes: more than one transaction holds, so AckThrough spans several.
	txns := db.Metrics().Txns
	if err := db.AckThrough("c", 9000); err != nil {
		t.Fatal(err)
	}
	if m := db.Metrics(); m.Txns-txns < 3 || m.Acked != 9000 {
		t.Fatalf("AckThrough 9000 used %d transactions, acked %d; want >= 3 and 9000", m.Txns-txns, m.Acked)
	}
	db.Close()

	db = openTest(t, dir, Options{})
	st := db.Stat("c")
	if st.Head != 9001 || st.Next != n+1 || st.Depth != n-9000 || st.Deletes != 9000 {
		t.Fatalf("Stat after reopen = %+v", st)
	}
	recs, err := db.Read("c", 0, 2)
	if err != nil || len(recs) != 2 || recs[0].Seq != 9001 || string(recs[0].Value) != "r09000" || recs[1].Seq != 9002 {
		t.Fatalf("Read after reopen = %+v, %v", recs, err)
	}
}

// blockFirstBatch returns hooks whose writer blocks at its first batch
// until release is called.
func blockFirstBatch() (h *testHooks, entered <-chan struct{}, release func()) {
	in := make(chan struct{})
	gate := make(chan struct{})
	var once sync.Once
	h = &testHooks{beforeBatch: func() {
		once.Do(func() {
			close(in)
			<-gate
		})
	}}
	return h, in, func() { close(gate) }
}

func TestGroupCommitBatchesConcurrentAppends(t *testing.T) {
	h, entered, release := blockFirstBatch()
	db := openTest(t, t.TempDir(), Options{hooks: h})
	const producers, per = 8, 50
	var wg sync.WaitGroup
	var failed atomic.Int64
	done := func(err error) {
		if err != nil {
			failed.Add(1)
		}
		wg.Done()
	}
	wg.Add(1)
	db.Append("g", []byte("first"), done)
	<-entered // the writer holds "first" and waits
	txns := db.Metrics().Txns
	wg.Add(producers * per)
	var started sync.WaitGroup
	started.Add(producers)
	for p := range producers {
		go func() {
			defer started.Done()
			for i := range per {
				db.Append("g", []byte(fmt.Sprintf("%d/%03d", p, i)), done)
			}
		}()
	}
	started.Wait()
	waitFor(t, "all appends queued", func() bool { return len(db.reqs) == producers*per })
	release()
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d appends failed", failed.Load())
	}
	n := producers*per + 1
	used := db.Metrics().Txns - txns
	if used >= int64(n) || used > 2 {
		t.Fatalf("%d concurrent appends used %d transactions; want one batch", n, used)
	}
	if m := db.Metrics(); m.MaxBatchReqs < int64(n) {
		t.Fatalf("largest batch %d requests, want %d", m.MaxBatchReqs, n)
	}
	checkPerProducerOrder(t, readAll(t, db, "g")[1:], producers, per)
}

// checkPerProducerOrder checks every producer's records are all there and
// in the order it appended them, and sequence numbers increase.
func checkPerProducerOrder(t *testing.T, recs []Record, producers, per int) {
	t.Helper()
	if len(recs) != producers*per {
		t.Fatalf("%d records, want %d", len(recs), producers*per)
	}
	next := make([]int, producers)
	var last uint64
	for _, r := range recs {
		if r.Seq <= last {
			t.Fatalf("seq %d after %d", r.Seq, last)
		}
		last = r.Seq
		var p, i int
		if _, err := fmt.Sscanf(string(r.Value), "%d/%d", &p, &i); err != nil {
			t.Fatalf("record %q: %v", r.Value, err)
		}
		if i != next[p] {
			t.Fatalf("producer %d: record %d where %d was due", p, i, next[p])
		}
		next[p]++
	}
}

func TestConcurrentAppendersOrderedAndBatched(t *testing.T) {
	db := openTest(t, t.TempDir(), Options{})
	const producers, per = 32, 100
	var wg sync.WaitGroup
	var failed atomic.Int64
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine sync.WaitGroup
			for i := range per {
				mine.Add(1)
				// Not waiting for done between appends: order must still hold.
				db.Append("o", []byte(fmt.Sprintf("%d/%03d", p, i)), func(err error) {
					if err != nil {
						failed.Add(1)
					}
					mine.Done()
				})
			}
			mine.Wait()
		}()
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d appends failed", failed.Load())
	}
	checkPerProducerOrder(t, readAll(t, db, "o"), producers, per)
	m := db.Metrics()
	if m.Appends != producers*per || m.Txns >= producers*per {
		t.Fatalf("metrics %+v: want %d appends in fewer transactions", m, producers*per)
	}
	t.Logf("%d appends in %d transactions (%d batches)", m.Appends, m.Txns, m.Batches)
}

func TestFailedSyncFailsEveryRequestOfTheBatch(t *testing.T) {
	h, entered, release := blockFirstBatch()
	var failNext atomic.Bool
	h.afterCommit = func() error {
		if failNext.CompareAndSwap(true, false) {
			return errors.New("injected fsync failure")
		}
		return nil
	}
	db := openTest(t, t.TempDir(), Options{hooks: h})
	mustAppendAsync := func(rec string, done func(error)) { db.Append("f", []byte(rec), done) }

	// Batch 1: "keep" succeeds (blocked until the others are queued).
	var wg sync.WaitGroup
	wg.Add(1)
	var keepErr error
	mustAppendAsync("keep", func(err error) { keepErr = err; wg.Done() })
	<-entered
	release()
	wg.Wait()
	if keepErr != nil {
		t.Fatal(keepErr)
	}

	// Batch 2 fails: every append and the commit in it get the error.
	const n = 40
	block := make(chan struct{})
	h.beforeBatch = func() { <-block }
	errs := make([]error, n+1)
	wg.Add(n + 1)
	for i := range n {
		mustAppendAsync(fmt.Sprint("lost", i), func(err error) { errs[i] = err; wg.Done() })
	}
	db.Commit([]msg.Op{{Key: []byte("s/x"), Value: []byte("1")}}, func(err error) { errs[n] = err; wg.Done() })
	waitFor(t, "requests queued", func() bool { return len(db.reqs) >= n })
	failNext.Store(true)
	close(block)
	wg.Wait()
	for i, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "injected fsync failure") {
			t.Fatalf("request %d: err %v, want the injected failure", i, err)
		}
	}
	if m := db.Metrics(); m.SyncErrors != 1 {
		t.Fatalf("SyncErrors = %d, want 1", m.SyncErrors)
	}
	// The failed records are gone, the accounting is right, and no
	// sequence number is reused.
	recs := readAll(t, db, "f")
	if got := values(recs); len(got) != 1 || got[0] != "keep" {
		t.Fatalf("records after failed batch = %v", got)
	}
	if st := db.Stat("f"); st.Depth != 1 || st.Next != n+2 {
		t.Fatalf("Stat after failed batch = %+v, want depth 1 next %d", st, n+2)
	}
	mustAppend(t, db, "f", "after")
	recs = readAll(t, db, "f")
	if len(recs) != 2 || recs[1].Seq != n+2 {
		t.Fatalf("append after failure: %+v", recs)
	}
}

func TestStoreCommitOrderAndScan(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir, Options{})
	var wg sync.WaitGroup
	var order []int
	var mu sync.Mutex
	for i := range 50 {
		wg.Add(1)
		db.Commit([]msg.Op{{Key: []byte("s/client"), Value: []byte(fmt.Sprint(i))}}, func(err error) {
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			wg.Done()
		})
	}
	wg.Wait()
	for i, v := range order {
		if v != i {
			t.Fatalf("done callbacks out of order: %v", order)
		}
	}
	if err := msg.CommitSync(db, []msg.Op{
		{Key: []byte("r/b"), Value: []byte("B")},
		{Key: []byte("r/a"), Value: []byte("A")},
		{Key: []byte("r/c"), Value: []byte("C")},
		{Key: []byte("rx"), Value: []byte("not retained")},
	}); err != nil {
		t.Fatal(err)
	}
	if err := msg.CommitSync(db, []msg.Op{{Key: []byte("r/c"), Delete: true}}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = openTest(t, dir, Options{})

	var got []string
	err := db.Scan([]byte("r/"), func(k, v []byte) error { got = append(got, string(k)+"="+string(v)); return nil })
	if err != nil || strings.Join(got, " ") != "r/a=A r/b=B" {
		t.Fatalf("Scan(r/) = %v, %v", got, err)
	}
	got = nil
	db.Scan([]byte("s/"), func(k, v []byte) error { got = append(got, string(v)); return nil })
	if len(got) != 1 || got[0] != "49" {
		t.Fatalf("last commit did not win: %v", got)
	}
	stop := errors.New("stop")
	n := 0
	if err := db.Scan([]byte("r"), func(k, v []byte) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("Scan with failing fn: err %v after %d calls", err, n)
	}
	for _, key := range []string{"q/p0/x", "m/q/p0", "m/schema"} {
		if err := msg.CommitSync(db, []msg.Op{{Key: []byte(key), Value: []byte("x")}}); !errors.Is(err, errQueueNamespace) {
			t.Errorf("Commit(%s) err = %v, want the namespace error", key, err)
		}
	}
}

func TestPolicyDropOldest(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	tick := func() { mu.Lock(); now = now.Add(time.Second); mu.Unlock() }
	rec := bytes.Repeat([]byte("x"), 91) // 100 bytes stored
	db := openTest(t, t.TempDir(), Options{Now: clock, Policy: Policy{MaxBytes: 500}})
	for _, lane := range []string{"a", "b", "a", "b", "a"} {
		if err := db.AppendSync(lane, rec); err != nil {
			t.Fatal(err)
		}
		tick()
	}
	// Full: the next two appends drop the two oldest records, a1 then b1.
	for range 2 {
		if err := db.AppendSync("b", rec); err != nil {
			t.Fatal(err)
		}
		tick()
	}
	a, b := db.Stat("a"), db.Stat("b")
	if a.Head != 2 || a.Depth != 2 || b.Head != 2 || b.Depth != 3 || db.TotalBytes() != 500 {
		t.Fatalf("after overflow a=%+v b=%+v total %d", a, b, db.TotalBytes())
	}
	if m := db.Metrics(); m.DroppedFull != 2 {
		t.Fatalf("DroppedFull = %d, want 2", m.DroppedFull)
	}
	// A record larger than max_bytes is refused outright.
	err := db.AppendSync("a", make([]byte, 600))
	if !errors.Is(err, msg.ErrQuotaExceeded) {
		t.Fatalf("oversized append err = %v", err)
	}
}

func TestPolicyReject(t *testing.T) {
	db := openTest(t, t.TempDir(), Options{Policy: Policy{MaxBytes: 300, WhenFull: Reject}})
	rec := bytes.Repeat([]byte("y"), 91)
	for range 3 {
		if err := db.AppendSync("r", rec); err != nil {
			t.Fatal(err)
		}
	}
	err := db.AppendSync("r", rec)
	if !errors.Is(err, msg.ErrQuotaExceeded) || !strings.Contains(err.Error(), "max_bytes 300") {
		t.Fatalf("append to a full queue: %v", err)
	}
	if st := db.Stat("r"); st.Depth != 3 {
		t.Fatalf("a rejected append changed the lane: %+v", st)
	}
	if m := db.Metrics(); m.RejectedFull != 1 {
		t.Fatalf("RejectedFull = %d", m.RejectedFull)
	}
	if err := db.Ack("r", 1); err != nil {
		t.Fatal(err)
	}
	if err := db.AppendSync("r", rec); err != nil {
		t.Fatalf("append after an ack made room: %v", err)
	}
}

func TestPolicyMaxAge(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Unix(1_700_000_000, 0).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	db := openTest(t, t.TempDir(), Options{Now: clock, Policy: Policy{MaxAge: time.Hour}, MaintenanceInterval: 5 * time.Millisecond})
	mustAppend(t, db, "x", "old1")
	mustAppend(t, db, "x", "old2")
	now.Add(int64(50 * time.Minute))
	mustAppend(t, db, "x", "new")
	if st := db.Stat("x"); st.Age != 50*time.Minute {
		t.Fatalf("age = %v", st.Age)
	}
	now.Add(int64(20 * time.Minute))
	waitFor(t, "aged records dropped", func() bool { return db.Stat("x").Depth == 1 })
	if got := values(readAll(t, db, "x")); len(got) != 1 || got[0] != "new" {
		t.Fatalf("after max_age: %v", got)
	}
	if m := db.Metrics(); m.DroppedAge != 2 {
		t.Fatalf("DroppedAge = %d", m.DroppedAge)
	}
}

func TestReclaimEmptiedLane(t *testing.T) {
	db := openTest(t, t.TempDir(), Options{ReclaimAfter: 100, MaintenanceInterval: 5 * time.Millisecond})
	for i := range 150 {
		mustAppend(t, db, "z", fmt.Sprint(i))
	}
	if err := db.AckThrough("z", 150); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "lane reclaimed", func() bool { return db.Metrics().Reclaims == 1 })
	if st := db.Stat("z"); st.Deletes != 0 || st.Next != 151 {
		t.Fatalf("after reclaim %+v", st)
	}
	mustAppend(t, db, "z", "again")
	if recs := readAll(t, db, "z"); len(recs) != 1 || recs[0].Seq != 151 {
		t.Fatalf("after reclaim: %+v", recs)
	}
}

func TestDiskFullRefusesAppendsKeepsData(t *testing.T) {
	var free atomic.Int64
	free.Store(1 << 30)
	h := &testHooks{freeSpace: func() (int64, error) { return free.Load(), nil }}
	db := openTest(t, t.TempDir(), Options{hooks: h, MinFreeBytes: 1 << 20})
	mustAppend(t, db, "d", "kept1")
	mustAppend(t, db, "d", "kept2")
	free.Store(1000)
	err := db.AppendSync("d", []byte("refused"))
	if !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "below the 1048576-byte reserve") {
		t.Fatalf("append on a full disk: %v", err)
	}
	if err := msg.CommitSync(db, []msg.Op{{Key: []byte("s/a"), Value: []byte("v")}}); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("commit on a full disk: %v", err)
	}
	if err := db.Ack("d", 1); err != nil {
		t.Fatalf("ack on a full disk: %v", err)
	}
	if got := values(readAll(t, db, "d")); len(got) != 1 || got[0] != "kept2" {
		t.Fatalf("records on a full disk: %v", got)
	}
	if m := db.Metrics(); m.RejectedDisk != 2 {
		t.Fatalf("RejectedDisk = %d", m.RejectedDisk)
	}
	free.Store(1 << 30)
	mustAppend(t, db, "d", "later")
}

func TestClosedAndInvalid(t *testing.T) {
	db := openTest(t, t.TempDir(), Options{})
	if err := db.AppendSync("bad/lane", nil); err == nil {
		t.Fatal("lane with '/' accepted")
	}
	if err := db.AppendSync("l", make([]byte, MaxRecordBytes+1)); err == nil {
		t.Fatal("oversized record accepted")
	}
	if err := db.AppendSync("l", make([]byte, MaxRecordBytes)); err != nil {
		t.Fatalf("record of MaxRecordBytes: %v", err)
	}
	db.Close()
	if err := db.AppendSync("l", []byte("x")); !errors.Is(err, msg.ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if _, err := db.Read("l", 0, 1); !errors.Is(err, msg.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := Open(t.TempDir(), Options{Policy: Policy{WhenFull: "block"}}); err == nil || !strings.Contains(err.Error(), `"block"`) {
		t.Fatalf("bad when_full: %v", err)
	}
}

func TestCorruptDatabaseIsMovedAside(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir, Options{})
	mustAppend(t, db, "p", "before")
	db.Close()
	// A torn manifest, as a power cut during its rewrite could leave.
	manifest := filepath.Join(dir, "db", "MANIFEST")
	if err := os.WriteFile(manifest, []byte("garbage, not a manifest"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logBuf}, nil))
	db = openTest(t, dir, Options{Logger: log})
	aside, _ := filepath.Glob(filepath.Join(dir, "db.corrupt-*"))
	if len(aside) != 1 {
		t.Fatalf("moved-aside copies: %v", aside)
	}
	logMu.Lock()
	line := logBuf.String()
	logMu.Unlock()
	if !strings.Contains(line, "moving it aside") || !strings.Contains(line, aside[0]) {
		t.Fatalf("log does not say where the database went:\n%s", line)
	}
	mustAppend(t, db, "p", "after")
	if got := values(readAll(t, db, "p")); len(got) != 1 || got[0] != "after" {
		t.Fatalf("fresh database holds %v", got)
	}
}

// TestDamagedWriteAheadLogOpens: after a kill -9 the write-ahead log
// (.mem) holds the records not yet flushed to a table; scribbling over the
// middle of it, as a bad flash page would, must neither crash Open nor
// leave the lane's accounting or order inconsistent: Badger replays up to
// the damage and the lane state, written in the same transactions, follows.
func TestDamagedWriteAheadLogOpens(t *testing.T) {
	dir := t.TempDir()
	runCrashChild(t, dir, 3000)
	mems, _ := filepath.Glob(filepath.Join(dir, "db", "*.mem"))
	if len(mems) == 0 {
		t.Fatal("no write-ahead log left by the killed child")
	}
	sort.Strings(mems)
	data, err := os.ReadFile(mems[len(mems)-1])
	if err != nil {
		t.Fatal(err)
	}
	end := len(bytes.TrimRight(data, "\x00"))
	if end < 8192 {
		t.Fatalf("write-ahead log holds only %d bytes", end)
	}
	copy(data[end/2:], bytes.Repeat([]byte{0xA5}, 512))
	if err := os.WriteFile(mems[len(mems)-1], data, 0o600); err != nil {
		t.Fatal(err)
	}

	db := openTest(t, dir, Options{})
	aside, _ := filepath.Glob(filepath.Join(dir, "db.corrupt-*"))
	recs := readAll(t, db, "crash")
	var size int64
	next := map[string]int{}
	for _, r := range recs {
		size += int64(len(r.Value) + recHeader)
		p, i, _ := strings.Cut(string(r.Value), "/")
		n, err := strconv.Atoi(i)
		if err != nil || n != next[p] {
			t.Fatalf("producer %s: record %q where index %d was due", p, r.Value, next[p])
		}
		next[p]++
	}
	if st := db.Stat("crash"); st.Depth != int64(len(recs)) || st.Bytes != size {
		t.Fatalf("lane state %+v, but %d records of %d bytes stored", st, len(recs), size)
	}
	mustAppend(t, db, "crash", "after")
	t.Logf("damaged WAL: %d records survive in order (moved aside: %v)", len(recs), aside)
}

func TestLockedDatabaseIsNotMovedAside(t *testing.T) {
	dir := t.TempDir()
	openTest(t, dir, Options{})
	_, err := Open(dir, Options{Logger: testLogger(t)})
	if err == nil {
		t.Fatal("second Open of the same directory succeeded")
	}
	if aside, _ := filepath.Glob(filepath.Join(dir, "db.corrupt-*")); len(aside) != 0 {
		t.Fatalf("a locked database was moved aside: %v (%v)", aside, err)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestDiskUsageCountsAllocatedBlocks(t *testing.T) {
	db := openTest(t, t.TempDir(), Options{})
	mustAppend(t, db, "u", "x")
	used, err := db.DiskUsage()
	if err != nil {
		t.Fatal(err)
	}
	var apparent int64
	filepath.Walk(db.path, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			apparent += fi.Size()
		}
		return nil
	})
	// The memtable WAL and value log are created sparse at 16+ MiB.
	if used <= 0 || used >= apparent {
		t.Fatalf("DiskUsage %d, apparent size %d: want allocated < apparent", used, apparent)
	}
}
