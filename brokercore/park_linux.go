//go:build linux

package brokercore

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// sweepInterval is how often the poller looks for parked connections
// whose keep-alive deadline has passed ([MQTT-3.1.2-22]: one and a half
// times the keep alive; a second late at most).
const sweepInterval = time.Second

// poller watches the sockets of parked connections with an epoll set of
// its own. The epoll descriptor is itself registered with Go's network
// poller (os.NewFile of a non-blocking descriptor), so waiting for it
// blocks no thread.
type poller struct {
	b   *Broker
	log *slog.Logger
	f   *os.File // the epoll descriptor
	efd int

	mu      sync.Mutex
	conns   map[int32]*conn // registered sockets by descriptor
	nparked int
	closed  bool
}

// newPoller returns nil (no parking) if the system refuses an epoll set.
func newPoller(b *Broker) *poller {
	efd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		b.log.Warn("idle connections keep a reader goroutine: epoll_create1 failed", "err", err)
		return nil
	}
	if err := unix.SetNonblock(efd, true); err != nil {
		unix.Close(efd)
		b.log.Warn("idle connections keep a reader goroutine: epoll set not pollable", "err", err)
		return nil
	}
	return &poller{b: b, log: b.log, f: os.NewFile(uintptr(efd), "outpost-idle-poller"), efd: efd, conns: make(map[int32]*conn)}
}

// setSocket gives c the socket it parks on.
func (p *poller) setSocket(c *conn, raw syscall.RawConn, fd int32) {
	p.mu.Lock()
	c.park.raw, c.park.fd = raw, fd
	p.mu.Unlock()
}

// park registers c's socket for one readiness event and marks c parked;
// false if c must keep its reader (closing, or the kernel refused).
func (p *poller) park(c *conn, deadline time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	ps := &c.park
	if ps.noPark || p.closed {
		return false
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: ps.fd}
	op := unix.EPOLL_CTL_MOD
	if !ps.registered {
		op = unix.EPOLL_CTL_ADD
	}
	if err := unix.EpollCtl(p.efd, op, int(ps.fd), &ev); err != nil {
		ps.noPark = true
		p.log.Debug("connection keeps its reader: epoll_ctl failed", "client", c.clientID, "err", err)
		return false
	}
	if !ps.registered {
		ps.registered = true
		p.conns[ps.fd] = c
	}
	ps.parked = true
	ps.deadline = deadline
	p.nparked++
	return true
}

// stop keeps c from parking again (it is ending) and starts a reader for
// it if it is parked.
func (p *poller) stop(c *conn) {
	p.mu.Lock()
	c.park.noPark = true
	if !c.park.parked {
		p.mu.Unlock()
		return
	}
	c.park.parked = false
	p.nparked--
	p.mu.Unlock()
	p.b.resumers.run(c)
}

// forget drops c's socket from the set before it is closed (its
// descriptor number may be reused at once) and wakes c if parked. The
// kernel removes the socket from the epoll set when it is closed; an event
// still pending for the number finds another connection or none, and a
// needless wake only costs a read that finds nothing.
func (p *poller) forget(c *conn) {
	p.mu.Lock()
	ps := &c.park
	ps.noPark = true
	if ps.registered {
		ps.registered = false
		if p.conns[ps.fd] == c {
			delete(p.conns, ps.fd)
		}
	}
	parked := ps.parked
	if parked {
		ps.parked = false
		p.nparked--
	}
	p.mu.Unlock()
	if parked {
		p.b.resumers.run(c)
	}
}

func (p *poller) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nparked
}

// run waits for events until close; every sweepInterval it wakes the
// parked connections whose read deadline has passed.
func (p *poller) run() {
	rc, err := p.f.SyscallConn()
	if err != nil {
		p.log.Error("idle poller stopped", "err", err)
		return
	}
	events := make([]unix.EpollEvent, 128)
	// The sweep keeps its own schedule: events (a busy client parking
	// and waking every few hundred milliseconds) must not put it off, or
	// parked clients would never time out.
	nextSweep := time.Now().Add(sweepInterval)
	for {
		if !time.Now().Before(nextSweep) {
			p.sweep()
			nextSweep = time.Now().Add(sweepInterval)
		}
		p.f.SetReadDeadline(nextSweep)
		var n int
		var werr error
		err := rc.Read(func(fd uintptr) bool {
			n, werr = unix.EpollWait(int(fd), events, 0)
			if werr == unix.EINTR {
				n, werr = 0, nil
			}
			return n > 0 || werr != nil // nothing ready: wait until the set is readable
		})
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			continue // sweep time
		case err != nil:
			return // closed
		case werr != nil:
			p.log.Error("idle poller stopped; parked connections are woken", "err", fmt.Errorf("epoll_wait: %w", werr))
			p.close()
			return
		}
		p.mu.Lock()
		for _, ev := range events[:n] {
			c := p.conns[ev.Fd]
			if c == nil || !c.park.parked {
				continue // a late event for a socket already woken or gone
			}
			c.park.parked = false
			p.nparked--
			p.b.resumers.run(c)
		}
		p.mu.Unlock()
	}
}

func (p *poller) sweep() {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		ps := &c.park
		if ps.parked && !ps.deadline.IsZero() && !now.Before(ps.deadline) {
			ps.parked = false
			p.nparked--
			p.b.resumers.run(c)
		}
	}
}

// close stops parking: every parked connection gets its reader back, and
// the epoll set is closed (its registrations with it).
func (p *poller) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	var woken []*conn
	for fd, c := range p.conns {
		ps := &c.park
		ps.noPark = true
		ps.registered = false
		delete(p.conns, fd)
		if ps.parked {
			ps.parked = false
			p.nparked--
			woken = append(woken, c)
		}
	}
	p.f.Close()
	p.mu.Unlock()
	for _, c := range woken {
		p.b.resumers.run(c)
	}
}
