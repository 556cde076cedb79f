package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/outpost-iot/outpost/brokercore/packet"
)

// Token tracks one published message to its end: written (QoS 0), PUBACK
// (QoS 1) or PUBCOMP (QoS 2), or the end of the connection.
type Token struct {
	msg  *Message
	id   uint16
	qos  byte
	rel  bool // QoS 2: PUBREC received, PUBREL sent
	once sync.Once
	done chan struct{}
	err  error
	code byte
}

func newToken(m *Message) *Token {
	return &Token{msg: m, qos: m.QoS, done: make(chan struct{})}
}

// complete ends the token; only the first call counts.
func (t *Token) complete(code byte, err error) {
	t.once.Do(func() {
		t.code, t.err = code, err
		close(t.done)
	})
}

// Done is closed when the exchange has ended; Err then says how.
func (t *Token) Done() <-chan struct{} { return t.done }

// Err is nil once the server acknowledged the message (a v5 reason code
// below 0x80, e.g. 0x10 No matching subscribers, counts as success), a
// *ServerError for a refusal, or an error wrapping ErrConnectionLost or
// ErrClosed when the connection ended first: the message then stays in the
// Store and the next Dial resends it. Err is nil before Done is closed.
func (t *Token) Err() error {
	select {
	case <-t.done:
		return t.err
	default:
		return nil
	}
}

