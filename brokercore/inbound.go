package brokercore

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/brokercore/packet"
	"github.com/outpost-iot/outpost/brokercore/topic"
)

// topicAliasMax is the Topic Alias Maximum the broker announces.
const topicAliasMax = 65535

// handlePublish takes a PUBLISH from the client (section 3.3, flows of 4.3).
func (c *conn) handlePublish(p *packet.Publish) bool {
	b := c.b
	s := c.sess
	v5 := c.version == packet.V5
	// Inbound topic alias (3.3.2.3.4).
	if v5 && p.Props.TopicAlias != nil {
		a := *p.Props.TopicAlias
		if a == 0 || a > topicAliasMax {
			c.fail(packet.TopicAliasInvalid, fmt.Sprintf("topic alias %d out of range [MQTT-3.3.2-8]", a))
			return false
		}
		if p.Topic == "" {
			t, ok := c.aliasIn[a]
			if !ok {
				c.fail(packet.ProtocolError, fmt.Sprintf("unknown topic alias %d", a))
				return false
			}
			p.Topic = t
		} else {
			if c.aliasIn == nil {
				c.aliasIn = make(map[uint16]string)
			}
			c.aliasIn[a] = p.Topic
		}
	}
	if err := topic.ValidName(p.Topic); err != nil {
		b.log.Warn("PUBLISH with invalid topic; disconnecting", "client", c.clientID, "address", c.addr, "err", err)
		c.fail(packet.TopicNameInvalid, err.Error())
		return false
	}
	if p.QoS > 0 && v5 && int(c.inflightIn.Load()) >= c.recvMax {
		// [MQTT-3.3.4-9] more unacknowledged QoS 1/2 publishes than our Receive Maximum.
		b.log.Warn("client exceeded receive maximum; disconnecting", "client", c.clientID, "address", c.addr, "receive_maximum", c.recvMax)
		c.fail(packet.ReceiveMaximumExceeded, "receive maximum exceeded")
		return false
	}
	// p aliases the read buffer: keep a copy of the payload (the topic is
	// a string of its own).
	m := &msg.Message{Topic: p.Topic, Payload: bytes.Clone(p.Payload), QoS: p.QoS, Retain: p.Retain, ClientID: c.clientID, Received: b.now()}
	if v5 {
		messageFromProps(m, &p.Props)
	}
	b.stats.countReceived(m)
	if c.debug {
		b.log.Debug("Received PUBLISH", "client", c.clientID, "dup", p.Dup, "qos", p.QoS, "retain", p.Retain, "mid", p.PacketID, "topic", p.Topic, "bytes", len(p.Payload))
	}
	var ackType packet.Type
	switch p.QoS {
	case 1:
		ackType = packet.PUBACK
	case 2:
		ackType = packet.PUBREC
		s.mu.Lock()
		_, dup := s.inQoS2[p.PacketID]
		s.mu.Unlock()
		if dup {
			// Already received and routed: answer again, route nothing
			// (exactly once, 4.3.3 method B).
			c.queueAck(&inAck{typ: packet.PUBREC, pid: p.PacketID, ready: true})
			return true
		}
	}
	// ACL: write right (3.1.1: drop with normal acks; v5: reason 0x87).
	user := c.username
	// $SYS belongs to the broker: clients may not publish there (as Mosquitto).
	sysTopic := strings.HasPrefix(p.Topic, "$SYS/") || p.Topic == "$SYS"
	if _, az := b.auth(); sysTopic || az != nil && !az.Allow(c.clientID, user, p.Topic, AccessWrite) {
		b.log.Info(fmt.Sprintf("Denied PUBLISH from %s (%s)", c.clientID, p.Topic), "client", c.clientID, "topic", p.Topic)
		b.stats.Dropped.NotAuthorized.Add(1)
		if p.QoS == 0 {
			return true
		}
		a := &inAck{typ: ackType, pid: p.PacketID, ready: true}
		if v5 {
			a.reason = packet.NotAuthorized
		} else if p.QoS == 2 {
			// 3.1.1 completes the exchange as if accepted; the PUBCOMP
			// that ends it decrements the count.
			c.inflightIn.Add(1)
			c.commitOps(c.recordQoS2(p.PacketID))
		}
		c.queueAck(a)
		return true
	}
	if p.QoS == 0 {
		c.routing.Store(true)
		b.route(m, nil, c, nil)
		c.routing.Store(false)
		return true
	}
	// hold: the ack waits for flow control too (released below, or by
	// waitFlow once the subscribers it went to have room).
	a := &inAck{typ: ackType, pid: p.PacketID, counted: p.QoS == 1, hold: true}
	c.inflightIn.Add(1)
	c.queueAck(a)
	var pre []msg.Op
	if p.QoS == 2 {
		pre = c.recordQoS2(p.PacketID)
	}
	// v5: tell the publisher nobody got it (0x10, as Mosquitto), still a
	// success; a message a tap takes (bound for the cloud) was not for nobody.
	a.noSubs = v5 && !b.HasSubscribers(m.Topic) && !b.tapWants(m)
	a.c, a.topic, a.qos = c, m.Topic, p.QoS
	c.routing.Store(true)
	b.route(m, pre, c, a)
	c.routing.Store(false)
	if len(c.blocked) > 0 {
		c.heldAck = a
	} else {
		c.unhold(a)
	}
	return true
}

