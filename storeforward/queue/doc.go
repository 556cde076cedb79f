// Package queue is Outpost's one durable store: a Badger database at
// <data_dir>/db holding the store-and-forward queue and, through msg.Store,
// the broker's sessions and retained messages and the uplink's state.
//
// It imports Badger, the standard library and brokercore/msg only; nothing
// MQTT.
//
// # Keys
//
//	q/<lane>/<seq: 8 bytes big-endian>   queued record: version byte, append time (unix ns), record
//	m/q/<lane>                           lane state: head, next, depth, bytes, deletes since reclaim
//	m/schema                             SchemaVersion
//	u/...  s/...  r/...                  uplink, broker sessions, retained (msg.Store, owned by their users)
//
// # One writer, group commit
//
// Every write (Append, Ack, Commit, maintenance) is a request to one writer
// goroutine. It applies every request that arrived while the previous batch
// was being synced, in arrival order, to one Badger transaction committed
// with SyncWrites, then calls their done callbacks in order: the fsync rate
// bounds batches, not messages. A transaction past 512 KiB or 2000 entries
// is committed and a new one started (Badger refuses transactions past 15%
// of the memtable). A failed commit or sync fails every request with a part
// in that transaction. Badger returns write-ahead-log sync errors but only
// logs value-log sync errors (values of 128 KiB and more on 64-bit, 1 KiB on
// 32-bit, live there); the Badger logger adapter counts those and the writer
// fails the batch during which one appeared.
//
// # Queue
//
// A lane is a FIFO of opaque records (one per forward-rule priority).
// Append assigns the lane's next sequence number; Read reads from a cursor;
// Ack/AckThrough/AckWith delete. The lane's head (first stored seq) is
// persisted with every change, so Read and reopen seek straight to it
// instead of iterating over the tombstones of acknowledged records (from
// the start, over a million tombstones took seconds). Policy bounds all
// lanes together: MaxBytes with DropOldest (the globally oldest record goes
// first) or Reject (msg.ErrQuotaExceeded), and MaxAge; every drop and
// refusal is counted in Metrics. Records are stamped, and MaxAge measured,
// in queue time (clock.go): it follows the monotonic clock while the hub
// runs, so NTP stepping a stale boot-time clock does not age what is
// queued, and goes on across restarts from the last value stored.
//
// Space: deletes are tombstones until compaction; an emptied lane with many
// deletes gets its key range dropped (DropPrefix, Options.ReclaimAfter) by
// the maintenance goroutine, and value-log GC runs every GCInterval from a
// goroutine Close waits for. DiskUsage counts allocated blocks, since
// Badger's .mem and .vlog files are sparse.
//
// # Disk full and damage
//
// Badger writes through memory-mapped sparse files: running out of space
// mid-write is a SIGBUS, not an error. So the writer checks free space
// (statfs) before each batch and refuses appends and commits with
// ErrDiskFull while it is below Options.MinFreeBytes (64 MiB); acks still
// go through, and every acknowledged record stays. Open moves a database
// Badger cannot open (except for a held lock, permissions or a full disk)
// aside to db.corrupt-<time> and starts an empty one, logging both paths,
// so a damaged card never causes a crash loop. Tables are checksummed when
// opened (OnTableRead) so damage shows up there and not in a later read.
//
// # Options for a 512 MiB box (ProfileSmall)
//
//	MemTableSize 4 MiB x NumMemtables 2     Badger default 64 MiB x 5
//	BaseTableSize 4 MiB, TableSizeMultiplier 1, BaseLevelSize 16 MiB
//	NumLevelZeroTables 2, stall at 3, NumCompactors 2
//	BlockCacheSize 4 MiB, IndexCacheSize 2 MiB   default 256 MiB, unbounded
//	ValueLogFileSize 16 MiB                      default 1 GiB
//	ValueThreshold 128 KiB (64-bit), 1 KiB (32-bit); records up to MaxRecordBytes
//	Compression none, DetectConflicts off, metrics off, checksums on table open
//
// Most of Badger's Go heap while compacting is table-builder buffers of
// 2 x BaseTableSize each (several at once), hence the 4 MiB tables. Badger
// v4 always memory-maps tables (v4 has no FileIO loading mode), and writes
// and reads them through the mapping, so a large queue would keep its whole
// table set resident as file pages: every TrimInterval (2 s) the mapped
// .sst files are paged out with MADV_PAGEOUT (see trimTables). ProfileLarge
// uses 32 MiB memtables and tables and a 64 MiB block cache.
//
// Measured on the development VM (2 cores, virtio disk, fdatasync
// ~1,150/s; BenchmarkFdatasync), 200-byte records:
//
//	durable appends, each appender waiting for its ack (BenchmarkAppend):
//	   1 appender    ~560/s   1 record/txn   ack p50 0.75 ms  p99 10 ms
//	   8 appenders  ~2,800/s  4 records/txn  ack p50 0.7 ms   p99 54 ms
//	  64 appenders ~14,500/s  33 records/txn ack p50 3.0 ms   p99 29 ms
//	Ack of one record (BenchmarkAck): p50 1.0 ms, p99 19 ms
//	1M records queued (internal/queuebench, 4096 appends in flight):
//	  ~70,000 appends/s, ~1,170 transactions, 224 MiB on disk
//	  peak RSS while filling, GOMEMLIMIT=64MiB: VmHWM 117 MiB
//	    (anonymous 46 MiB, mapped tables 80 MiB); without a limit 215 MiB
//	  reopen 0.1-0.6 s (checksumming every table maps it all in for a
//	    moment: ~230 MiB of file pages, paged out right after Open)
//	  drain (Read 1000 + AckThrough) ~6 s; a read at the head afterwards 10-40 us
//
// One transaction costs two syncs (Badger syncs the write-ahead log and the
// value log), so a lone appender gets half the disk's fsync rate; group
// commit is what buys the rest. The hub should set a Go memory limit
// (GOMEMLIMIT or debug.SetMemoryLimit, e.g. 96 MiB) on small boxes: without
// one the heap grows to twice its live size between collections.
//
// # 32-bit ARM
//
// Badger v4.9.6 with ristretto v2 loses data on 32-bit builds:
// z.(*Allocator).Allocate stores uint64((bufIdx+1)<<32) with bufIdx an int,
// which is 0 on 32-bit, so a table builder that outgrows its allocator's
// first buffer (2 x BaseTableSize) overwrites its own blocks. The options
// above keep every builder inside that buffer: no compression,
// BaseTableSize >= MemTableSize, TableSizeMultiplier 1 (a flushed memtable
// or a compaction output is at most one table size), and, on 32-bit only,
// ValueThreshold 1 KiB so no inline value can make a block grow (block
// growth doubles allocations). TestLargeReopen32 writes a million records
// across reopen rounds and checks each (OUTPOST_QUEUE_32BIT_PROOF=1).
package queue
