package snbridge

import (
	"time"

	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/snbridge/snpacket"
)

// inflight is the one gateway-to-client exchange awaiting its answer: a
// REGISTER (section 6.10) or a QoS 1/2 PUBLISH, then PUBREL (section 6.6),
// retransmitted every Tretry up to Nretry times (section 6.13).
type inflight struct {
	pkt   snpacket.Packet // Register, Publish or Pubrel
	msgID uint16
	sent  time.Time
	tries int
}

// deliver is the session's Deliver: it queues m and sends what it can. It
// never blocks on the network beyond one datagram write.
func (c *client) deliver(m msg.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	limit, reason := c.g.cfg.MaxQueued, DropQueueFull
	if c.state == stateAsleep || c.state == stateLost || c.state == stateDisconnected {
		limit, reason = c.g.cfg.SleepBuffer, DropSleepBuffer
	}
	if len(c.queue) >= limit {
		// Drop the oldest message not in flight.
		i := 0
		if c.inflight != nil {
			i = 1
		}
		if i < len(c.queue) {
			c.queue = append(c.queue[:i], c.queue[i+1:]...)
		} else {
			c.g.cnt.drop(reason)
			return
		}
		c.g.cnt.drop(reason)
		c.g.rl.warn(c.g.now(), reason, remote(c.peer), "mqtt-sn: client's queue is full, dropping its oldest message", "client_id", c.id, "limit", limit)
	}
	c.queue = append(c.queue, m)
	c.pump()
}

// outTopic picks how to name topic for this client (section 6.10): the
// normal id it registered or was given in SUBACK, else its pre-defined id,
// else a two-character short name. ok is false if a REGISTER must come
// first. Caller holds c.mu.
func (c *client) outTopic(name string) (snpacket.TopicIDType, uint16, bool) {
	if id, ok := c.ids[name]; ok {
		return snpacket.TopicNormal, id, true
	}
	if id, ok := c.g.predef.id(c.id, name); ok {
		return snpacket.TopicPredefined, id, true
	}
	if id, ok := snpacket.ShortTopicID(name); ok {
		return snpacket.TopicShort, id, true
	}
	return snpacket.TopicNormal, 0, false
}

func (c *client) msgID() uint16 {
	c.nextMsgID++
	if c.nextMsgID == 0 {
		c.nextMsgID = 1
	}
	return c.nextMsgID
}

// pump sends queued messages while nothing is in flight: QoS 0 ones at
// once, then one REGISTER or QoS 1/2 PUBLISH at a time. An awake client
// gets PINGRESP when its queue is empty and goes back to sleep (section
// 6.14). Caller holds c.mu.
func (c *client) pump() {
	if (c.state != stateActive && c.state != stateAwake) || c.holdPump > 0 || c.peer == nil {
		return
	}
	for c.inflight == nil && len(c.queue) > 0 {
		m := c.queue[0]
		tt, id, ok := c.outTopic(m.Topic)
		if !ok {
			// Section 6.10: a topic this client has no id for (a wildcard
			// match) is registered with REGISTER before the PUBLISH.
			id, ok = c.assign(m.Topic)
			if !ok {
				c.queue = c.queue[1:]
				c.g.cnt.drop(DropQueueFull)
				continue
			}
			c.inflight = &inflight{pkt: &snpacket.Register{TopicID: id, MsgID: c.msgID(), TopicName: m.Topic}, sent: c.g.now()}
			c.inflight.msgID = c.nextMsgID
			c.sendInflight(false)
			return
		}
		p := &snpacket.Publish{Flags: snpacket.Flags{QoS: int8(m.QoS), Retain: m.Retain, TopicIDType: tt}, TopicID: id, Data: m.Payload}
		c.g.cnt.pubOut.Add(1)
		if m.QoS == 0 {
			c.send(p)
			c.queue = c.queue[1:]
			continue
		}
		p.MsgID = c.msgID()
		c.inflight = &inflight{pkt: p, msgID: p.MsgID, sent: c.g.now()}
		c.sendInflight(false)
		return
	}
	if c.state == stateAwake && c.inflight == nil && len(c.queue) == 0 {
		c.send(&snpacket.Pingresp{})
		c.state = stateAsleep
		c.sleepUntil = c.g.now().Add(keepAliveGrace(c.sleepFor))
	}
	if len(c.queue) == 0 {
		c.queue = nil // let the backing array go
	}
}

