package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/dgraph-io/badger/v4"

	"github.com/outpost-iot/outpost/brokercore/msg"
)

// The single writer. Every Append, Commit, Ack and maintenance step is a
// request on db.reqs. The writer takes the first waiting request, then every
// other request that arrived meanwhile (while the previous batch was being
// synced), applies them in arrival order to one Badger transaction and
// commits it with SyncWrites: one fsync for the batch. Then it calls every
// done callback of the batch, in order. A transaction that grows past the
// soft limits below is committed and a new one started, so no transaction
// comes near Badger's limits (15% of the memtable: 1.2 MiB and ~13k
// entries with the 8 MiB memtable); a failed commit or sync fails every
// request that had a part in that transaction.

const (
	maxBatchReqs   = 4096    // requests per batch
	maxBatchBytes  = 4 << 20 // request bytes per batch
	softTxnEntries = 2000
	fullTxnEntries = 3000  // rotate before deleting more once past this
	maxTxnEntries  = 4000  // one request never has more (validOps)
	maintainChunk  = 20000 // records dropped by age per maintenance request
	gapProbe       = 64    // Gets before a head search falls back to an iterator
)

type reqKind uint8

const (
	kindAppend reqKind = iota
	kindCommit
	kindAck
	kindMaintain
)

type request struct {
	kind    reqKind
	lane    string
	value   []byte // kindAppend: header + record
	seqs    []uint64
	through uint64
	ops     []msg.Op
	done    func(error)

	err  error // result, set by the writer
	more bool  // kindMaintain: more aged records remain
}

// txnLimits are derived from Badger's own: a transaction may hold 15% of
// the memtable in estimated bytes (and that over 96 in entries).
type txnLimits struct {
	soft, full, max int // bytes: start a new transaction before a request / before more deletes / refuse a request
	threshold       int // Badger's ValueThreshold: larger values go to the value log
}

func newTxnLimits(memTableSize, valueThreshold int64) txnLimits {
	batch := int(memTableSize * 15 / 100)
	return txnLimits{soft: batch * 2 / 5, full: batch * 3 / 5, max: batch * 7 / 10, threshold: int(valueThreshold)}
}

// entrySize estimates what an entry counts against Badger's transaction
// limit (values at or over the threshold count as a 12-byte pointer).
func (l txnLimits) entrySize(key, value []byte) int {
	if len(value) >= l.threshold {
		return len(key) + 12 + 16
	}
	return len(key) + len(value) + 16
}

func (l txnLimits) size(r *request) int {
	n := 32 + len(r.lane) + 24*len(r.seqs)
	if r.value != nil {
		n += l.entrySize(recordKey(r.lane, 0), r.value)
	}
	for _, op := range r.ops {
		n += l.entrySize(op.Key, op.Value)
	}
	return n
}

func (r *request) entries() int { return 1 + len(r.seqs) + len(r.ops) }

func (db *DB) writer() {
	defer close(db.writerDone)
	for {
		r, ok := <-db.reqs
		if !ok {
			return
		}
		if h := db.opts.hooks; h != nil && h.beforeBatch != nil {
			h.beforeBatch()
		}
		batch := []*request{r}
		size := len(r.value) + db.limits.size(r)
	collect:
		for len(batch) < maxBatchReqs && size < maxBatchBytes {
			select {
			case r2, ok := <-db.reqs:
				if !ok {
					break collect
				}
				batch = append(batch, r2)
				size += len(r2.value) + db.limits.size(r2)
			default:
				break collect
			}
		}
		db.runBatch(batch)
	}
}

// txnState is the transaction being built and the lane states it changes
// (copies; they replace the live ones only when the commit succeeds).
type txnState struct {
	txn      *badger.Txn
	entries  int
	bytes    int
	lanes    map[string]*laneState
	total    int64
	members  []*request // requests with a part in this transaction
	cur      *request   // the request being applied (stays a member after a rotation)
	appended [][]byte   // record keys appended (deleted again if the commit fails)

	appends, commits, acked, droppedFull, droppedAge, reclaims int64
}

func (db *DB) newTxn() *txnState {
	return &txnState{txn: db.bdb.NewTransaction(true), lanes: make(map[string]*laneState), total: db.total}
}

func (db *DB) nearFull(b *txnState) bool {
	return b.entries >= fullTxnEntries || b.bytes >= db.limits.full
}

// peek returns the lane's state as this transaction sees it, read-only; nil if unknown.
func (db *DB) peek(b *txnState, name string) *laneState {
	if l := b.lanes[name]; l != nil {
		return l
	}
	return db.lanes[name]
}

