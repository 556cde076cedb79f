package queue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/outpost-iot/outpost/brokercore/msg"
)

// Keys: q/<lane>/<seq:8 bytes big-endian> holds a record; m/q/<lane> holds
// the lane's state (head, next, depth, bytes), written in the same
// transaction as every change to the lane so it never disagrees with the
// records after a crash.
const (
	queuePrefix = "q/"
	metaPrefix  = "m/q/"
	recHeader   = 9 // version byte + append time (unix ns, big-endian)
	recVersion  = 1
	metaVersion = 1
	metaLen     = 1 + 5*8
	maxLaneLen  = 64
)

func laneKeyPrefix(lane string) []byte { return []byte(queuePrefix + lane + "/") }

func recordKey(lane string, seq uint64) []byte {
	k := make([]byte, 0, len(queuePrefix)+len(lane)+1+8)
	k = append(k, queuePrefix...)
	k = append(k, lane...)
	k = append(k, '/')
	return binary.BigEndian.AppendUint64(k, seq)
}

func metaKey(lane string) []byte { return []byte(metaPrefix + lane) }

// validLane: lane names become key components, so they are short and
// cannot contain '/'.
func validLane(lane string) error {
	if lane == "" || len(lane) > maxLaneLen {
		return fmt.Errorf("lane name %q: want 1 to %d characters", lane, maxLaneLen)
	}
	for i := 0; i < len(lane); i++ {
		c := lane[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("lane name %q: character %q not allowed (want letters, digits, - _ .)", lane, c)
		}
	}
	return nil
}

// laneState is one lane's bookkeeping. Invariant: the lane is empty iff
// head == next; otherwise head is the seq of its first stored record.
type laneState struct {
	head, next uint64
	count      int64 // records stored
	bytes      int64 // stored value bytes (record + header)
	deletes    int64 // records deleted since the lane's key range was last reclaimed
	headTime   int64 // append time of the head record, unix ns (0 if empty)
	headSize   int64 // stored size of the head record
}

func (l *laneState) encode() []byte {
	b := make([]byte, 1, metaLen)
	b[0] = metaVersion
	for _, v := range []uint64{l.head, l.next, uint64(l.count), uint64(l.bytes), uint64(l.deletes)} {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return b
}

func decodeLane(b []byte) (laneState, error) {
	if len(b) != metaLen || b[0] != metaVersion {
		return laneState{}, fmt.Errorf("lane state of %d bytes, version %d: want %d bytes, version %d", len(b), firstByte(b), metaLen, metaVersion)
	}
	u := func(i int) uint64 { return binary.BigEndian.Uint64(b[1+8*i:]) }
	l := laneState{head: u(0), next: u(1), count: int64(u(2)), bytes: int64(u(3)), deletes: int64(u(4))}
	if l.head > l.next || l.head == 0 {
		return laneState{}, fmt.Errorf("lane state head %d, next %d: inconsistent", l.head, l.next)
	}
	return l, nil
}

func firstByte(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}

// loadLanes reads every lane's state and finds its head record, seeking
// straight to the persisted head (never iterating over the tombstones of
// acknowledged records before it).
func (db *DB) loadLanes() error {
	return db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(metaPrefix)})
		type named struct {
			name string
			st   laneState
		}
		var all []named
		for it.Rewind(); it.Valid(); it.Next() {
			name := string(it.Item().Key()[len(metaPrefix):])
			var st laneState
			err := it.Item().Value(func(v []byte) (err error) { st, err = decodeLane(v); return err })
			if err != nil {
				it.Close()
				return fmt.Errorf("open queue database %s: lane %q: %w", db.path, name, err)
			}
			all = append(all, named{name, st})
		}
		it.Close()
		for _, n := range all {
			st := n.st
			if err := seekHead(txn, n.name, &st); err != nil {
				return fmt.Errorf("open queue database %s: lane %q: %w", db.path, n.name, err)
			}
			db.lanes[n.name] = &st
			db.total += st.bytes
		}
		return nil
	})
}

// seekHead moves l.head to the first stored record at or after it and
// loads that record's time and size; an empty lane gets head = next.
func seekHead(txn *badger.Txn, lane string, l *laneState) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: laneKeyPrefix(lane)})
	defer it.Close()
	it.Seek(recordKey(lane, l.head))
	if !it.Valid() {
		l.head, l.headTime, l.headSize = l.next, 0, 0
		return nil
	}
	item := it.Item()
	l.head = binary.BigEndian.Uint64(item.Key()[len(queuePrefix)+len(lane)+1:])
	l.headSize = item.ValueSize()
	return item.Value(func(v []byte) error {
		if len(v) < recHeader || v[0] != recVersion {
			return fmt.Errorf("record %d: bad header (%d bytes)", l.head, len(v))
		}
		l.headTime = int64(binary.BigEndian.Uint64(v[1:9]))
		return nil
	})
}

