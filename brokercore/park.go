package brokercore

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Idle parking (issue 9: what an idle connection costs).
//
// A connection's reader goroutine runs while there are packets to read.
// When the connection has had nothing to read for parkAfter (its read
// deadline, set parkAfter away while nothing is buffered, passes; and a
// non-blocking read still finds no bytes), the reader registers the socket
// with the broker's poller (epoll on Linux) and returns: an idle
// connection holds no goroutine and no stack, only its conn and session.
// It parks at once, with nothing more buffered, after a SUBSCRIBE,
// UNSUBSCRIBE or PINGREQ (a client mostly goes quiet after those:
// conn.quiet) and when it was woken after a long park (conn.lively: a
// sensor that publishes now and then). When bytes arrive, the poller starts
// a new reader goroutine that carries on exactly where the last one
// stopped. So 2,000 sensors that publish every minute cost 2,000 small
// structs, not 2,000 blocked goroutines.
//
// Only plain TCP connections park (they expose their socket through
// syscall.Conn); TLS and WebSocket connections buffer bytes in user space
// and keep a blocked reader. A connection parks only between packets (its
// read buffer empty), so the order of packets and every per-connection
// guarantee are the same as with a blocked reader.
//
// Who wakes a parked connection: the poller (bytes, hang-up, error), its
// keep-alive sweep (the read deadline passed: the resumed reader's read
// fails with a timeout, as a blocked read would), interrupt (takeover),
// and closeNet (the connection is closing: the resumed reader reads the
// closed socket and finishes). Park state is guarded by the poller's
// mutex; the reader goroutine state is handed over by it (park under the
// lock, start the next reader after the lock).

// parkAfter is how long a connection with nothing to read keeps its
// reader before it parks: a busy publisher's short gaps then cost no
// parking (an epoll_ctl and a goroutine start each), and a sensor that
// publishes every few seconds is parked nearly all the time. Measured with
// outpost bench against outpost run (connections -n 2000; fan-in -q 1),
// 5 ms beat both parking at once (fan-in 8.0 -> 6.6 µs/msg) and 50 ms
// (peak RSS of the connection storm 40 -> 34 MiB).
const parkAfter = 5 * time.Millisecond

// livelyGap: a connection woken less than this after it parked is busy
// (a publisher between bursts, a subscriber acknowledging a stream) and
// keeps its reader parkAfter after its packets; one that was parked
// longer parks again as soon as it has nothing to read, so a sensor that
// publishes every few seconds does not hold a reader and a timer for
// parkAfter after each message.
const livelyGap = 50 * time.Millisecond

// parkState is a connection's registration with the poller.
type parkState struct {
	raw        syscall.RawConn // nil: the connection cannot park; written under the lock, read by the reader
	fd         int32
	registered bool      // the socket is in the poller's set
	parked     bool      // no reader goroutine: the poller owns the connection
	noPark     bool      // closing, or parking failed: the reader stays
	deadline   time.Time // read deadline while parked (zero: none)
}

// parkable sets up c for parking once CONNECT is handled: a plain socket
// and a broker with a poller.
func (c *conn) parkable() {
	if c.b.poller == nil {
		return
	}
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	var fd int32 = -1
	if raw.Control(func(s uintptr) { fd = int32(s) }) != nil || fd < 0 {
		return
	}
	c.b.poller.setSocket(c, raw, fd)
	c.outMu.Lock()
	c.wraw = raw
	c.outMu.Unlock()
}

