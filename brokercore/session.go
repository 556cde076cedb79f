package brokercore

import (
	"iter"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/brokercore/packet"
	"github.com/outpost-iot/outpost/brokercore/topic"
)

// neverExpire is the v5 Session Expiry Interval 0xFFFFFFFF (the session
// does not expire), also what a 3.1.1 clean session = false gets.
const neverExpire = time.Duration(math.MaxUint32) * time.Second

// subOpts are the options of one subscription (MQTT 5.0 section 3.8.3.1).
type subOpts struct {
	QoS               byte
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte
	SubID             uint32 // 0: none
}

// subRef is what the subscription trie holds: the session and the options.
type subRef struct {
	s    *session
	opts subOpts
}

// Delivery states of an outbound message.
const (
	stQueued   = iota // not sent yet (window full or session offline)
	stSent            // PUBLISH sent, waiting for PUBACK / PUBREC
	stReleased        // QoS 2: PUBREC received, PUBREL sent, waiting for PUBCOMP
)

// outMsg is one message on its way to one session.
type outMsg struct {
	m      *msg.Message // shared between sessions, read-only
	qos    byte         // granted: min(publish QoS, subscription QoS)
	retain bool         // retain flag on delivery
	subIDs []uint32
	pid    uint16
	state  byte
	seq    uint64 // store key suffix; 0 = not stored
	// resend: in flight from an earlier connection, not yet re-sent on
	// this one (its Receive Maximum was full).
	resend bool
}

// session is the broker's state for one client id: it outlives the network
// connection when persistent (MQTT 3.1.1 clean session = false, MQTT 5
// session expiry > 0).
type session struct {
	b   *Broker
	id  string
	uid uint64 // orders sessions when merging overlapping matches

	// deliverMu serialises calls of an in-process Deliver (one at a time,
	// in order) and lets cancel/Close wait for a running one. It is taken
	// with no other lock held, before mu.
	deliverMu sync.Mutex

	// mu guards everything below (lock order: storeMu, then mu, then the
	// connection's locks; see LOCKS.md).
	mu         sync.Mutex
	username   string
	subs       subSet            // by filter as subscribed, $share prefix included
	persistent bool              // state is kept after the connection ends
	expiry     time.Duration     // session expiry interval
	conn       *conn             // nil while offline
	deliver    func(msg.Message) // in-process session online
	owner      *inprocSession    // handle of the in-process client online
	inproc     bool              // session opened through Sessions / Subscribe
	pending    []*outMsg         // in-process deliveries waiting for flushDeliver
	gone       bool              // destroyed; enqueue is a no-op
	offSince   time.Time         // when the last connection ended
	window     int               // max unacked QoS 1/2 deliveries while online
	inflight   []*outMsg         // sent, unacked, in send order [MQTT-4.6.0-1]
	queue      []*outMsg         // waiting for window space or the client
	nextPID    uint16
	seq        uint64
	inQoS2     map[uint16]struct{} // inbound QoS 2 ids between PUBREC and PUBREL
	will       *msg.Message
	willDelay  time.Duration
	willDue    time.Time // delayed will pending when non-zero
	storedInfo bool      // the session record is in the store
	// writes: the session may write to the store (persistent with a
	// store, or loaded from it). Set, never cleared, under storeMu and mu
	// before the session can have subscriptions or a connection: a
	// session reachable by route or acks never turns persistent (a new
	// connection asking for that gets a new session; v5 DISCONNECT may
	// not raise a zero expiry [MQTT-3.14.2-2]). So a false read without
	// storeMu stays false, and state changes of such a session skip
	// storeMu (LOCKS.md).
	writes atomic.Bool
	// qDropped: messages dropped from the offline queue (max_queued) and
	// not logged yet; qDropLog: when that was last logged (sweep).
	qDropped int
	qDropLog time.Time
}

func (b *Broker) newSession(id string) *session {
	// subs and inQoS2 are made on first use: a client that only publishes
	// QoS 0/1 never needs them (issue 9: memory per connection).
	return &session{b: b, id: id, uid: b.newUID()}
}

