package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/outpost-iot/outpost/brokercore/msg"
)

// SchemaVersion is the layout of keys and values this package writes,
// stored at key m/schema. Open refuses a database with a newer one.
const SchemaVersion = 1

var schemaKey = []byte("m/schema")

// ErrDiskFull: the file system holding the database has less free space
// than Options.MinFreeBytes; writes are refused until space is freed.
// Everything already acknowledged stays.
var ErrDiskFull = errors.New("disk full")

// DB is the hub's one Badger database: the durable queue's lanes and the
// msg.Store the broker and uplink keep their state in. All writes go
// through one writer goroutine that group-commits them; reads go straight
// to Badger. It is safe for concurrent use.
type DB struct {
	opts Options
	log  *slog.Logger
	path string // <data_dir>/db
	bdb  *badger.DB
	blog *badgerLogger

	limits txnLimits

	mu     sync.RWMutex // guards closed and every send on reqs (Close closes reqs under it)
	closed bool
	reqs   chan *request

	stateMu sync.Mutex // guards lanes and total for readers; only the writer mutates them
	lanes   map[string]*laneState
	total   int64 // stored bytes of all lanes

	clock       *qclock // queue time: record stamps and MaxAge (clock.go)
	rejoinClock bool    // writer only: the queue was empty at maintenance; rejoin at the next batch

	// free space as seen by the writer at its last batch, and whether it was below the reserve
	diskFull bool

	writerDone chan struct{}
	stop       context.CancelFunc
	wg         sync.WaitGroup // maintenance goroutines

	m counters
}

// counters are the DB-wide figures Metrics reports.
type counters struct {
	batches, txns, appends, commits, acked        atomic.Int64
	syncErrors, rejectedFull, rejectedDisk        atomic.Int64
	droppedFull, droppedAge, reclaims, gcRewrites atomic.Int64
	maxBatchReqs                                  atomic.Int64
}

// Metrics is a snapshot of DB-wide counters since Open.
type Metrics struct {
	Batches      int64 // writer batches (each ends with every done callback called)
	Txns         int64 // Badger transactions committed (one fsync each)
	Appends      int64 // queue records appended durably
	Commits      int64 // msg.Store commits applied
	Acked        int64 // queue records deleted by Ack
	SyncErrors   int64 // transactions whose commit or sync failed (all their requests failed)
	RejectedFull int64 // appends refused by the Reject policy (msg.ErrQuotaExceeded)
	RejectedDisk int64 // writes refused for lack of disk space (ErrDiskFull)
	DroppedFull  int64 // records dropped by DropOldest to make room
	DroppedAge   int64 // records dropped by MaxAge
	Reclaims     int64 // emptied lanes whose key range was dropped
	GCRewrites   int64 // value-log files rewritten by GC
	MaxBatchReqs int64 // most requests seen in one batch
}

// Metrics returns the counters.
func (db *DB) Metrics() Metrics {
	m := &db.m
	return Metrics{
		Batches: m.batches.Load(), Txns: m.txns.Load(), Appends: m.appends.Load(),
		Commits: m.commits.Load(), Acked: m.acked.Load(), SyncErrors: m.syncErrors.Load(),
		RejectedFull: m.rejectedFull.Load(), RejectedDisk: m.rejectedDisk.Load(),
		DroppedFull: m.droppedFull.Load(), DroppedAge: m.droppedAge.Load(),
		Reclaims: m.reclaims.Load(), GCRewrites: m.gcRewrites.Load(), MaxBatchReqs: m.maxBatchReqs.Load(),
	}
}

