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
// logs value-log sync errors; the Badger logger adapter counts those and the
// writer fails the batch during which one appeared.
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
// refusal is counted in Metrics.
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
//	MemTableSize 8 MiB x NumMemtables 2   Badger default 64 MiB x 5
//	BaseTableSize 8 MiB, TableSizeMultiplier 1, BaseLevelSize 32 MiB
//	NumLevelZeroTables 2, stall at 3, NumCompactors 2
//	BlockCacheSize 8 MiB, IndexCacheSize 4 MiB   default 256 MiB, unbounded
//	ValueLogFileSize 16 MiB                      default 1 GiB
//	Compression none, DetectConflicts off, metrics off
//	ValueThreshold 1 MiB (64-bit), 1 KiB (32-bit); records are at most MaxRecordBytes
//
// ProfileLarge uses 32 MiB memtables and tables and a 64 MiB block cache.
// Tables are always memory-mapped in Badger v4 (there is no FileIO loading
// mode any more); their pages count in RSS as file-backed, reclaimable
// memory. Measured figures are in the report of the commit that added this
// package and reproducible with internal/queuebench.
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
