package packet

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

// Round-trip fuzzing, after encoding/csv's FuzzRoundtrip: whatever Decode
// accepts must Append, decode again to an equal packet and encode to the
// same bytes; whatever it refuses must be refused with one of the package's
// sentinels, never a panic. One target per packet type: the first byte's
// type nibble is forced so the fuzzer spends its time inside that type.
// Seeds: testdata/fuzz/<FuzzName>/, written by TestFuzzSeeds -update-seeds.

func roundTrip(t *testing.T, typ Type, version byte, data []byte) {
	version = V31 + version%3
	if len(data) == 0 {
		return
	}
	data = append([]byte{byte(typ)<<4 | data[0]&0x0f}, data[1:]...)
	p1, n1, err := Decode(data, version)
	if err != nil {
		for _, s := range []error{ErrIncomplete, ErrMalformed, ErrProtocol, ErrUnsupportedProtocol} {
			if errors.Is(err, s) {
				return
			}
		}
		t.Fatalf("Decode error %v wraps no sentinel", err)
	}
	if n1 > len(data) || p1.Type() != typ {
		t.Fatalf("Decode: n=%d of %d, type %v", n1, len(data), p1.Type())
	}
	b1, err := Append(nil, p1, version)
	if err != nil {
		t.Fatalf("decoded %#v does not encode: %v", p1, err)
	}
	if len(b1) > n1 {
		t.Fatalf("re-encoding grew from %d to %d bytes: % x -> % x", n1, len(b1), data[:n1], b1)
	}
	p2, n2, err := Decode(b1, version)
	if err != nil || n2 != len(b1) {
		t.Fatalf("re-decode of % x: n=%d err=%v", b1, n2, err)
	}
	if !reflect.DeepEqual(p1, p2) {
		t.Fatalf("round trip changed the packet:\n%#v\n%#v", p1, p2)
	}
	b2, err := Append(b1[:0:0], p2, version)
	if err != nil || !bytes.Equal(b1, b2) {
		t.Fatalf("encoding not stable: % x vs % x (%v)", b1, b2, err)
	}
}

func FuzzConnect(f *testing.F) {
	f.Fuzz(func(t *testing.T, v byte, b []byte) {
		roundTrip(t, CONNECT, v, b)
		sameAsDecode(t, b)
	})
}

// sameAsDecode: DecodeConnect into a Connect left over from another
// packet gives what Decode gives, error for error.
func sameAsDecode(t *testing.T, data []byte) {
	if len(data) == 0 {
		return
	}
	data = append([]byte{byte(CONNECT)<<4 | data[0]&0x0f}, data[1:]...)
	p1, n1, err1 := Decode(data, V5)
	reused := Connect{ClientID: "stale", WillFlag: true, Props: Properties{ReasonString: "stale"}}
	n2, err2 := DecodeConnect(data, &reused)
	sameDecode(t, p1, n1, err1, &reused, n2, err2)
}

