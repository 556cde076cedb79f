package brokercore

import (
	"strings"
	"sync"

	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/brokercore/topic"
)

// retainedStore holds the last retained message of every topic
// (MQTT 5.0 section 3.3.1.3).
type retainedStore struct {
	mu sync.RWMutex
	m  map[string]*msg.Message
}

func (r *retainedStore) init() { r.m = make(map[string]*msg.Message) }

// set stores, replaces or (empty payload, [MQTT-3.3.1-6]) clears the
// retained message of m.Topic and appends the store write. Caller holds
// storeMu when the broker has a store.
func (r *retainedStore) set(b *Broker, m *msg.Message, ops []msg.Op) []msg.Op {
	r.mu.Lock()
	if len(m.Payload) == 0 {
		delete(r.m, m.Topic)
	} else {
		r.m[m.Topic] = m
	}
	n := len(r.m)
	r.mu.Unlock()
	b.stats.Retained.Store(int64(n))
	if b.store == nil || strings.HasPrefix(m.Topic, "$SYS/") {
		return ops // $SYS is rebuilt every sys_interval, not stored
	}
	if len(m.Payload) == 0 {
		return append(ops, msg.Op{Key: retainedKey(m.Topic), Delete: true})
	}
	return append(ops, msg.Op{Key: retainedKey(m.Topic), Value: encodeMessage(nil, m)})
}

// match returns the retained messages whose topic matches filter.
func (r *retainedStore) match(filter string) []*msg.Message {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []*msg.Message
	for t, m := range r.m {
		if topic.Match(filter, t) {
			out = append(out, m)
		}
	}
	return out
}

// sendRetained queues retained messages (from session.subscribe's
// snapshot) to s, with the retain flag set [MQTT-3.3.1-8], checking the
// ACL per message.
func (b *Broker) sendRetained(s *session, msgs []*msg.Message, o subOpts) {
	if len(msgs) == 0 {
		return
	}
	_, az := b.auth()
	now := b.now()
	locked := s.lockStore()
	var ops []msg.Op
	s.mu.Lock()
	for _, m := range msgs {
		if m.Expired(now) {
			continue
		}
		if az != nil && !s.inprocNoACL() && !az.Allow(s.id, s.username, m.Topic, AccessRead) {
			b.stats.Dropped.NotAuthorized.Add(1)
			continue
		}
		qos := m.QoS
		if o.QoS < qos {
			qos = o.QoS
		}
		om := &outMsg{m: m, qos: qos, retain: true}
		if o.SubID != 0 {
			om.subIDs = []uint32{o.SubID}
		}
		ops, _ = s.enqueueLocked(om, ops)
	}
	s.mu.Unlock()
	b.commitLocked(ops, nil)
	if locked {
		b.storeMu.Unlock()
	}
	s.flushDeliver()
}

// HasSubscribers reports whether any subscription matches topic name.
func (b *Broker) HasSubscribers(name string) bool {
	b.subMu.RLock()
	defer b.subMu.RUnlock()
	return b.subs.HasSubscribers(name)
}
