package brokercore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/outpost-iot/outpost/brokercore/msg"
)

// Store layout (DESIGN.md "One Badger database"). A client id holds no
// U+0000 [MQTT-1.5.4-2], so a NUL ends it inside a key:
//
//	s/<client id>\x00i              session record: expiry, username, subscriptions
//	s/<client id>\x00m<seq:8 BE>    one message queued or in flight to the session
//	s/<client id>\x00q<pid:2 BE>    inbound QoS 2 packet id between PUBREC and PUBREL
//	r/<topic>                       retained message
//
// Values start with a format version byte.
const formatVersion = 1

func infoKey(id string) []byte {
	return append(append([]byte("s/"), id...), 0, 'i')
}

func msgKey(id string, seq uint64) []byte {
	k := append(append([]byte("s/"), id...), 0, 'm')
	return binary.BigEndian.AppendUint64(k, seq)
}

func qos2Key(id string, pid uint16) []byte {
	k := append(append([]byte("s/"), id...), 0, 'q')
	return binary.BigEndian.AppendUint16(k, pid)
}

func retainedKey(topic string) []byte { return append([]byte("r/"), topic...) }

// enc is a small append-only encoder.
type enc struct{ b []byte }

func (e *enc) u(v uint64)     { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) i(v int64)      { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) bytes(v []byte) { e.u(uint64(len(v))); e.b = append(e.b, v...) }
func (e *enc) str(v string)   { e.u(uint64(len(v))); e.b = append(e.b, v...) }
func (e *enc) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

type dec struct {
	b   []byte
	err error
}

var errCorrupt = errors.New("corrupt record")

func (d *dec) u() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) i() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) bytes() []byte {
	n := d.u()
	if d.err != nil {
		return nil
	}
	if uint64(len(d.b)) < n {
		d.err = errCorrupt
		return nil
	}
	v := bytes.Clone(d.b[:n])
	d.b = d.b[n:]
	return v
}

func (d *dec) str() string { return string(d.bytes()) }
func (d *dec) bool() bool  { return d.u() != 0 }
func (d *dec) byte1() byte { return byte(d.u()) }

func encodeMessage(dst []byte, m *msg.Message) []byte {
	e := enc{b: dst}
	e.b = append(e.b, formatVersion)
	e.str(m.Topic)
	e.bytes(m.Payload)
	e.u(uint64(m.QoS))
	e.bool(m.Retain)
	e.u(uint64(m.PayloadFormat))
	e.i(int64(m.MessageExpiry))
	e.str(m.ContentType)
	e.str(m.ResponseTopic)
	e.bytes(m.CorrelationData)
	e.u(uint64(len(m.UserProperties)))
	for _, p := range m.UserProperties {
		e.str(p.Key)
		e.str(p.Value)
	}
	e.str(m.ClientID)
	if m.Received.IsZero() {
		e.i(0)
	} else {
		e.i(m.Received.UnixNano())
	}
	return e.b
}

func decodeMessage(d *dec) *msg.Message {
	if d.err == nil && (len(d.b) == 0 || d.b[0] != formatVersion) {
		d.err = fmt.Errorf("record format version: %w", errCorrupt)
		return nil
	}
	d.b = d.b[1:]
	m := &msg.Message{}
	m.Topic = d.str()
	m.Payload = d.bytes()
	m.QoS = d.byte1()
	m.Retain = d.bool()
	m.PayloadFormat = d.byte1()
	m.MessageExpiry = time.Duration(d.i())
	m.ContentType = d.str()
	m.ResponseTopic = d.str()
	m.CorrelationData = d.bytes()
	if len(m.CorrelationData) == 0 {
		m.CorrelationData = nil
	}
	n := d.u()
	if n > 65535 {
		d.err = errCorrupt
		return nil
	}
	for j := uint64(0); j < n && d.err == nil; j++ {
		m.UserProperties = append(m.UserProperties, msg.UserProperty{Key: d.str(), Value: d.str()})
	}
	m.ClientID = d.str()
	if ns := d.i(); ns != 0 {
		m.Received = time.Unix(0, ns)
	}
	return m
}

// encodeOutMsg encodes a message with its delivery state to one session.
func encodeOutMsg(om *outMsg) []byte {
	e := enc{b: encodeMessage(make([]byte, 0, 64+len(om.m.Topic)+len(om.m.Payload)), om.m)}
	e.u(uint64(om.qos))
	e.bool(om.retain)
	e.u(uint64(om.pid))
	e.u(uint64(om.state))
	e.u(uint64(len(om.subIDs)))
	for _, id := range om.subIDs {
		e.u(uint64(id))
	}
	return e.b
}

func decodeOutMsg(b []byte) (*outMsg, error) {
	d := &dec{b: b}
	m := decodeMessage(d)
	om := &outMsg{m: m}
	om.qos = d.byte1()
	om.retain = d.bool()
	om.pid = uint16(d.u())
	om.state = d.byte1()
	n := d.u()
	if n > 1024 {
		return nil, errCorrupt
	}
	for j := uint64(0); j < n && d.err == nil; j++ {
		om.subIDs = append(om.subIDs, uint32(d.u()))
	}
	return om, d.err
}