// Open opens (creating if needed) the database <dataDir>/db.
//
// A database Badger cannot open for a reason other than a lock held by
// another process, missing permission or a full disk (a torn manifest, a
// corrupt table after a power cut) is renamed to <dataDir>/db.corrupt-<UTC
// time>, logged at error level with the reason, and a fresh database is
// created, so a damaged card never makes the hub crash-loop. The moved copy
// is kept for inspection.
func Open(dataDir string, opts Options) (*DB, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	log := opts.Logger.With("component", "queue")
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("open queue: create data dir: %w", err)
	}
	path := filepath.Join(dataDir, "db")
	blog := &badgerLogger{log: log.With("badger", true)}
	bopts := badgerOptions(path, opts.MemoryProfile, blog)
	if opts.hooks != nil && opts.hooks.tune != nil {
		opts.hooks.tune(&bopts)
	}

	bdb, err := openBadger(bopts)
	if err != nil {
		if !movable(err) {
			return nil, fmt.Errorf("open queue database %s: %w", path, err)
		}
		aside := filepath.Join(dataDir, "db.corrupt-"+opts.Now().UTC().Format("20060102T150405Z"))
		log.Error("queue database cannot be opened; moving it aside and starting an empty one",
			"path", path, "moved_to", aside, "err", err)
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, fmt.Errorf("open queue database %s: %w (and moving it aside failed: %v)", path, err, rerr)
		}
		if bdb, err = openBadger(bopts); err != nil {
			return nil, fmt.Errorf("open fresh queue database %s: %w", path, err)
		}
	}

	db := &DB{
		opts:       opts,
		log:        log,
		path:       path,
		bdb:        bdb,
		blog:       blog,
		limits:     newTxnLimits(bopts.MemTableSize, bopts.ValueThreshold),
		reqs:       make(chan *request, 4096),
		lanes:      make(map[string]*laneState),
		writerDone: make(chan struct{}),
	}
	if err := db.checkSchema(); err != nil {
		bdb.Close()
		return nil, err
	}
	if err := db.loadLanes(); err != nil {
		bdb.Close()
		return nil, err
	}
	synced, mono := clockSynced, (func() time.Duration)(nil)
	if h := opts.hooks; h != nil {
		if h.synced != nil {
			synced = h.synced
		}
		mono = h.mono
	}
	db.clock = newQClock(opts.Now, synced, mono)
	if err := db.loadClock(); err != nil {
		bdb.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	db.stop = cancel
	go db.writer()
	db.wg.Add(2)
	go db.maintain(ctx)
	go db.valueLogGC(ctx)
	if opts.TrimInterval > 0 {
		db.pageOutTables() // Open read every table to verify its checksum
		db.wg.Add(1)
		go db.trimTables(ctx)
	}
	log.Info("queue database open", "path", path, "profile", opts.MemoryProfile, "lanes", len(db.lanes),
		"queued", db.totalDepth(), "bytes", db.total)
	return db, nil
}

// openBadger opens Badger, turning a panic during open (Badger asserts on
// some corrupt files) into an error.
func openBadger(o badger.Options) (db *badger.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("badger panicked while opening: %v", r)
		}
	}()
	return badger.Open(o)
}

// movable reports whether an Open error means a damaged database (move it
// aside) rather than a condition a person must fix (it would be wrong to
// move a healthy database because the disk is full or another outpost runs).
func movable(err error) bool {
	for _, e := range []error{syscall.ENOSPC, syscall.EACCES, syscall.EPERM, syscall.EROFS, syscall.EAGAIN, syscall.EDQUOT} {
		if errors.Is(err, e) {
			return false
		}
	}
	s := strings.ToLower(err.Error())
	for _, frag := range []string{"another process is using", "no space left", "permission denied", "read-only file system"} {
		if strings.Contains(s, frag) {
			return false
		}
	}
	return true
}

