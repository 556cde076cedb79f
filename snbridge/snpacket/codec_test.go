package snpacket

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// wireCases are the messages of section 5.4 and 5.5 with their wire bytes.
// Each row: the struct, then the octets the spec's figure lays out.
var wireCases = []struct {
	name string
	p    Packet
	wire []byte
}{
	{"advertise", &Advertise{GatewayID: 7, Duration: 900}, []byte{
		0x05, 0x00, // Length, MsgType ADVERTISE (5.4.1)
		0x07,       // GwId
		0x03, 0x84, // Duration 900 s
	}},
	{"searchgw", &SearchGW{Radius: 1}, []byte{0x03, 0x01, 0x01}}, // 5.4.2
	{"gwinfo from gateway", &GWInfo{GatewayID: 1}, []byte{0x03, 0x02, 0x01}},
	{"gwinfo from client", &GWInfo{GatewayID: 1, GatewayAddr: []byte{10, 0, 0, 1}}, []byte{0x07, 0x02, 0x01, 10, 0, 0, 1}},
	{"connect will clean", &Connect{Flags: Flags{Will: true, CleanSession: true}, ProtocolID: ProtocolID, Duration: 60, ClientID: "node1"}, []byte{
		0x0B, 0x04, // Length 11, CONNECT (5.4.4)
		0x0C,       // Flags: Will (bit 3), CleanSession (bit 2)
		0x01,       // ProtocolId
		0x00, 0x3C, // Duration 60 s
		'n', 'o', 'd', 'e', '1', // ClientId
	}},
	{"connack", &Connack{ReturnCode: RejectedCongestion}, []byte{0x03, 0x05, 0x01}},
	{"willtopicreq", &WillTopicReq{}, []byte{0x02, 0x06}},
	{"willtopic", &WillTopic{Flags: Flags{QoS: 1, Retain: true}, Topic: "w/t"}, []byte{
		0x06, 0x07,
		0x30, // Flags: QoS 1 (0b01 << 5), Retain (bit 4)
		'w', '/', 't',
	}},
	{"willtopic empty", &WillTopic{}, []byte{0x02, 0x07}}, // 5.4.7: exactly 2 octets
	{"willmsgreq", &WillMsgReq{}, []byte{0x02, 0x08}},
	{"willmsg", &WillMsg{Msg: []byte("bye")}, []byte{0x05, 0x09, 'b', 'y', 'e'}},
	{"register", &Register{TopicID: 0, MsgID: 0x1234, TopicName: "a/b"}, []byte{
		0x09, 0x0A,
		0x00, 0x00, // TopicId 0 from a client (5.4.10)
		0x12, 0x34, // MsgId
		'a', '/', 'b',
	}},
	{"regack invalid", &Regack{TopicID: 5, MsgID: 0x1234, ReturnCode: RejectedInvalidTopicID}, []byte{0x07, 0x0B, 0x00, 0x05, 0x12, 0x34, 0x02}},
	{"publish qos1 normal", &Publish{Flags: Flags{QoS: 1}, TopicID: 1, MsgID: 2, Data: []byte("hi")}, []byte{
		0x09, 0x0C,
		0x20,       // Flags: QoS 1
		0x00, 0x01, // TopicId
		0x00, 0x02, // MsgId
		'h', 'i',
	}},
	{"publish qos-1 short dup retain", &Publish{Flags: Flags{DUP: true, QoS: -1, Retain: true, TopicIDType: TopicShort}, TopicID: 0x7468, Data: []byte{0}}, []byte{
		0x08, 0x0C,
		0xF2,     // DUP, QoS -1 (0b11), Retain, TopicIdType short (0b10)
		't', 'h', // short topic name "th" (6.7)
		0x00, 0x00, // MsgId unused for QoS -1
		0x00,
	}},
	{"publish qos2 predefined", &Publish{Flags: Flags{QoS: 2, TopicIDType: TopicPredefined}, TopicID: 9, MsgID: 3}, []byte{0x07, 0x0C, 0x41, 0x00, 0x09, 0x00, 0x03}},
	{"puback", &Puback{TopicID: 1, MsgID: 2, ReturnCode: RejectedNotSupported}, []byte{0x07, 0x0D, 0x00, 0x01, 0x00, 0x02, 0x03}},
	{"pubrec", &Pubrec{MsgID: 0xBEEF}, []byte{0x04, 0x0F, 0xBE, 0xEF}},
	{"pubrel", &Pubrel{MsgID: 1}, []byte{0x04, 0x10, 0x00, 0x01}},
	{"pubcomp", &Pubcomp{MsgID: 1}, []byte{0x04, 0x0E, 0x00, 0x01}},
	{"subscribe wildcard", &Subscribe{Flags: Flags{QoS: 1}, MsgID: 7, TopicName: "a/#"}, []byte{
		0x08, 0x12,
		0x20,       // QoS 1, TopicIdType 0b00: topic name follows (5.4.15)
		0x00, 0x07, // MsgId
		'a', '/', '#',
	}},
	{"subscribe predefined", &Subscribe{Flags: Flags{QoS: 2, TopicIDType: TopicPredefined}, MsgID: 7, TopicID: 0x0102}, []byte{0x07, 0x12, 0x41, 0x00, 0x07, 0x01, 0x02}},
	{"subscribe short", &Subscribe{Flags: Flags{TopicIDType: TopicShort}, MsgID: 7, TopicName: "ab"}, []byte{0x07, 0x12, 0x02, 0x00, 0x07, 'a', 'b'}},
	{"suback", &Suback{Flags: Flags{QoS: 1}, TopicID: 3, MsgID: 7, ReturnCode: Accepted}, []byte{0x08, 0x13, 0x20, 0x00, 0x03, 0x00, 0x07, 0x00}},
	{"unsubscribe", &Unsubscribe{MsgID: 8, TopicName: "x"}, []byte{0x06, 0x14, 0x00, 0x00, 0x08, 'x'}},
	{"unsubscribe predefined", &Unsubscribe{Flags: Flags{TopicIDType: TopicPredefined}, MsgID: 8, TopicID: 4}, []byte{0x07, 0x14, 0x01, 0x00, 0x08, 0x00, 0x04}},
	{"unsuback", &Unsuback{MsgID: 8}, []byte{0x04, 0x15, 0x00, 0x08}},
	{"pingreq", &Pingreq{}, []byte{0x02, 0x16}},
	{"pingreq wake", &Pingreq{ClientID: "s1"}, []byte{0x04, 0x16, 's', '1'}}, // 6.14
	{"pingresp", &Pingresp{}, []byte{0x02, 0x17}},
	{"disconnect", &Disconnect{}, []byte{0x02, 0x18}},
	{"disconnect sleep", &Disconnect{HasDuration: true, Duration: 300}, []byte{0x04, 0x18, 0x01, 0x2C}},
	{"willtopicupd", &WillTopicUpd{Flags: Flags{QoS: 2}, Topic: "t"}, []byte{0x04, 0x1A, 0x40, 't'}},
	{"willtopicupd delete", &WillTopicUpd{}, []byte{0x02, 0x1A}},
	{"willtopicresp", &WillTopicResp{}, []byte{0x03, 0x1B, 0x00}},
	{"willmsgupd", &WillMsgUpd{Msg: []byte("m")}, []byte{0x03, 0x1C, 'm'}},
	{"willmsgresp", &WillMsgResp{ReturnCode: RejectedNotSupported}, []byte{0x03, 0x1D, 0x03}},
	{"encapsulated", &Encapsulated{Ctrl: 0x01, NodeID: []byte{0xAA, 0xBB}, Msg: []byte{0x02, 0x16}}, []byte{
		0x05, 0xFE, // Length of the encapsulation header only (5.5), MsgType 0xFE
		0x01,       // Ctrl: radius 1
		0xAA, 0xBB, // Wireless Node Id
		0x02, 0x16, // the encapsulated PINGREQ
	}},
}