// sameDecode: a Decode… into a reused struct (p2, n2, err2) gave what
// Decode gave (p1, n1, err1), error for error.
func sameDecode(t *testing.T, p1 Packet, n1 int, err1 error, p2 Packet, n2 int, err2 error) {
	t.Helper()
	if fmt.Sprint(err1) != fmt.Sprint(err2) {
		t.Fatalf("Decode error %v, decoding into a reused packet: %v", err1, err2)
	}
	if err1 != nil && !errors.Is(err1, ErrUnsupportedProtocol) {
		return
	}
	if err1 == nil && n1 != n2 {
		t.Fatalf("Decode took %d bytes, decoding into a reused packet %d", n1, n2)
	}
	if !reflect.DeepEqual(p1, p2) {
		t.Fatalf("Decode gave %#v\ninto a reused packet: %#v", p1, p2)
	}
}
func FuzzConnAck(f *testing.F) {
	f.Fuzz(func(t *testing.T, v byte, b []byte) { roundTrip(t, CONNACK, v, b) })
}
func FuzzPublish(f *testing.F) {
	f.Fuzz(func(t *testing.T, v byte, b []byte) { roundTrip(t, PUBLISH, v, b) })
}
func FuzzPubAck(f *testing.F) {
	f.Fuzz(func(t *testing.T, v byte, b []byte) { roundTrip(t, PUBACK, v, b) })
}
func FuzzPubRec(f *testing.F) {
	f.Fuzz(func(t *testing.T, v byte, b []byte) { roundTrip(t, PUBREC, v, b) })
}
func FuzzPubRel(f *testing.F) {
	f.Fuzz(func(t *testing.T, v byte, b []byte) { roundTrip(t, PUBREL, v, b) })
}
func FuzzPubComp(f *testing.F) {
	f.Fuzz(func(t *testing.T, v byte, b []byte) { roundTrip(t, PUBCOMP, v, b) })
}
func FuzzSubscribe(f *testing.F) {
	f.Fuzz(func(t *testing.T, v byte, b []byte) {
		roundTrip(t, SUBSCRIBE, v, b)
		if len(b) == 0 {
			return
		}
		version := V31 + v%3
		data := append([]byte{byte(SUBSCRIBE)<<4 | b[0]&0x0f}, b[1:]...)
		p1, n1, err1 := Decode(data, version)
		reused := Subscribe{PacketID: 9, Subscriptions: []Subscription{{Filter: "stale"}}, Props: Properties{ReasonString: "stale"}}
		n2, err2 := DecodeSubscribe(data, version, &reused)
		sameDecode(t, p1, n1, err1, &reused, n2, err2)
	})
}
func FuzzSubAck(f *testing.F) {
	f.Fuzz(func(t *testing.T, v byte, b []byte) { roundTrip(t, SUBACK, v, b) })
}
func FuzzUnsubscribe(f *testing.F) {
	f.Fuzz(func(t *testing.T, v byte, b []byte) { roundTrip(t, UNSUBSCRIBE, v, b) })
}
func FuzzUnsubAck(f *testing.F) {
	f.Fuzz(func(t *testing.T, v byte, b []byte) { roundTrip(t, UNSUBACK, v, b) })
}
func FuzzPingReq(f *testing.F) {
	f.Fuzz(func(t *testing.T, v byte, b []byte) { roundTrip(t, PINGREQ, v, b) })
}
func FuzzPingResp(f *testing.F) {
	f.Fuzz(func(t *testing.T, v byte, b []byte) { roundTrip(t, PINGRESP, v, b) })
}
func FuzzDisconnect(f *testing.F) {
	f.Fuzz(func(t *testing.T, v byte, b []byte) { roundTrip(t, DISCONNECT, v, b) })
}
func FuzzAuth(f *testing.F) {
	f.Fuzz(func(t *testing.T, v byte, b []byte) { roundTrip(t, AUTH, v, b) })
}

var fuzzTargets = map[Type]string{
	CONNECT: "FuzzConnect", CONNACK: "FuzzConnAck", PUBLISH: "FuzzPublish", PUBACK: "FuzzPubAck",
	PUBREC: "FuzzPubRec", PUBREL: "FuzzPubRel", PUBCOMP: "FuzzPubComp", SUBSCRIBE: "FuzzSubscribe",
	SUBACK: "FuzzSubAck", UNSUBSCRIBE: "FuzzUnsubscribe", UNSUBACK: "FuzzUnsubAck", PINGREQ: "FuzzPingReq",
	PINGRESP: "FuzzPingResp", DISCONNECT: "FuzzDisconnect", AUTH: "FuzzAuth",
}

