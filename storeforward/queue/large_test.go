package queue

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// proofRecord is record seq's content: 60 to ~400 bytes, every 37th one
// 1.5 KiB (past the 32-bit ValueThreshold, so the value log is covered too),
// all derived from seq so each one can be checked.
func proofRecord(seq uint64) []byte {
	n := 60 + int(seq*7919%340)
	if seq%37 == 0 {
		n = 1536
	}
	b := make([]byte, n)
	binary.BigEndian.PutUint64(b, seq)
	for i := 8; i < n; i++ {
		b[i] = byte(seq*31 + uint64(i))
	}
	return b
}

// TestLargeReopen32 is the proof that the queue does not lose data on
// 32-bit builds (Badger v4.9.6 + ristretto v2 do with default options; see
// the package doc): it appends records over several close/reopen rounds and
// after each reopen reads every record written so far and compares it.
//
// By default it writes 20k records (5 MiB: past one 4 MiB memtable flush,
// so tables are built). With OUTPOST_QUEUE_32BIT_PROOF=1 it writes 1M over
// four rounds, run in test/run.sh's 386 pass:
//
//	GOARCH=386 OUTPOST_QUEUE_32BIT_PROOF=1 go test -run TestLargeReopen32 -timeout 30m ./storeforward/queue
//
// OUTPOST_QUEUE_32BIT_UNSAFE=1 opens with Badger's own table options
// instead (the negative control: on 386 that loses records).
func TestLargeReopen32(t *testing.T) {
	total, rounds := 20_000, 3
	if os.Getenv("OUTPOST_QUEUE_32BIT_PROOF") == "1" {
		total, rounds = 1_000_000, 4
	}
	o := Options{}
	if os.Getenv("OUTPOST_QUEUE_32BIT_UNSAFE") == "1" {
		o.hooks = &testHooks{tune: func(b *badger.Options) {
			d := badger.DefaultOptions("")
			b.MemTableSize, b.BaseTableSize, b.TableSizeMultiplier = 64<<20, d.BaseTableSize, d.TableSizeMultiplier
			b.NumLevelZeroTables, b.NumLevelZeroTablesStall = d.NumLevelZeroTables, d.NumLevelZeroTablesStall
			b.ValueThreshold, b.Compression = 1<<20, options.Snappy
		}}
	}
	dir := t.TempDir()
	per := total / rounds
	written := uint64(0)
	for round := range rounds {
		n := per
		if round == rounds-1 {
			n = total - int(written)
		}
		db := openTest(t, dir, o)
		if round > 0 {
			verifyProof(t, db, 1, written, round)
		}
		appendProof(t, db, written, n)
		written += uint64(n)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	db := openTest(t, dir, o)
	verifyProof(t, db, 1, written, rounds)
	// Acknowledge the older half (tombstones, compaction), reopen, check the rest.
	half := written / 2
	if err := db.AckThrough("proof", half); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir, o)
	verifyProof(t, db, half+1, written, rounds+1)
	used, _ := db.DiskUsage()
	t.Logf("%d records over %d reopen rounds all intact, then %d acked and the rest intact; disk %d MiB",
		written, rounds, half, used>>20)
}

func appendProof(t *testing.T, db *DB, from uint64, n int) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, 8192) // bound what is in flight
	for i := range n {
		seq := from + uint64(i) + 1
		sem <- struct{}{}
		wg.Add(1)
		db.Append("proof", proofRecord(seq), func(err error) {
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("append seq %d: %w", seq, err)
				}
				mu.Unlock()
			}
			<-sem
			wg.Done()
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
}

// verifyProof checks the lane holds exactly records first..last, each intact.
func verifyProof(t *testing.T, db *DB, first, last uint64, round int) {
	t.Helper()
	want := last - first + 1
	st := db.Stat("proof")
	if st.Depth != int64(want) || st.Head != first || st.Next != last+1 {
		t.Fatalf("round %d: lane state %+v, want records %d..%d", round, st, first, last)
	}
	next := first
	bad := 0
	for {
		recs, err := db.Read("proof", next, 5000)
		if err != nil {
			t.Fatalf("round %d: read from %d: %v", round, next, err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if r.Seq != next {
				t.Fatalf("round %d: record %d missing (next stored is %d)", round, next, r.Seq)
			}
			if !bytes.Equal(r.Value, proofRecord(r.Seq)) {
				if bad++; bad <= 5 {
					t.Errorf("round %d: record %d corrupt: %d bytes, first 16 % x", round, r.Seq, len(r.Value), r.Value[:min(16, len(r.Value))])
				}
			}
			next++
		}
	}
	if bad > 0 {
		t.Fatalf("round %d: %d corrupt records", round, bad)
	}
	if next != last+1 {
		t.Fatalf("round %d: read records %d..%d, want through %d", round, first, next-1, last)
	}
}
