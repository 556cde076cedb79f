package storeforward

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/outpost-iot/outpost/brokercore/client"
	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/brokercore/packet"
)

// Keys of the uplink's state in the shared database (DESIGN.md "One Badger
// database"):
//
//	u/o/<packet id: 2 bytes>   outgoing QoS 2 PUBLISH or PUBREL awaiting its ack
//	u/i/<packet id: 2 bytes>   incoming (downlink) QoS 2 id awaiting PUBREL
//	u/id                       random id of this database, first part of outpost-id
//
// An entry's value is the queue lane of its record (1 byte length, name)
// followed by client.MarshalEntry.
const (
	keyOut      = "u/o/"
	keyIn       = "u/i/"
	keyIdentity = "u/id"
)

// sessionStore is the uplink's client.Store: the cloud session's packet ids
// kept in the hub's database so QoS 2 stays exactly-once across restarts
// (DESIGN.md data flow 4).
//
// What is made durable, and why only that:
//   - an outgoing QoS 2 PUBLISH, before its first send, and its PUBREL state
//     when PUBREC arrives: the cloud keeps the packet id of a QoS 2 message
//     until PUBREL, so after a restart we must send PUBREL for it (or the
//     PUBLISH again with the same id and DUP) and never a new id;
//   - an incoming QoS 2 id (downlink), before PUBREC.
//
// Outgoing QoS 1 entries live only in memory: the queue record is their
// durable copy, and after a restart they are sent again from the queue
// (the cloud keeps no state for a QoS 1 id once it has sent PUBACK). That
// keeps the QoS 1 drain free of fsyncs.
//
// Delete of an outgoing entry (the cloud's PUBACK/PUBCOMP) acknowledges its
// queue record: the record's ack and the removal of its u/o key go into one
// queue.DB.AckWith, one transaction, so a crash can never leave a completed
// QoS 2 message both out of the session and still in the queue (which would
// send it again under a new id). Deletes are batched and written by flush
// without waiting; every write is submitted under mu, so the database
// applies them in the order they happened (a later Put of a reused packet id
// lands after the delete of its previous use).
type sessionStore struct {
	db  queueDB
	log *slog.Logger

	mu      sync.Mutex
	entries map[uint32]storedEntry // by dir<<16 | packet id
	tags    map[uint64]int         // outgoing entries by tag
	lanes   []string               // tag lane index - 1 -> name
	laneIdx map[string]uint64
	pending map[string]*pendingAck // lane ("" = no record) -> writes to flush
	npend   int
	retry   []uint64 // records the cloud refused for now (quota): not acknowledged
	errMu   sync.Mutex
	err     error // first failed background write, reported once by takeErr
	kick    chan struct{}
}

type storedEntry struct {
	e       client.Entry
	durable bool
}

type pendingAck struct {
	seqs []uint64
	ops  []msg.Op
}

// queueDB is what the uplink needs of *queue.DB.
type queueDB interface {
	msg.Store
	AckWith(lane string, seqs []uint64, through uint64, ops []msg.Op, done func(error))
}

var _ client.EndStore = (*sessionStore)(nil)

// tagSeqBits: a Tag is (lane index + 1) << tagSeqBits | queue seq; 0 is a
// message with no queue record (the birth message).
const tagSeqBits = 48

// openSessionStore loads the uplink's session state from db.
func openSessionStore(db queueDB, log *slog.Logger) (*sessionStore, error) {
	s := &sessionStore{
		db: db, log: log,
		entries: make(map[uint32]storedEntry),
		tags:    make(map[uint64]int),
		laneIdx: make(map[string]uint64),
		pending: make(map[string]*pendingAck),
		kick:    make(chan struct{}, 1),
	}
	for _, prefix := range []string{keyOut, keyIn} {
		err := db.Scan([]byte(prefix), func(key, value []byte) error {
			lane, e, err := decodeStored(value)
			if err != nil {
				return fmt.Errorf("key %q: %w", key, err)
			}
			if e.Tag != 0 {
				// Tags hold this process's lane index: rewrite.
				e.Tag = s.tagLocked(lane, e.Tag&(1<<tagSeqBits-1))
				s.tags[e.Tag]++
			}
			s.entries[entryKey(e.Dir, e.ID())] = storedEntry{e: e, durable: true}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("load uplink session state %s: %w", prefix, err)
		}
	}
	return s, nil
}

func entryKey(dir client.Direction, id uint16) uint32 { return uint32(dir)<<16 | uint32(id) }

func dbKey(dir client.Direction, id uint16) []byte {
	p := keyOut
	if dir == client.Incoming {
		p = keyIn
	}
	return binary.BigEndian.AppendUint16([]byte(p), id)
}

func encodeStored(lane string, e client.Entry) ([]byte, error) {
	if len(lane) > 255 {
		return nil, fmt.Errorf("lane name %q too long", lane)
	}
	b, err := client.MarshalEntry(e)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 1+len(lane)+len(b))
	out = append(out, byte(len(lane)))
	out = append(out, lane...)
	return append(out, b...), nil
}

