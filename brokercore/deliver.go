package brokercore

import (
	"cmp"
	"errors"
	"slices"
	"sync"

	"github.com/outpost-iot/outpost/brokercore/msg"
)

// maxTaps is how many wanting taps route tracks without allocating.
const maxTaps = 4

// route is the one publish path of every message, from a network client,
// an in-process publisher, a will or $SYS: retained store, routing to
// sessions, taps. pre are store writes to commit together with the
// message's (the publisher's own QoS 2 state).
//
// done (QoS 1/2, may be nil) is called once every tap that wants m has
// called its done and the store holds m for every persistent session it
// was queued to (DESIGN.md, "the one invariant"); with the first error.
//
// fc is the publishing network connection (nil otherwise): the
// connections with a closed flow gate that m went to are added to
// fc.blocked, so its reader holds the publisher (flow.go).
func (b *Broker) route(m *msg.Message, pre []msg.Op, fc *conn, done routeDone) {
	var tapArr [maxTaps]msg.Tap
	wanting := tapArr[:0]
	b.tapMu.RLock()
	for _, t := range b.taps {
		if t.Wants(m) {
			wanting = append(wanting, t)
		}
	}
	b.tapMu.RUnlock()

	// storeMu makes the order of Commit calls (and of tap Appends) the
	// order in which state changed. It is taken only for a message that
	// writes: one a tap wants, with the publisher's own QoS 2 state, a
	// retained one, or a QoS 1/2 one matching a session that writes to
	// the store (session.writes); everything else skips it.
	locked := len(wanting) > 0 || len(pre) > 0 || (b.store != nil && m.Retain)
	if locked {
		b.storeMu.Lock()
	}
	ops := pre
	bufp := b.matchBuf()
	var matches []subRef
	if m.Retain {
		// Set and match under the lock session.subscribe takes for its
		// insert and retained snapshot: a subscriber gets m exactly once.
		b.subMu.Lock()
		ops = b.retained.set(b, m, ops)
		matches = b.subs.Match(m.Topic, (*bufp)[:0])
		b.subMu.Unlock()
	} else {
		b.subMu.RLock()
		matches = b.subs.Match(m.Topic, (*bufp)[:0])
		b.subMu.RUnlock()
	}
	if !locked && b.store != nil && m.QoS > 0 {
		for _, r := range matches {
			if r.s.writes.Load() {
				locked = true
				b.storeMu.Lock()
				break
			}
		}
	}
	if len(matches) > 1 {
		slices.SortFunc(matches, func(x, y subRef) int { return cmp.Compare(x.s.uid, y.s.uid) })
	}
	_, az := b.auth()
	var inprocArr [8]*session
	inproc := inprocArr[:0]
	for i := 0; i < len(matches); {
		j := i + 1
		for j < len(matches) && matches[j].s == matches[i].s {
			j++
		}
		var in bool
		ops, in = b.deliverTo(m, matches[i:j], az, ops, fc)
		if in {
			inproc = append(inproc, matches[i].s)
		}
		i = j
	}
	defer func() {
		for _, s := range inproc {
			s.flushDeliver()
		}
	}()
	if len(matches) == 0 {
		b.stats.Dropped.NoSubscribers.Add(1)
	}
	clear(matches)
	*bufp = matches[:0]
	b.matchPool.Put(bufp)

	pending := len(wanting)
	if len(ops) > 0 && b.store != nil {
		pending++
	}
	if pending == 0 {
		if locked {
			b.storeMu.Unlock()
		}
		if done != nil {
			done.routed(nil)
		}
		return
	}
	tr := &tracker{done: done}
	tr.n.Store(int32(pending))
	for _, t := range wanting {
		t.Append(*m, tr.one)
	}
	if len(ops) > 0 && b.store != nil {
		if b.crashed.Load() {
			tr.one(msg.ErrClosed)
		} else {
			b.store.Commit(ops, tr.one)
		}
	}
	if locked {
		b.storeMu.Unlock()
	}
}

func (b *Broker) matchBuf() *[]subRef {
	if p, ok := b.matchPool.Get().(*[]subRef); ok {
		return p
	}
	s := make([]subRef, 0, 16)
	return &s
}