// encodeInfo encodes the session record: expiry, username,
// subscriptions, disconnect time; s.mu held.
func encodeInfo(s *session) []byte {
	e := enc{}
	e.b = append(e.b, formatVersion)
	e.i(int64(s.expiry))
	e.str(s.username)
	e.u(uint64(s.subs.len()))
	for f, o := range s.subs.all() {
		e.str(f)
		e.u(uint64(o.QoS))
		e.bool(o.NoLocal)
		e.bool(o.RetainAsPublished)
		e.u(uint64(o.RetainHandling))
		e.u(uint64(o.SubID))
	}
	// Appended field (older records end before it): when the session
	// went offline, so its expiry counts from then across a restart;
	// 0 while online.
	if s.online() || s.offSince.IsZero() {
		e.i(0)
	} else {
		e.i(s.offSince.UnixNano())
	}
	return e.b
}

func decodeInfo(s *session, b []byte) error {
	if len(b) == 0 || b[0] != formatVersion {
		return fmt.Errorf("session record format version: %w", errCorrupt)
	}
	d := &dec{b: b[1:]}
	s.expiry = time.Duration(d.i())
	s.username = d.str()
	n := d.u()
	for j := uint64(0); j < n && d.err == nil; j++ {
		f := d.str()
		o := subOpts{QoS: d.byte1(), NoLocal: d.bool(), RetainAsPublished: d.bool(), RetainHandling: d.byte1(), SubID: uint32(d.u())}
		s.setSub(f, o)
	}
	if d.err == nil && len(d.b) > 0 {
		// A session online at a crash has 0: its expiry counts from the load.
		if ns := d.i(); ns != 0 {
			s.offSince = time.Unix(0, ns)
		}
	}
	return d.err
}

// load reads retained messages and persistent sessions back from the
// store (at Start). Unreadable records are logged and skipped, naming the key.
func (b *Broker) load() error {
	if b.store == nil {
		return nil
	}
	now := b.now()
	err := b.store.Scan([]byte("r/"), func(k, v []byte) error {
		d := &dec{b: v}
		m := decodeMessage(d)
		if d.err != nil {
			b.log.Error("skipping unreadable retained message", "key", string(k), "err", d.err)
			return nil
		}
		b.retained.put(m.Topic, m)
		return nil
	})
	if err != nil {
		return fmt.Errorf("load retained messages: %w", err)
	}
	b.stats.Retained.Store(int64(len(b.retained.m)))
	type pending struct {
		msgs []*outMsg
		q2   []uint16
	}
	loaded := map[string]*pending{}
	err = b.store.Scan([]byte("s/"), func(k, v []byte) error {
		rest := k[2:]
		i := bytes.IndexByte(rest, 0)
		if i < 0 || i+1 >= len(rest) {
			b.log.Error("skipping unreadable session key", "key", string(k))
			return nil
		}
		id, kind, suffix := string(rest[:i]), rest[i+1], rest[i+2:]
		s := b.sessions[id]
		if s == nil {
			s = b.newSession(id)
			s.persistent = true
			s.writes.Store(true)
			s.offSince = now
			b.sessions[id] = s
			loaded[id] = &pending{}
		}
		p := loaded[id]
		switch kind {
		case 'i':
			if err := decodeInfo(s, v); err != nil {
				b.log.Error("skipping unreadable session record", "client", id, "err", err)
				return nil
			}
			s.storedInfo = true
		case 'm':
			if len(suffix) != 8 {
				return nil
			}
			om, err := decodeOutMsg(v)
			if err != nil {
				b.log.Error("skipping unreadable queued message", "client", id, "key", string(k), "err", err)
				return nil
			}
			om.seq = binary.BigEndian.Uint64(suffix)
			p.msgs = append(p.msgs, om)
		case 'q':
			if len(suffix) == 2 {
				p.q2 = append(p.q2, binary.BigEndian.Uint16(suffix))
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load sessions: %w", err)
	}
	var orphans []msg.Op
	for id, p := range loaded {
		s := b.sessions[id]
		if !s.storedInfo {
			// Messages without a session record: the session ended while
			// they were being written. Delete them.
			for _, om := range p.msgs {
				orphans = append(orphans, msg.Op{Key: msgKey(id, om.seq), Delete: true})
			}
			for _, pid := range p.q2 {
				orphans = append(orphans, msg.Op{Key: qos2Key(id, pid), Delete: true})
			}
			delete(b.sessions, id)
			continue
		}
		s.persistent = s.expiry > 0
		for _, om := range p.msgs { // key order = seq order = original order
			if om.seq > s.seq {
				s.seq = om.seq
			}
			if om.state == stQueued {
				s.queue = append(s.queue, om)
				b.stats.Queued.Add(1)
			} else {
				s.inflight = append(s.inflight, om)
				if om.pid > s.nextPID {
					s.nextPID = om.pid
				}
			}
		}
		for _, pid := range p.q2 {
			s.addQoS2(pid)
		}
		for f, o := range s.subs.all() {
			b.subs.Add(f, s, subRef{s: s, opts: o})
		}
	}
	b.stats.Subscriptions.Store(int64(b.subs.Len()))
	if len(orphans) > 0 {
		if err := msg.CommitSync(b.store, orphans); err != nil {
			return fmt.Errorf("load sessions: delete orphan records: %w", err)
		}
	}
	if n := len(b.sessions); n > 0 || len(b.retained.m) > 0 {
		b.log.Info("restored from store", "sessions", n, "retained", len(b.retained.m))
	}
	return nil
}