// lane returns the transaction's own copy of the lane's state, to change.
// Re-fetch it after anything that may rotate the transaction.
func (db *DB) lane(b *txnState, name string, create bool) *laneState {
	if l := b.lanes[name]; l != nil {
		return l
	}
	var l laneState
	if live := db.lanes[name]; live != nil {
		l = *live
	} else if create {
		l = laneState{head: 1, next: 1}
	} else {
		return nil
	}
	b.lanes[name] = &l
	return &l
}

func (db *DB) set(b *txnState, key, value []byte) error {
	if err := b.txn.SetEntry(badger.NewEntry(key, value)); err != nil {
		return db.abort(b, fmt.Errorf("set %q: %w", key, err))
	}
	b.entries++
	b.bytes += db.limits.entrySize(key, value)
	return nil
}

func (db *DB) del(b *txnState, key []byte) error {
	if err := b.txn.Delete(key); err != nil {
		return db.abort(b, fmt.Errorf("delete %q: %w", key, err))
	}
	b.entries++
	b.bytes += db.limits.entrySize(key, nil)
	return nil
}

func (db *DB) runBatch(reqs []*request) {
	db.m.batches.Add(1)
	if n := int64(len(reqs)); n > db.m.maxBatchReqs.Load() {
		db.m.maxBatchReqs.Store(n)
	}
	if db.rejoinClock {
		db.rejoinClock = false
		if db.total == 0 { // still empty
			db.clock.rejoin()
		}
	}
	now := db.clock.now()
	diskErr := db.checkDisk()
	b := db.newTxn()
	for _, r := range reqs {
		if b.entries > 0 && (b.bytes+db.limits.size(r) > db.limits.soft || b.entries+r.entries() > softTxnEntries) {
			db.finish(b)
		}
		b.cur = r
		b.members = append(b.members, r)
		var err error
		switch r.kind {
		case kindAppend:
			err = db.applyAppend(b, r, now, diskErr)
		case kindCommit:
			err = db.applyOps(b, r.ops, diskErr)
		case kindAck:
			err = db.applyAck(b, r)
		case kindMaintain:
			err = db.applyMaintain(b, r, now)
		}
		if err != nil && r.err == nil {
			r.err = err
		}
		b.cur = nil
	}
	db.finish(b)
	b.txn.Discard()
	for _, r := range reqs {
		r.done(r.err)
	}
}

// finish commits the transaction (with the state of every lane it
// touched) and starts a new one in b. On failure every member that has
// not failed yet gets the error.
func (db *DB) finish(b *txnState) error {
	if b.entries == 0 && len(b.lanes) == 0 {
		db.reset(b)
		return nil
	}
	names := make([]string, 0, len(b.lanes))
	for name := range b.lanes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := db.set(b, metaKey(name), b.lanes[name].encode()); err != nil {
			return err
		}
	}
	if len(names) > 0 && db.clock.stepped() {
		// The system clock was stepped since queue time was last stored:
		// store it now, so that a crash does not count the step (clock.go).
		if err := db.set(b, clockKey, db.clock.encode()); err != nil {
			return err
		}
	}
	faults := db.blog.syncFaults.Load()
	err := b.txn.Commit()
	if err == nil && db.blog.syncFaults.Load() != faults {
		err = errors.New("value-log sync failed (see Badger's error line)")
	}
	if h := db.opts.hooks; err == nil && h != nil && h.afterCommit != nil {
		err = h.afterCommit()
	}
	db.m.txns.Add(1)
	if err != nil {
		db.fail(b, fmt.Errorf("commit %d requests to %s: %w", len(b.members), db.path, err), true)
		return err
	}
	db.stateMu.Lock()
	for name, l := range b.lanes {
		db.lanes[name] = l
	}
	db.total = b.total
	db.stateMu.Unlock()
	db.m.appends.Add(b.appends)
	db.m.commits.Add(b.commits)
	db.m.acked.Add(b.acked)
	db.m.droppedFull.Add(b.droppedFull)
	db.m.droppedAge.Add(b.droppedAge)
	db.m.reclaims.Add(b.reclaims)
	db.reset(b)
	return nil
}

// abort discards the transaction after an error building it.
func (db *DB) abort(b *txnState, err error) error {
	db.fail(b, err, false)
	return err
}

