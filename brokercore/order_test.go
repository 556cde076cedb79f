package brokercore

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/brokercore/packet"
)

func pub(topic string, qos byte, pid uint16, payload string) *packet.Publish {
	return &packet.Publish{Topic: topic, QoS: qos, PacketID: pid, Payload: []byte(payload)}
}

// [MQTT-4.6.0-1] On reconnect, unacknowledged PUBLISH packets are re-sent
// with DUP in their original order, and PUBRELs (QoS 2 after PUBREC) too.
func TestMQTT_4_6_0_1_ResendUnackedInOrderWithDup(t *testing.T) {
	b := testBroker(t, Config{}, Options{})
	sub := connected(t, b, packet.V311, "sub", false)
	sub.subscribe(1, "t/#", 2)
	p := connected(t, b, packet.V311, "pub", true)
	for i := 1; i <= 3; i++ {
		p.send(pub("t/1", 1, uint16(i), fmt.Sprint("q1-", i)))
		p.recvType(packet.PUBACK)
	}
	for i := 4; i <= 6; i++ {
		p.send(pub("t/2", 2, uint16(i), fmt.Sprint("q2-", i)))
		p.recvType(packet.PUBREC)
		p.ack(packet.PUBREL, uint16(i))
		p.recvType(packet.PUBCOMP)
	}
	var first []*packet.Publish
	for i := 0; i < 6; i++ {
		first = append(first, sub.recvType(packet.PUBLISH).(*packet.Publish))
	}
	// PUBREC the second QoS 2 message only: it moves to PUBREL state.
	sub.ack(packet.PUBREC, first[4].PacketID)
	if rel := sub.recvType(packet.PUBREL).(*packet.Ack); rel.PacketID != first[4].PacketID {
		t.Fatalf("PUBREL for %d, want %d", rel.PacketID, first[4].PacketID)
	}
	sub.nc.Close()
	poll(t, "session offline", func() bool { return b.Stats().ClientsConnected.Load() == 1 })

	sub2 := connected(t, b, packet.V311, "sub", false)
	for i, want := range first {
		if i == 4 {
			rel := sub2.recvType(packet.PUBREL).(*packet.Ack)
			if rel.PacketID != want.PacketID {
				t.Fatalf("resent PUBREL id %d, want %d", rel.PacketID, want.PacketID)
			}
			continue
		}
		got := sub2.recvType(packet.PUBLISH).(*packet.Publish)
		if !got.Dup || got.PacketID != want.PacketID || string(got.Payload) != string(want.Payload) {
			t.Fatalf("resend %d: got dup=%v id=%d %q, want dup id=%d %q", i, got.Dup, got.PacketID, got.Payload, want.PacketID, want.Payload)
		}
	}
}

// gateTap holds every Append until the test releases it, in any order.
type gateTap struct {
	mu    sync.Mutex
	dones []func(error)
	msgs  []msg.Message
	fail  error
}

func (g *gateTap) Wants(m *msg.Message) bool { return m.Topic != "free" }
func (g *gateTap) Append(m msg.Message, done func(error)) {
	g.mu.Lock()
	g.msgs = append(g.msgs, m)
	g.dones = append(g.dones, done)
	g.mu.Unlock()
}
func (g *gateTap) n() int { g.mu.Lock(); defer g.mu.Unlock(); return len(g.dones) }
func (g *gateTap) release(i int, err error) {
	g.mu.Lock()
	d := g.dones[i]
	g.mu.Unlock()
	d(err)
}

// ackOrder publishes n messages at qos, releases the tap in reverse order
// and checks the acks come back in receive order.
func ackOrder(t *testing.T, qos byte, ackType packet.Type) {
	b := testBroker(t, Config{}, Options{})
	tap := &gateTap{}
	b.AddTap(tap)
	p := connected(t, b, packet.V311, "pub", true)
	const n = 5
	for i := 1; i <= n; i++ {
		p.send(pub("t", qos, uint16(i), "x"))
	}
	poll(t, "tap appends", func() bool { return tap.n() == n })
	p.quiet(50e6) // nothing acked while the tap holds every message
	for i := n - 1; i >= 1; i-- {
		tap.release(i, nil)
	}
	p.quiet(50e6) // the first is still held: nothing may overtake it
	tap.release(0, nil)
	for i := 1; i <= n; i++ {
		a := p.recvType(ackType).(*packet.Ack)
		if a.PacketID != uint16(i) {
			t.Fatalf("%v %d: got id %d, want %d (receive order)", ackType, i, a.PacketID, i)
		}
	}
}

// [MQTT-4.6.0-2] PUBACKs in the order the PUBLISHes were received, even
// when the tap makes later ones durable first.
func TestMQTT_4_6_0_2_PubackInReceiveOrder(t *testing.T) { ackOrder(t, 1, packet.PUBACK) }