func decodeStored(v []byte) (string, client.Entry, error) {
	if len(v) < 1 || len(v) < 1+int(v[0]) {
		return "", client.Entry{}, errors.New("uplink session entry: too short")
	}
	n := int(v[0])
	lane := string(v[1 : 1+n])
	// UnmarshalEntry aliases its input; the Scan buffer is reused.
	e, err := client.UnmarshalEntry(append([]byte(nil), v[1+n:]...))
	return lane, e, err
}

// tag is the client.Message Tag of record seq of lane.
func (s *sessionStore) tag(lane string, seq uint64) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tagLocked(lane, seq)
}

func (s *sessionStore) tagLocked(lane string, seq uint64) uint64 {
	i, ok := s.laneIdx[lane]
	if !ok {
		s.lanes = append(s.lanes, lane)
		i = uint64(len(s.lanes))
		s.laneIdx[lane] = i
	}
	return i<<tagSeqBits | seq
}

// untag splits a tag into lane and seq; ok is false for tag 0.
func (s *sessionStore) untagLocked(tag uint64) (lane string, seq uint64, ok bool) {
	i := tag >> tagSeqBits
	if i == 0 || int(i) > len(s.lanes) {
		return "", 0, false
	}
	return s.lanes[i-1], tag & (1<<tagSeqBits - 1), true
}

// holds reports whether the session holds record tag (it is in flight: the
// client resends it, the drain must not send it again).
func (s *sessionStore) holds(tag uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tags[tag] > 0
}

// outgoing is the number of queue records in flight (the birth message,
// tag 0, is not one).
func (s *sessionStore) outgoing() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for t, c := range s.tags {
		if t != 0 {
			n += c
		}
	}
	return n
}