func (db *DB) totalDepth() int64 {
	db.stateMu.Lock()
	defer db.stateMu.Unlock()
	var n int64
	for _, l := range db.lanes {
		n += l.count
	}
	return n
}

// Record is one queued record.
type Record struct {
	Seq      uint64
	Value    []byte    // the bytes given to Append; the caller owns them
	Appended time.Time // when the writer stored it
}

// Append queues rec at the tail of lane and calls done once the record is
// durable (nil) or refused (an error naming why: msg.ErrQuotaExceeded under
// the Reject policy, ErrDiskFull, msg.ErrClosed, or a failed sync). rec is
// copied before Append returns. Appends are stored in call order; each gets
// the lane's next sequence number.
//
// done runs on the writer goroutine, after the batch's sync: it must not
// block, and must not wait for another request to this DB (that request
// would wait for the writer). Hand the result to another goroutine instead.
func (db *DB) Append(lane string, rec []byte, done func(error)) {
	if err := validLane(lane); err != nil {
		done(fmt.Errorf("append: %w", err))
		return
	}
	if len(rec) > MaxRecordBytes {
		done(fmt.Errorf("append to lane %q: record of %d bytes exceeds the %d-byte limit", lane, len(rec), MaxRecordBytes))
		return
	}
	v := make([]byte, recHeader+len(rec))
	v[0] = recVersion
	copy(v[recHeader:], rec)
	db.send(&request{kind: kindAppend, lane: lane, value: v, done: done})
}

// AppendSync is Append that waits.
func (db *DB) AppendSync(lane string, rec []byte) error {
	ch := make(chan error, 1)
	db.Append(lane, rec, func(err error) { ch <- err })
	return <-ch
}

// Read returns up to max records of lane with Seq >= from, oldest first.
// Records already acknowledged are skipped; a from below the head starts at
// the head (a seek, not a scan over deleted records). It sees every
// record whose Append has completed.
func (db *DB) Read(lane string, from uint64, max int) ([]Record, error) {
	if err := validLane(lane); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return nil, fmt.Errorf("read lane %q: %w", lane, msg.ErrClosed)
	}
	db.stateMu.Lock()
	if l := db.lanes[lane]; l != nil && from < l.head {
		from = l.head
	}
	db.stateMu.Unlock()
	var out []Record
	err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: laneKeyPrefix(lane), PrefetchValues: max > 1, PrefetchSize: min(max, 100)})
		defer it.Close()
		skip := len(queuePrefix) + len(lane) + 1
		for it.Seek(recordKey(lane, from)); it.Valid() && len(out) < max; it.Next() {
			item := it.Item()
			r := Record{Seq: binary.BigEndian.Uint64(item.Key()[skip:])}
			err := item.Value(func(v []byte) error {
				if len(v) < recHeader || v[0] != recVersion {
					return fmt.Errorf("record %d: bad header (%d bytes)", r.Seq, len(v))
				}
				r.Appended = db.clock.toWall(int64(binary.BigEndian.Uint64(v[1:9])))
				r.Value = bytes.Clone(v[recHeader:])
				return nil
			})
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read lane %q from %d: %w", lane, from, err)
	}
	return out, nil
}

// Ack deletes the given records of lane (in any order; unknown or already
// deleted seqs are ignored) and waits until that is durable.
func (db *DB) Ack(lane string, seqs ...uint64) error {
	ch := make(chan error, 1)
	db.AckWith(lane, seqs, 0, nil, func(err error) { ch <- err })
	return <-ch
}

// AckThrough deletes every record of lane with Seq <= seq and waits.
func (db *DB) AckThrough(lane string, seq uint64) error {
	ch := make(chan error, 1)
	db.AckWith(lane, nil, seq, nil, func(err error) { ch <- err })
	return <-ch
}

// AckWith deletes seqs and every record with Seq <= through (0: none) of
// lane, and applies ops (e.g. the uplink's u/ state) in the same
// transaction, then calls done. ops follow msg.Store's rules.
func (db *DB) AckWith(lane string, seqs []uint64, through uint64, ops []msg.Op, done func(error)) {
	if err := validLane(lane); err != nil {
		done(fmt.Errorf("ack: %w", err))
		return
	}
	if err := db.validOps(ops); err != nil {
		done(fmt.Errorf("ack lane %q: %w", lane, err))
		return
	}
	db.send(&request{kind: kindAck, lane: lane, seqs: append([]uint64(nil), seqs...), through: through, ops: cloneOps(ops), done: done})
}