// Wait waits for Done or ctx and returns Err or ctx's error.
func (t *Token) Wait(ctx context.Context) error {
	select {
	case <-t.done:
		return t.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Message is what was published.
func (t *Token) Message() *Message { return t.msg }

// PacketID is the packet identifier (0 for QoS 0).
func (t *Token) PacketID() uint16 { return t.id }

// ReasonCode waits for Done and returns the v5 reason code of the final
// acknowledgement (0 before v5 and for QoS 0).
func (t *Token) ReasonCode() byte {
	<-t.done
	return t.code
}

// Publish publishes m and waits until the server acknowledged it (QoS 1
// PUBACK, QoS 2 PUBCOMP) or, at QoS 0, until it is written. If ctx ends
// first the message may still be in flight (and in the Store).
func (c *Client) Publish(ctx context.Context, m *Message) error {
	t, err := c.PublishAsync(ctx, m)
	if err != nil {
		return err
	}
	return t.Wait(ctx)
}

// PublishAsync queues m and returns at once with a Token, unless the
// in-flight window is full: then it waits (bounded by ctx) for a slot, so a
// caller pipelines simply by calling it in a loop. Messages are sent in
// the order of PublishAsync calls.
//
// An error means m was not taken. Once a QoS 1/2 message has a Token it is
// in the Store: it completes on this connection or is resent by the next
// Dial with the same Store, whatever happens to ctx.
func (c *Client) PublishAsync(ctx context.Context, m *Message) (*Token, error) {
	if err := c.checkPublish(m); err != nil {
		return nil, err
	}
	var err error
	props := m.Props
	props.TopicAlias, props.SubscriptionIDs = nil, nil
	p := &packet.Publish{QoS: m.QoS, Retain: m.Retain, Topic: m.Topic, Payload: m.Payload, Props: props}
	tok := newToken(m)
	if c.limits.MaxPacketSize > 0 {
		if err := c.checkSize(p); err != nil {
			return nil, err
		}
	}
	if m.QoS == 0 {
		// Registered so that the end of the connection completes it even
		// if it never reaches the writer.
		c.mu.Lock()
		if c.dead {
			c.mu.Unlock()
			return nil, c.lostErr()
		}
		c.unwritten[tok] = struct{}{}
		c.mu.Unlock()
		select {
		case c.out <- writeReq{p: p, tok: tok}:
			return tok, nil
		case <-c.quit:
			err = c.lostErr()
		case <-ctx.Done():
			err = ctx.Err()
		}
		c.mu.Lock()
		delete(c.unwritten, tok)
		c.mu.Unlock()
		return nil, err
	}
	select {
	case c.slots <- struct{}{}:
	case <-c.quit:
		return nil, c.lostErr()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	if err := c.track(tok, p, m.Tag); err != nil {
		<-c.slots
		return nil, err
	}
	// Stored: from here on the message belongs to the session; a queueing
	// failure means the connection ended and the token reports it.
	_ = c.send(writeReq{p: p})
	return tok, nil
}

// track gives p a packet id and sequence, registers tok and stores p
// before it is sent.
func (c *Client) track(tok *Token, p *packet.Publish, tag uint64) error {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return c.lostErr()
	}
	id, ok := c.allocID()
	if !ok {
		c.mu.Unlock()
		return fmt.Errorf("publish %q: no free packet identifier", p.Topic)
	}
	c.seq++
	seq := c.seq
	p.PacketID, tok.id = id, id
	c.inflight[id] = tok
	c.mu.Unlock()
	if err := c.store.Put(Entry{Seq: seq, Dir: Outgoing, Packet: p, Tag: tag}); err != nil {
		c.mu.Lock()
		delete(c.inflight, id)
		c.mu.Unlock()
		return fmt.Errorf("publish %q: store: %w", p.Topic, err)
	}
	return nil
}

// allocID returns an unused packet identifier [MQTT-2.2.1-3]; c.mu held.
func (c *Client) allocID() (uint16, bool) {
	for range 65535 {
		c.nextID++
		if c.nextID == 0 {
			c.nextID = 1
		}
		if c.inflight[c.nextID] == nil && c.requests[c.nextID] == nil {
			return c.nextID, true
		}
	}
	return 0, false
}

func (c *Client) checkPublish(m *Message) error {
	if m == nil {
		return fmt.Errorf("publish: nil message: %w", ErrInvalid)
	}
	if m.QoS > 2 {
		return fmt.Errorf("publish %q: QoS %d: %w", m.Topic, m.QoS, ErrInvalid)
	}
	if err := checkTopicName(m.Topic); err != nil {
		return fmt.Errorf("publish %q: %w", m.Topic, err)
	}
	if m.QoS > c.limits.MaxQoS {
		return fmt.Errorf("publish %q: QoS %d above the server's Maximum QoS %d [MQTT-3.2.2-11]: %w",
			m.Topic, m.QoS, c.limits.MaxQoS, ErrNotSupported)
	}
	if m.Retain && !c.limits.RetainAvailable {
		return fmt.Errorf("publish %q: retain not available on the server [MQTT-3.2.2-14]: %w", m.Topic, ErrNotSupported)
	}
	return nil
}

func (c *Client) checkSize(p *packet.Publish) error {
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	q := *p
	if q.QoS > 0 {
		q.PacketID = 1
	}
	b, err := packet.Append(c.sizeBuf[:0], &q, c.version)
	if cap(b) <= 64<<10 {
		c.sizeBuf = b
	}
	if err != nil {
		return fmt.Errorf("publish %q: %w", p.Topic, err)
	}
	if len(b) > c.limits.MaxPacketSize {
		return fmt.Errorf("publish %q: %d-byte packet over the server's Maximum Packet Size %d [MQTT-3.1.2-24]: %w",
			p.Topic, len(b), c.limits.MaxPacketSize, ErrNotSupported)
	}
	return nil
}

// checkTopicName: at least one character [MQTT-4.7.3-1], no wildcards
// [MQTT-3.3.2-2], at most 65,535 bytes of UTF-8 without U+0000.
func checkTopicName(t string) error {
	switch {
	case t == "":
		return fmt.Errorf("empty topic name [MQTT-4.7.3-1]: %w", ErrInvalid)
	case strings.ContainsAny(t, "+#"):
		return fmt.Errorf("wildcard in topic name [MQTT-3.3.2-2]: %w", ErrInvalid)
	case len(t) > 65535:
		return fmt.Errorf("topic name over 65535 bytes: %w", ErrInvalid)
	case strings.ContainsRune(t, 0) || !validUTF8(t):
		return fmt.Errorf("topic name not valid UTF-8 [MQTT-1.5.4-1]: %w", ErrInvalid)
	}
	return nil
}

// onPublish handles a server PUBLISH: resolve the alias, deliver, ack.
func (c *Client) onPublish(p *packet.Publish) error {
	if a := p.Props.TopicAlias; a != nil {
		// [MQTT-3.3.2-10]: alias above our Topic Alias Maximum (0 if we
		// sent none) is a protocol error.
		if *a > c.cfg.TopicAliasMaximum || c.version != packet.V5 {
			return &aliasError{*a}
		}
		if p.Topic != "" {
			c.inAliases[*a] = p.Topic
		} else if t, ok := c.inAliases[*a]; ok {
			p.Topic = t
		} else {
			return &aliasError{*a}
		}
	}
	m := &Message{Topic: p.Topic, Payload: p.Payload, QoS: p.QoS, Retain: p.Retain, Dup: p.Dup, Props: p.Props}
	m.Props.TopicAlias = nil
	switch p.QoS {
	case 0:
		c.deliver(m)
		return nil
	case 1:
		c.deliver(m)
		return c.send(writeReq{p: &packet.Ack{PacketType: packet.PUBACK, PacketID: p.PacketID}})
	}
	// QoS 2, method B of 4.3.3: deliver once, remember the id until
	// PUBREL; a redelivery meanwhile only gets another PUBREC.
	c.mu.Lock()
	seen := c.incoming[p.PacketID]
	c.mu.Unlock()
	if !seen {
		c.deliver(m)
		rec := &packet.Ack{PacketType: packet.PUBREC, PacketID: p.PacketID}
		c.mu.Lock()
		c.seq++
		seq := c.seq
		c.incoming[p.PacketID] = true
		c.mu.Unlock()
		if err := c.store.Put(Entry{Seq: seq, Dir: Incoming, Packet: rec}); err != nil {
			return fmt.Errorf("store incoming QoS 2 id %d: %w", p.PacketID, err)
		}
	}
	return c.send(writeReq{p: &packet.Ack{PacketType: packet.PUBREC, PacketID: p.PacketID}})
}

func (c *Client) onAck(a *packet.Ack) error {
	switch a.PacketType {
	case packet.PUBREL:
		c.mu.Lock()
		known := c.incoming[a.PacketID]
		delete(c.incoming, a.PacketID)
		c.mu.Unlock()
		comp := &packet.Ack{PacketType: packet.PUBCOMP, PacketID: a.PacketID}
		if known {
			if err := c.store.Delete(Incoming, a.PacketID); err != nil {
				return fmt.Errorf("store: delete incoming id %d: %w", a.PacketID, err)
			}
		} else if c.version == packet.V5 {
			comp.ReasonCode = packet.PacketIdentifierNotFound
		}
		return c.send(writeReq{p: comp})
	case packet.PUBREC:
		return c.onPubRec(a)
	}
	// PUBACK or PUBCOMP ends an exchange.
	c.mu.Lock()
	t := c.inflight[a.PacketID]
	ok := t != nil && ((a.PacketType == packet.PUBACK && t.qos == 1) || (a.PacketType == packet.PUBCOMP && t.rel))
	if ok {
		delete(c.inflight, a.PacketID)
	}
	c.mu.Unlock()
	if !ok {
		c.log.Warn("acknowledgement for no message in flight", "packet", a.Type().String(), "packet_id", a.PacketID)
		return nil
	}
	return c.finish(t, a)
}

// finish ends t's exchange: forget it in the Store, free its slot.
func (c *Client) finish(t *Token, a *packet.Ack) error {
	var err error
	if es, ok := c.store.(EndStore); ok {
		err = es.End(a.PacketID, a.ReasonCode)
	} else {
		err = c.store.Delete(Outgoing, a.PacketID)
	}
	if err != nil {
		return fmt.Errorf("store: delete outgoing id %d: %w", a.PacketID, err)
	}
	<-c.slots
	err = nil
	if a.ReasonCode >= 0x80 {
		err = &ServerError{Op: "publish", Code: a.ReasonCode, Reason: a.Props.ReasonString}
	}
	t.complete(a.ReasonCode, err)
	return nil
}

func (c *Client) onPubRec(a *packet.Ack) error {
	rel := &packet.Ack{PacketType: packet.PUBREL, PacketID: a.PacketID}
	c.mu.Lock()
	t := c.inflight[a.PacketID]
	if t == nil || t.qos != 2 {
		c.mu.Unlock()
		// 4.3.3: answer anyway so the server can finish; v5 says why.
		if c.version == packet.V5 {
			rel.ReasonCode = packet.PacketIdentifierNotFound
		}
		c.log.Warn("PUBREC for no QoS 2 message in flight", "packet_id", a.PacketID)
		return c.send(writeReq{p: rel})
	}
	if a.ReasonCode >= 0x80 {
		delete(c.inflight, a.PacketID)
		c.mu.Unlock()
		return c.finish(t, a) // refused: no PUBREL [MQTT-4.3.3-?] (v5 4.3.3)
	}
	again := t.rel
	t.rel = true
	c.seq++
	seq := c.seq
	c.mu.Unlock()
	if !again {
		// Persist the PUBREL state before sending it (DESIGN.md data flow 4).
		if err := c.store.Put(Entry{Seq: seq, Dir: Outgoing, Packet: rel, Tag: t.msg.Tag}); err != nil {
			return fmt.Errorf("store: PUBREL for id %d: %w", a.PacketID, err)
		}
	}
	return c.send(writeReq{p: rel})
}

// loadSession reads the Store after CONNACK. If the server resumed the
// session it restores the incoming QoS 2 ids and the sequence and returns
// the outgoing entries to resend. If not, the server's packet ids mean
// nothing now [MQTT-3.2.2-5]: it clears the Store and returns the
// unacknowledged PUBLISH packets to publish again as new messages (a PUBREL
// means the server already had the message).
func (c *Client) loadSession() ([]Entry, error) {
	entries, err := c.store.Load()
	if err != nil {
		return nil, fmt.Errorf("load session store: %w", err)
	}
	var out []Entry
	if c.limits.SessionPresent && !c.cfg.CleanStart {
		for _, e := range entries {
			c.seq = max(c.seq, e.Seq)
			if e.Dir == Incoming {
				c.incoming[e.ID()] = true
			} else {
				out = append(out, e)
			}
		}
		return out, nil
	}
	for _, e := range entries {
		if p, ok := e.Packet.(*packet.Publish); ok && e.Dir == Outgoing {
			out = append(out, e)
			c.log.Info("server has no session: publishing again", "topic", p.Topic, "old_packet_id", p.PacketID)
		}
	}
	if err := c.store.Reset(); err != nil {
		return nil, fmt.Errorf("reset session store: %w", err)
	}
	return out, nil
}

// resume sends what loadSession returned (see Dial).
func (c *Client) resume(ctx context.Context, entries []Entry) error {
	if !c.limits.SessionPresent || c.cfg.CleanStart {
		for _, e := range entries {
			p := e.Packet.(*packet.Publish)
			m := &Message{Topic: p.Topic, Payload: p.Payload, QoS: p.QoS, Retain: p.Retain, Props: p.Props, Tag: e.Tag}
			// A new server may allow less than the old one; adapting is
			// better than losing the message.
			m.QoS = min(m.QoS, c.limits.MaxQoS)
			m.Retain = m.Retain && c.limits.RetainAvailable
			t, err := c.PublishAsync(ctx, m)
			if errors.Is(err, ErrNotSupported) || errors.Is(err, ErrInvalid) {
				// Cannot go to this server at all (too large): report it
				// on its token rather than fail every Dial.
				t = newToken(m)
				t.complete(0, err)
			} else if err != nil {
				return err
			}
			c.mu.Lock()
			c.resumed = append(c.resumed, t)
			c.mu.Unlock()
		}
		return nil
	}
	for _, e := range entries {
		var t *Token
		req := writeReq{p: e.Packet}
		switch p := e.Packet.(type) {
		case *packet.Publish:
			t = newToken(&Message{Topic: p.Topic, Payload: p.Payload, QoS: p.QoS, Retain: p.Retain, Props: p.Props, Tag: e.Tag})
			req.dup = true // [MQTT-3.3.1-1]
		case *packet.Ack:
			t = newToken(&Message{QoS: 2, Tag: e.Tag})
			t.rel = true
		default:
			continue
		}
		t.id = e.ID()
		// Resends count against the window too [MQTT-4.9.0-2].
		select {
		case c.slots <- struct{}{}:
		case <-c.quit:
			return c.lostErr()
		case <-ctx.Done():
			return ctx.Err()
		}
		c.mu.Lock()
		if c.dead {
			c.mu.Unlock()
			return c.lostErr()
		}
		c.inflight[t.id] = t
		c.resumed = append(c.resumed, t)
		c.mu.Unlock()
		if err := c.send(req); err != nil {
			return err
		}
	}
	return nil
}
