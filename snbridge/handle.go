package snbridge

import (
	"errors"
	"fmt"

	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/brokercore/topic"
	"github.com/outpost-iot/outpost/snbridge/snpacket"
)

// handle processes one datagram from p on p's worker.
func (g *Gateway) handle(p *peer, b []byte) {
	pk, n, err := snpacket.Decode(b)
	if err != nil {
		r := DropMalformed
		if errors.Is(err, snpacket.ErrUnknownType) {
			r = DropUnknownType // section 5.2.2: reserved types are not answered
		}
		g.cnt.drop(r)
		g.rl.warn(g.now(), r, p.String(), "mqtt-sn: datagram dropped", "error", err)
		return
	}
	if n != len(b) {
		g.cnt.drop(DropLengthMismatch)
		g.rl.warn(g.now(), DropLengthMismatch, p.String(), "mqtt-sn: datagram dropped",
			"error", fmt.Sprintf("length field says %d octets, datagram has %d", n, len(b)))
		return
	}
	g.cnt.in.Add(1)
	switch pk := pk.(type) {
	case *snpacket.SearchGW:
		g.searchGW(p)
		return
	case *snpacket.Advertise, *snpacket.GWInfo:
		return // other gateways and clients answering SEARCHGW for one (section 6.1)
	case *snpacket.Encapsulated:
		g.cnt.drop(DropMalformed)
		g.rl.warn(g.now(), DropMalformed, p.String(), "mqtt-sn: nested encapsulation dropped")
		return
	case *snpacket.Connect:
		g.connect(p, pk)
		return
	case *snpacket.Pingreq:
		if pk.ClientID != "" && g.wake(p, pk.ClientID) {
			return
		}
	}
	g.mu.Lock()
	c := p.client
	g.mu.Unlock()
	if c != nil && c.handle(p, pk) {
		return
	}
	if pub, ok := pk.(*snpacket.Publish); ok && pub.Flags.QoS == -1 {
		g.publishQoSMinus1(p, pub)
		return
	}
	g.notConnected(p, pk)
}

// notConnected answers a message that needs a connection from an address
// with none. DISCONNECT tells the client to connect again (the gateway has
// no state for it); acknowledgements are dropped silently.
func (g *Gateway) notConnected(p *peer, pk snpacket.Packet) {
	g.cnt.drop(DropNotConnected)
	g.rl.warn(g.now(), DropNotConnected, p.String(), "mqtt-sn: message from a client that is not connected", "type", pk.Type().String())
	switch pk.(type) {
	case *snpacket.Publish, *snpacket.Register, *snpacket.Subscribe, *snpacket.Unsubscribe,
		*snpacket.Pingreq, *snpacket.Disconnect, *snpacket.WillTopicUpd, *snpacket.WillMsgUpd,
		*snpacket.WillTopic, *snpacket.WillMsg:
		g.send(p, &snpacket.Disconnect{})
	}
}

// searchGW answers SEARCHGW with GWINFO (section 6.1): broadcast on UDP,
// straight back on a serial line or through a forwarder.
func (g *Gateway) searchGW(p *peer) {
	gi := &snpacket.GWInfo{GatewayID: g.cfg.GatewayID}
	if p.tr.broadcast && !p.encap {
		g.broadcast(gi)
		return
	}
	g.send(p, gi)
}

// publishQoSMinus1 publishes a QoS -1 PUBLISH (section 6.8): no connection,
// only pre-defined topic ids and short topic names, no reply.
func (g *Gateway) publishQoSMinus1(p *peer, pk *snpacket.Publish) {
	var name string
	switch pk.Flags.TopicIDType {
	case snpacket.TopicPredefined:
		n, ok := g.predef.name("", pk.TopicID)
		if !ok {
			g.cnt.drop(DropQoSMinus1)
			g.rl.warn(g.now(), DropQoSMinus1, p.String(), "mqtt-sn: QoS -1 PUBLISH to unknown pre-defined topic id", "topic_id", pk.TopicID)
			return
		}
		name = n
	case snpacket.TopicShort:
		name = snpacket.ShortTopicName(pk.TopicID)
	default:
		g.cnt.drop(DropQoSMinus1)
		g.rl.warn(g.now(), DropQoSMinus1, p.String(), "mqtt-sn: QoS -1 PUBLISH needs a pre-defined id or short name (section 6.8)", "topic_id", pk.TopicID)
		return
	}
	if err := topic.ValidName(name); err != nil {
		g.cnt.drop(DropQoSMinus1)
		g.rl.warn(g.now(), DropQoSMinus1, p.String(), "mqtt-sn: QoS -1 PUBLISH dropped", "error", err)
		return
	}
	m := msg.Message{Topic: name, Payload: pk.Data, QoS: 0, Retain: pk.Flags.Retain}
	s, err := g.qosMinus1Session()
	if err == nil {
		err = s.Publish(g.ctx, m)
	}
	if err != nil {
		g.cnt.drop(DropQoSMinus1)
		g.rl.warn(g.now(), DropQoSMinus1, p.String(), "mqtt-sn: QoS -1 PUBLISH refused by the broker", "topic", name, "error", err)
		return
	}
	g.cnt.pubIn.Add(1)
}

// returnCode maps a broker refusal to the MQTT-SN return code the client
// gets (section 5.3.10): congestion for a full queue or a stopped broker, so
// the client retries later; not supported for ACL denials and bad topics.
func returnCode(err error) snpacket.ReturnCode {
	switch {
	case err == nil:
		return snpacket.Accepted
	case errors.Is(err, msg.ErrNotAuthorized), errors.Is(err, msg.ErrInvalidTopic), errors.Is(err, topic.ErrInvalid):
		return snpacket.RejectedNotSupported
	default:
		return snpacket.RejectedCongestion
	}
}