// Load implements client.Store.
func (s *sessionStore) Load() ([]client.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]client.Entry, 0, len(s.entries))
	for _, se := range s.entries {
		out = append(out, se.e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

// durable reports whether e must be on disk before its packet is sent.
func durable(e client.Entry) bool {
	if e.Dir == client.Incoming {
		return true
	}
	p, ok := e.Packet.(*packet.Publish)
	return !ok || p.QoS == 2 // a PUBREL, or a QoS 2 PUBLISH
}

// Put implements client.Store; see the type's doc for what waits for the disk.
func (s *sessionStore) Put(e client.Entry) error {
	k := entryKey(e.Dir, e.ID())
	s.mu.Lock()
	old, had := s.entries[k]
	if had && old.e.Dir == client.Outgoing {
		s.untrackLocked(old.e.Tag)
	}
	s.entries[k] = storedEntry{e: e, durable: durable(e)}
	if e.Dir == client.Outgoing {
		s.tags[e.Tag]++
	}
	if !durable(e) {
		if had && old.durable {
			// A durable entry replaced by a memory-only one: remove it.
			s.addLocked("", nil, msg.Op{Key: dbKey(e.Dir, e.ID()), Delete: true})
		}
		s.mu.Unlock()
		return nil
	}
	lane := ""
	if l, _, ok := s.untagLocked(e.Tag); ok {
		lane = l
	}
	v, err := encodeStored(lane, e)
	if err != nil {
		delete(s.entries, k)
		s.untrackLocked(e.Tag)
		s.mu.Unlock()
		return err
	}
	s.submitLocked()
	ch := make(chan error, 1)
	s.db.Commit([]msg.Op{{Key: dbKey(e.Dir, e.ID()), Value: v}}, func(err error) { ch <- err })
	s.mu.Unlock()
	if err := <-ch; err != nil {
		// Not stored: the client does not send the packet. Forget it.
		s.mu.Lock()
		if cur, ok := s.entries[k]; ok && cur.e.Seq == e.Seq {
			delete(s.entries, k)
			if e.Dir == client.Outgoing {
				s.untrackLocked(e.Tag)
			}
		}
		s.mu.Unlock()
		return fmt.Errorf("store uplink session entry %d: %w", e.ID(), err)
	}
	return nil
}

func (s *sessionStore) untrackLocked(tag uint64) {
	if s.tags[tag] <= 1 {
		delete(s.tags, tag)
	} else {
		s.tags[tag]--
	}
}

// Delete implements client.Store. For an outgoing entry the exchange is
// complete: its queue record is acknowledged in the same transaction as the
// removal of its durable state.
func (s *sessionStore) Delete(dir client.Direction, id uint16) error {
	return s.end(dir, id, false)
}

// End implements client.EndStore: the exchange of outgoing entry id ended
// with reason code code. A refusal for now (retryable: over a quota, busy)
// keeps the queue record and puts it on the list the drain sends again
// after a pause; any other code acknowledges the record as Delete does (a
// refusal for good is not worth sending again). Deciding here, when the
// client reads the answer, is what keeps a quick refusal from being taken
// for an ack: the drain may not have seen the message's token yet.
func (s *sessionStore) End(id uint16, code byte) error {
	return s.end(client.Outgoing, id, retryableCode(code))
}

func (s *sessionStore) end(dir client.Direction, id uint16, keep bool) error {
	k := entryKey(dir, id)
	s.mu.Lock()
	se, ok := s.entries[k]
	if !ok {
		s.mu.Unlock()
		return nil
	}
	delete(s.entries, k)
	var op []msg.Op
	if se.durable {
		op = append(op, msg.Op{Key: dbKey(dir, id), Delete: true})
	}
	if dir == client.Outgoing {
		s.untrackLocked(se.e.Tag)
		if lane, seq, ok := s.untagLocked(se.e.Tag); ok && keep {
			s.retry = append(s.retry, se.e.Tag)
		} else if ok {
			s.addLocked(lane, []uint64{seq}, op...)
			s.mu.Unlock()
			s.signal()
			return nil
		}
	}
	if len(op) > 0 {
		s.addLocked("", nil, op...)
	}
	s.mu.Unlock()
	s.signal()
	return nil
}

// Reset implements client.Store: the cloud has no session for us. The
// client publishes the PUBLISH entries again (with new ids, Put again);
// a PUBREL entry means the cloud already had the message, so its record is
// acknowledged.
func (s *sessionStore) Reset() error {
	s.mu.Lock()
	for k, se := range s.entries {
		var op []msg.Op
		if se.durable {
			op = append(op, msg.Op{Key: dbKey(se.e.Dir, se.e.ID()), Delete: true})
		}
		lane, seq, ok := s.untagLocked(se.e.Tag)
		if _, rel := se.e.Packet.(*packet.Ack); rel && se.e.Dir == client.Outgoing && ok {
			s.addLocked(lane, []uint64{seq}, op...)
		} else if len(op) > 0 {
			s.addLocked("", nil, op...)
		}
		delete(s.entries, k)
	}
	clear(s.tags)
	done := s.submitLocked()
	s.mu.Unlock()
	<-done
	if err := s.takeErr(); err != nil {
		return fmt.Errorf("reset uplink session: %w", err)
	}
	return nil
}

// ack queues the acknowledgement of a record that has no session entry (a
// QoS 0 message written to the cloud, an expired or refused record).
func (s *sessionStore) ack(lane string, seq uint64) {
	s.mu.Lock()
	s.addLocked(lane, []uint64{seq})
	s.mu.Unlock()
	s.signal()
}

func (s *sessionStore) addLocked(lane string, seqs []uint64, ops ...msg.Op) {
	p := s.pending[lane]
	if p == nil {
		p = new(pendingAck)
		s.pending[lane] = p
	}
	p.seqs = append(p.seqs, seqs...)
	p.ops = append(p.ops, ops...)
	s.npend += len(seqs) + len(ops)
}

func (s *sessionStore) signal() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// retryable reports whether err is a refusal by the cloud worth sending
// again later (see retryableCode).
func retryable(err error) bool {
	var se *client.ServerError
	return errors.As(err, &se) && retryableCode(se.Code)
}

// retryableCode reports whether a refusal by the cloud is worth sending
// again later: it is busy or over a quota (AWS IoT answers throttled
// publishes with 0x97), not refusing the message itself.
func retryableCode(code byte) bool {
	switch code {
	case packet.QuotaExceeded, packet.UnspecifiedError, packet.ImplementationSpecificError,
		packet.ServerBusy, packet.PacketIdentifierInUse:
		return true
	}
	return false
}

// takeRetry returns (and forgets) the records the cloud refused for now.
func (s *sessionStore) takeRetry() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.retry
	s.retry = nil
	return r
}

// closedChan is a done channel for nothing to wait for.
func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// submitLocked hands every pending write to the database, in order; the
// channel is closed once all of them are done (their errors go to setErr).
func (s *sessionStore) submitLocked() <-chan struct{} {
	if s.npend == 0 {
		return closedChan()
	}
	lanes := make([]string, 0, len(s.pending))
	for l := range s.pending {
		lanes = append(lanes, l)
	}
	sort.Strings(lanes)
	all := make(chan struct{})
	var left atomic.Int32
	left.Store(int32(len(lanes)))
	for _, l := range lanes {
		p := s.pending[l]
		done := func(err error) {
			if err != nil {
				s.setErr(err)
			}
			if left.Add(-1) == 0 {
				close(all)
			}
		}
		if l == "" {
			s.db.Commit(p.ops, done)
		} else {
			s.db.AckWith(l, p.seqs, 0, p.ops, done)
		}
	}
	clear(s.pending)
	s.npend = 0
	return all
}

func (s *sessionStore) setErr(err error) {
	s.errMu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.errMu.Unlock()
}

// takeErr returns and clears the first background write error.
func (s *sessionStore) takeErr() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	err := s.err
	s.err = nil
	return err
}