// [MQTT-4.6.0-3] PUBRECs in the order the PUBLISHes were received.
func TestMQTT_4_6_0_3_PubrecInReceiveOrder(t *testing.T) { ackOrder(t, 2, packet.PUBREC) }

// [MQTT-4.6.0-4] the broker, as sender, sends PUBREL in the order it
// received the PUBRECs.
func TestMQTT_4_6_0_4_PubrelInPubrecOrder(t *testing.T) {
	b := testBroker(t, Config{}, Options{})
	sub := connected(t, b, packet.V311, "sub", true)
	sub.subscribe(1, "t", 2)
	p := connected(t, b, packet.V311, "pub", true)
	var ids []uint16
	for i := 1; i <= 4; i++ {
		p.send(pub("t", 2, uint16(i), fmt.Sprint(i)))
		ids = append(ids, sub.recvType(packet.PUBLISH).(*packet.Publish).PacketID)
	}
	order := []uint16{ids[2], ids[0], ids[3], ids[1]}
	for _, id := range order {
		sub.ack(packet.PUBREC, id)
	}
	for _, id := range order {
		if got := sub.recvType(packet.PUBREL).(*packet.Ack).PacketID; got != id {
			t.Fatalf("PUBREL %d, want %d", got, id)
		}
	}
}

// [MQTT-4.6.0-5] every topic is an Ordered Topic: one publisher's
// messages on one topic and QoS reach a persistent subscriber in publish
// order, through a small in-flight window and a reconnect in the middle.
func TestMQTT_4_6_0_5_OrderedTopicAcrossReconnect(t *testing.T) {
	for _, qos := range []byte{1, 2} {
		t.Run(fmt.Sprint("qos", qos), func(t *testing.T) {
			b := testBroker(t, Config{MaxInflight: 3}, Options{})
			sub := connected(t, b, packet.V311, "sub", false)
			sub.subscribe(1, "t", qos)
			p := connected(t, b, packet.V311, "pub", true)
			const n = 40
			for i := 0; i < n; i++ {
				p.send(pub("t", qos, uint16(i+1), fmt.Sprint(i)))
			}
			next := 0
			got := func(c *rawClient, ackUpTo int) {
				for next < ackUpTo {
					pk := c.recv()
					switch pk := pk.(type) {
					case *packet.Publish:
						if string(pk.Payload) != fmt.Sprint(next) {
							if !pk.Dup {
								t.Fatalf("got %q, want %d", pk.Payload, next)
							}
							// A resend of one already seen is allowed before
							// new ones: the acks sent just before the old
							// connection dropped may not have been read. It is
							// acknowledged again, as every PUBLISH must be
							// (MQTT 3.1.1 section 4.3.2, 4.3.3).
						} else {
							next++
						}
						c.ackPublish(pk)
					case *packet.Ack:
						if pk.PacketType == packet.PUBREL {
							c.ack(packet.PUBCOMP, pk.PacketID)
						}
					}
				}
			}
			got(sub, 15)
			sub.nc.Close()
			sub2 := connected(t, b, packet.V311, "sub", false)
			got(sub2, n)
		})
	}
}

// On reconnect with a smaller Receive Maximum, the unacknowledged messages
// are re-sent in order but never more at once than the new maximum
// ([MQTT-4.9.0-2] with [MQTT-4.6.0-1]).
func TestResendRespectsNewReceiveMaximum(t *testing.T) {
	b := testBroker(t, Config{}, Options{})
	exp := func(rm uint16) connOpt {
		return func(cp *packet.Connect) { cp.Props.SessionExpiry = u32(600); cp.Props.ReceiveMaximum = u16(rm) }
	}
	sub := connected(t, b, packet.V5, "sub", false, exp(5))
	sub.subscribe(1, "t", 1)
	p := connected(t, b, packet.V5, "pub", true)
	for i := 1; i <= 5; i++ {
		p.send(pub("t", 1, uint16(i), fmt.Sprint(i)))
	}
	var ids []uint16
	for i := 0; i < 5; i++ {
		ids = append(ids, sub.recvType(packet.PUBLISH).(*packet.Publish).PacketID)
	}
	sub.nc.Close()
	poll(t, "offline", func() bool { return b.Stats().ClientsConnected.Load() == 1 })
	sub2 := connected(t, b, packet.V5, "sub", false, exp(2))
	for i := 0; i < 2; i++ {
		got := sub2.recvType(packet.PUBLISH).(*packet.Publish)
		if !got.Dup || got.PacketID != ids[i] {
			t.Fatalf("resend %d: dup=%v id=%d, want dup id=%d", i, got.Dup, got.PacketID, ids[i])
		}
	}
	sub2.quiet(50 * time.Millisecond) // window of 2 full
	sub2.ack(packet.PUBACK, ids[0])
	if got := sub2.recvType(packet.PUBLISH).(*packet.Publish); got.PacketID != ids[2] || !got.Dup {
		t.Fatalf("got id %d dup=%v, want id %d dup", got.PacketID, got.Dup, ids[2])
	}
}