func TestWireBytes(t *testing.T) {
	for _, tc := range wireCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Encode(tc.p)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !bytes.Equal(got, tc.wire) {
				t.Fatalf("Encode = % X, want % X", got, tc.wire)
			}
			p, n, err := Decode(tc.wire)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if n != len(tc.wire) {
				t.Fatalf("Decode consumed %d of %d", n, len(tc.wire))
			}
			if !reflect.DeepEqual(p, tc.p) {
				t.Fatalf("Decode = %#v, want %#v", p, tc.p)
			}
		})
	}
}

// TestLongForm checks the 3-octet length form (section 5.2.1) both ways.
func TestLongForm(t *testing.T) {
	data := bytes.Repeat([]byte{'x'}, 300)
	p := &Publish{Flags: Flags{QoS: 1}, TopicID: 1, MsgID: 1, Data: data}
	b, err := Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x01, 0x01, 0x35, 0x0C} // 0x01, length 309 = 4 + 5 + 300, PUBLISH
	if !bytes.Equal(b[:4], want) || len(b) != 309 {
		t.Fatalf("header % X len %d, want % X len 309", b[:4], len(b), want)
	}
	got, n, err := Decode(b)
	if err != nil || n != 309 || !reflect.DeepEqual(got, p) {
		t.Fatalf("Decode = %v, %d, %v", got, n, err)
	}
	// A short message may also use the long form; it decodes the same.
	q, n, err := Decode([]byte{0x01, 0x00, 0x04, 0x17})
	if err != nil || n != 4 || q.Type() != TypePingresp {
		t.Fatalf("long-form PINGRESP: %v %d %v", q, n, err)
	}
	// Too large for the 3-octet form.
	if _, err := Encode(&Publish{Data: make([]byte, MaxLen)}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize: err = %v, want ErrTooLarge", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name string
		b    []byte
		want error
		msg  string
	}{
		{"empty", nil, ErrMalformed, "need at least 2"},
		{"one octet", []byte{0x02}, ErrMalformed, "need at least 2"},
		{"zero length", []byte{0x00, 0x16}, ErrMalformed, "shorter than the header"},
		{"length beyond datagram", []byte{0x05, 0x16, 0x00}, ErrMalformed, "says 5 octets, have 3"},
		{"long form truncated", []byte{0x01, 0x00}, ErrMalformed, "needs 4 octets"},
		{"long form too short", []byte{0x01, 0x00, 0x03, 0x16}, ErrMalformed, "shorter than the header"},
		{"reserved type", []byte{0x02, 0x03}, ErrUnknownType, "0x03"},
		{"reserved type 0x11", []byte{0x02, 0x11}, ErrUnknownType, "0x11"},
		{"truncated publish", []byte{0x05, 0x0C, 0x00, 0x00, 0x01}, ErrMalformed, "PUBLISH: MsgId: truncated"},
		{"trailing octets", []byte{0x03, 0x17, 0x00}, ErrMalformed, "PINGRESP: length: 1 unexpected trailing"},
		{"reserved topic id type", []byte{0x07, 0x0C, 0x03, 0, 1, 0, 1}, ErrMalformed, "TopicIdType 0b11"},
		{"short name wrong size", []byte{0x08, 0x12, 0x02, 0, 1, 'a', 'b', 'c'}, ErrMalformed, "short topic name is 3 octets"},
		{"disconnect odd duration", []byte{0x03, 0x18, 0x01}, ErrMalformed, "DISCONNECT: Duration: truncated"},
		{"encapsulated short header", []byte{0x02, 0xFE}, ErrMalformed, "ENCAPSULATED"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Decode(tc.b)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %q, want it to mention %q", err, tc.msg)
			}
		})
	}
}

