package brokercore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/brokercore/topic"
)

// Publish implements msg.Publisher: an in-process publish takes the same
// path as a network PUBLISH; for QoS 1/2 it returns once the message is
// where a PUBACK would have waited for (taps, store). While a network
// subscriber it would reach has max_queued messages waiting, it waits
// (flow control, flow.go); if ctx ends first nothing is published. The broker's own
// Publish is trusted (no ACL); a Session's is checked as its username.
func (b *Broker) Publish(ctx context.Context, m msg.Message) error {
	return b.publishAs(ctx, m, "", "", false)
}

func (b *Broker) publishAs(ctx context.Context, m msg.Message, clientID, username string, acl bool) error {
	if err := topic.ValidName(m.Topic); err != nil {
		return fmt.Errorf("publish %q: %w: %w", m.Topic, msg.ErrInvalidTopic, err)
	}
	if m.QoS > 2 {
		return fmt.Errorf("publish %q: qos %d: %w", m.Topic, m.QoS, msg.ErrInvalidTopic)
	}
	if b.ctx.Err() != nil {
		return fmt.Errorf("publish %q: %w", m.Topic, msg.ErrClosed)
	}
	if acl {
		if _, az := b.auth(); az != nil && !az.Allow(clientID, username, m.Topic, AccessWrite) {
			b.log.Info(fmt.Sprintf("Denied PUBLISH from %s (%s)", clientID, m.Topic), "client", clientID, "topic", m.Topic)
			b.stats.Dropped.NotAuthorized.Add(1)
			return fmt.Errorf("publish %q: %w", m.Topic, msg.ErrNotAuthorized)
		}
	}
	// Flow control: wait while a subscriber it would reach is full.
	if err := b.waitRoom(ctx, m.Topic); err != nil {
		return err
	}
	m.ClientID = clientID
	m.Received = b.now()
	b.stats.countReceived(&m)
	if m.QoS == 0 {
		b.route(&m, nil, nil, nil)
		return nil
	}
	ch := make(errChan, 1)
	b.route(&m, nil, nil, ch)
	select {
	case err := <-ch:
		if err != nil {
			b.stats.Dropped.TapFailed.Add(1)
			return fmt.Errorf("publish %q: %w", m.Topic, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("publish %q: %w", m.Topic, ctx.Err())
	}
}

// Subscribe implements msg.Subscriber. fn is called in order, one call
// at a time, from the publishing goroutine; cancel waits for a running call.
func (b *Broker) Subscribe(filter string, qos byte, fn func(msg.Message)) (cancel func(), err error) {
	if _, err := validSubscription(filter); err != nil {
		return nil, fmt.Errorf("subscribe %q: %w: %w", filter, msg.ErrInvalidTopic, err)
	}
	if qos > 2 {
		qos = 2
	}
	s := b.newSession("")
	s.inproc = true
	s.deliver = fn
	s.window = b.cfg.MaxInflight
	// In-process subscribers see the retain flag as published (the v5
	// Retain As Published option): the console's topic tree shows it.
	opts := subOpts{QoS: qos, RetainAsPublished: true}
	_, retained := s.subscribe(filter, opts)
	b.stats.Subscriptions.Store(int64(b.subCount()))
	b.sendRetained(s, retained, opts)
	var once sync.Once
	return func() {
		once.Do(func() {
			s.unsubscribe(filter)
			s.deliverMu.Lock() // waits for a running fn
			s.mu.Lock()
			s.gone = true
			s.deliver = nil
			s.pending = nil
			s.mu.Unlock()
			s.deliverMu.Unlock()
			b.stats.Subscriptions.Store(int64(b.subCount()))
		})
	}, nil
}

// Open implements msg.Sessions.
func (b *Broker) Open(ctx context.Context, o msg.SessionOptions) (msg.Session, bool, error) {
	if o.ClientID == "" {
		return nil, false, fmt.Errorf("open session: empty client id: %w", msg.ErrInvalidTopic)
	}
	if o.Deliver == nil {
		return nil, false, errors.New("open session: Deliver is nil")
	}
	if b.ctx.Err() != nil {
		return nil, false, fmt.Errorf("open session %q: %w", o.ClientID, msg.ErrClosed)
	}
	var will *msg.Message
	if o.Will != nil {
		w := o.Will.Clone()
		will = &w
	}
	x := &inprocSession{b: b}
	s, present := b.openSession(openOpts{
		clientID: o.ClientID, username: o.Username, cleanStart: o.CleanStart, expiry: o.SessionExpiry,
		will: will, willDelay: o.WillDelay, deliver: o.Deliver, owner: x,
	})
	x.s = s
	b.stats.clientConnected()
	b.log.Debug("New in-process client connected", "client", o.ClientID, "listener", o.Listener, "address", o.RemoteAddr, "clean", o.CleanStart)
	b.resumeInproc(s)
	return x, present, nil
}

// inprocSession is a msg.Session for snbridge and tests.
type inprocSession struct {
	b      *Broker
	s      *session
	mu     sync.Mutex
	closed bool
}

var _ msg.Session = (*inprocSession)(nil)

func (x *inprocSession) live() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return fmt.Errorf("session %q: %w", x.s.id, msg.ErrClosed)
	}
	return nil
}

func (x *inprocSession) Publish(ctx context.Context, m msg.Message) error {
	if err := x.live(); err != nil {
		return err
	}
	x.s.mu.Lock()
	user := x.s.username
	x.s.mu.Unlock()
	return x.b.publishAs(ctx, m, x.s.id, user, true)
}

func (x *inprocSession) Subscribe(filter string, qos byte) (byte, error) {
	if err := x.live(); err != nil {
		return 0, err
	}
	shared, err := validSubscription(filter)
	if err != nil {
		return 0, fmt.Errorf("subscribe %q: %w: %w", filter, msg.ErrInvalidTopic, err)
	}
	plain := filter
	if shared {
		_, plain, _, _ = topic.ParseShared(filter)
	}
	x.s.mu.Lock()
	user := x.s.username
	x.s.mu.Unlock()
	if _, az := x.b.auth(); az != nil && !az.CanSubscribe(x.s.id, user, plain) {
		return 0, fmt.Errorf("subscribe %q: %w", filter, msg.ErrNotAuthorized)
	}
	if qos > 2 {
		qos = 2
	}
	o := subOpts{QoS: qos}
	_, retained := x.s.subscribe(filter, o)
	x.b.stats.Subscriptions.Store(int64(x.b.subCount()))
	x.b.saveInfo(x.s)
	x.b.sendRetained(x.s, retained, o)
	return qos, nil
}

func (x *inprocSession) Unsubscribe(filter string) error {
	if err := x.live(); err != nil {
		return err
	}
	x.s.unsubscribe(filter)
	x.b.stats.Subscriptions.Store(int64(x.b.subCount()))
	x.b.saveInfo(x.s)
	return nil
}

func (x *inprocSession) SetWill(will *msg.Message) {
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	if will == nil {
		x.s.will = nil
		return
	}
	w := will.Clone()
	x.s.will = &w
}

func (x *inprocSession) Close(sendWill bool) error {
	x.mu.Lock()
	if x.closed {
		x.mu.Unlock()
		return nil
	}
	x.closed = true
	x.mu.Unlock()
	x.s.mu.Lock()
	mine := x.s.owner == x
	x.s.mu.Unlock()
	if mine {
		x.b.stats.clientDisconnected()
	}
	// A no-op if another Open took the session over meanwhile.
	x.b.detachSession(x.s, nil, x, sendWill)
	return nil
}