// deliverTo gives m to one session, which holds every subscription in
// subs that matched: one delivery with the highest QoS and every
// subscription identifier (MQTT 5.0 section 3.3.4).
func (b *Broker) deliverTo(m *msg.Message, subs []subRef, az Authorizer, ops []msg.Op, fc *conn) (_ []msg.Op, inproc bool) {
	s := subs[0].s
	var qos byte
	var rap, any bool
	var ids []uint32
	for _, r := range subs {
		// [MQTT-3.8.3-3] No Local: not to the publisher's own subscription.
		if r.opts.NoLocal && m.ClientID != "" && m.ClientID == s.id {
			continue
		}
		any = true
		if r.opts.QoS > qos {
			qos = r.opts.QoS
		}
		rap = rap || r.opts.RetainAsPublished
		if r.opts.SubID != 0 {
			ids = append(ids, r.opts.SubID)
		}
	}
	if !any {
		return ops, false
	}
	// QoS downgrade to the subscription's QoS [MQTT-3.8.4-8].
	if m.QoS < qos {
		qos = m.QoS
	}
	om := &outMsg{m: m, qos: qos, retain: m.Retain && rap, subIDs: ids}
	s.mu.Lock()
	if az != nil && !s.inprocNoACL() && !az.Allow(s.id, s.username, m.Topic, AccessRead) {
		s.mu.Unlock()
		b.stats.Dropped.NotAuthorized.Add(1)
		return ops, false
	}
	var held *conn
	ops, held = s.enqueueLocked(om, ops)
	inproc = len(s.pending) > 0
	s.mu.Unlock()
	// A publisher is never held by its own connection (it must keep
	// reading the acks that drain its queue).
	if held != nil && fc != nil && held != fc {
		fc.blocked = append(fc.blocked, held)
	}
	return ops, inproc
}

// inprocNoACL: a bare in-process subscriber (Broker.Subscribe) is trusted.
func (s *session) inprocNoACL() bool { return s.inproc && s.id == "" }

// routeDone is told when a routed QoS 1/2 message is accepted (nil) or
// refused (an interface, not a func, so a caller's state needs no closure
// per message).
type routeDone interface{ routed(err error) }

// errChan is the routeDone of an in-process Publish.
type errChan chan error

func (e errChan) routed(err error) { e <- err }

// tracker counts the done calls a QoS 1/2 publish waits for.
type tracker struct {
	n    atomicInt32
	mu   sync.Mutex
	err  error
	done routeDone
}

func (t *tracker) one(err error) {
	if err != nil {
		t.mu.Lock()
		if t.err == nil {
			t.err = err
		}
		t.mu.Unlock()
	}
	if t.n.Add(-1) == 0 && t.done != nil {
		t.mu.Lock()
		err := t.err
		t.mu.Unlock()
		t.done.routed(err)
	}
}

// commitLocked commits ops (storeMu held); failures of state bookkeeping
// writes are logged: the in-memory state stays right, a restart may
// resend a message (QoS 1 allows it).
func (b *Broker) commitLocked(ops []msg.Op, done func(error)) {
	if b.store == nil || len(ops) == 0 || b.crashed.Load() {
		if done != nil {
			done(nil)
		}
		return
	}
	b.store.Commit(ops, func(err error) {
		if err != nil {
			b.log.Error("store commit failed", "ops", len(ops), "err", err)
		}
		if done != nil {
			done(err)
		}
	})
}

// ackReason maps a tap or store failure to the v5 reason code of the
// publisher's PUBACK / PUBREC.
func ackReason(err error) byte {
	if errors.Is(err, msg.ErrQuotaExceeded) {
		return 0x97
	}
	if errors.Is(err, msg.ErrNotAuthorized) {
		return 0x87
	}
	return 0x80
}

// tapWants reports whether a tap takes m.
func (b *Broker) tapWants(m *msg.Message) bool {
	b.tapMu.RLock()
	defer b.tapMu.RUnlock()
	for _, t := range b.taps {
		if t.Wants(m) {
			return true
		}
	}
	return false
}