// routed is called by route once the message a acknowledges is accepted
// (taps, store) or refused (err).
func (a *inAck) routed(err error) {
	c := a.c
	b := c.b
	if err != nil {
		b.stats.Dropped.TapFailed.Add(1)
		if c.version != packet.V5 {
			// 3.1.1 has no negative acknowledgement: close the connection.
			b.log.Warn("message not accepted (tap or store failed); disconnecting", "client", c.clientID, "address", c.addr, "topic", a.topic, "err", err)
			c.setReason("message not accepted: " + err.Error())
			c.closeAfter(nil)
			c.interrupt()
			return
		}
		b.log.Warn("message not accepted (tap or store failed)", "client", c.clientID, "topic", a.topic, "err", err)
		a.reason = ackReason(err)
		if a.qos == 2 {
			// A PUBREC with a failure code ends the exchange (4.3.3).
			c.forgetQoS2(a.pid)
			a.counted = true
		}
	} else if a.noSubs {
		a.reason = packet.NoMatchingSubscribers
	}
	c.ackReady(a)
}

// recordQoS2 notes an inbound QoS 2 packet id between PUBREC and PUBREL and
// returns the store write for a persistent session.
func (c *conn) recordQoS2(pid uint16) []msg.Op {
	s := c.sess
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addQoS2(pid)
	if s.persistent && c.b.store != nil {
		return []msg.Op{{Key: qos2Key(s.id, pid), Value: []byte{1}}}
	}
	return nil
}

func (c *conn) forgetQoS2(pid uint16) {
	s := c.sess
	s.mu.Lock()
	delete(s.inQoS2, pid)
	s.mu.Unlock()
}

// queueAck appends an acknowledgement in receive order; it goes out when it
// and every earlier one are ready.
func (c *conn) queueAck(a *inAck) {
	c.ackMu.Lock()
	c.acks = append(c.acks, a)
	c.ackMu.Unlock()
	if a.ready {
		c.flushAcks()
	}
}

// unhold releases an ack held by flow control.
func (c *conn) unhold(a *inAck) {
	c.ackMu.Lock()
	a.hold = false
	c.ackMu.Unlock()
	c.flushAcks()
}

func (c *conn) ackReady(a *inAck) {
	c.ackMu.Lock()
	a.ready = true
	c.ackMu.Unlock()
	c.flushAcks()
}

// flushAcks sends the ready prefix of the ack queue ([MQTT-4.6.0-2]
// PUBACK and [MQTT-4.6.0-3] PUBREC in the order the PUBLISHes came).
func (c *conn) flushAcks() {
	c.ackMu.Lock()
	n := 0
	for n < len(c.acks) && c.acks[n].ready && !c.acks[n].hold {
		a := c.acks[n]
		c.send(a)
		if a.counted {
			c.inflightIn.Add(-1)
		}
		c.acks[n] = nil
		n++
	}
	c.acks = c.acks[n:]
	if len(c.acks) == 0 {
		c.acks = nil
	}
	c.ackMu.Unlock()
}

// handlePubrel answers PUBREL with PUBCOMP (4.3.3), after earlier acks.
func (c *conn) handlePubrel(pid uint16) {
	b := c.b
	s := c.sess
	locked := s.lockStore()
	s.mu.Lock()
	_, ok := s.inQoS2[pid]
	delete(s.inQoS2, pid)
	var ops []msg.Op
	if ok && s.persistent && b.store != nil {
		ops = []msg.Op{{Key: qos2Key(s.id, pid), Delete: true}}
	}
	s.mu.Unlock()
	b.commitLocked(ops, nil)
	if locked {
		b.storeMu.Unlock()
	}
	a := &inAck{typ: packet.PUBCOMP, pid: pid, ready: true, counted: ok}
	if !ok && c.version == packet.V5 {
		a.reason = packet.PacketIdentifierNotFound
	}
	c.queueAck(a)
}

