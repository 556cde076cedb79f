package brokercore

import (
	"strings"
	"sync"

	"github.com/outpost-iot/outpost/brokercore/msg"
)

// retainedStore holds the last retained message of every topic
// (MQTT 5.0 section 3.3.1.3), by topic and in a tree of topic levels, so
// a SUBSCRIBE walks only the branches its filter can match instead of
// testing every retained message.
type retainedStore struct {
	mu   sync.RWMutex
	m    map[string]*msg.Message
	root rnode
}

// rnode is one topic level of the retained tree.
type rnode struct {
	kids map[string]*rnode
	msg  *msg.Message // retained message of the topic ending here
}

func (r *retainedStore) init() { r.m = make(map[string]*msg.Message) }

// put stores or (nil m) removes the retained message of name; r.mu held.
func (r *retainedStore) put(name string, m *msg.Message) {
	if m != nil {
		r.m[name] = m
		n := &r.root
		for rest, more := name, true; more; {
			var level string
			level, rest, more = cutLevel(rest)
			k := n.kids[level]
			if k == nil {
				if n.kids == nil {
					n.kids = make(map[string]*rnode)
				}
				k = &rnode{}
				n.kids[level] = k
			}
			n = k
		}
		n.msg = m
		return
	}
	if _, ok := r.m[name]; !ok {
		return
	}
	delete(r.m, name)
	r.root.remove(name)
}

// remove clears name's message below n and prunes the empty nodes; it
// reports whether n itself is empty now.
func (n *rnode) remove(name string) bool {
	level, rest, more := cutLevel(name)
	k := n.kids[level]
	if k == nil {
		return false
	}
	if more {
		if k.remove(rest) {
			delete(n.kids, level)
		}
	} else {
		k.msg = nil
		if len(k.kids) == 0 {
			delete(n.kids, level)
		}
	}
	return n.msg == nil && len(n.kids) == 0
}

// cutLevel returns the first level of s, the rest after the '/', and
// whether there was a '/'.
func cutLevel(s string) (level, rest string, more bool) {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

// set stores, replaces or (empty payload, [MQTT-3.3.1-6]) clears the
// retained message of m.Topic and appends the store write. Caller holds
// storeMu when the broker has a store.
func (r *retainedStore) set(b *Broker, m *msg.Message, ops []msg.Op) []msg.Op {
	r.mu.Lock()
	if len(m.Payload) == 0 {
		r.put(m.Topic, nil)
	} else {
		r.put(m.Topic, m)
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

// match returns the retained messages whose topic matches filter
// (section 4.7): it follows literal levels, every child for '+', the
// whole subtree (and the parent level) for '#'. A filter starting with a
// wildcard does not match topics starting with '$' [MQTT-4.7.2-1].
func (r *retainedStore) match(filter string) []*msg.Message {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.root.match(filter, true, nil)
}

func (n *rnode) match(filter string, top bool, out []*msg.Message) []*msg.Message {
	level, rest, more := cutLevel(filter)
	switch level {
	case "#":
		if !top && n.msg != nil {
			out = append(out, n.msg) // "a/#" matches "a"
		}
		for name, k := range n.kids {
			if top && strings.HasPrefix(name, "$") {
				continue
			}
			out = k.all(out)
		}
	case "+":
		for name, k := range n.kids {
			if top && strings.HasPrefix(name, "$") {
				continue
			}
			out = k.matchRest(rest, more, out)
		}
	default:
		if k := n.kids[level]; k != nil {
			out = k.matchRest(rest, more, out)
		}
	}
	return out
}

// matchRest: n matched one level; the filter goes on with rest if more.
func (n *rnode) matchRest(rest string, more bool, out []*msg.Message) []*msg.Message {
	if !more {
		if n.msg != nil {
			out = append(out, n.msg)
		}
		return out
	}
	return n.match(rest, false, out)
}

// all appends every message at and below n.
func (n *rnode) all(out []*msg.Message) []*msg.Message {
	if n.msg != nil {
		out = append(out, n.msg)
	}
	for _, k := range n.kids {
		out = k.all(out)
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
