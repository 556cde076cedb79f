package brokercore

import (
	"context"
	"fmt"
	"sync"

	"github.com/outpost-iot/outpost/brokercore/msg"
)

// Flow control towards online subscribers (issue 9: "zero loss … apply
// flow control, never ack-and-drop").
//
// Every network connection has a flowGate counting what waits for it: the
// session's queue of QoS 1/2 messages that found the in-flight window full
// (q12) and the QoS 0 PUBLISHes its writer has not written yet (q0). When
// either reaches the high-water mark (max_queued) the gate closes; it opens
// again once both are at or below the low-water mark (half of it).
//
// A publisher whose message went to a connection with a closed gate is
// held: a network publisher's reader stops reading (TCP pushes back) and
// the acknowledgement of that message is held until the gate opens; an
// in-process Publish waits (or gives up when its ctx ends) before routing.
// Nothing is dropped for an online subscriber: the message that closed the
// gate is queued, so a queue overshoots the mark by at most one message
// per publisher.
//
// A gate never holds the connection that owns it: a client subscribed to
// its own topics keeps reading (its acks drain its queue). A gate stops
// holding anyone once its connection closes (a dead subscriber is closed by
// the keep alive, 1.5 times [MQTT-3.1.2-22], or by the write timeout);
// its persistent session then falls under the offline policy (max_queued,
// oldest dropped and counted).
type flowGate struct {
	b    *Broker
	mu   sync.Mutex // leaf: taken under session.mu and conn.outMu
	q12  int        // QoS 1/2 messages in the session's queue
	q0   int        // QoS 0 PUBLISHes queued for the writer, not written yet
	full bool
	off  bool          // the connection is closing: hold nobody
	room chan struct{} // closed when a full gate opens
}

func (g *flowGate) high() int { return g.b.cfg.MaxQueued }
func (g *flowGate) low() int  { return g.b.cfg.MaxQueued / 2 }

// checkLocked closes or opens the gate; g.mu held. It reports whether the
// gate is closed.
func (g *flowGate) checkLocked() bool {
	switch {
	case g.off:
	case !g.full && (g.q12 >= g.high() || g.q0 >= g.high()):
		g.full = true
		g.room = make(chan struct{})
		g.b.fullGates.Add(1)
		g.b.stats.FlowHeld.Add(1)
	case g.full && g.q12 <= g.low() && g.q0 <= g.low():
		g.openLocked()
	}
	return g.full
}

func (g *flowGate) openLocked() {
	if !g.full {
		return
	}
	g.full = false
	close(g.room)
	g.room = nil
	g.b.fullGates.Add(-1)
}

// setQueued records the length of the session's queue; session.mu held.
func (g *flowGate) setQueued(n int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.q12 = n
	return g.checkLocked()
}

// addQoS0 counts QoS 0 PUBLISHes queued (d > 0) or written (d < 0).
func (g *flowGate) addQoS0(d int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.q0 += d
	return g.checkLocked()
}

// stop opens the gate for good: the connection is closing.
func (g *flowGate) stop() {
	g.mu.Lock()
	g.off = true
	g.openLocked()
	g.mu.Unlock()
}

// wait returns a channel closed when the gate opens, or nil if it is open.
func (g *flowGate) wait() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.full {
		return g.room
	}
	return nil
}

// waitFlow holds the reader after a PUBLISH that went to a connection
// whose gate is closed (c.blocked, filled by route), then sends the held
// acknowledgement. False: the connection or the broker is closing.
func (c *conn) waitFlow() bool {
	defer func() {
		clear(c.blocked)
		c.blocked = c.blocked[:0]
	}()
	c.releaseWriter() // what is queued goes out while the reader waits
	c.rpool.leave()
	var closing <-chan struct{}
	for _, bc := range c.blocked {
		ch := bc.flow.wait()
		if ch == nil {
			continue
		}
		if closing == nil {
			closing = c.wait(&c.closing)
		}
		select {
		case <-ch:
		case <-closing:
			return false
		case <-c.b.ctx.Done():
			return false
		}
	}
	if a := c.heldAck; a != nil {
		c.heldAck = nil
		c.unhold(a)
	}
	return true
}

// waitRoom holds an in-process publisher while a network subscriber that
// name would reach has a closed gate; nothing is routed if ctx ends first.
// Gates of connections whose reader is routing right now are skipped: the
// publish may come from an in-process subscriber's callback run by that
// reader, which would then wait for itself.
func (b *Broker) waitRoom(ctx context.Context, name string) error {
	for b.fullGates.Load() > 0 {
		ch := b.closedGateFor(name)
		if ch == nil {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("publish %q: subscriber queue full: %w", name, ctx.Err())
		case <-b.ctx.Done():
			return fmt.Errorf("publish %q: %w", name, msg.ErrClosed)
		}
	}
	return nil
}

func (b *Broker) closedGateFor(name string) <-chan struct{} {
	bufp := b.matchBuf()
	b.subMu.RLock()
	matches := b.subs.Match(name, (*bufp)[:0])
	b.subMu.RUnlock()
	var ch <-chan struct{}
	for _, r := range matches {
		r.s.mu.Lock()
		c := r.s.conn
		r.s.mu.Unlock()
		if c == nil || c.routing.Load() {
			continue
		}
		if ch = c.flow.wait(); ch != nil {
			break
		}
	}
	clear(matches)
	*bufp = matches[:0]
	b.matchPool.Put(bufp)
	return ch
}