// fail fails every member of b and starts a new transaction. committed
// says the failed commit may have reached the memtable: then the lanes it
// touched are re-read from the database and its appended records deleted.
// Sequence numbers it handed out are never reused (a reader may have seen them).
func (db *DB) fail(b *txnState, err error, committed bool) {
	b.txn.Discard()
	db.m.syncErrors.Add(1)
	for _, r := range b.members {
		if r.err == nil {
			r.err = err
		}
	}
	db.log.Error("queue transaction failed; its requests are refused", "requests", len(b.members), "err", err)
	touched := make(map[string]uint64, len(b.lanes))
	for name, l := range b.lanes {
		touched[name] = l.next
	}
	appended := b.appended
	db.reset(b)
	// An aborted transaction wrote nothing (readers never saw its sequence
	// numbers); a failed commit may have reached the memtable.
	if committed {
		db.resync(touched, appended)
	}
}

// resync deletes the records of a failed commit (best effort: the disk may
// be failing) and recounts the lanes it touched from what is stored.
func (db *DB) resync(touched map[string]uint64, appended [][]byte) {
	err := db.bdb.Update(func(txn *badger.Txn) error {
		for _, k := range appended {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.log.Error("delete the records of a failed commit", "records", len(appended), "err", err)
	}
	for name, next := range touched {
		l := laneState{head: 1, next: next}
		if live := db.lanes[name]; live != nil {
			l.head, l.deletes = live.head, live.deletes
			l.next = max(l.next, live.next)
		}
		err := db.bdb.Update(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: laneKeyPrefix(name)})
			l.count, l.bytes = 0, 0
			for it.Seek(recordKey(name, l.head)); it.Valid(); it.Next() {
				if err := it.Item().Value(func(v []byte) error { l.bytes += int64(len(v)); return nil }); err != nil {
					it.Close()
					return err
				}
				l.count++
			}
			it.Close()
			if err := seekHead(txn, name, &l); err != nil {
				return err
			}
			return txn.Set(metaKey(name), l.encode())
		})
		if err != nil {
			db.log.Error("recount lane after a failed commit", "lane", name, "err", err)
		}
		db.stateMu.Lock()
		if live := db.lanes[name]; live != nil {
			db.total -= live.bytes
		}
		db.lanes[name] = &l
		db.total += l.bytes
		db.stateMu.Unlock()
	}
}

func (db *DB) reset(b *txnState) {
	b.txn.Discard()
	cur := b.cur
	*b = *db.newTxn()
	if cur != nil {
		b.cur = cur
		b.members = []*request{cur}
	}
}

// checkDisk refuses writes while free space is below the reserve, logging
// each change of state once.
func (db *DB) checkDisk() error {
	if db.opts.MinFreeBytes < 0 {
		return nil
	}
	free, err := db.freeBytes()
	if err != nil {
		db.log.Warn("cannot check free disk space; writing anyway", "err", err)
		return nil
	}
	full := free < db.opts.MinFreeBytes
	if full != db.diskFull {
		db.diskFull = full
		if full {
			db.log.Error("disk nearly full: refusing new queue records and commits until space is freed; queued records are kept",
				"path", db.path, "free_bytes", free, "reserve_bytes", db.opts.MinFreeBytes)
		} else {
			db.log.Info("disk space back above the reserve: accepting writes again", "path", db.path, "free_bytes", free)
		}
	}
	if full {
		return fmt.Errorf("%w: %d bytes free on the file system of %s, below the %d-byte reserve",
			ErrDiskFull, free, db.path, db.opts.MinFreeBytes)
	}
	return nil
}

func (db *DB) applyAppend(b *txnState, r *request, now int64, diskErr error) error {
	if diskErr != nil {
		db.m.rejectedDisk.Add(1)
		return fmt.Errorf("append to lane %q: %w", r.lane, diskErr)
	}
	size := int64(len(r.value))
	if p := db.opts.Policy; p.MaxBytes > 0 {
		if size > p.MaxBytes {
			db.m.rejectedFull.Add(1)
			return fmt.Errorf("append to lane %q: record of %d bytes is larger than max_bytes %d: %w",
				r.lane, size, p.MaxBytes, msg.ErrQuotaExceeded)
		}
		if b.total+size > p.MaxBytes {
			if p.WhenFull == Reject {
				db.m.rejectedFull.Add(1)
				return fmt.Errorf("append to lane %q: queue holds %d bytes, max_bytes %d, when_full reject: %w",
					r.lane, b.total, p.MaxBytes, msg.ErrQuotaExceeded)
			}
			for b.total+size > p.MaxBytes {
				name := db.oldestLane(b)
				if name == "" {
					return fmt.Errorf("append to lane %q: queue accounts %d bytes but holds no records", r.lane, b.total)
				}
				if err := db.dropHead(b, name, &b.droppedFull); err != nil {
					return err
				}
			}
		}
	}
	binary.BigEndian.PutUint64(r.value[1:recHeader], uint64(now))
	l := db.lane(b, r.lane, true)
	key := recordKey(r.lane, l.next)
	if err := db.set(b, key, r.value); err != nil {
		return err
	}
	l = db.lane(b, r.lane, true)
	if l.count == 0 {
		l.head, l.headTime, l.headSize = l.next, now, size
	}
	l.next++
	l.count++
	l.bytes += size
	b.total += size
	b.appended = append(b.appended, key)
	b.appends++
	return nil
}

