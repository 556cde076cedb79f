package queue

import (
	"sync/atomic"
	"testing"
	"time"
)

// fakeClocks is a system clock that a test can step and a monotonic clock
// that only moves when time passes.
type fakeClocks struct {
	wall   atomic.Int64 // unix ns
	mono   atomic.Int64 // ns
	synced atomic.Bool
}

func newFakeClocks() *fakeClocks {
	c := &fakeClocks{}
	c.wall.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	c.synced.Store(true)
	return c
}

func (c *fakeClocks) now() time.Time { return time.Unix(0, c.wall.Load()) }

// pass lets d go by on both clocks.
func (c *fakeClocks) pass(d time.Duration) { c.wall.Add(int64(d)); c.mono.Add(int64(d)) }

// step sets the system clock d ahead (NTP correcting a stale clock).
func (c *fakeClocks) step(d time.Duration) { c.wall.Add(int64(d)) }

func (c *fakeClocks) options(p Policy) Options {
	return Options{
		Now: c.now, Policy: p, MaintenanceInterval: 5 * time.Millisecond,
		hooks: &testHooks{
			mono:   func() time.Duration { return time.Duration(c.mono.Load()) },
			synced: c.synced.Load,
		},
	}
}

// TestMaxAgeIgnoresClockStep: a box boots with its clock 40 days behind
// (restored from its last save), queues readings while its link is
// down, and NTP steps the clock right when the link returns. The
// readings have waited minutes, not 40 days: MaxAge (30 days) must not
// drop them, and Stat reports their real age and time. They go once they
// have really waited past MaxAge.
func TestMaxAgeIgnoresClockStep(t *testing.T) {
	c := newFakeClocks()
	c.synced.Store(false)
	db := openTest(t, t.TempDir(), c.options(Policy{MaxAge: 30 * 24 * time.Hour}))
	mustAppend(t, db, "x", "r1")
	c.pass(10 * time.Minute)
	mustAppend(t, db, "x", "r2")
	c.step(40 * 24 * time.Hour)
	c.synced.Store(true)
	c.pass(time.Minute)
	mustAppend(t, db, "x", "r3")
	// Several maintenance passes after the step.
	passes := db.Metrics().Txns
	waitFor(t, "maintenance after the step", func() bool { return db.Metrics().Txns >= passes+3 })
	if got := values(readAll(t, db, "x")); len(got) != 3 {
		t.Fatalf("after a 40-day clock step: %v queued, want all 3 (DroppedAge %d)", got, db.Metrics().DroppedAge)
	}
	st := db.Stat("x")
	if st.Age != 11*time.Minute {
		t.Errorf("oldest record's age %v, want 11m (the step is not time in the queue)", st.Age)
	}
	if want := c.now().Add(-11 * time.Minute); !st.Oldest.Equal(want) {
		t.Errorf("oldest record at %v, want %v (on the system clock as it reads now)", st.Oldest, want)
	}
	if recs := readAll(t, db, "x"); !recs[2].Appended.Equal(c.now()) {
		t.Errorf("r3 appended at %v, want %v", recs[2].Appended, c.now())
	}
	c.pass(30 * 24 * time.Hour) // r1 and r2 have now waited more than 30 days, r3 exactly 30
	waitFor(t, "r1 and r2 dropped by max_age", func() bool { return db.Stat("x").Depth == 1 })
	if got := values(readAll(t, db, "x")); len(got) != 1 || got[0] != "r3" {
		t.Fatalf("after 30 days: %v, want [r3]", got)
	}
}

// TestQueueTimeAcrossRestart: after a restart queue time goes on from
// where it was stored, plus the downtime when the system clock was
// synchronized before and after; it never goes backwards; and an empty
// queue rejoins the system clock.
func TestQueueTimeAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	c := newFakeClocks()
	opts := c.options(Policy{MaxAge: 30 * 24 * time.Hour})

	// A run that sees NTP step the clock 40 days ahead, then stops.
	c.synced.Store(false)
	db := openTest(t, dir, opts)
	mustAppend(t, db, "x", "r1")
	c.step(40 * 24 * time.Hour)
	c.synced.Store(true)
	c.pass(time.Minute)
	mustAppend(t, db, "x", "r2") // stores queue time, 40 days behind the system clock
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Two hours off, clock synchronized before and after: they count.
	c.pass(2 * time.Hour)
	db = openTest(t, dir, opts)
	if st := db.Stat("x"); st.Depth != 2 || st.Age != 2*time.Hour+time.Minute {
		t.Fatalf("after a restart: depth %d, oldest %v old; want 2, 2h1m", st.Depth, st.Age)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// A boot with the clock restored a day behind and not synchronized:
	// queue time does not go back, and the unknown downtime is not counted.
	c.wall.Add(-int64(24 * time.Hour))
	c.synced.Store(false)
	db = openTest(t, dir, opts)
	mustAppend(t, db, "x", "r3")
	recs := readAll(t, db, "x")
	if len(recs) != 3 || recs[2].Appended.Before(recs[1].Appended) {
		t.Fatalf("records %+v: want r3 stamped no earlier than r2", recs)
	}
	if st := db.Stat("x"); st.Age != 2*time.Hour+time.Minute {
		t.Fatalf("after a boot with a stale clock: oldest %v old, want 2h1m", st.Age)
	}

	// Emptied: queue time rejoins the system clock.
	if err := db.AckThrough("x", recs[2].Seq); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "queue time back on the system clock", func() bool { return db.clock.now() == c.now().UnixNano() })
}

// abandon stops db as a crash would after its last commit: the writer and
// maintenance stop and Badger closes, but Close's own last writes (the
// queue clock) are not made.
func abandon(t *testing.T, db *DB) {
	t.Helper()
	db.stopWriter()
	if err := db.bdb.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestClockStepSurvivesCrash: the first write after a step of the system
// clock stores queue time, so a crash right after it (before any
// maintenance pass) does not count the step as time in the queue either.
func TestClockStepSurvivesCrash(t *testing.T) {
	dir := t.TempDir()
	c := newFakeClocks()
	opts := c.options(Policy{MaxAge: 30 * 24 * time.Hour})
	opts.MaintenanceInterval = time.Hour // no maintenance pass stores it
	c.synced.Store(false)
	db, err := Open(dir, withLogger(t, opts))
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, db, "x", "r1")
	c.step(40 * 24 * time.Hour)
	c.synced.Store(true)
	c.pass(time.Minute)
	mustAppend(t, db, "x", "r2")
	abandon(t, db)

	c.pass(2 * time.Hour)
	db = openTest(t, dir, opts)
	if st := db.Stat("x"); st.Depth != 2 || st.Age != 2*time.Hour+time.Minute {
		t.Fatalf("after a crash following a 40-day clock step: depth %d, oldest %v old; want 2, 2h1m", st.Depth, st.Age)
	}
}

func withLogger(t *testing.T, o Options) Options {
	o.Logger = testLogger(t)
	return o
}
