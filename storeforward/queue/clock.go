package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Queue time.
//
// Records are stamped with, and MaxAge is measured in, queue time (unix
// ns), not the system clock's reading. A gateway without a battery-backed
// clock (a Raspberry Pi) boots with its clock where it was last saved
// (fake-hwclock, systemd-timesyncd's clock file), possibly days or weeks
// behind, and NTP steps it right only once the site's link is back: the
// very moment the uplink would start draining. Records stamped before the
// step would then look older by the whole step, and MaxAge would drop
// acknowledged data that had waited minutes. So:
//
//   - While the hub runs, queue time advances with the monotonic clock: a
//     step of the system clock is never counted as time in the queue.
//   - Across a restart, it goes on from the last queue time stored (key
//     m/clock, written at Open and at every maintenance pass, with the
//     system clock's reading) plus the downtime by the system clock, but
//     only when the clock was synchronized (NTP) both when that was stored
//     and now; otherwise the downtime is not counted (it is not known). It
//     never goes backwards: it starts no earlier than the newest record
//     stored.
//   - When the queue is empty there is nothing to stay consistent with, and
//     queue time rejoins the system clock.
//
// So MaxAge is how long a record has waited as far as the box can tell,
// never longer: when in doubt the record is kept (MaxBytes still bounds
// the disk). Stat and Read report times on the system clock (a stamp
// minus the current difference between the two).
type qclock struct {
	mu     sync.Mutex
	wall   func() time.Time     // the system clock (Options.Now)
	mono   func() time.Duration // a monotonic clock
	synced func() bool          // whether the system clock is synchronized (NTP)
	baseQ  int64                // queue time at baseM
	baseM  time.Duration
	// saved: queue time minus system time when m/clock was last encoded.
	saved int64
}

var clockKey = []byte("m/clock")

// clockLen: queue time, system time (unix ns), flags (bit 0: the system
// clock was synchronized).
const clockLen = 17

func newQClock(wall func() time.Time, synced func() bool, mono func() time.Duration) *qclock {
	if mono == nil {
		// Options.Now's readings: time.Now's carry the monotonic clock, so
		// their differences ignore steps of the system clock.
		t0 := wall()
		mono = func() time.Duration { return wall().Sub(t0) }
	}
	c := &qclock{wall: wall, mono: mono, synced: synced}
	c.rejoin()
	return c
}

// now is the current queue time.
func (c *qclock) now() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nowLocked()
}

func (c *qclock) nowLocked() int64 { return c.baseQ + int64(c.mono()-c.baseM) }

// rejoin sets queue time to the system clock's.
func (c *qclock) rejoin() {
	c.mu.Lock()
	c.baseQ, c.baseM = c.wall().UnixNano(), c.mono()
	c.saved = 0
	c.mu.Unlock()
}

// atLeast moves queue time forward to stamp if it is behind it.
func (c *qclock) atLeast(stamp int64) {
	c.mu.Lock()
	if q := c.nowLocked(); q < stamp {
		c.baseQ += stamp - q
	}
	c.mu.Unlock()
}

// resume continues queue time from a stored m/clock value (Open, with
// records queued).
func (c *qclock) resume(v []byte) error {
	if len(v) != clockLen {
		return fmt.Errorf("queue clock of %d bytes: want %d", len(v), clockLen)
	}
	q := int64(binary.BigEndian.Uint64(v[0:8]))
	w := int64(binary.BigEndian.Uint64(v[8:16]))
	wasSynced := v[16]&1 != 0
	c.mu.Lock()
	defer c.mu.Unlock()
	wall := c.wall().UnixNano()
	var down int64
	if wasSynced && c.synced() {
		down = max(wall-w, 0)
	}
	c.baseQ, c.baseM = q+down, c.mono()
	return nil
}

// stepped reports whether the system clock moved more than a second
// against queue time since m/clock was last encoded.
func (c *qclock) stepped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.nowLocked() - c.wall().UnixNano() - c.saved
	return d > int64(time.Second) || d < -int64(time.Second)
}

// encode is the m/clock value for now.
func (c *qclock) encode() []byte {
	c.mu.Lock()
	q, w := c.nowLocked(), c.wall().UnixNano()
	c.saved = q - w
	c.mu.Unlock()
	b := make([]byte, clockLen)
	binary.BigEndian.PutUint64(b[0:8], uint64(q))
	binary.BigEndian.PutUint64(b[8:16], uint64(w))
	if c.synced() {
		b[16] = 1
	}
	return b
}

// toWall converts a queue-time stamp to the system clock.
func (c *qclock) toWall(stamp int64) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Unix(0, stamp-(c.nowLocked()-c.wall().UnixNano()))
}

// age is how long ago stamp was, in queue time.
func (c *qclock) age(stamp int64) time.Duration {
	return max(time.Duration(c.now()-stamp), 0)
}

// loadClock starts queue time at Open: from m/clock when records are
// queued, from the system clock otherwise (or for a database written
// before m/clock existed).
func (db *DB) loadClock() error {
	if db.total == 0 {
		return nil // newQClock started on the system clock
	}
	err := db.bdb.View(func(txn *badger.Txn) error {
		item, err := txn.Get(clockKey)
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("open queue database %s: read %s: %w", db.path, clockKey, err)
		default:
			err = item.Value(func(v []byte) error {
				if err := db.clock.resume(v); err != nil {
					// Only MaxAge depends on it: start on the system clock.
					db.log.Warn("queue clock unreadable; queue time restarts from the system clock", "err", err)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("open queue database %s: read %s: %w", db.path, clockKey, err)
			}
		}
		// Records appended since m/clock was last stored.
		for name, l := range db.lanes {
			if l.count == 0 {
				continue
			}
			stamp, err := tailStamp(txn, name)
			if err != nil {
				return fmt.Errorf("open queue database %s: lane %q: %w", db.path, name, err)
			}
			db.clock.atLeast(stamp)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Store where queue time resumed, so that a restart before the next
	// write goes on from here too.
	if err := db.bdb.Update(func(txn *badger.Txn) error { return txn.Set(clockKey, db.clock.encode()) }); err != nil {
		return fmt.Errorf("open queue database %s: write %s: %w", db.path, clockKey, err)
	}
	return nil
}

// tailStamp is the stamp of lane's newest stored record (0 if none).
func tailStamp(txn *badger.Txn, lane string) (int64, error) {
	prefix := laneKeyPrefix(lane)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: true})
	defer it.Close()
	// In reverse, Seek finds the last key at or before its argument: the
	// prefix followed by 0xff sorts after every record key of the lane.
	it.Seek(append(prefix, 0xff))
	if !it.Valid() {
		return 0, nil
	}
	var stamp int64
	err := it.Item().Value(func(v []byte) error {
		if len(v) < recHeader || v[0] != recVersion {
			return fmt.Errorf("record %x: bad header (%d bytes)", it.Item().Key(), len(v))
		}
		stamp = int64(binary.BigEndian.Uint64(v[1:recHeader]))
		return nil
	})
	return stamp, err
}
