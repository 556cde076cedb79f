// Package fakebroker is a small in-memory msg.Sessions, msg.Publisher and
// msg.Subscriber for snbridge's tests and benchmarks: a router over
// topic.Match with retained messages, wills and persistent sessions. It is
// not the broker (brokercore is) and imports only msg and topic.
package fakebroker

import (
	"context"
	"sync"
	"time"

	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/brokercore/topic"
)

// Broker routes messages between sessions and subscribers.
type Broker struct {
	mu       sync.Mutex
	sessions map[string]*Session
	subs     []*sub
	retained map[string]msg.Message
	// Refuse, if set, is asked before every publish; an error refuses it.
	refuse    func(msg.Message) error
	opens     int
	openErr   error
	latency   time.Duration
	published []msg.Message
}

// Published returns every message accepted so far, as published (with
// its Retain flag), in order.
func (b *Broker) Published() []msg.Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]msg.Message(nil), b.published...)
}

type sub struct {
	filter string
	qos    byte
	s      *Session
	fn     func(msg.Message)
	fnMu   *sync.Mutex
}

// New returns an empty broker.
func New() *Broker {
	return &Broker{sessions: map[string]*Session{}, retained: map[string]msg.Message{}}
}

// SetRefuse installs (nil removes) a hook that refuses publishes.
func (b *Broker) SetRefuse(f func(msg.Message) error) {
	b.mu.Lock()
	b.refuse = f
	b.mu.Unlock()
}

// SetLatency makes every QoS 1/2 publish wait d before it is accepted, as
// the broker's durable-ack path waits for a group-committed fsync.
func (b *Broker) SetLatency(d time.Duration) {
	b.mu.Lock()
	b.latency = d
	b.mu.Unlock()
}

// SetOpenError makes Open fail with err (nil: succeed again).
func (b *Broker) SetOpenError(err error) {
	b.mu.Lock()
	b.openErr = err
	b.mu.Unlock()
}

// Opens counts Sessions.Open calls.
func (b *Broker) Opens() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.opens
}

// Publish routes m to every matching subscription at min(m.QoS, granted).
func (b *Broker) Publish(ctx context.Context, m msg.Message) error {
	return b.publish(m, "")
}

func (b *Broker) publish(m msg.Message, from string) error {
	if err := topic.ValidName(m.Topic); err != nil {
		return err
	}
	b.mu.Lock()
	f, lat := b.refuse, b.latency
	b.mu.Unlock()
	if lat > 0 && m.QoS > 0 {
		time.Sleep(lat)
	}
	if f != nil {
		if err := f(m); err != nil {
			return err
		}
	}
	b.mu.Lock()
	pm := m.Clone()
	pm.ClientID = from
	b.published = append(b.published, pm)
	if m.Retain {
		if len(m.Payload) == 0 {
			delete(b.retained, m.Topic)
		} else {
			b.retained[m.Topic] = m.Clone()
		}
	}
	type target struct {
		s   *sub
		qos byte
	}
	var ts []target
	best := map[*Session]int{}
	for _, s := range b.subs {
		if !topic.Match(s.filter, m.Topic) {
			continue
		}
		q := min(m.QoS, s.qos)
		if s.s != nil {
			if i, ok := best[s.s]; ok {
				ts[i].qos = max(ts[i].qos, q)
				continue
			}
			best[s.s] = len(ts)
		}
		ts = append(ts, target{s, q})
	}
	b.mu.Unlock()
	m.ClientID = from
	for _, t := range ts {
		d := m
		d.QoS = t.qos
		d.Retain = false // [MQTT-3.3.1-9]: not retained when routed live
		if t.s.s != nil {
			t.s.s.deliver(d)
		} else {
			t.s.fnMu.Lock()
			t.s.fn(d)
			t.s.fnMu.Unlock()
		}
	}
	return nil
}

// Subscribe adds an in-process subscriber.
func (b *Broker) Subscribe(filter string, qos byte, fn func(msg.Message)) (func(), error) {
	if err := topic.ValidFilter(filter); err != nil {
		return nil, err
	}
	s := &sub{filter: filter, qos: qos, fn: fn, fnMu: &sync.Mutex{}}
	b.mu.Lock()
	b.subs = append(b.subs, s)
	b.mu.Unlock()
	return func() { b.removeSub(func(x *sub) bool { return x == s }) }, nil
}

func (b *Broker) removeSub(match func(*sub) bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.subs[:0]
	for _, s := range b.subs {
		if !match(s) {
			out = append(out, s)
		}
	}
	clear(b.subs[len(out):])
	b.subs = out
}