// subSet is a session's subscriptions, sorted by filter. Most sessions
// hold one or a few: a slice costs 32 bytes an entry where a map with
// one entry costs about 300 (issue 9: memory per connection). Lookups
// are binary searches; a new filter costs a copy of the entries after
// it, about 6 µs in a session that already holds 10,000 (a bridge-like
// client), nothing that a sensor with a few filters would notice.
type subSet struct{ list []subEntry }

type subEntry struct {
	filter string
	opts   subOpts
}

func (ss *subSet) find(filter string) (int, bool) {
	return slices.BinarySearchFunc(ss.list, filter, func(e subEntry, f string) int { return strings.Compare(e.filter, f) })
}

// set adds filter or replaces its options.
func (ss *subSet) set(filter string, o subOpts) {
	i, ok := ss.find(filter)
	if ok {
		ss.list[i].opts = o
		return
	}
	ss.list = slices.Insert(ss.list, i, subEntry{filter, o})
}

// del removes filter if present.
func (ss *subSet) del(filter string) {
	if i, ok := ss.find(filter); ok {
		ss.list = slices.Delete(ss.list, i, i+1)
		if len(ss.list) == 0 {
			ss.list = nil
		}
	}
}

func (ss *subSet) len() int { return len(ss.list) }

// all yields every filter and its options in filter order.
func (ss *subSet) all() iter.Seq2[string, subOpts] {
	return func(yield func(string, subOpts) bool) {
		for _, e := range ss.list {
			if !yield(e.filter, e.opts) {
				return
			}
		}
	}
}

// setSub records subscription filter; s.mu held.
func (s *session) setSub(filter string, o subOpts) { s.subs.set(filter, o) }

// addQoS2 records an inbound QoS 2 packet id between PUBREC and PUBREL; s.mu held.
func (s *session) addQoS2(pid uint16) {
	if s.inQoS2 == nil {
		s.inQoS2 = make(map[uint16]struct{})
	}
	s.inQoS2[pid] = struct{}{}
}

// online reports whether the session has a connection; s.mu held.
func (s *session) online() bool { return s.conn != nil || s.deliver != nil }

// enqueueLocked takes one message for the session, with s.mu held; ops
// collects the store writes (caller commits them under storeMu). held is
// the session's connection when its flow gate is closed: the publisher
// is to be held (flow.go). An online session never drops a message; an
// offline persistent one keeps max_queued, dropping the oldest.
func (s *session) enqueueLocked(om *outMsg, ops []msg.Op) (_ []msg.Op, held *conn) {
	b := s.b
	if s.gone {
		return ops, nil
	}
	if s.deliver != nil {
		// In-process: handed to Deliver by flushDeliver once the caller
		// has released its locks, so Deliver may call back into the broker.
		s.pending = append(s.pending, om)
		return ops, nil
	}
	if om.qos == 0 {
		if s.conn != nil && s.conn.sendPublish(s.publishPacket(om, false), true) {
			held = s.conn
		}
		// QoS 0 messages are not queued for offline sessions (as Mosquitto's
		// default queue_qos0_messages false).
		return ops, held
	}
	if s.conn != nil && len(s.inflight) < s.window && len(s.queue) == 0 {
		om.pid = s.allocPID()
		om.state = stSent
		s.inflight = append(s.inflight, om)
		if s.persistent && b.store != nil {
			s.seq++
			om.seq = s.seq
			ops = append(ops, msg.Op{Key: msgKey(s.id, om.seq), Value: encodeOutMsg(om)})
		}
		s.conn.sendPublish(s.publishPacket(om, false), false)
		return ops, nil
	}
	if s.conn == nil && !s.persistent {
		return ops, nil
	}
	if s.conn == nil {
		ops = s.trimLocked(b.cfg.MaxQueued-1, ops)
	}
	s.queue = append(s.queue, om)
	b.stats.Queued.Add(1)
	if s.persistent && b.store != nil {
		s.seq++
		om.seq = s.seq
		ops = append(ops, msg.Op{Key: msgKey(s.id, om.seq), Value: encodeOutMsg(om)})
	}
	if s.conn != nil && s.conn.flow.setQueued(len(s.queue)) {
		held = s.conn
	}
	return ops, held
}

