package packet

import (
	"bufio"
	"bytes"
	"reflect"
	"testing"
)

func TestSmokeRoundTrip(t *testing.T) {
	one := byte(1)
	u16 := uint16(10)
	u32 := uint32(60)
	pkts := []Packet{
		&Connect{ProtocolLevel: V5, CleanStart: true, KeepAlive: 30, ClientID: "c1", Username: "u", Password: []byte("p"), WillTopic: "w", WillPayload: []byte("bye"), WillQoS: 1, Props: Properties{SessionExpiry: &u32, ReceiveMaximum: &u16}, WillProps: Properties{PayloadFormat: &one}},
		&ConnAck{SessionPresent: true, Props: Properties{TopicAliasMaximum: &u16}},
		&Publish{QoS: 1, PacketID: 7, Topic: "a/b", Payload: []byte("hi"), Props: Properties{TopicAlias: &u16}},
		&Ack{PacketType: PUBREL, PacketID: 9},
		&Subscribe{PacketID: 3, Subscriptions: []Subscription{{Filter: "a/#", QoS: 2, NoLocal: true}}},
		&SubAck{PacketID: 3, ReasonCodes: []byte{2}},
		&Unsubscribe{PacketID: 4, Filters: []string{"a/#"}},
		&UnsubAck{PacketID: 4, ReasonCodes: []byte{0}},
		&PingReq{}, &PingResp{}, &Disconnect{ReasonCode: 0x04}, &Auth{ReasonCode: 0x18, Props: Properties{AuthMethod: "x"}},
	}
	for _, p := range pkts {
		b, err := Append(nil, p, V5)
		if err != nil {
			t.Fatalf("%T: %v", p, err)
		}
		q, n, err := Decode(b, V5)
		if err != nil || n != len(b) {
			t.Fatalf("%T: % x: %v %d", p, b, err, n)
		}
		r, err := ReadPacket(bufio.NewReader(bytes.NewReader(b)), V5, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(q, r) {
			t.Fatalf("%#v != %#v", q, r)
		}
		t.Logf("%T % x", p, b)
	}
}
