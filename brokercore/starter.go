package brokercore

import (
	"sync/atomic"
)

// starter runs new connections: the handshake, then packets until the
// connection parks (park.go) or ends.
//
// A goroutine started per connection begins with Go's smallest stack
// (2 KiB), and the handshake's frames need more: the runtime copies the
// stack to a 4 KiB one at the first deadline set, decoding the frames'
// metadata to adjust them, then the goroutine ends. With 2,000 sensors
// connecting that is 2,000 goroutine starts, stack copies and exits
// (issue 9). Instead, a goroutine whose connection parked or ended waits
// for the next new connection, its stack already grown; up to
// starterIdle of them wait, the rest end. A new connection goes to one
// that waits, or to a new goroutine when none does: never to a queue, so
// a client slow to send its CONNECT holds up no other.
type starter struct {
	b       *Broker
	idle    atomic.Int32
	spawned atomic.Int64 // goroutines started (tests)
	next    chan *conn   // unbuffered: a send succeeds only if a goroutine waits
}

// starterIdle bounds the goroutines waiting for a new connection: about
// as many as handshakes run at once when a site's clients reconnect
// together; each holds a 4 KiB stack.
const starterIdle = 16

func newStarter(b *Broker) *starter { return &starter{b: b, next: make(chan *conn)} }

// start serves c on a waiting goroutine, or a new one; it never blocks.
// The caller has counted c in b.wg (serveConn); a goroutine counts itself.
func (s *starter) start(c *conn) {
	select {
	case s.next <- c:
		return
	default:
	}
	s.b.wg.Add(1)
	s.spawned.Add(1)
	go s.loop(c)
}

func (s *starter) loop(c *conn) {
	defer s.b.wg.Done()
	for {
		c.serve()
		if s.idle.Add(1) > starterIdle {
			s.idle.Add(-1)
			return
		}
		select {
		case c = <-s.next:
			s.idle.Add(-1)
		case <-s.b.ctx.Done():
			s.idle.Add(-1)
			return
		}
	}
}