// trimLocked drops the oldest queued messages of an offline session until
// at most max are left, counting them (logged by the sweeper); s.mu held.
func (s *session) trimLocked(max int, ops []msg.Op) []msg.Op {
	b := s.b
	n := len(s.queue) - max
	if n <= 0 {
		return ops
	}
	for _, om := range s.queue[:n] {
		if om.seq != 0 {
			ops = append(ops, msg.Op{Key: msgKey(s.id, om.seq), Delete: true})
		}
	}
	clear(s.queue[:n])
	s.queue = s.queue[n:]
	b.stats.Queued.Add(-int64(n))
	b.stats.Dropped.QueueFull.Add(int64(n))
	s.qDropped += n
	return ops
}

// lockStore takes storeMu if the session may write to the store and
// reports whether it did. A session that does not (see writes) produces
// no store writes, so its state changes need no place in the commit order.
func (s *session) lockStore() bool {
	if s.writes.Load() {
		s.b.storeMu.Lock()
		return true
	}
	return false
}

// pumpLocked moves queued messages into the window while there is room and
// the session is online; s.mu held. Expired messages are dropped
// (MQTT 5.0 section 3.3.2.3.3).
func (s *session) pumpLocked(ops []msg.Op) []msg.Op {
	b := s.b
	now := b.now()
	s.resendLocked()
	for s.conn != nil && len(s.queue) > 0 && len(s.inflight) < s.window {
		om := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		b.stats.Queued.Add(-1)
		if om.m.Expired(now) {
			b.stats.Dropped.Expired.Add(1)
			if om.seq != 0 {
				ops = append(ops, msg.Op{Key: msgKey(s.id, om.seq), Delete: true})
			}
			continue
		}
		om.pid = s.allocPID()
		om.state = stSent
		s.inflight = append(s.inflight, om)
		if om.seq != 0 {
			ops = append(ops, msg.Op{Key: msgKey(s.id, om.seq), Value: encodeOutMsg(om)})
		}
		s.conn.sendPublish(s.publishPacket(om, false), false)
	}
	if len(s.queue) == 0 {
		s.queue = nil
	}
	if s.conn != nil {
		s.conn.flow.setQueued(len(s.queue))
	}
	return ops
}

// allocPID returns a packet identifier not in use by an in-flight message.
func (s *session) allocPID() uint16 {
	for {
		s.nextPID++
		if s.nextPID == 0 {
			s.nextPID = 1
		}
		used := false
		for _, om := range s.inflight {
			if om.pid == s.nextPID {
				used = true
				break
			}
		}
		if !used {
			return s.nextPID
		}
	}
}

// Type makes a first send of om (no DUP) a packet the writer encodes
// straight from the message, without building a packet.Publish (MQTT 3.1
// and 3.1.1 connections, see publishPacket).
func (*outMsg) Type() packet.Type { return packet.PUBLISH }

// publishPacket returns the PUBLISH for om; s.mu held. For MQTT 3.1 and
// 3.1.1 a first send is om itself (writer.go appendPublishV3); otherwise a
// packet.Publish. The message expiry interval sent is what remains of it
// [MQTT-3.3.2-6].
func (s *session) publishPacket(om *outMsg, dup bool) packet.Packet {
	if !dup && s.conn != nil && s.conn.version != packet.V5 {
		return om
	}
	m := om.m
	p := &packet.Publish{
		Dup:      dup,
		QoS:      om.qos,
		Retain:   om.retain,
		Topic:    m.Topic,
		PacketID: om.pid,
		Payload:  m.Payload,
	}
	if s.conn != nil && s.conn.version == packet.V5 {
		setMessageProps(&p.Props, m, s.b.now())
		p.Props.SubscriptionIDs = om.subIDs
	}
	return p
}

func setMessageProps(pr *packet.Properties, m *msg.Message, now time.Time) {
	if m.PayloadFormat != 0 {
		f := m.PayloadFormat
		pr.PayloadFormat = &f
	}
	if m.MessageExpiry > 0 {
		left := m.MessageExpiry
		if !m.Received.IsZero() {
			left -= now.Sub(m.Received)
		}
		secs := uint32((left + time.Second - 1) / time.Second)
		if secs == 0 {
			secs = 1
		}
		pr.MessageExpiry = &secs
	}
	pr.ContentType = m.ContentType
	pr.ResponseTopic = m.ResponseTopic
	pr.CorrelationData = m.CorrelationData
	if len(m.UserProperties) > 0 {
		pr.User = make([]packet.UserProperty, len(m.UserProperties))
		for i, u := range m.UserProperties {
			pr.User[i] = packet.UserProperty{Key: u.Key, Value: u.Value}
		}
	}
}