// handleSubscribe answers SUBSCRIBE (3.8, 3.9) and sends the retained
// messages the new subscriptions ask for.
func (c *conn) handleSubscribe(p *packet.Subscribe) bool {
	b := c.b
	s := c.sess
	v5 := c.version == packet.V5
	codes := make([]byte, len(p.Subscriptions))
	var subID uint32
	if v5 && len(p.Props.SubscriptionIDs) > 0 {
		subID = p.Props.SubscriptionIDs[0]
	}
	type retainReq struct {
		msgs []*msg.Message
		opts subOpts
	}
	var wantRetained []retainReq
	_, az := b.auth()
	for i, sub := range p.Subscriptions {
		shared, err := validSubscription(sub.Filter)
		if err != nil {
			b.log.Info("SUBSCRIBE with invalid filter refused", "client", c.clientID, "filter", sub.Filter, "err", err)
			codes[i] = packet.V3SubAckFailure
			if v5 {
				codes[i] = packet.TopicFilterInvalid
			}
			continue
		}
		plain := sub.Filter
		if shared {
			_, plain, _, _ = topic.ParseShared(sub.Filter)
			if sub.NoLocal && v5 {
				// [MQTT-3.8.3-4] No Local on a shared subscription is a
				// Protocol Error: the connection ends (0x82 is no SUBACK code).
				b.log.Warn("SUBSCRIBE with No Local on a shared subscription; disconnecting", "client", c.clientID, "address", c.addr, "filter", sub.Filter)
				c.fail(packet.ProtocolError, "no local on a shared subscription [MQTT-3.8.3-4]")
				return false
			}
		}
		if az != nil && !az.CanSubscribe(c.clientID, c.username, plain) {
			b.log.Info("Denied SUBSCRIBE", "client", c.clientID, "filter", sub.Filter)
			codes[i] = packet.V3SubAckFailure
			if v5 {
				codes[i] = packet.NotAuthorized
			}
			continue
		}
		qos := sub.QoS
		if qos > 2 {
			qos = 2
		}
		o := subOpts{QoS: qos, NoLocal: sub.NoLocal, RetainAsPublished: sub.RetainAsPublished, RetainHandling: sub.RetainHandling, SubID: subID}
		_, retained := s.subscribe(sub.Filter, o)
		b.stats.Subscriptions.Store(int64(b.subCount()))
		codes[i] = qos
		if c.debug {
			b.log.Debug("Received SUBSCRIBE", "client", c.clientID, "filter", sub.Filter, "qos", qos)
		}
		// Retain Handling (3.8.3.1): 0 send, 1 only for a new
		// subscription, 2 never; never for shared subscriptions.
		if len(retained) > 0 {
			wantRetained = append(wantRetained, retainReq{retained, o})
		}
	}
	b.saveInfo(s)
	ack := subAckPool.Get().(*packet.SubAck)
	ack.PacketID, ack.ReasonCodes = p.PacketID, codes
	c.sendEncoded(ack)
	*ack = packet.SubAck{}
	subAckPool.Put(ack)
	for _, r := range wantRetained {
		b.sendRetained(s, r.msgs, r.opts)
	}
	return true
}

func (b *Broker) subCount() int {
	b.subMu.RLock()
	defer b.subMu.RUnlock()
	return b.subs.Len()
}

func (c *conn) handleUnsubscribe(p *packet.Unsubscribe) {
	b := c.b
	codes := make([]byte, len(p.Filters))
	for i, f := range p.Filters {
		if !c.sess.unsubscribe(f) {
			codes[i] = packet.NoSubscriptionExisted
		}
		if c.debug {
			b.log.Debug("Received UNSUBSCRIBE", "client", c.clientID, "filter", f)
		}
	}
	b.stats.Subscriptions.Store(int64(b.subCount()))
	b.saveInfo(c.sess)
	ack := &packet.UnsubAck{PacketID: p.PacketID}
	if c.version == packet.V5 {
		ack.ReasonCodes = codes
	}
	c.send(ack)
}

func (c *conn) commitOps(ops []msg.Op) {
	if len(ops) == 0 {
		return
	}
	c.b.storeMu.Lock()
	c.b.commitLocked(ops, nil)
	c.b.storeMu.Unlock()
}