// readNow reads what the socket holds without waiting: (0, nil) when
// nothing is waiting; io.EOF when the peer closed; a timeout error once
// the read deadline has passed.
func (c *conn) readNow(p []byte) (int, error) {
	n, rerr, err := ioNow(c.park.raw, false, p)
	switch {
	case err != nil:
		return 0, err // deadline passed, connection closed
	case errors.Is(rerr, syscall.EAGAIN):
		return 0, nil
	case rerr != nil:
		return 0, rerr
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// ioNow makes one non-blocking read (or write) system call on a socket
// (again on EINTR). callErr is the call's error (EAGAIN: nothing now), err
// the RawConn's (deadline passed, connection closed).
func ioNow(raw syscall.RawConn, write bool, p []byte) (n int, callErr, err error) {
	// The callback RawConn takes, and what it fills in, come from a pool:
	// a closure made per call would be three allocations on every park
	// and every pooled write (issue 9).
	h := rawIOPool.Get().(*rawIO)
	h.p = p
	if write {
		h.call = syscall.Write
		err = raw.Write(h.fn)
	} else {
		h.call = syscall.Read
		err = raw.Read(h.fn)
	}
	n, callErr = h.n, h.callErr
	*h = rawIO{fn: h.fn}
	rawIOPool.Put(h)
	return n, callErr, err
}

// rawIO is one ioNow call's state; fn is its do method, bound once.
type rawIO struct {
	call    func(int, []byte) (int, error)
	p       []byte
	n       int
	callErr error
	fn      func(uintptr) bool
}

var rawIOPool = sync.Pool{New: func() any { h := new(rawIO); h.fn = h.do; return h }}

func (h *rawIO) do(fd uintptr) bool {
	for {
		h.n, h.callErr = h.call(int(fd), h.p)
		if h.callErr != syscall.EINTR {
			return true
		}
	}
}

// writeNow writes what the socket takes of p without waiting: n < len(p)
// (maybe 0) when its send buffer is full.
func (c *conn) writeNow(raw syscall.RawConn, p []byte) (int, error) {
	n, werr, err := ioNow(raw, true, p)
	switch {
	case err != nil:
		return 0, err // write deadline passed, connection closed
	case errors.Is(werr, syscall.EAGAIN):
		return 0, nil
	case werr != nil:
		// As net.Conn's Write reports it, for the log.
		return 0, &net.OpError{Op: "write", Net: c.nc.LocalAddr().Network(), Source: c.nc.LocalAddr(), Addr: c.nc.RemoteAddr(), Err: os.NewSyscallError("write", werr)}
	}
	return max(n, 0), nil
}

// tryPark (after parkAfter of silence) hands c to the poller if nothing is
// waiting on the socket; it reports whether the reader goroutine must
// return (the connection is parked) and any read error. On false with no
// error, bytes are buffered (or the connection cannot park) and the reader
// goes on.
func (c *conn) tryPark(deadline time.Time) (bool, error) {
	if c.park.raw == nil || len(c.blocked) > 0 {
		return false, nil
	}
	got, err := c.in.fillWith(c.readNow)
	if got {
		c.takeWriter()
	}
	if err != nil || got {
		return false, err
	}
	c.in.drop() // a parked connection holds no read buffer
	c.parkedAt = time.Now()
	// Once parked, c belongs to the poller and the next reader: this one
	// lets go of its pool place first.
	w := c.rpool
	c.rpool = nil
	if c.b.poller.park(c, deadline) {
		return true, nil
	}
	c.rpool = w
	return false, nil
}

// resume is the reader for a parked connection that was woken, run by a
// resumer pool goroutine w (pool.go): it carries on reading, and finishes
// the connection unless it parks again. w leaves the pool (c.rpool.leave)
// before anything that may wait.
func (c *conn) resume(w *poolWorker) (more bool) {
	c.rpool = w
	c.lively = time.Since(c.parkedAt) < livelyGap
	if c.readPackets(true) {
		return false // tryPark cleared rpool: c may already run elsewhere
	}
	c.end()
	c.rpool = nil
	return false
}

// closeNet closes the network connection; a parked connection is woken
// so that its reader finishes. Every close of c.nc goes through here.
func (c *conn) closeNet() {
	if c.b.poller != nil {
		c.b.poller.forget(c)
	}
	c.nc.Close()
}

// stopParking starts a reader for c if it is parked and keeps it from
// parking again (interrupt: the connection is ending; its reader must see
// the read deadline in the past).
func (c *conn) stopParking() {
	if c.b.poller != nil {
		c.b.poller.stop(c)
	}
}

// Parked reports how many connections are parked (no reader goroutine).
func (b *Broker) Parked() int {
	if b.poller == nil {
		return 0
	}
	return b.poller.count()
}