// Open implements msg.Sessions.
func (b *Broker) Open(ctx context.Context, o msg.SessionOptions) (msg.Session, bool, error) {
	b.mu.Lock()
	b.opens++
	if b.openErr != nil {
		err := b.openErr
		b.mu.Unlock()
		return nil, false, err
	}
	s := b.sessions[o.ClientID]
	present := s != nil && !o.CleanStart
	if s != nil && (o.CleanStart || s.clean) {
		old := s
		b.mu.Unlock()
		b.removeSub(func(x *sub) bool { return x.s == old })
		b.mu.Lock()
		s = nil
		present = false
	}
	if s == nil {
		s = &Session{b: b, id: o.ClientID}
		b.sessions[o.ClientID] = s
	}
	b.mu.Unlock()
	s.mu.Lock()
	s.open, s.clean, s.will, s.fn, s.opts = true, o.CleanStart, o.Will, o.Deliver, o
	queued := s.queued
	s.queued = nil
	s.mu.Unlock()
	s.dmu.Lock()
	for _, m := range queued {
		o.Deliver(m)
	}
	s.dmu.Unlock()
	return s, present, nil
}

// Session is one client's session.
type Session struct {
	b           *Broker
	id          string
	dmu         sync.Mutex // serialises Deliver calls
	mu          sync.Mutex
	open, clean bool
	will        *msg.Message
	fn          func(msg.Message)
	queued      []msg.Message
	opts        msg.SessionOptions
}

// Options returns the options of the last Open.
func (s *Session) Options() msg.SessionOptions {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts
}

func (s *Session) deliver(m msg.Message) {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	s.mu.Lock()
	if !s.open {
		if !s.clean && m.QoS > 0 {
			s.queued = append(s.queued, m)
		}
		s.mu.Unlock()
		return
	}
	fn := s.fn
	s.mu.Unlock()
	fn(m)
}

// Publish implements msg.Publisher for the session's client.
func (s *Session) Publish(ctx context.Context, m msg.Message) error {
	s.mu.Lock()
	open := s.open
	s.mu.Unlock()
	if !open {
		return msg.ErrClosed
	}
	return s.b.publish(m, s.id)
}

// Subscribe implements msg.Session; retained messages follow via Deliver.
func (s *Session) Subscribe(filter string, qos byte) (byte, error) {
	if err := topic.ValidFilter(filter); err != nil {
		return 0, err
	}
	q := min(qos, 2)
	b := s.b
	b.removeSub(func(x *sub) bool { return x.s == s && x.filter == filter })
	b.mu.Lock()
	b.subs = append(b.subs, &sub{filter: filter, qos: q, s: s})
	var ret []msg.Message
	for t, m := range b.retained {
		if topic.Match(filter, t) {
			r := m
			r.QoS = min(m.QoS, q)
			ret = append(ret, r)
		}
	}
	b.mu.Unlock()
	for _, m := range ret {
		s.deliver(m)
	}
	return q, nil
}

// Unsubscribe implements msg.Session.
func (s *Session) Unsubscribe(filter string) error {
	s.b.removeSub(func(x *sub) bool { return x.s == s && x.filter == filter })
	return nil
}

// SetWill implements msg.Session.
func (s *Session) SetWill(w *msg.Message) {
	s.mu.Lock()
	s.will = w
	s.mu.Unlock()
}

// Will returns the current will.
func (s *Session) Will() *msg.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.will
}

// Close implements msg.Session.
func (s *Session) Close(sendWill bool) error {
	s.mu.Lock()
	if !s.open {
		s.mu.Unlock()
		return nil
	}
	s.open = false
	w, clean := s.will, s.clean
	s.mu.Unlock()
	s.dmu.Lock() // wait for a running Deliver
	s.dmu.Unlock()
	if clean {
		s.b.removeSub(func(x *sub) bool { return x.s == s })
		s.b.mu.Lock()
		if s.b.sessions[s.id] == s {
			delete(s.b.sessions, s.id)
		}
		s.b.mu.Unlock()
	}
	if sendWill && w != nil {
		_ = s.b.publish(*w, s.id)
	}
	return nil
}

// Session returns the stored session of id, nil if none.
func (b *Broker) Session(id string) *Session {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sessions[id]
}

var (
	_ msg.Sessions   = (*Broker)(nil)
	_ msg.Publisher  = (*Broker)(nil)
	_ msg.Subscriber = (*Broker)(nil)
	_ msg.Session    = (*Session)(nil)
)