// sendInflight (re)sends the message in flight; a resent PUBLISH has DUP
// set (section 5.3.4). Caller holds c.mu.
func (c *client) sendInflight(retry bool) {
	if c.inflight == nil {
		return
	}
	if p, ok := c.inflight.pkt.(*snpacket.Publish); ok && retry {
		q := *p
		q.Flags.DUP = true
		c.inflight.pkt = &q
	}
	c.send(c.inflight.pkt)
}

// resendInflight resends what was in flight when a client comes back
// (reconnect, wake-up). Caller holds c.mu.
func (c *client) resendInflight() {
	if c.inflight != nil && c.peer != nil {
		c.inflight.sent = c.g.now()
		c.sendInflight(true)
	}
}

// done pops the head of the queue after its exchange finished.
func (c *client) done() {
	c.inflight = nil
	if len(c.queue) > 0 {
		c.queue = c.queue[1:]
	}
	c.pump()
}

func (c *client) onRegack(pk *snpacket.Regack) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.inflightAs(pk.MsgID).(*snpacket.Register)
	if !ok {
		c.g.cnt.drop(DropUnexpected)
		return
	}
	if pk.ReturnCode != snpacket.Accepted {
		// The client refused the topic: its message cannot be sent.
		c.unregister(r.TopicID)
		c.g.cnt.drop(DropRejected)
		c.g.rl.warn(c.g.now(), DropRejected, remote(c.peer), "mqtt-sn: client refused REGISTER, message dropped", "client_id", c.id, "topic", r.TopicName, "return_code", pk.ReturnCode.String())
		c.done()
		return
	}
	c.inflight = nil
	c.pump() // now the PUBLISH
}

func (c *client) onPuback(pk *snpacket.Puback) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.inflightAs(pk.MsgID).(*snpacket.Publish)
	if !ok {
		c.g.cnt.drop(DropUnexpected)
		return
	}
	if pk.ReturnCode != snpacket.Accepted {
		if pk.ReturnCode == snpacket.RejectedInvalidTopicID && p.Flags.TopicIDType == snpacket.TopicNormal {
			c.unregister(p.TopicID) // registered again for the next message
		}
		c.g.cnt.drop(DropRejected)
		c.g.rl.warn(c.g.now(), DropRejected, remote(c.peer), "mqtt-sn: client refused PUBLISH", "client_id", c.id, "return_code", pk.ReturnCode.String())
	}
	c.done()
}

func (c *client) onPubrec(pk *snpacket.Pubrec) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.inflightAs(pk.MsgID).(type) {
	case *snpacket.Publish, *snpacket.Pubrel:
		c.inflight.pkt = &snpacket.Pubrel{MsgID: pk.MsgID}
		c.inflight.sent, c.inflight.tries = c.g.now(), 0
		c.sendInflight(false)
	default:
		c.g.cnt.drop(DropUnexpected)
	}
}

func (c *client) onPubcomp(pk *snpacket.Pubcomp) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.inflightAs(pk.MsgID).(*snpacket.Pubrel); !ok {
		c.g.cnt.drop(DropUnexpected)
		return
	}
	c.done()
}

// inflightAs returns the packet in flight if its MsgId is id.
func (c *client) inflightAs(id uint16) snpacket.Packet {
	if c.inflight == nil || c.inflight.msgID != id {
		return nil
	}
	return c.inflight.pkt
}