// oldestLane names the non-empty lane whose head record is oldest.
func (db *DB) oldestLane(b *txnState) string {
	best, bestT := "", int64(0)
	consider := func(name string) {
		l := db.peek(b, name)
		if l != nil && l.count > 0 && (best == "" || l.headTime < bestT || l.headTime == bestT && name < best) {
			best, bestT = name, l.headTime
		}
	}
	for name := range db.lanes {
		consider(name)
	}
	for name := range b.lanes {
		consider(name)
	}
	return best
}

// dropHead deletes the head record of a non-empty lane, counting it in *counter.
func (db *DB) dropHead(b *txnState, name string, counter *int64) error {
	if db.nearFull(b) {
		if err := db.finish(b); err != nil {
			return err
		}
	}
	l := db.lane(b, name, false)
	if err := db.del(b, recordKey(name, l.head)); err != nil {
		return err
	}
	l = db.lane(b, name, false)
	l.count--
	l.bytes -= l.headSize
	b.total -= l.headSize
	l.deletes++
	*counter++
	return db.advanceHead(b, name, l)
}

// advanceHead moves l.head past the record just deleted to the next stored one.
func (db *DB) advanceHead(b *txnState, name string, l *laneState) error {
	for range gapProbe {
		l.head++
		if l.head >= l.next {
			l.head, l.headTime, l.headSize = l.next, 0, 0
			return nil
		}
		item, err := b.txn.Get(recordKey(name, l.head))
		if errors.Is(err, badger.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return db.abort(b, fmt.Errorf("lane %q: read record %d: %w", name, l.head, err))
		}
		return item.Value(func(v []byte) error {
			if len(v) < recHeader {
				return fmt.Errorf("lane %q: record %d: bad header (%d bytes)", name, l.head, len(v))
			}
			l.headTime, l.headSize = int64(binary.BigEndian.Uint64(v[1:recHeader])), int64(len(v))
			return nil
		})
	}
	if err := seekHead(b.txn, name, l); err != nil {
		return db.abort(b, fmt.Errorf("lane %q: find head: %w", name, err))
	}
	return nil
}

func (db *DB) applyOps(b *txnState, ops []msg.Op, diskErr error) error {
	if diskErr != nil {
		for _, op := range ops {
			if !op.Delete {
				db.m.rejectedDisk.Add(1)
				return fmt.Errorf("commit %d ops: %w", len(ops), diskErr)
			}
		}
	}
	for _, op := range ops {
		var err error
		if op.Delete {
			err = db.del(b, op.Key)
		} else {
			err = db.set(b, op.Key, op.Value)
		}
		if err != nil {
			return err
		}
	}
	b.commits++
	return nil
}

// applyAck deletes records (allowed even when the disk is full: it frees space).
func (db *DB) applyAck(b *txnState, r *request) error {
	for _, seq := range r.seqs {
		if err := db.ackOne(b, r.lane, seq); err != nil {
			return err
		}
	}
	if r.through > 0 {
		if err := db.ackThrough(b, r.lane, r.through); err != nil {
			return err
		}
	}
	if len(r.ops) > 0 {
		if err := db.applyOps(b, r.ops, nil); err != nil {
			return err
		}
		b.commits--
	}
	return nil
}

