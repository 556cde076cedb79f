package snbridge

import (
	"strings"

	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/brokercore/topic"
	"github.com/outpost-iot/outpost/snbridge/snpacket"
)

// handle processes a message from the client's current address. It
// reports false if the client is not connected, so that the caller answers
// as for an unknown address.
func (c *client) handle(p *peer, pk snpacket.Packet) bool {
	c.mu.Lock()
	ok := c.connected() && c.peer == p
	if ok {
		c.lastRx = c.g.now() // any message counts for keep alive (section 6.11)
	}
	c.mu.Unlock()
	if !ok {
		return false
	}
	switch pk := pk.(type) {
	case *snpacket.WillTopic:
		c.onWillTopic(pk)
	case *snpacket.WillMsg:
		c.onWillMsg(pk)
	case *snpacket.Register:
		c.onRegister(pk)
	case *snpacket.Regack:
		c.onRegack(pk)
	case *snpacket.Publish:
		c.onPublish(pk)
	case *snpacket.Puback:
		c.onPuback(pk)
	case *snpacket.Pubrec:
		c.onPubrec(pk)
	case *snpacket.Pubrel:
		c.onPubrel(pk)
	case *snpacket.Pubcomp:
		c.onPubcomp(pk)
	case *snpacket.Subscribe:
		c.onSubscribe(pk)
	case *snpacket.Unsubscribe:
		c.onUnsubscribe(pk)
	case *snpacket.Pingreq:
		c.onPingreq()
	case *snpacket.Disconnect:
		c.onDisconnect(pk)
	case *snpacket.WillTopicUpd:
		c.onWillTopicUpd(pk)
	case *snpacket.WillMsgUpd:
		c.onWillMsgUpd(pk)
	default:
		// CONNACK, WILLTOPICREQ, SUBACK, ... are sent by gateways only.
		c.g.cnt.drop(DropUnexpected)
		c.g.rl.warn(c.g.now(), DropUnexpected, p.String(), "mqtt-sn: message a client does not send, dropped", "type", pk.Type().String(), "client_id", c.id)
	}
	return true
}

// send sends pk to the client's current address. Caller holds c.mu.
func (c *client) send(pk snpacket.Packet) {
	if c.peer != nil {
		c.g.send(c.peer, pk)
	}
}

// assign returns the normal topic id registered for name, registering it
// if needed (sections 6.5, 6.10). ok is false when all ids are taken.
// Caller holds c.mu.
func (c *client) assign(name string) (uint16, bool) {
	if id, ok := c.ids[name]; ok {
		return id, true
	}
	if len(c.topics) >= 0xFFFE {
		return 0, false
	}
	for {
		c.nextTopic++
		if c.nextTopic == 0 || c.nextTopic == 0xFFFF {
			continue // 0x0000 and 0xFFFF are reserved (section 5.3.11)
		}
		if _, taken := c.topics[c.nextTopic]; !taken {
			break
		}
	}
	c.topics[c.nextTopic], c.ids[name] = name, c.nextTopic
	return c.nextTopic, true
}

func (c *client) unregister(id uint16) {
	if name, ok := c.topics[id]; ok {
		delete(c.topics, id)
		delete(c.ids, name)
	}
}

// onRegister: a client registers a topic name (section 6.5).
func (c *client) onRegister(pk *snpacket.Register) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := topic.ValidName(pk.TopicName); err != nil {
		c.g.rl.warn(c.g.now(), DropUnexpected, remote(c.peer), "mqtt-sn: REGISTER refused", "client_id", c.id, "error", err)
		c.send(&snpacket.Regack{MsgID: pk.MsgID, ReturnCode: snpacket.RejectedNotSupported})
		return
	}
	id, ok := c.assign(pk.TopicName)
	if !ok {
		c.send(&snpacket.Regack{MsgID: pk.MsgID, ReturnCode: snpacket.RejectedCongestion})
		return
	}
	c.send(&snpacket.Regack{TopicID: id, MsgID: pk.MsgID, ReturnCode: snpacket.Accepted})
}

// topicName resolves the topic of a client's PUBLISH (sections 6.6, 6.7).
// Caller holds c.mu.
func (c *client) topicName(t snpacket.TopicIDType, id uint16) (string, bool) {
	switch t {
	case snpacket.TopicNormal:
		n, ok := c.topics[id]
		return n, ok
	case snpacket.TopicPredefined:
		return c.g.predef.name(c.id, id)
	case snpacket.TopicShort:
		return snpacket.ShortTopicName(id), true
	}
	return "", false
}