// LaneStat describes one lane.
type LaneStat struct {
	Lane    string
	Depth   int64  // records queued
	Bytes   int64  // stored bytes (records + 9-byte headers)
	Head    uint64 // seq of the oldest record (== Next when empty)
	Next    uint64 // seq the next Append gets
	Oldest  time.Time
	Age     time.Duration // of the oldest record; 0 when empty
	Deletes int64         // deletes since the lane's key range was last reclaimed
}

// Stat describes lane; an unknown lane is empty with Head = Next = 1.
func (db *DB) Stat(lane string) LaneStat {
	db.stateMu.Lock()
	defer db.stateMu.Unlock()
	return db.statLocked(lane)
}

func (db *DB) statLocked(lane string) LaneStat {
	l := db.lanes[lane]
	if l == nil {
		return LaneStat{Lane: lane, Head: 1, Next: 1}
	}
	s := LaneStat{Lane: lane, Depth: l.count, Bytes: l.bytes, Head: l.head, Next: l.next, Deletes: l.deletes}
	if l.count > 0 && l.headTime != 0 {
		s.Oldest = db.clock.toWall(l.headTime)
		s.Age = db.clock.age(l.headTime)
	}
	return s
}

// Lanes describes every lane, by name.
func (db *DB) Lanes() []LaneStat {
	db.stateMu.Lock()
	defer db.stateMu.Unlock()
	out := make([]LaneStat, 0, len(db.lanes))
	for name := range db.lanes {
		out = append(out, db.statLocked(name))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Lane < out[j].Lane })
	return out
}

// TotalBytes is the stored bytes of all lanes, what Policy.MaxBytes bounds.
func (db *DB) TotalBytes() int64 {
	db.stateMu.Lock()
	defer db.stateMu.Unlock()
	return db.total
}

// Commit implements msg.Store (done runs on the writer goroutine, as for
// Append): ops are applied atomically in one Badger
// transaction, group-committed with every other request waiting, and done
// is called after the fsync. If done reports a failed sync, the ops may or
// may not be stored (as with any failed fsync; queue appends of a failed
// batch, in contrast, are deleted again). Keys in the queue's namespace (q/, m/q/) and
// values over MaxRecordBytes are refused.
func (db *DB) Commit(ops []msg.Op, done func(error)) {
	if err := db.validOps(ops); err != nil {
		done(fmt.Errorf("commit: %w", err))
		return
	}
	db.send(&request{kind: kindCommit, ops: cloneOps(ops), done: done})
}

// Scan implements msg.Store.
func (db *DB) Scan(prefix []byte, fn func(key, value []byte) error) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return fmt.Errorf("scan %q: %w", prefix, msg.ErrClosed)
	}
	return db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			var ferr error
			if err := item.Value(func(v []byte) error { ferr = fn(item.Key(), v); return nil }); err != nil {
				return fmt.Errorf("scan %q: read %q: %w", prefix, item.Key(), err)
			}
			if ferr != nil {
				return ferr
			}
		}
		return nil
	})
}

var errQueueNamespace = errors.New("key is in the queue's namespace (q/, m/q/, m/schema)")

func (db *DB) validOps(ops []msg.Op) error {
	var size int
	for _, op := range ops {
		k := string(op.Key)
		switch {
		case len(op.Key) == 0:
			return errors.New("empty key")
		case len(op.Key) > 1024:
			return fmt.Errorf("key %.40q...: %d bytes, limit 1024", op.Key, len(op.Key))
		case len(k) >= len(queuePrefix) && k[:len(queuePrefix)] == queuePrefix,
			len(k) >= len(metaPrefix) && k[:len(metaPrefix)] == metaPrefix,
			k == string(schemaKey):
			return fmt.Errorf("key %q: %w", op.Key, errQueueNamespace)
		case !op.Delete && len(op.Value) > MaxRecordBytes:
			return fmt.Errorf("key %q: value of %d bytes exceeds the %d-byte limit", op.Key, len(op.Value), MaxRecordBytes)
		}
		size += db.limits.entrySize(op.Key, op.Value)
	}
	if len(ops) > maxTxnEntries {
		return fmt.Errorf("%d ops: more than one transaction holds (%d)", len(ops), maxTxnEntries)
	}
	if size > db.limits.max {
		return fmt.Errorf("%d ops of about %d bytes: more than one transaction holds (%d bytes)", len(ops), size, db.limits.max)
	}
	return nil
}

func cloneOps(ops []msg.Op) []msg.Op {
	if len(ops) == 0 {
		return nil
	}
	out := make([]msg.Op, len(ops))
	for i, op := range ops {
		out[i] = msg.Op{Key: bytes.Clone(op.Key), Value: bytes.Clone(op.Value), Delete: op.Delete}
	}
	return out
}

var _ msg.Store = (*DB)(nil)