// flush writes what is pending and waits for it.
func (s *sessionStore) flush() error {
	s.mu.Lock()
	done := s.submitLocked()
	s.mu.Unlock()
	<-done
	return s.takeErr()
}

// run writes pending acknowledgements as they accumulate: one batch in
// flight at a time, so a burst of PUBACKs becomes a few transactions. It
// returns after a final flush once stop is closed.
func (s *sessionStore) run(stop <-chan struct{}) {
	for {
		select {
		case <-s.kick:
		case <-stop:
			if err := s.flush(); err != nil {
				s.log.Error("acknowledging sent records in the queue", "err", err)
			}
			return
		}
		if err := s.flush(); err != nil {
			// The records stay queued and are sent again after a restart
			// (a QoS 1 duplicate at most; QoS 2 state went with them).
			s.log.Error("acknowledging sent records in the queue", "err", err)
		}
	}
}

// ackTag acknowledges the record of tag (see ack).
func (s *sessionStore) ackTag(tag uint64) {
	s.mu.Lock()
	lane, seq, ok := s.untagLocked(tag)
	if ok {
		s.addLocked(lane, []uint64{seq})
	}
	s.mu.Unlock()
	s.signal()
}

// untag splits a tag into lane and seq.
func (s *sessionStore) untag(tag uint64) (string, uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.untagLocked(tag)
}

// heldTags is the set of records the session holds now.
func (s *sessionStore) heldTags() map[uint64]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[uint64]bool, len(s.tags))
	for t := range s.tags {
		if t != 0 {
			m[t] = true
		}
	}
	return m
}

// InFlight counts the outgoing QoS 2 messages whose exchange with the
// cloud is under way in the uplink state stored in db (for `outpost queue
// stat`; QoS 1 state is not stored).
func InFlight(db msg.Store) (int, error) {
	n := 0
	err := db.Scan([]byte(keyOut), func(_, _ []byte) error {
		n++
		return nil
	})
	return n, err
}

// requeue puts records back at the front of the refused-for-now list.
func (s *sessionStore) requeue(tags []uint64) {
	s.mu.Lock()
	s.retry = append(append([]uint64(nil), tags...), s.retry...)
	s.mu.Unlock()
}