// seedPackets are encoded for every protocol level into each target's
// corpus (those a level cannot carry are skipped), beside the spec examples
// and rejection cases of the tables.
func seedPackets() []Packet {
	u := []UserProperty{{"site", "pump-7"}, {"k", ""}}
	return []Packet{
		&Connect{ProtocolLevel: V31, CleanStart: true, KeepAlive: 60, ClientID: "mosqpub|1-host"},
		&Connect{ProtocolLevel: V311, KeepAlive: 30, ClientID: "outpost", Username: "u", Password: []byte("p"),
			WillTopic: "status/outpost", WillPayload: []byte("offline"), WillQoS: 1, WillRetain: true},
		&Connect{ProtocolLevel: V5, CleanStart: true, KeepAlive: 10, ClientID: "v5",
			Props: Properties{SessionExpiry: ptr(uint32(3600)), ReceiveMaximum: ptr(uint16(20)),
				TopicAliasMaximum: ptr(uint16(10)), MaximumPacketSize: ptr(uint32(1 << 20)),
				RequestProblemInfo: ptr(byte(1)), RequestResponseInfo: ptr(byte(0)), User: u,
				AuthMethod: "SCRAM-SHA-1", AuthData: []byte{1, 2}},
			WillTopic: "w", WillPayload: []byte("bye"), WillQoS: 2,
			WillProps: Properties{WillDelay: ptr(uint32(5)), PayloadFormat: ptr(byte(1)), MessageExpiry: ptr(uint32(9)),
				ContentType: "text/plain", ResponseTopic: "r", CorrelationData: []byte("c"), User: u},
			Password: []byte("p")},
		&ConnAck{},
		&ConnAck{SessionPresent: true},
		&ConnAck{ReasonCode: V3BadUsernameOrPassword},
		&ConnAck{Props: Properties{SessionExpiry: ptr(uint32(0)), AssignedClientID: "auto-1", ServerKeepAlive: ptr(uint16(60)),
			AuthMethod: "m", AuthData: []byte{}, ResponseInfo: "ri", ServerReference: "other:1883", ReasonString: "ok",
			ReceiveMaximum: ptr(uint16(65535)), TopicAliasMaximum: ptr(uint16(0)), MaximumQoS: ptr(byte(1)),
			RetainAvailable: ptr(byte(1)), User: u, MaximumPacketSize: ptr(uint32(268435460)),
			WildcardSubAvailable: ptr(byte(0)), SubIDAvailable: ptr(byte(1)), SharedSubAvailable: ptr(byte(0))}},
		&ConnAck{ReasonCode: BadUserNameOrPassword, Props: Properties{ReasonString: "no"}},
		&Publish{Topic: "sensors/mast/temperature", Payload: []byte("21.5")},
		&Publish{QoS: 1, PacketID: 1, Retain: true, Topic: "a/b", Payload: bytes.Repeat([]byte{0xA5}, 200)},
		&Publish{QoS: 2, PacketID: 65535, Dup: true, Topic: "x", Payload: []byte{}},
		&Publish{QoS: 1, PacketID: 9, Topic: "", Props: Properties{TopicAlias: ptr(uint16(3)), SubscriptionIDs: []uint32{1, 268435455},
			PayloadFormat: ptr(byte(0)), MessageExpiry: ptr(uint32(30)), ContentType: "application/json",
			ResponseTopic: "reply/1", CorrelationData: []byte{0, 1}, User: u}, Payload: []byte(`{"t":1}`)},
		&Ack{PacketType: PUBACK, PacketID: 1},
		&Ack{PacketType: PUBACK, PacketID: 2, ReasonCode: NoMatchingSubscribers},
		&Ack{PacketType: PUBACK, PacketID: 3, ReasonCode: QuotaExceeded, Props: Properties{ReasonString: "full", User: u}},
		&Ack{PacketType: PUBREC, PacketID: 4},
		&Ack{PacketType: PUBREC, PacketID: 5, ReasonCode: PacketIdentifierInUse},
		&Ack{PacketType: PUBREL, PacketID: 6},
		&Ack{PacketType: PUBREL, PacketID: 7, ReasonCode: PacketIdentifierNotFound, Props: Properties{ReasonString: "?"}},
		&Ack{PacketType: PUBCOMP, PacketID: 8},
		&Ack{PacketType: PUBCOMP, PacketID: 9, ReasonCode: PacketIdentifierNotFound},
		&Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "sensors/#", QoS: 1}}},
		&Subscribe{PacketID: 2, Props: Properties{SubscriptionIDs: []uint32{42}, User: u}, Subscriptions: []Subscription{
			{Filter: "a/+/c", QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 1},
			{Filter: "$share/g/x", QoS: 0, RetainHandling: 2}}},
		&SubAck{PacketID: 1, ReasonCodes: []byte{0, 1, 2, 0x80}},
		&SubAck{PacketID: 2, Props: Properties{ReasonString: "r"}, ReasonCodes: []byte{NotAuthorized, SharedSubNotSupported}},
		&Unsubscribe{PacketID: 1, Filters: []string{"a/b", "#"}},
		&Unsubscribe{PacketID: 2, Props: Properties{User: u}, Filters: []string{"$share/g/x"}},
		&UnsubAck{PacketID: 1, ReasonCodes: []byte{0}},
		&UnsubAck{PacketID: 2, Props: Properties{ReasonString: "r"}, ReasonCodes: []byte{NoSubscriptionExisted, NotAuthorized}},
		&PingReq{}, &PingResp{},
		&Disconnect{},
		&Disconnect{ReasonCode: DisconnectWithWill},
		&Disconnect{ReasonCode: ServerMoved, Props: Properties{ServerReference: "b:1883", ReasonString: "moved", User: u,
			SessionExpiry: ptr(uint32(0))}},
		&Auth{},
		&Auth{ReasonCode: ContinueAuthentication, Props: Properties{AuthMethod: "SCRAM-SHA-1", AuthData: []byte("n,,n=user"), User: u}},
		&Auth{ReasonCode: ReAuthenticate, Props: Properties{AuthMethod: "x", ReasonString: "again"}},
	}
}