// onPublish publishes a client's message into the broker (section 6.6) and
// acknowledges it per its QoS: PUBACK for 1, PUBREC/PUBREL/PUBCOMP for 2.
// Any refusal is answered with PUBACK and a return code, whatever the QoS
// (section 5.4.13): an unknown topic id with 0x02, the broker's refusals
// as returnCode maps them.
func (c *client) onPublish(pk *snpacket.Publish) {
	g := c.g
	c.mu.Lock()
	name, ok := c.topicName(pk.Flags.TopicIDType, pk.TopicID)
	s := c.sess
	if ok && pk.Flags.QoS == 2 {
		if _, dup := c.qos2In[pk.MsgID]; dup {
			// Already published: only the PUBREC was lost.
			c.send(&snpacket.Pubrec{MsgID: pk.MsgID})
			c.mu.Unlock()
			return
		}
	}
	c.mu.Unlock()
	rc := snpacket.Accepted
	var err error
	switch {
	case !ok:
		rc = snpacket.RejectedInvalidTopicID
	case s == nil:
		rc = snpacket.RejectedCongestion
	default:
		err = topic.ValidName(name)
		if err == nil {
			q := max(pk.Flags.QoS, 0) // QoS -1 from a connected client: QoS 0
			err = s.Publish(g.ctx, msg.Message{Topic: name, Payload: append([]byte(nil), pk.Data...), QoS: byte(q), Retain: pk.Flags.Retain})
		}
		rc = returnCode(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if rc != snpacket.Accepted {
		g.rl.warn(g.now(), DropUnexpected, remote(c.peer), "mqtt-sn: PUBLISH refused", "client_id", c.id,
			"topic_id", pk.TopicID, "topic", name, "return_code", rc.String(), "error", err)
		c.send(&snpacket.Puback{TopicID: pk.TopicID, MsgID: pk.MsgID, ReturnCode: rc})
		return
	}
	g.cnt.pubIn.Add(1)
	switch pk.Flags.QoS {
	case 1:
		c.send(&snpacket.Puback{TopicID: pk.TopicID, MsgID: pk.MsgID, ReturnCode: snpacket.Accepted})
	case 2:
		c.qos2In[pk.MsgID] = struct{}{}
		c.send(&snpacket.Pubrec{MsgID: pk.MsgID})
	}
}

// onPubrel completes an inbound QoS 2 PUBLISH (section 6.6).
func (c *client) onPubrel(pk *snpacket.Pubrel) {
	c.mu.Lock()
	delete(c.qos2In, pk.MsgID)
	c.send(&snpacket.Pubcomp{MsgID: pk.MsgID})
	c.mu.Unlock()
}

// subscriptionFilter resolves SUBSCRIBE/UNSUBSCRIBE's topic (section 6.9).
func (c *client) subscriptionFilter(f snpacket.Flags, name string, id uint16) (string, snpacket.ReturnCode) {
	switch f.TopicIDType {
	case snpacket.TopicPredefined:
		n, ok := c.g.predef.name(c.id, id)
		if !ok {
			return "", snpacket.RejectedInvalidTopicID
		}
		return n, snpacket.Accepted
	default:
		if topic.ValidFilter(name) != nil {
			return name, snpacket.RejectedNotSupported
		}
		return name, snpacket.Accepted
	}
}

// onSubscribe subscribes the client's session (section 6.9). SUBACK carries
// the topic id: the registered id for a topic name without wildcards, the
// pre-defined id, or 0x0000 for wildcards and short names. Retained
// messages the subscription brings are held until SUBACK went out.
func (c *client) onSubscribe(pk *snpacket.Subscribe) {
	c.mu.Lock()
	filter, rc := c.subscriptionFilter(pk.Flags, pk.TopicName, pk.TopicID)
	var tid uint16
	if rc == snpacket.Accepted {
		switch pk.Flags.TopicIDType {
		case snpacket.TopicPredefined:
			tid = pk.TopicID
		case snpacket.TopicNormal:
			if !strings.ContainsAny(filter, "+#") {
				id, ok := c.assign(filter)
				if !ok {
					rc = snpacket.RejectedCongestion
				}
				tid = id
			}
		}
	}
	s := c.sess
	c.holdPump++
	c.mu.Unlock()
	granted := byte(0)
	if rc == snpacket.Accepted {
		if s == nil {
			rc = snpacket.RejectedCongestion
		} else {
			q, err := s.Subscribe(filter, byte(max(pk.Flags.QoS, 0)))
			if rc = returnCode(err); rc != snpacket.Accepted {
				c.g.rl.warn(c.g.now(), DropUnexpected, remote(c.peer), "mqtt-sn: SUBSCRIBE refused", "client_id", c.id, "filter", filter, "error", err)
			}
			granted = q
		}
	}
	c.mu.Lock()
	if rc != snpacket.Accepted {
		tid = 0
	}
	c.send(&snpacket.Suback{Flags: snpacket.Flags{QoS: int8(granted)}, TopicID: tid, MsgID: pk.MsgID, ReturnCode: rc})
	c.holdPump--
	c.pump()
	c.mu.Unlock()
}

func (c *client) onUnsubscribe(pk *snpacket.Unsubscribe) {
	c.mu.Lock()
	filter, rc := c.subscriptionFilter(pk.Flags, pk.TopicName, pk.TopicID)
	s := c.sess
	c.mu.Unlock()
	if rc == snpacket.Accepted && s != nil {
		_ = s.Unsubscribe(filter)
	}
	c.mu.Lock()
	c.send(&snpacket.Unsuback{MsgID: pk.MsgID}) // UNSUBACK has no return code (5.4.18)
	c.mu.Unlock()
}

// onPingreq answers a keep-alive PINGREQ (section 6.11). An awake client
// gets PINGRESP once its buffer is flushed (pump does it).
func (c *client) onPingreq() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == stateAwake || c.state == stateAsleep {
		c.state = stateAwake
		c.sleepUntil = c.g.now().Add(keepAliveGrace(c.sleepFor))
		c.pump()
		return
	}
	c.send(&snpacket.Pingresp{})
}