// deliveredMessage is the message as an in-process subscriber sees it.
func deliveredMessage(om *outMsg) msg.Message {
	m := *om.m
	m.QoS = om.qos
	m.Retain = om.retain
	return m
}

// ackOut handles PUBACK, PUBREC or PUBCOMP from the client for pid.
// It returns false if no in-flight message has that id in the right state.
func (s *session) ackOut(t packet.Type, pid uint16, reason byte) bool {
	b := s.b
	if s.lockStore() {
		defer b.storeMu.Unlock()
	}
	s.mu.Lock()
	var ops []msg.Op
	idx := -1
	for i, om := range s.inflight {
		if om.pid == pid {
			idx = i
			break
		}
	}
	if idx < 0 {
		s.mu.Unlock()
		return false
	}
	om := s.inflight[idx]
	done := false
	switch t {
	case packet.PUBACK:
		if om.qos != 1 || om.state != stSent {
			s.mu.Unlock()
			return false
		}
		done = true
	case packet.PUBREC:
		if om.qos != 2 || om.state != stSent {
			s.mu.Unlock()
			return false
		}
		if reason >= 0x80 {
			// v5: the receiver refused the message; the flow ends here
			// (MQTT 5.0 section 4.3.3).
			done = true
			break
		}
		om.state = stReleased
		if om.seq != 0 {
			ops = append(ops, msg.Op{Key: msgKey(s.id, om.seq), Value: encodeOutMsg(om)})
		}
		// [MQTT-4.6.0-4] PUBREL in the order the PUBRECs arrived.
		if s.conn != nil {
			s.conn.send(&packet.Ack{PacketType: packet.PUBREL, PacketID: pid})
		}
	case packet.PUBCOMP:
		if om.state != stReleased {
			s.mu.Unlock()
			return false
		}
		done = true
	}
	if done {
		s.inflight = append(s.inflight[:idx], s.inflight[idx+1:]...)
		if om.seq != 0 {
			ops = append(ops, msg.Op{Key: msgKey(s.id, om.seq), Delete: true})
		}
		ops = s.pumpLocked(ops)
	}
	s.mu.Unlock()
	b.commitLocked(ops, nil)
	return true
}

// dropOversize completes the delivery of pid without sending it: the
// client's Maximum Packet Size is smaller than the packet
// [MQTT-3.1.2-25] ("discard ... and behave as if it had completed sending").
func (s *session) dropOversize(c *conn, pid uint16) {
	b := s.b
	b.stats.Dropped.TooLarge.Add(1)
	if pid == 0 {
		return
	}
	if s.lockStore() {
		defer b.storeMu.Unlock()
	}
	s.mu.Lock()
	var ops []msg.Op
	for i, om := range s.inflight {
		if om.pid == pid && s.conn == c {
			s.inflight = append(s.inflight[:i], s.inflight[i+1:]...)
			if om.seq != 0 {
				ops = append(ops, msg.Op{Key: msgKey(s.id, om.seq), Delete: true})
			}
			ops = s.pumpLocked(ops)
			break
		}
	}
	s.mu.Unlock()
	b.commitLocked(ops, nil)
}

// resumeLocked re-sends, on a new connection, every unacknowledged PUBLISH
// (with DUP) and PUBREL in their original order [MQTT-4.6.0-1], then fills
// the window from the queue. s.mu held, storeMu held.
func (s *session) resumeLocked(ops []msg.Op) []msg.Op {
	for _, om := range s.inflight {
		om.resend = true
	}
	// pumpLocked re-sends within this connection's window (its Receive
	// Maximum may be smaller than the last one's), then takes new ones.
	return s.pumpLocked(ops)
}