func (db *DB) checkSchema() error {
	var have int
	err := db.bdb.View(func(txn *badger.Txn) error {
		it, err := txn.Get(schemaKey)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return it.Value(func(v []byte) error {
			n, err := strconv.Atoi(string(v))
			if err != nil {
				return fmt.Errorf("schema version %q: %w", v, err)
			}
			have = n
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("open queue database %s: read schema: %w", db.path, err)
	}
	switch {
	case have == SchemaVersion:
		return nil
	case have > SchemaVersion:
		return fmt.Errorf("open queue database %s: schema version %d is newer than this outpost understands (%d); run the newer outpost or move the database away",
			db.path, have, SchemaVersion)
	}
	// New database (or a pre-release one without the key): stamp it.
	err = db.bdb.Update(func(txn *badger.Txn) error {
		return txn.Set(schemaKey, []byte(strconv.Itoa(SchemaVersion)))
	})
	if err != nil {
		return fmt.Errorf("open queue database %s: write schema version: %w", db.path, err)
	}
	return nil
}

// Close stops accepting requests, lets the writer finish every request it
// has (their done callbacks run), stops the maintenance goroutines and
// closes Badger. Requests made after Close get an error wrapping msg.ErrClosed.
func (db *DB) Close() error {
	if !db.stopWriter() {
		return nil
	}
	if db.total > 0 {
		// Queue time goes on from here at the next Open (clock.go).
		if err := db.bdb.Update(func(txn *badger.Txn) error { return txn.Set(clockKey, db.clock.encode()) }); err != nil {
			db.log.Warn("store queue clock", "err", err)
		}
	}
	if err := db.bdb.Close(); err != nil {
		return fmt.Errorf("close queue database %s: %w", db.path, err)
	}
	db.log.Info("queue database closed", "path", db.path)
	return nil
}

// stopWriter refuses new requests, lets the writer finish those queued and
// stops the maintenance goroutines; false if the DB was already closed.
func (db *DB) stopWriter() bool {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return false
	}
	db.closed = true
	close(db.reqs)
	db.mu.Unlock()
	<-db.writerDone
	db.stop()
	db.wg.Wait()
	return true
}

// send hands r to the writer, or fails it if the DB is closed.
func (db *DB) send(r *request) {
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		r.done(fmt.Errorf("queue database %s: %w", db.path, msg.ErrClosed))
		return
	}
	db.reqs <- r
	db.mu.RUnlock()
}

// maintain enforces MaxAge and reclaims emptied lanes every MaintenanceInterval.
func (db *DB) maintain(ctx context.Context) {
	db.every(ctx, db.opts.MaintenanceInterval, func() {
		for {
			ch := make(chan error, 1)
			r := &request{kind: kindMaintain, done: func(err error) { ch <- err }}
			db.send(r)
			if err := <-ch; err != nil || !r.more {
				break
			}
		}
	})
}

// every calls fn every d until ctx is done; it is the body of the DB's
// background goroutines and tells db.wg when it returns.
func (db *DB) every(ctx context.Context, d time.Duration, fn func()) {
	defer db.wg.Done()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fn()
	}
}

// valueLogGC runs Badger's value-log GC every GCInterval until it finds
// nothing worth rewriting. Close waits for it.
func (db *DB) valueLogGC(ctx context.Context) {
	db.every(ctx, db.opts.GCInterval, func() {
		for i := 0; i < 16 && ctx.Err() == nil; i++ {
			err := db.bdb.RunValueLogGC(0.5)
			if err != nil {
				if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
					db.log.Warn("value-log GC", "err", err)
				}
				break
			}
			db.m.gcRewrites.Add(1)
		}
	})
}

// freeBytes reports the space available to us on the database's file system.
func (db *DB) freeBytes() (int64, error) {
	if h := db.opts.hooks; h != nil && h.freeSpace != nil {
		return h.freeSpace()
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(db.path, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", db.path, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// DiskUsage returns the bytes the database occupies on disk, counted by
// allocated blocks (Badger's .mem and .vlog files are sparse: their apparent
// size overstates what they use).
func (db *DB) DiskUsage() (int64, error) {
	return diskUsage(db.path)
}

func diskUsage(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, os.ErrNotExist) { // Badger deleted it meanwhile
				return nil
			}
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			total += int64(st.Blocks) * 512
		} else {
			total += fi.Size()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("disk usage of %s: %w", dir, err)
	}
	return total, nil
}