func (db *DB) ackOne(b *txnState, name string, seq uint64) error {
	if l := db.peek(b, name); l == nil || seq < l.head || seq >= l.next {
		return nil
	}
	if db.nearFull(b) {
		if err := db.finish(b); err != nil {
			return err
		}
	}
	key := recordKey(name, seq)
	item, err := b.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return db.abort(b, fmt.Errorf("ack lane %q seq %d: %w", name, seq, err))
	}
	var size int64
	if err := item.Value(func(v []byte) error { size = int64(len(v)); return nil }); err != nil {
		return db.abort(b, fmt.Errorf("ack lane %q seq %d: %w", name, seq, err))
	}
	if err := db.del(b, key); err != nil {
		return err
	}
	l := db.lane(b, name, false)
	l.count--
	l.bytes -= size
	b.total -= size
	l.deletes++
	b.acked++
	if seq == l.head {
		return db.advanceHead(b, name, l)
	}
	return nil
}

// ackThrough deletes every record from the head through seq, a chunk of
// keys per iterator so a long range does not cost an iterator per record.
func (db *DB) ackThrough(b *txnState, name string, through uint64) error {
	skip := len(queuePrefix) + len(name) + 1
	for {
		l := db.peek(b, name)
		if l == nil || l.count == 0 || l.head > through {
			return nil
		}
		if db.nearFull(b) {
			if err := db.finish(b); err != nil {
				return err
			}
		}
		room := max(fullTxnEntries-b.entries, 1)
		type rec struct {
			key  []byte
			size int64
		}
		var recs []rec
		it := b.txn.NewIterator(badger.IteratorOptions{Prefix: laneKeyPrefix(name)})
		var last uint64
		for it.Seek(recordKey(name, l.head)); it.Valid() && len(recs) < room; it.Next() {
			item := it.Item()
			seq := binary.BigEndian.Uint64(item.Key()[skip:])
			if seq > through {
				break
			}
			var size int64
			if err := item.Value(func(v []byte) error { size = int64(len(v)); return nil }); err != nil {
				it.Close()
				return db.abort(b, fmt.Errorf("ack lane %q through %d: %w", name, through, err))
			}
			recs = append(recs, rec{item.KeyCopy(nil), size})
			last = seq
		}
		it.Close()
		if len(recs) == 0 {
			// Nothing stored up to through: the head is past it.
			l = db.lane(b, name, false)
			l.head = through
			return db.advanceHead(b, name, l)
		}
		for _, rc := range recs {
			if err := db.del(b, rc.key); err != nil {
				return err
			}
		}
		l = db.lane(b, name, false)
		for _, rc := range recs {
			l.count--
			l.bytes -= rc.size
			b.total -= rc.size
			l.deletes++
			b.acked++
		}
		l.head = last
		if err := db.advanceHead(b, name, l); err != nil {
			return err
		}
		if len(recs) < room {
			return nil
		}
	}
}

// applyMaintain drops records older than MaxAge (up to maintainChunk per
// request) and reclaims the key range of emptied lanes.
func (db *DB) applyMaintain(b *txnState, r *request, now int64) error {
	names := make([]string, 0, len(db.lanes))
	for name := range db.lanes {
		names = append(names, name)
	}
	sort.Strings(names)
	if age := db.opts.Policy.MaxAge; age > 0 {
		cutoff := now - int64(age)
		n := 0
		for _, name := range names {
			for {
				l := db.peek(b, name)
				if l == nil || l.count == 0 || l.headTime >= cutoff {
					break
				}
				if n >= maintainChunk {
					r.more = true
					break
				}
				if err := db.dropHead(b, name, &b.droppedAge); err != nil {
					return err
				}
				n++
			}
		}
		if n > 0 {
			db.log.Info("dropped queued records older than max_age", "records", n, "max_age", age)
		}
	}
	for _, name := range names {
		l := db.peek(b, name)
		if l == nil || l.count != 0 || l.deletes < int64(db.opts.ReclaimAfter) {
			continue
		}
		if err := db.finish(b); err != nil {
			return err
		}
		if err := db.bdb.DropPrefix(laneKeyPrefix(name)); err != nil {
			db.log.Warn("reclaim emptied lane", "lane", name, "err", err)
			continue
		}
		// DropPrefix ran after our transaction started: start a fresh one.
		db.reset(b)
		l = db.lane(b, name, false)
		db.log.Info("reclaimed emptied lane", "lane", name, "deletes", l.deletes)
		l.deletes = 0
		b.reclaims++
	}
	// Queue time (clock.go): with nothing queued it rejoins the system
	// clock, at the start of the next batch (this batch's appends were
	// stamped before); otherwise where it stands is stored, with the
	// system clock's reading, for a restart to go on from.
	if b.total == 0 {
		db.rejoinClock = true
		return nil
	}
	return db.set(b, clockKey, db.clock.encode())
}
