package brokercore

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Goroutines for connections with nothing running (issue 9: what a burst
// of traffic to idle clients costs).
//
// A message to a parked subscriber used to start a goroutine of its own to
// write it, and the subscriber's PUBACK another to read it: one QoS 1
// message to each of 2,000 idle sensors started about 4,000 goroutines in
// a burst, 6 MiB of stacks at once for a few microseconds of work each.
// Instead, that work goes to two pools (Broker.writers: writeLoop, for a
// connection whose writer role is free; Broker.resumers: resume, for a
// parked connection the poller woke), each at most limit goroutines that
// take the connections in turn, first come first served.
//
// A pool goroutine never waits on a client or on another goroutine. It
// writes and reads without blocking (writeNow, readNow), and the moment it
// would wait (a client's socket is full, a woken connection has nothing
// more to read yet, a publisher is held by flow control, a closing
// connection waits for its writer) it leaves the pool (poolWorker.leave)
// and carries on for that one connection as a goroutine of its own, as
// before; another goroutine takes its place in the pool. A connection
// with more to write after a batch goes to the back of the line when
// others wait, so a busy subscriber cannot hold up the rest. Which
// goroutine runs a connection's reader or writer changes nothing about
// what is read or written or in what order: there is one reader and one
// writer at a time (park.go, writer.go).

// connPool runs task for connections handed to it (run), on at most limit
// goroutines, first come first served.
type connPool struct {
	b     *Broker
	limit int
	// task does one connection's work. more: stopped early for others'
	// sake; c goes to the back of the line.
	task func(c *conn, w *poolWorker) (more bool)

	mu      sync.Mutex
	queue   []*conn // waiting for a pool goroutine: queue[head:]
	head    int
	running int // pool goroutines (not counting those that left)
	// nwait is len(queue)-head, kept under mu and read without it by a
	// writer between batches (waiting).
	nwait atomic.Int32
}

func newConnPool(b *Broker, task func(*conn, *poolWorker) bool) *connPool {
	return &connPool{b: b, limit: max(4, 2*runtime.GOMAXPROCS(0)), task: task}
}

// poolWorker is one pool goroutine's claim on its place in the pool.
type poolWorker struct {
	p    *connPool
	left bool // the goroutine left the pool: it finishes this one task, then ends
}

// run has a pool goroutine run task for c. It never blocks.
func (p *connPool) run(c *conn) {
	p.mu.Lock()
	if p.running < p.limit {
		p.running++
		p.mu.Unlock()
		p.start(c)
		return
	}
	p.pushLocked(c)
	p.mu.Unlock()
}

func (p *connPool) start(c *conn) {
	p.b.wg.Add(1)
	go func() {
		defer p.b.wg.Done()
		p.work(c)
	}()
}

// work runs task for c, then for every connection waiting, and ends when
// none is (an idle broker holds no pool goroutine).
func (p *connPool) work(c *conn) {
	// One claim for the goroutine's life, renewed per task: when a task
	// returns with the place kept, no connection holds it (resume and
	// tryPark clear conn.rpool), so it is not garbage per task.
	w := &poolWorker{p: p}
	for c != nil {
		*w = poolWorker{p: p}
		more := p.task(c, w)
		if w.left {
			return
		}
		p.mu.Lock()
		if more {
			if p.head == len(p.queue) {
				p.mu.Unlock()
				continue // nobody else waits: carry on for c
			}
			p.pushLocked(c)
		}
		c = p.nextLocked()
		if c == nil {
			p.running--
		}
		p.mu.Unlock()
	}
}

// pushLocked puts c at the back of the line; mu held. Under steady load
// the line never empties, so the part already taken is dropped once it
// is half the array: the array stays the size of the line, not of every
// turn taken since the pool was last idle.
func (p *connPool) pushLocked(c *conn) {
	if p.head > 0 && p.head*2 >= len(p.queue) {
		n := copy(p.queue, p.queue[p.head:])
		clear(p.queue[n:])
		p.queue, p.head = p.queue[:n], 0
	}
	p.queue = append(p.queue, c)
	p.nwait.Add(1)
}

// nextLocked takes the first connection waiting, or nil; mu held.
func (p *connPool) nextLocked() *conn {
	if p.head == len(p.queue) {
		p.queue, p.head = p.queue[:0], 0
		if cap(p.queue) > 1024 {
			p.queue = nil // a burst is over: do not keep its array
		}
		return nil
	}
	c := p.queue[p.head]
	p.queue[p.head] = nil
	p.head++
	p.nwait.Add(-1)
	return c
}

// waiting reports whether connections wait for a pool goroutine; a
// writer asks after every batch, so it takes no lock.
func (p *connPool) waiting() bool { return p.nwait.Load() > 0 }

// leave takes the calling goroutine out of the pool before it may wait;
// another goroutine takes over the connections waiting. nil (not a pool
// goroutine) and a second call do nothing.
func (w *poolWorker) leave() {
	if w == nil || w.left {
		return
	}
	w.left = true
	p := w.p
	p.mu.Lock()
	next := p.nextLocked()
	if next == nil {
		p.running--
	}
	p.mu.Unlock()
	if next != nil {
		p.start(next) // the place passes on: running is unchanged
	}
}

// pooled reports whether the caller is a pool goroutine (not one that left).
func (w *poolWorker) pooled() bool { return w != nil && !w.left }
