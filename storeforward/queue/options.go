package queue

import (
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// Memory profiles for Options.MemoryProfile.
const (
	// ProfileSmall is for a 512 MiB box (the default). See the package doc
	// for the figures.
	ProfileSmall = "small"
	// ProfileLarge trades memory for fewer compactions on a box with 2 GiB or
	// more: 32 MiB memtables and tables, 64 MiB block cache.
	ProfileLarge = "large"
)

// WhenFull policies (the uplink.queue.when_full config key).
const (
	// DropOldest makes room for a new record by dropping the oldest queued
	// records (across all lanes); every drop is counted.
	DropOldest = "drop_oldest"
	// Reject refuses the new record with an error wrapping msg.ErrQuotaExceeded.
	Reject = "reject"
)

// MaxRecordBytes is the largest record (queue record or msg.Op value) the
// database takes. Values below Badger's ValueThreshold (128 KiB on 64-bit,
// 1 KiB on 32-bit builds) live in the write-ahead log, whose sync errors
// Badger returns; larger ones go to the value log, whose sync errors Badger
// only logs: the logger adapter catches those (see badgerLogger).
const MaxRecordBytes = 1<<20 - 64

// Policy bounds the queue as a whole (all lanes together), like the
// uplink.queue section of outpost.yaml.
type Policy struct {
	// MaxBytes bounds the stored bytes of all queued records (record plus a
	// 9-byte header). 0 = no bound.
	MaxBytes int64
	// MaxAge drops records queued longer than this, checked every
	// Options.MaintenanceInterval. 0 = no bound.
	MaxAge time.Duration
	// WhenFull is DropOldest ("" means DropOldest) or Reject.
	WhenFull string
}

// Validate reports a policy a user wrote wrongly.
func (p Policy) Validate() error {
	if p.MaxBytes < 0 {
		return fmt.Errorf("queue policy: max_bytes %d is negative", p.MaxBytes)
	}
	if p.MaxAge < 0 {
		return fmt.Errorf("queue policy: max_age %v is negative", p.MaxAge)
	}
	switch p.WhenFull {
	case "", DropOldest, Reject:
	default:
		return fmt.Errorf("queue policy: when_full %q: want %q or %q", p.WhenFull, DropOldest, Reject)
	}
	return nil
}

// Options configure Open. The zero value is the 512 MiB profile with no
// queue bounds.
type Options struct {
	// Logger receives the database's own lines and Badger's (Badger's info
	// lines at debug level). nil = slog.Default().
	Logger *slog.Logger
	// MemoryProfile is ProfileSmall ("" means small) or ProfileLarge.
	MemoryProfile string
	// Policy bounds the queue.
	Policy Policy
	// MinFreeBytes: appends and commits that write are refused while the
	// file system holding the database has less free space than this.
	// Badger writes through memory-mapped, sparse files, so running out of
	// space mid-write would be a SIGBUS, not an error; this reserve keeps
	// that from happening. 0 = 64 MiB; negative = no check.
	MinFreeBytes int64
	// MaintenanceInterval is how often MaxAge is enforced and emptied lanes
	// are reclaimed. 0 = 1 minute.
	MaintenanceInterval time.Duration
	// GCInterval is how often value-log GC runs. 0 = 10 minutes.
	GCInterval time.Duration
	// ReclaimAfter: an emptied lane whose records saw at least this many
	// deletes since its last reclaim gets its key range dropped
	// (Badger DropPrefix), which removes the tombstones at once. 0 = 50000.
	ReclaimAfter int
	// TrimInterval is how often the memory-mapped tables are paged out of
	// the process (see trimTables). 0 = 2 seconds; negative = never.
	TrimInterval time.Duration
	// Now is the system clock. Records are stamped, and MaxAge measured,
	// in queue time, which follows it but ignores its steps (clock.go).
	// nil = time.Now.
	Now func() time.Time

	// hooks lets tests in this package inject failures.
	hooks *testHooks
}

// testHooks are fault-injection points for tests. All fields may be nil.
type testHooks struct {
	beforeBatch func()                // called by the writer before it builds a batch
	afterCommit func() error          // a non-nil error is treated as a failed sync of that transaction
	freeSpace   func() (int64, error) // replaces statfs
	tune        func(*badger.Options) // adjusts Badger options (for the 32-bit negative control)
	mono        func() time.Duration  // replaces the monotonic clock behind queue time
	synced      func() bool           // replaces clockSynced
}

func (o *Options) setDefaults() error {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	switch o.MemoryProfile {
	case "":
		o.MemoryProfile = ProfileSmall
	case ProfileSmall, ProfileLarge:
	default:
		return fmt.Errorf("open queue: memory profile %q: want %q or %q", o.MemoryProfile, ProfileSmall, ProfileLarge)
	}
	if err := o.Policy.Validate(); err != nil {
		return fmt.Errorf("open queue: %w", err)
	}
	if o.Policy.WhenFull == "" {
		o.Policy.WhenFull = DropOldest
	}
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = 64 << 20
	}
	if o.MaintenanceInterval <= 0 {
		o.MaintenanceInterval = time.Minute
	}
	if o.GCInterval <= 0 {
		o.GCInterval = 10 * time.Minute
	}
	if o.TrimInterval == 0 {
		o.TrimInterval = 2 * time.Second
	}
	if o.ReclaimAfter <= 0 {
		o.ReclaimAfter = 50000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// is32bit reports a 32-bit build (armv7, 386), where Badger v4.9.6 needs the
// workaround option set (see badgerOptions).
const is32bit = strconv.IntSize == 32

// badgerOptions returns the Badger options for dir. The figures are
// explained in the package doc; keep the two in step.
func badgerOptions(dir string, profile string, log *badgerLogger) badger.Options {
	memtable := int64(4 << 20)
	blockCache := int64(4 << 20)
	indexCache := int64(2 << 20)
	threshold := int64(128 << 10) // at most 40% of Badger's per-transaction limit (15% of the memtable)
	if profile == ProfileLarge {
		memtable, blockCache, indexCache, threshold = 32<<20, 64<<20, 16<<20, 1<<20
	}
	o := badger.DefaultOptions(dir).
		WithLogger(log).
		// Badger syncs the write-ahead log (and value log) inside every
		// transaction commit: one transaction per batch, so one sync per batch.
		WithSyncWrites(true).
		WithNumVersionsToKeep(1).
		WithMetricsEnabled(false).
		// One writer goroutine: conflict detection would only cost memory.
		WithDetectConflicts(false).
		// No compression: queue payloads are small, boards are slow, and
		// compressed blocks make the 32-bit allocator bug (below) easier to hit.
		WithCompression(options.None).
		WithMemTableSize(memtable).
		WithNumMemtables(2).
		// The 32-bit workaround, used on every build so there is one
		// configuration to test: a table never outgrows its builder's first
		// allocator buffer (2 x BaseTableSize) when BaseTableSize >=
		// MemTableSize and tables do not grow per level.
		WithBaseTableSize(memtable).
		WithBaseLevelSize(4 * memtable).
		WithLevelSizeMultiplier(10).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(3).
		WithNumCompactors(2).
		WithBlockCacheSize(blockCache).
		WithIndexCacheSize(indexCache).
		WithValueLogFileSize(16 << 20).
		WithValueLogMaxEntries(100000).
		// Detect a corrupt table when the database opens, not later in a
		// read: Open can then move the database aside instead of crash-looping.
		WithChecksumVerificationMode(options.OnTableRead).
		WithValueThreshold(threshold)
	o.TableSizeMultiplier = 1
	if is32bit {
		// ristretto z.Allocator.Allocate stores uint64((bufIdx+1)<<32) with
		// bufIdx an int, which is 0 on 32-bit: a table builder that
		// outgrows its first buffer overwrites its own blocks. Values above
		// 1 KiB go to the value log so that blocks never grow past
		// BlockSize+1 KiB and a table's buffers stay well inside 2 x
		// BaseTableSize. See the package doc.
		o = o.WithValueThreshold(1024)
	}
	return o
}
