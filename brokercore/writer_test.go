package brokercore

import (
	"bytes"
	"fmt"
	"strconv"
	"testing"

	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/brokercore/packet"
)

// appendPublishV3 writes exactly what the codec writes for the same
// PUBLISH, at every QoS and across the Remaining Length byte boundaries.
func TestAppendPublishV3MatchesCodec(t *testing.T) {
	for _, qos := range []byte{0, 1, 2} {
		for _, retain := range []bool{false, true} {
			for _, n := range []int{0, 1, 120, 127 - 9, 128, 16383, 16384, 2097152} {
				name := fmt.Sprintf("qos%d/retain=%v/%d", qos, retain, n)
				om := &outMsg{m: &msg.Message{Topic: "a/b", Payload: bytes.Repeat([]byte{'x'}, n)}, qos: qos, retain: retain}
				if qos > 0 {
					om.pid = 0x1234
				}
				got, err := appendPublishV3([]byte("prefix"), om)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				want, err := packet.Append([]byte("prefix"), &packet.Publish{Topic: "a/b", QoS: qos, Retain: retain, PacketID: om.pid, Payload: om.m.Payload}, packet.V311)
				if err != nil {
					t.Fatalf("%s: codec: %v", name, err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%s: % x… differs from the codec's % x…", name, got[:min(len(got), 16)], want[:min(len(want), 16)])
				}
			}
		}
	}
}

// appendAck writes what the codec writes for the same acknowledgement.
func TestAppendAckMatchesCodec(t *testing.T) {
	for _, v := range []byte{packet.V31, packet.V311, packet.V5} {
		for _, typ := range []packet.Type{packet.PUBACK, packet.PUBREC, packet.PUBCOMP} {
			for _, reason := range []byte{0, 0x10, 0x87, 0x92} {
				if typ == packet.PUBCOMP && reason != 0 && reason != 0x92 || typ != packet.PUBCOMP && reason == 0x92 {
					continue
				}
				a := &inAck{typ: typ, pid: 0xabcd, reason: reason}
				got := appendAck(nil, a, v)
				want, err := packet.Append(nil, &packet.Ack{PacketType: typ, PacketID: 0xabcd, ReasonCode: reason}, v)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("v%d %v reason 0x%02x: % x, codec % x", v, typ, reason, got, want)
				}
			}
		}
	}
}

// TestRepliesPipelined: a client that sends many requests in one write
// gets every answer, PUBACKs in the order of its PUBLISHes
// [MQTT-4.6.0-2], while the reader writes its answers itself (the writer
// role, writer.go) and also delivers to this same client.
func TestRepliesPipelined(t *testing.T) {
	b := testBroker(t, Config{}, Options{})
	c := connected(t, b, packet.V311, "pipe", true)
	var out []byte
	for _, p := range []packet.Packet{
		&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "self/#", QoS: 1}}},
		pub1("self/a", 10, "1"),
		&packet.PingReq{},
		pub1("self/b", 11, "2"),
		&packet.Unsubscribe{PacketID: 2, Filters: []string{"self/#"}},
		pub1("self/c", 12, "3"),
		&packet.PingReq{},
	} {
		var err error
		if out, err = packet.Append(out, p, packet.V311); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.nc.Write(out); err != nil {
		t.Fatal(err)
	}
	want := []string{"SUBACK 1", "PUBACK 10", "PINGRESP", "PUBACK 11", "UNSUBACK 2", "PUBACK 12", "PINGRESP"}
	var got, delivered []string
	for len(got) < len(want) {
		switch p := c.recv().(type) {
		case *packet.Publish:
			delivered = append(delivered, p.Topic)
			c.ack(packet.PUBACK, p.PacketID)
		case *packet.SubAck:
			got = append(got, fmt.Sprintf("SUBACK %d", p.PacketID))
		case *packet.UnsubAck:
			got = append(got, fmt.Sprintf("UNSUBACK %d", p.PacketID))
		case *packet.Ack:
			got = append(got, fmt.Sprintf("%v %d", p.PacketType, p.PacketID))
		case *packet.PingResp:
			got = append(got, "PINGRESP")
		default:
			t.Fatalf("unexpected %v", p.Type())
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("answers %v, want %v", got, want)
	}
	c.send(&packet.PingReq{}) // a later answer: every delivery came before it
	for {
		p := c.recv()
		if p.Type() == packet.PINGRESP {
			break
		}
		pp, ok := p.(*packet.Publish)
		if !ok {
			t.Fatalf("unexpected %v", p.Type())
		}
		delivered = append(delivered, pp.Topic)
		c.ack(packet.PUBACK, pp.PacketID)
	}
	if fmt.Sprint(delivered) != "[self/a self/b]" {
		t.Errorf("delivered %v, want [self/a self/b] (self/c came after the UNSUBSCRIBE)", delivered)
	}
}

// TestRepliesAmongDeliveries: while a client's reader answers its pings,
// another client's messages for it keep coming; every one arrives, in
// order, and every ping is answered.
func TestRepliesAmongDeliveries(t *testing.T) {
	b := testBroker(t, Config{}, Options{})
	sub := connected(t, b, packet.V311, "sub", true)
	sub.subscribe(1, "flood", 0)
	pub := connected(t, b, packet.V311, "pub", true)
	const msgs, pings = 2000, 200
	var flood []byte
	for i := range msgs {
		flood, _ = packet.Append(flood, &packet.Publish{Topic: "flood", Payload: []byte(strconv.Itoa(i))}, packet.V311)
	}
	werr := make(chan error, 1)
	go func() { _, err := pub.nc.Write(flood); werr <- err }()
	for range pings {
		sub.send(&packet.PingReq{})
	}
	next, pongs := 0, 0
	for next < msgs || pongs < pings {
		switch p := sub.recv().(type) {
		case *packet.Publish:
			if string(p.Payload) != strconv.Itoa(next) {
				t.Fatalf("message %q, want %d (order [MQTT-4.6.0-6])", p.Payload, next)
			}
			next++
		case *packet.PingResp:
			pongs++
		default:
			t.Fatalf("unexpected %v", p.Type())
		}
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
}
