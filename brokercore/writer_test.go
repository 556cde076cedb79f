package brokercore

import (
	"bytes"
	"fmt"
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