func TestDecodeConsumesLength(t *testing.T) {
	// Two messages back to back: Decode reads only the first.
	b := []byte{0x02, 0x17, 0x04, 0x15, 0x00, 0x01}
	p, n, err := Decode(b)
	if err != nil || n != 2 || p.Type() != TypePingresp {
		t.Fatalf("first: %v %d %v", p, n, err)
	}
	p, n, err = Decode(b[n:])
	if err != nil || n != 4 || p.(*Unsuback).MsgID != 1 {
		t.Fatalf("second: %v %d %v", p, n, err)
	}
}

func TestFlags(t *testing.T) {
	for q, bits := range map[int8]byte{0: 0x00, 1: 0x20, 2: 0x40, -1: 0x60} {
		f, err := ParseFlags(bits)
		if err != nil || f.QoS != q || f.Byte() != bits {
			t.Errorf("QoS %d: ParseFlags(0x%02X) = %+v, %v", q, bits, f, err)
		}
	}
	if _, err := Encode(&Publish{Flags: Flags{TopicIDType: 3}}); !errors.Is(err, ErrMalformed) {
		t.Errorf("reserved TopicIdType encoded: %v", err)
	}
	if _, err := Encode(&Subscribe{Flags: Flags{TopicIDType: TopicShort}, TopicName: "abc"}); !errors.Is(err, ErrMalformed) {
		t.Errorf("3-char short name encoded: %v", err)
	}
	id, ok := ShortTopicID("th")
	if !ok || id != 0x7468 || ShortTopicName(id) != "th" {
		t.Errorf("ShortTopicID: %x %v", id, ok)
	}
}

func BenchmarkDecodePublish(b *testing.B) {
	wire, _ := Encode(&Publish{Flags: Flags{QoS: 1}, TopicID: 1, MsgID: 2, Data: make([]byte, 64)})
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Decode(wire); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendPublish(b *testing.B) {
	p := &Publish{Flags: Flags{QoS: 1}, TopicID: 1, MsgID: 2, Data: make([]byte, 64)}
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = Append(buf[:0], p); err != nil {
			b.Fatal(err)
		}
	}
}
