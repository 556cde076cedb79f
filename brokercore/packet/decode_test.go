package packet

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func ptr[T any](v T) *T { return &v }

// wireCase is one packet as bytes on the wire beside the struct it decodes
// to; Append of the struct must give the same bytes back unless alt says
// the wire form is one of several the spec allows.
type wireCase struct {
	name    string
	version byte
	wire    []byte
	want    Packet
	alt     bool // wire is a valid non-canonical form; Append writes another
}

var wireCases = []wireCase{
	{
		// MQTT 3.1.1 section 3.1.2.10, figure 3.6: the variable header
		// example (flags 0xCE, keep alive 10) with a payload.
		name: "CONNECT 3.1.1 spec example", version: V311,
		wire: []byte{
			0x10, 31, // CONNECT, remaining length 31
			0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name [MQTT-3.1.2-1]
			0x04,       // protocol level 4
			0xCE,       // user name, password, will QoS 1, will flag, clean session
			0x00, 0x0A, // keep alive 10 s
			0x00, 0x02, 'c', '1', // client identifier [MQTT-3.1.3-3]
			0x00, 0x03, 'l', '/', 'w', // will topic
			0x00, 0x03, 'b', 'y', 'e', // will message
			0x00, 0x01, 'u', // user name
			0x00, 0x02, 'p', 'w', // password
		},
		want: &Connect{ProtocolName: "MQTT", ProtocolLevel: V311, CleanStart: true, KeepAlive: 10,
			ClientID: "c1", WillFlag: true, WillQoS: 1, WillTopic: "l/w", WillPayload: []byte("bye"),
			UsernameFlag: true, Username: "u", PasswordFlag: true, Password: []byte("pw")},
	},
	{
		// MQTT 3.1 (mosquitto_pub -V mqttv31): protocol name "MQIsdp", level 3.
		name: "CONNECT 3.1 MQIsdp", version: V31,
		wire: []byte{
			0x10, 16,
			0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', // protocol name
			0x03,       // protocol level 3
			0x02,       // clean session
			0x00, 0x3C, // keep alive 60
			0x00, 0x02, 'i', 'd', // client identifier
		},
		want: &Connect{ProtocolName: "MQIsdp", ProtocolLevel: V31, CleanStart: true, KeepAlive: 60, ClientID: "id"},
	},
	{
		// MQTT 5.0 section 3.1.2.12, figure 3-...: variable header example
		// (flags 0xC2, keep alive 10, Session Expiry Interval 10).
		name: "CONNECT 5.0 spec example", version: V5,
		wire: []byte{
			0x10, 25,
			0x00, 0x04, 'M', 'Q', 'T', 'T',
			0x05,       // protocol version 5
			0xC2,       // user name, password, clean start
			0x00, 0x0A, // keep alive 10
			0x05,                         // property length 5
			0x11, 0x00, 0x00, 0x00, 0x0A, // session expiry interval 10
			0x00, 0x00, // empty client identifier [MQTT-3.1.3-6]
			0x00, 0x01, 'u',
			0x00, 0x02, 'p', 'w',
		},
		want: &Connect{ProtocolName: "MQTT", ProtocolLevel: V5, CleanStart: true, KeepAlive: 10,
			Props: Properties{SessionExpiry: ptr(uint32(10))}, ClientID: "",
			UsernameFlag: true, Username: "u", PasswordFlag: true, Password: []byte("pw")},
	},
	{
		// MQTT 5.0: a password without a user name is allowed (3.1.2.9).
		name: "CONNECT 5.0 will properties, password only", version: V5,
		wire: []byte{
			0x10, 28,
			0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05,
			0x74,       // password, will retain, will QoS 2, will flag
			0x00, 0x00, // keep alive 0
			0x00,            // no properties [MQTT-2.2.2-1]
			0x00, 0x01, 'c', // client identifier
			0x05,                         // will property length
			0x18, 0x00, 0x00, 0x00, 0x05, // will delay interval 5
			0x00, 0x01, 'w', // will topic
			0x00, 0x00, // empty will payload
			0x00, 0x01, 'p', // password
		},
		want: &Connect{ProtocolName: "MQTT", ProtocolLevel: V5, ClientID: "c",
			WillFlag: true, WillQoS: 2, WillRetain: true, WillTopic: "w", WillPayload: []byte{},
			WillProps: Properties{WillDelay: ptr(uint32(5))}, PasswordFlag: true, Password: []byte("p")},
	},
	{
		name: "CONNACK 3.1.1 session present", version: V311,
		wire: []byte{0x20, 0x02, 0x01, 0x00}, // [MQTT-3.2.2-2] session present, accepted
		want: &ConnAck{SessionPresent: true},
	},
	{
		name: "CONNACK 3.1 refused", version: V31,
		wire: []byte{0x20, 0x02, 0x00, 0x05}, // 3.1 has no flags; 5 = not authorized
		want: &ConnAck{ReasonCode: V3NotAuthorized},
	},
	{
		name: "CONNACK 5.0 server limits", version: V5,
		wire: []byte{
			0x20, 13,
			0x00, 0x00, // flags, success
			10,               // property length
			0x21, 0x00, 0x14, // receive maximum 20
			0x22, 0x00, 0x0A, // topic alias maximum 10
			0x24, 0x01, // maximum QoS 1
			0x25, 0x00, // retain not available
		},
		want: &ConnAck{Props: Properties{ReceiveMaximum: ptr(uint16(20)), TopicAliasMaximum: ptr(uint16(10)),
			MaximumQoS: ptr(byte(1)), RetainAvailable: ptr(byte(0))}},
	},
	{
		// MQTT 3.1.1 section 3.3.2.3, figure 3.11: topic "a/b", packet id 10.
		name: "PUBLISH 3.1.1 QoS 1 spec example", version: V311,
		wire: []byte{
			0x32, 9, // PUBLISH, QoS 1
			0x00, 0x03, 'a', '/', 'b', // topic name
			0x00, 0x0A, // packet identifier 10
			'h', 'i', // payload
		},
		want: &Publish{QoS: 1, Topic: "a/b", PacketID: 10, Payload: []byte("hi")},
	},
	{
		name: "PUBLISH 3.1.1 QoS 0 retain empty payload", version: V311,
		wire: []byte{0x31, 5, 0x00, 0x03, 'a', '/', 'b'}, // no packet id at QoS 0 [MQTT-2.2.1-2]
		want: &Publish{Retain: true, Topic: "a/b", Payload: []byte{}},
	},
	{
		name: "PUBLISH 5.0 QoS 2 DUP alias only", version: V5,
		wire: []byte{
			0x3C, 12, // PUBLISH, DUP, QoS 2
			0x00, 0x00, // empty topic: alias must be present (3.3.2.3.4)
			0x00, 0x05, // packet identifier 5
			0x06,             // property length
			0x0B, 0x81, 0x01, // subscription identifier 129 (two-byte varint)
			0x23, 0x00, 0x02, // topic alias 2
			'x',
		},
		want: &Publish{Dup: true, QoS: 2, PacketID: 5, Payload: []byte("x"),
			Props: Properties{TopicAlias: ptr(uint16(2)), SubscriptionIDs: []uint32{129}}},
	},
	{
		name: "PUBLISH 5.0 request/response", version: V5,
		wire: []byte{
			0x30, 25,
			0x00, 0x01, 't',
			20,         // property length
			0x01, 0x01, // payload format indicator: UTF-8
			0x02, 0x00, 0x00, 0x00, 0x3C, // message expiry 60
			0x08, 0x00, 0x01, 'r', // response topic
			0x09, 0x00, 0x01, 0x07, // correlation data
			0x26, 0x00, 0x00, 0x00, 0x00, // user property "" = ""
			'z',
		},
		want: &Publish{Topic: "t", Payload: []byte("z"), Props: Properties{PayloadFormat: ptr(byte(1)),
			MessageExpiry: ptr(uint32(60)), ResponseTopic: "r", CorrelationData: []byte{7},
			User: []UserProperty{{"", ""}}}},
	},
	{name: "PUBACK 3.1.1", version: V311, wire: []byte{0x40, 0x02, 0x00, 0x07}, want: &Ack{PacketType: PUBACK, PacketID: 7}},
	{name: "PUBREC 3.1", version: V31, wire: []byte{0x50, 0x02, 0x00, 0x07}, want: &Ack{PacketType: PUBREC, PacketID: 7}},
	{
		name: "PUBREL 3.1.1 flags 0010", version: V311, // [MQTT-3.6.1-1]
		wire: []byte{0x62, 0x02, 0x00, 0x07}, want: &Ack{PacketType: PUBREL, PacketID: 7},
	},
	{name: "PUBCOMP 5.0 short form", version: V5, wire: []byte{0x70, 0x02, 0x00, 0x07}, want: &Ack{PacketType: PUBCOMP, PacketID: 7}},
	{
		// 3.4.2.1: a reason code of 0 may be sent; we send the short form.
		name: "PUBACK 5.0 explicit success", version: V5, alt: true,
		wire: []byte{0x40, 0x03, 0x00, 0x07, 0x00}, want: &Ack{PacketType: PUBACK, PacketID: 7},
	},
	{
		name: "PUBACK 5.0 reason only", version: V5,
		wire: []byte{0x40, 0x03, 0x00, 0x07, 0x10}, // no matching subscribers
		want: &Ack{PacketType: PUBACK, PacketID: 7, ReasonCode: NoMatchingSubscribers},
	},
	{
		name: "PUBREC 5.0 reason string", version: V5,
		wire: []byte{0x50, 0x08, 0x00, 0x07, 0x97, 0x04, 0x1F, 0x00, 0x01, 'q'},
		want: &Ack{PacketType: PUBREC, PacketID: 7, ReasonCode: QuotaExceeded, Props: Properties{ReasonString: "q"}},
	},
	{
		name: "SUBSCRIBE 3.1.1 two filters", version: V311,
		wire: []byte{
			0x82, 14, // SUBSCRIBE, flags 0010 [MQTT-3.8.1-1]
			0x00, 0x01, // packet identifier
			0x00, 0x03, 'a', '/', 'b', 0x01, // "a/b" QoS 1
			0x00, 0x03, 'c', '/', '#', 0x02, // "c/#" QoS 2
		},
		want: &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a/b", QoS: 1}, {Filter: "c/#", QoS: 2}}},
	},
	{
		name: "SUBSCRIBE 5.0 options and id", version: V5,
		wire: []byte{
			0x82, 9,
			0x00, 0x02,
			0x02, 0x0B, 0x05, // subscription identifier 5
			0x00, 0x01, '#',
			0x2E, // retain handling 2, retain as published, no local, QoS 2
		},
		want: &Subscribe{PacketID: 2, Props: Properties{SubscriptionIDs: []uint32{5}},
			Subscriptions: []Subscription{{Filter: "#", QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2}}},
	},
	{
		name: "SUBACK 3.1.1", version: V311,
		wire: []byte{0x90, 0x05, 0x00, 0x01, 0x00, 0x02, 0x80}, // granted 0, granted 2, failure
		want: &SubAck{PacketID: 1, ReasonCodes: []byte{0, 2, 0x80}},
	},
	{
		name: "SUBACK 5.0", version: V5,
		wire: []byte{0x90, 0x05, 0x00, 0x01, 0x00, 0x01, 0xA2}, // no props, QoS 1, wildcards not supported
		want: &SubAck{PacketID: 1, ReasonCodes: []byte{1, WildcardSubNotSupported}},
	},
	{
		name: "UNSUBSCRIBE 3.1.1", version: V311,
		wire: []byte{0xA2, 0x05, 0x00, 0x03, 0x00, 0x01, '#'}, // flags 0010 [MQTT-3.10.1-1]
		want: &Unsubscribe{PacketID: 3, Filters: []string{"#"}},
	},
	{
		name: "UNSUBSCRIBE 5.0 user property", version: V5,
		wire: []byte{0xA2, 0x0C, 0x00, 0x03, 0x06, 0x26, 0x00, 0x01, 'k', 0x00, 0x00, 0x00, 0x01, '#'},
		want: &Unsubscribe{PacketID: 3, Props: Properties{User: []UserProperty{{"k", ""}}}, Filters: []string{"#"}},
	},
	{name: "UNSUBACK 3.1.1", version: V311, wire: []byte{0xB0, 0x02, 0x00, 0x03}, want: &UnsubAck{PacketID: 3}},
	{
		name: "UNSUBACK 5.0", version: V5,
		wire: []byte{0xB0, 0x05, 0x00, 0x03, 0x00, 0x00, 0x11}, // success, no subscription existed
		want: &UnsubAck{PacketID: 3, ReasonCodes: []byte{0, NoSubscriptionExisted}},
	},
	{name: "PINGREQ", version: V311, wire: []byte{0xC0, 0x00}, want: &PingReq{}},
	{name: "PINGRESP", version: V5, wire: []byte{0xD0, 0x00}, want: &PingResp{}},
	{name: "DISCONNECT 3.1.1", version: V311, wire: []byte{0xE0, 0x00}, want: &Disconnect{}},
	{name: "DISCONNECT 5.0 normal", version: V5, wire: []byte{0xE0, 0x00}, want: &Disconnect{}},
	{
		name: "DISCONNECT 5.0 session expiry", version: V5,
		wire: []byte{0xE0, 0x07, 0x04, 0x05, 0x11, 0x00, 0x00, 0x00, 0x00}, // with will, session expiry 0
		want: &Disconnect{ReasonCode: DisconnectWithWill, Props: Properties{SessionExpiry: ptr(uint32(0))}},
	},
	{
		name: "AUTH 5.0 continue", version: V5,
		wire: []byte{0xF0, 0x0A, 0x18, 0x08, 0x15, 0x00, 0x01, 'S', 0x16, 0x00, 0x01, 0xFF},
		want: &Auth{ReasonCode: ContinueAuthentication, Props: Properties{AuthMethod: "S", AuthData: []byte{0xFF}}},
	},
	{name: "AUTH 5.0 success short", version: V5, wire: []byte{0xF0, 0x00}, want: &Auth{}},
}