// resendLocked re-sends, in order, the in-flight messages of an earlier
// connection while this connection's window has room; s.mu held.
func (s *session) resendLocked() {
	if s.conn == nil {
		return
	}
	onWire := 0
	for _, om := range s.inflight {
		if !om.resend {
			onWire++
		}
	}
	for _, om := range s.inflight {
		if onWire >= s.window {
			return
		}
		if !om.resend {
			continue
		}
		om.resend = false
		onWire++
		switch om.state {
		case stSent:
			s.conn.sendPublish(s.publishPacket(om, true), false)
		case stReleased:
			s.conn.send(&packet.Ack{PacketType: packet.PUBREL, PacketID: om.pid})
		}
	}
}

// subscribe adds or replaces one subscription and reports whether it is
// new. retained is the snapshot of the retained messages the subscription
// asks for (Retain Handling, 3.8.3.1; none for a shared subscription),
// taken under the same lock as the insert: route sets a retained message
// and matches it under that lock too, so a message published meanwhile
// arrives exactly once, live or retained.
func (s *session) subscribe(filter string, o subOpts) (isNew bool, retained []*msg.Message) {
	b := s.b
	_, _, shared, _ := topic.ParseShared(filter)
	b.subMu.Lock()
	isNew = b.subs.Add(filter, s, subRef{s: s, opts: o})
	if !shared && (o.RetainHandling == 0 || (o.RetainHandling == 1 && isNew)) {
		retained = b.retained.match(filter)
	}
	b.subMu.Unlock()
	s.mu.Lock()
	s.setSub(filter, o)
	s.mu.Unlock()
	return isNew, retained
}

func (s *session) unsubscribe(filter string) bool {
	b := s.b
	b.subMu.Lock()
	ok := b.subs.Remove(filter, s)
	b.subMu.Unlock()
	s.mu.Lock()
	s.subs.del(filter)
	s.mu.Unlock()
	return ok
}

// destroy ends the session: its subscriptions leave the trie, queued
// messages are dropped and its store keys deleted. Caller holds storeMu.
func (s *session) destroyLocked() []msg.Op {
	b := s.b
	s.mu.Lock()
	if s.gone {
		s.mu.Unlock()
		return nil
	}
	s.gone = true
	filters := make([]string, 0, s.subs.len())
	for f := range s.subs.all() {
		filters = append(filters, f)
	}
	var ops []msg.Op
	for _, om := range s.inflight {
		if om.seq != 0 {
			ops = append(ops, msg.Op{Key: msgKey(s.id, om.seq), Delete: true})
		}
	}
	for _, om := range s.queue {
		if om.seq != 0 {
			ops = append(ops, msg.Op{Key: msgKey(s.id, om.seq), Delete: true})
		}
	}
	b.stats.Queued.Add(-int64(len(s.queue)))
	if s.storedInfo {
		ops = append(ops, msg.Op{Key: infoKey(s.id), Delete: true})
		for pid := range s.inQoS2 {
			ops = append(ops, msg.Op{Key: qos2Key(s.id, pid), Delete: true})
		}
	}
	s.inflight, s.queue = nil, nil
	s.mu.Unlock()
	b.subMu.Lock()
	for _, f := range filters {
		b.subs.Remove(f, s)
	}
	b.subMu.Unlock()
	return ops
}

// removeSession drops s from the broker if it is still the session of its id.
func (b *Broker) removeSession(s *session) {
	locked := s.lockStore()
	ops := s.destroyLocked()
	b.commitLocked(ops, nil)
	if locked {
		b.storeMu.Unlock()
	}
	b.mu.Lock()
	if b.sessions[s.id] == s {
		delete(b.sessions, s.id)
	}
	b.mu.Unlock()
}

// validSubscription checks one SUBSCRIBE filter.
func validSubscription(filter string) (shared bool, err error) {
	_, _, shared, err = topic.ParseShared(filter)
	if err != nil || shared {
		return shared, err
	}
	return false, topic.ValidFilter(filter)
}

// flushDeliver hands an in-process session its pending messages, in
// order, one call at a time, with no broker lock held.
func (s *session) flushDeliver() {
	s.deliverMu.Lock()
	defer s.deliverMu.Unlock()
	for {
		s.mu.Lock()
		batch := s.pending
		s.pending = nil
		fn := s.deliver
		s.mu.Unlock()
		if len(batch) == 0 {
			return
		}
		for _, om := range batch {
			if fn == nil {
				break
			}
			s.b.stats.countSent(om)
			fn(deliveredMessage(om))
		}
	}
}