type fuzzSeed struct {
	version byte
	data    []byte
}

func fuzzSeeds() map[string][]fuzzSeed {
	seeds := map[string][]fuzzSeed{}
	add := func(t Type, v byte, b []byte) {
		if name, ok := fuzzTargets[t]; ok {
			seeds[name] = append(seeds[name], fuzzSeed{v, b})
		}
	}
	for _, p := range seedPackets() {
		for _, v := range []byte{V31, V311, V5} {
			b, err := Append(nil, p, v)
			if err != nil {
				continue // AUTH before v5, password without user name...
			}
			add(p.Type(), v, b)
		}
	}
	for _, tc := range wireCases {
		add(tc.want.Type(), tc.version, tc.wire)
	}
	for _, tc := range badCases {
		add(Type(tc.wire[0]>>4), tc.version, tc.wire)
	}
	return seeds
}

var updateSeeds = flag.Bool("update-seeds", false, "rewrite testdata/fuzz seed corpora")

// TestFuzzSeeds checks that every target's seed corpus holds the seeds
// built from the tables above (rewrite with -update-seeds) and that every
// target has seeds for all three protocol levels.
func TestFuzzSeeds(t *testing.T) {
	for name, seeds := range fuzzSeeds() {
		dir := filepath.Join("testdata", "fuzz", name)
		levels := map[byte]bool{}
		for _, s := range seeds {
			levels[s.version] = true
			content := fmt.Sprintf("go test fuzz v1\nbyte(%d)\n[]byte(%s)\n", s.version, strconv.Quote(string(s.data)))
			file := filepath.Join(dir, fmt.Sprintf("seed-v%d-%x", s.version, sha256.Sum256([]byte(content)))[:len("seed-v5-")+16])
			if *updateSeeds {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(file)
			if err != nil || string(got) != content {
				t.Errorf("%s: seed missing or stale (go test -run TestFuzzSeeds -update-seeds): %v", file, err)
			}
		}
		if name != "FuzzAuth" && (!levels[V31] || !levels[V311] || !levels[V5]) {
			t.Errorf("%s: seeds for levels %v, want 3, 4 and 5", name, levels)
		}
	}
}