func TestDecodeWire(t *testing.T) {
	for _, tc := range wireCases {
		t.Run(tc.name, func(t *testing.T) {
			// Trailing bytes belong to the next packet and are not consumed.
			buf := append(append([]byte{}, tc.wire...), 0xC0, 0x00)
			got, n, err := Decode(buf, tc.version)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if n != len(tc.wire) {
				t.Errorf("consumed %d bytes, want %d", n, len(tc.wire))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Decode:\n got %#v\nwant %#v", got, tc.want)
			}
			enc, err := Append([]byte{0xAA}, tc.want, tc.version)
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			if enc[0] != 0xAA {
				t.Fatalf("Append overwrote dst")
			}
			if !tc.alt && !bytes.Equal(enc[1:], tc.wire) {
				t.Errorf("Append:\n got % x\nwant % x", enc[1:], tc.wire)
			}
			// Every proper prefix is incomplete, never malformed.
			for i := 0; i < len(tc.wire); i++ {
				if _, _, err := Decode(tc.wire[:i], tc.version); !errors.Is(err, ErrIncomplete) {
					t.Fatalf("Decode of %d-byte prefix: %v, want ErrIncomplete", i, err)
				}
			}
		})
	}
}

func TestDecodeAliasesBuffer(t *testing.T) {
	wire := []byte{0x30, 0x05, 0x00, 0x01, 't', 'a', 'b'}
	p, _, err := Decode(wire, V311)
	if err != nil {
		t.Fatal(err)
	}
	pub := p.(*Publish)
	wire[5] = 'X'
	if string(pub.Payload) != "Xb" {
		t.Errorf("payload %q does not alias the input", pub.Payload)
	}
	if cap(pub.Payload) != len(pub.Payload) {
		t.Errorf("payload capacity %d not clipped to %d", cap(pub.Payload), len(pub.Payload))
	}
}

func TestDecodePublishReuse(t *testing.T) {
	var p Publish
	p.Props.User = []UserProperty{{"stale", "x"}}
	wire := []byte{0x32, 0x06, 0x00, 0x01, 't', 0x00, 0x01, 'z'}
	n, err := DecodePublish(wire, V5, &p)
	if err == nil {
		t.Fatalf("v5 PUBLISH without property length decoded: %+v", p)
	}
	wire = []byte{0x32, 0x07, 0x00, 0x01, 't', 0x00, 0x01, 0x00, 'z'}
	if n, err = DecodePublish(wire, V5, &p); err != nil || n != len(wire) {
		t.Fatalf("DecodePublish: %d %v", n, err)
	}
	want := Publish{QoS: 1, Topic: "t", PacketID: 1, Payload: []byte("z")}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got %#v, want %#v", p, want)
	}
	if _, err := DecodePublish([]byte{0xC0, 0x00}, V5, &p); !errors.Is(err, ErrProtocol) {
		t.Errorf("PINGREQ into DecodePublish: %v", err)
	}
}
