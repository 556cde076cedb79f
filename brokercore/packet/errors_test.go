package packet

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// badCases are packets a receiver must refuse, with the sentinel (and so
// the reason code) it must refuse them with and a piece of the message.
var badCases = []struct {
	name    string
	version byte
	wire    []byte
	want    error
	msg     string
}{
	// Fixed header.
	{"reserved type 0", V311, []byte{0x00, 0x00}, ErrMalformed, "reserved packet type"},
	{"AUTH in 3.1.1", V311, []byte{0xF0, 0x00}, ErrMalformed, "AUTH"},
	{"remaining length 5 bytes [MQTT-1.5.5]", V311, []byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, ErrMalformed, "remaining length"},
	{"remaining length not minimal [MQTT-1.5.5-1]", V311, []byte{0xC0, 0x80, 0x00}, ErrMalformed, "remaining length"},
	{"PUBREL flags 0000 [MQTT-2.1.3-1]", V311, []byte{0x60, 0x02, 0x00, 0x01}, ErrMalformed, "flags"},
	{"SUBSCRIBE flags 0000 [MQTT-3.8.1-1]", V311, []byte{0x80, 0x06, 0x00, 0x01, 0x00, 0x01, '#', 0x00}, ErrMalformed, "flags"},
	{"UNSUBSCRIBE flags 0000 [MQTT-3.10.1-1]", V311, []byte{0xA0, 0x05, 0x00, 0x01, 0x00, 0x01, '#'}, ErrMalformed, "flags"},
	{"PINGREQ flags 0001 [MQTT-2.1.3-1]", V311, []byte{0xC1, 0x00}, ErrMalformed, "flags"},
	{"PUBACK flags 0010", V5, []byte{0x42, 0x02, 0x00, 0x01}, ErrMalformed, "flags"},
	{"PINGREQ with body", V311, []byte{0xC0, 0x01, 0x00}, ErrMalformed, "remaining length"},

	// CONNECT.
	{"CONNECT MQTT level 3", V311, connectWire("MQTT", 3, 0x02), ErrUnsupportedProtocol, `"MQTT" level 3`},
	{"CONNECT MQIsdp level 4", V311, connectWire("MQIsdp", 4, 0x02), ErrUnsupportedProtocol, `"MQIsdp" level 4`},
	{"CONNECT level 6", V311, connectWire("MQTT", 6, 0x02), ErrUnsupportedProtocol, "level 6"},
	{"CONNECT reserved flag [MQTT-3.1.2-3]", V311, connectWire("MQTT", 4, 0x03), ErrMalformed, "MQTT-3.1.2-3"},
	{"CONNECT will QoS without will [MQTT-3.1.2-13]", V311, connectWire("MQTT", 4, 0x0A), ErrMalformed, "without will flag"},
	{"CONNECT will retain without will [MQTT-3.1.2-15]", V311, connectWire("MQTT", 4, 0x22), ErrMalformed, "without will flag"},
	{"CONNECT will QoS 3 [MQTT-3.1.2-14]", V311, connectWire("MQTT", 4, 0x1E), ErrMalformed, "QoS 3"},
	{"CONNECT password without user 3.1.1 [MQTT-3.1.2-22]", V311, connectWire("MQTT", 4, 0x42), ErrMalformed, "MQTT-3.1.2-22"},
	{"CONNECT password without user 3.1", V31, connectWire("MQIsdp", 3, 0x42), ErrMalformed, "MQTT-3.1.2-22"},
	{"CONNECT client id not UTF-8 [MQTT-1.5.4-1]", V311, []byte{0x10, 0x0E, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 0, 0, 2, 0xC3, 0x28}, ErrMalformed, "client identifier"},
	{"CONNECT client id U+0000 [MQTT-1.5.4-2]", V311, []byte{0x10, 0x0E, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 0, 0, 2, 'a', 0}, ErrMalformed, "client identifier"},
	{"CONNECT client id surrogate [MQTT-1.5.4-1]", V311, []byte{0x10, 0x0F, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 0, 0, 3, 0xED, 0xA0, 0x80}, ErrMalformed, "client identifier"},
	{"CONNECT trailing byte", V311, []byte{0x10, 0x0D, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 0, 0, 0, 9}, ErrMalformed, "after payload"},
	{"CONNECT v5 topic alias property [MQTT-2.2.2-2]", V5, []byte{0x10, 0x10, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 0, 3, 0x23, 0, 1, 0, 0}, ErrMalformed, "0x23 not allowed"},
	{"CONNECT v5 session expiry twice", V5, []byte{0x10, 0x17, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 0, 10, 0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2, 0, 0}, ErrProtocol, "repeated"},
	{"CONNECT v5 receive maximum 0", V5, []byte{0x10, 0x10, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 0, 3, 0x21, 0, 0, 0, 0}, ErrProtocol, "0x21"},
	{"CONNECT v5 request problem info 2", V5, []byte{0x10, 0x0F, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 0, 2, 0x17, 2, 0, 0}, ErrProtocol, "0x17"},
	{"CONNECT v5 property length past end", V5, []byte{0x10, 0x0D, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 0, 9, 0, 0}, ErrMalformed, "properties length"},
	{"CONNECT v5 unknown property", V5, []byte{0x10, 0x0F, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 0, 2, 0x7F, 0, 0, 0}, ErrMalformed, "0x7F not allowed"},

	// CONNACK.
	{"CONNACK reserved flags [MQTT-3.2.2-1]", V311, []byte{0x20, 0x02, 0x02, 0x00}, ErrMalformed, "reserved"},
	{"CONNACK return code 6", V311, []byte{0x20, 0x02, 0x00, 0x06}, ErrMalformed, "reason code"},
	{"CONNACK session present on refusal [MQTT-3.2.2-4]", V311, []byte{0x20, 0x02, 0x01, 0x05}, ErrProtocol, "session present"},
	{"CONNACK v5 maximum QoS 2", V5, []byte{0x20, 0x05, 0x00, 0x00, 0x02, 0x24, 0x02}, ErrProtocol, "0x24"},
	{"CONNACK v5 without property length", V5, []byte{0x20, 0x02, 0x00, 0x00}, ErrMalformed, "properties length"},

	// PUBLISH.
	{"PUBLISH QoS 3 [MQTT-3.3.1-4]", V311, []byte{0x36, 0x05, 0, 1, 't', 0, 1}, ErrMalformed, "QoS 3"},
	{"PUBLISH DUP at QoS 0 [MQTT-3.3.1-2]", V311, []byte{0x38, 0x03, 0, 1, 't'}, ErrMalformed, "DUP"},
	{"PUBLISH packet id 0 [MQTT-2.2.1-3]", V311, []byte{0x32, 0x05, 0, 1, 't', 0, 0}, ErrMalformed, "packet identifier 0"},
	{"PUBLISH topic U+0000 [MQTT-1.5.4-2]", V311, []byte{0x30, 0x04, 0, 2, 'a', 0}, ErrMalformed, "topic name"},
	{"PUBLISH topic longer than packet", V311, []byte{0x30, 0x04, 0, 9, 'a', 'b'}, ErrMalformed, "topic name"},
	{"PUBLISH empty topic v3", V311, []byte{0x30, 0x02, 0, 0}, ErrProtocol, "empty topic"},
	{"PUBLISH empty topic v5 without alias", V5, []byte{0x30, 0x03, 0, 0, 0}, ErrProtocol, "empty topic"},
	{"PUBLISH v5 topic alias 0 [MQTT-3.3.2-8]", V5, []byte{0x30, 0x07, 0, 1, 't', 3, 0x23, 0, 0}, ErrProtocol, "0x23"},
	{"PUBLISH v5 subscription id 0", V5, []byte{0x30, 0x06, 0, 1, 't', 2, 0x0B, 0}, ErrProtocol, "0x0B"},
	{"PUBLISH v5 payload format 2", V5, []byte{0x30, 0x06, 0, 1, 't', 2, 0x01, 2}, ErrProtocol, "0x01"},
	{"PUBLISH v5 session expiry property [MQTT-2.2.2-2]", V5, []byte{0x30, 0x09, 0, 1, 't', 5, 0x11, 0, 0, 0, 0}, ErrMalformed, "not allowed"},
	{"PUBLISH v5 topic alias twice", V5, []byte{0x30, 0x0A, 0, 1, 't', 6, 0x23, 0, 1, 0x23, 0, 2}, ErrProtocol, "repeated"},
	{"PUBLISH v5 property varint not minimal", V5, []byte{0x30, 0x07, 0, 1, 't', 3, 0x0B, 0x81, 0x00}, ErrMalformed, "0x0B"},
	{"PUBLISH v5 user property key bad UTF-8", V5, []byte{0x30, 0x0B, 0, 1, 't', 7, 0x26, 0, 1, 0xFF, 0, 1, 'v'}, ErrMalformed, "0x26"},

	// Acks.
	{"PUBACK packet id 0", V311, []byte{0x40, 0x02, 0, 0}, ErrMalformed, "packet identifier 0"},
	{"PUBACK 3.1.1 extra byte", V311, []byte{0x40, 0x03, 0, 1, 0}, ErrMalformed, "extra"},
	{"PUBACK v5 unknown reason", V5, []byte{0x40, 0x03, 0, 1, 0x92}, ErrMalformed, "reason code 0x92"},
	{"PUBREL v5 reason 0x10", V5, []byte{0x62, 0x03, 0, 1, 0x10}, ErrMalformed, "reason code 0x10"},
	{"PUBCOMP v5 subscription id property", V5, []byte{0x70, 0x06, 0, 1, 0, 2, 0x0B, 1}, ErrMalformed, "not allowed"},

	// SUBSCRIBE / SUBACK.
	{"SUBSCRIBE no filters [MQTT-3.8.3-3]", V311, []byte{0x82, 0x02, 0, 1}, ErrProtocol, "MQTT-3.8.3-3"},
	{"SUBSCRIBE packet id 0", V311, []byte{0x82, 0x06, 0, 0, 0, 1, '#', 0}, ErrMalformed, "packet identifier 0"},
	{"SUBSCRIBE QoS 3", V311, []byte{0x82, 0x06, 0, 1, 0, 1, '#', 3}, ErrMalformed, "QoS 3"},
	{"SUBSCRIBE 3.1.1 reserved option bits", V311, []byte{0x82, 0x06, 0, 1, 0, 1, '#', 0x04}, ErrMalformed, "reserved option"},
	{"SUBSCRIBE v5 reserved option bits [MQTT-3.8.3-5]", V5, []byte{0x82, 0x07, 0, 1, 0, 0, 1, '#', 0x40}, ErrMalformed, "MQTT-3.8.3-5"},
	{"SUBSCRIBE v5 retain handling 3", V5, []byte{0x82, 0x07, 0, 1, 0, 0, 1, '#', 0x30}, ErrProtocol, "retain handling"},
	{"SUBSCRIBE v5 no local on shared", V5, []byte{0x82, 0x0E, 0, 1, 0, 0, 8, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', 0x04}, ErrProtocol, "no local"},
	{"SUBSCRIBE v5 two subscription ids", V5, []byte{0x82, 0x0B, 0, 1, 4, 0x0B, 1, 0x0B, 2, 0, 1, '#', 0}, ErrProtocol, "repeated"},
	{"SUBSCRIBE missing options byte", V311, []byte{0x82, 0x05, 0, 1, 0, 1, '#'}, ErrMalformed, "options"},
	{"SUBACK 3.1.1 v5 code", V311, []byte{0x90, 0x03, 0, 1, 0x87}, ErrMalformed, "reason code 0x87"},
	{"SUBACK no codes", V311, []byte{0x90, 0x02, 0, 1}, ErrProtocol, "no reason code"},

	// UNSUBSCRIBE / UNSUBACK.
	{"UNSUBSCRIBE no filters [MQTT-3.10.3-2]", V311, []byte{0xA2, 0x02, 0, 1}, ErrProtocol, "MQTT-3.10.3-2"},
	{"UNSUBSCRIBE v5 reason string property", V5, []byte{0xA2, 0x09, 0, 1, 3, 0x1F, 0, 0, 0, 1, '#'}, ErrMalformed, "not allowed"},
	{"UNSUBACK 3.1.1 with codes", V311, []byte{0xB0, 0x03, 0, 1, 0}, ErrMalformed, "remaining length"},
	{"UNSUBACK v5 bad code", V5, []byte{0xB0, 0x04, 0, 1, 0, 0x02}, ErrMalformed, "reason code 0x02"},

	// DISCONNECT / AUTH.
	{"DISCONNECT 3.1.1 with body", V311, []byte{0xE0, 0x01, 0}, ErrMalformed, "extra"},
	{"DISCONNECT v5 bad code", V5, []byte{0xE0, 0x01, 0x05}, ErrMalformed, "reason code 0x05"},
	{"DISCONNECT v5 topic alias property", V5, []byte{0xE0, 0x05, 0, 3, 0x23, 0, 1}, ErrMalformed, "not allowed"},
	{"AUTH v5 bad code", V5, []byte{0xF0, 0x01, 0x01}, ErrMalformed, "reason code 0x01"},
}

// connectWire is a CONNECT with the given name, level and flags, keep
// alive 0, empty client id and nothing else (v5: empty properties).
func connectWire(name string, level, flags byte) []byte {
	b := []byte{0x10, 0, 0, byte(len(name))}
	b = append(b, name...)
	b = append(b, level, flags, 0, 0)
	if level == V5 {
		b = append(b, 0)
	}
	b = append(b, 0, 0)
	b[1] = byte(len(b) - 2)
	return b
}

func TestDecodeRejects(t *testing.T) {
	for _, tc := range badCases {
		t.Run(tc.name, func(t *testing.T) {
			p, _, err := Decode(tc.wire, tc.version)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode(% x) = %#v, %v; want %v", tc.wire, p, err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not mention %q", err, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), "decode ") {
				t.Errorf("error %q does not name the operation", err)
			}
			// The same bytes through ReadPacket fail the same way.
			_, rerr := ReadPacket(bufio.NewReader(bytes.NewReader(tc.wire)), tc.version, 0)
			if !errors.Is(rerr, tc.want) {
				t.Errorf("ReadPacket: %v, want %v", rerr, tc.want)
			}
		})
	}
}

func TestUnsupportedProtocolReturnsConnect(t *testing.T) {
	p, _, err := Decode(connectWire("MQTT", 7, 0x02), V311)
	if !errors.Is(err, ErrUnsupportedProtocol) {
		t.Fatalf("err = %v", err)
	}
	c, ok := p.(*Connect)
	if !ok || c.ProtocolLevel != 7 || c.ProtocolName != "MQTT" {
		t.Fatalf("p = %#v, want the CONNECT's name and level", p)
	}
}

func TestReasonCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want byte
	}{
		{nil, Success},
		{ErrIncomplete, MalformedPacket},
		{decodeErr(PUBLISH, "topic name", ErrMalformed), MalformedPacket},
		{decodeErr(SUBSCRIBE, "no topic filter", ErrProtocol), ProtocolError},
		{ErrPacketTooLarge, PacketTooLarge},
		{ErrUnsupportedProtocol, UnsupportedProtocolVersion},
		{io.ErrUnexpectedEOF, UnspecifiedError},
	} {
		if got := ReasonCode(tc.err); got != tc.want {
			t.Errorf("ReasonCode(%v) = 0x%02X, want 0x%02X", tc.err, got, tc.want)
		}
	}
}

// stepReader hands out its chunks one Read at a time and fails a Read past
// the last one, so a test sees exactly how far a reader went.
type stepReader struct {
	chunks [][]byte
	reads  int
}

func (s *stepReader) Read(p []byte) (int, error) {
	if s.reads >= len(s.chunks) {
		s.reads++
		return 0, errors.New("read past the header")
	}
	n := copy(p, s.chunks[s.reads])
	s.reads++
	return n, nil
}

func TestReadPacketTooLarge(t *testing.T) {
	// PUBLISH with remaining length 200: 203 bytes in all, limit 100.
	sr := &stepReader{chunks: [][]byte{{0x30, 0xC8, 0x01}}}
	_, err := ReadPacket(bufio.NewReader(sr), V311, 100)
	if !errors.Is(err, ErrPacketTooLarge) {
		t.Fatalf("err = %v, want ErrPacketTooLarge", err)
	}
	if sr.reads != 1 {
		t.Errorf("%d reads, want 1: the body must not be read", sr.reads)
	}
	if ReasonCode(err) != PacketTooLarge {
		t.Errorf("ReasonCode = 0x%02X", ReasonCode(err))
	}
	// Exactly at the limit is fine.
	wire := append([]byte{0x30, 0x62, 0x00, 0x01, 't'}, make([]byte, 95)...)
	p, err := ReadPacket(bufio.NewReader(bytes.NewReader(wire)), V311, len(wire))
	if err != nil {
		t.Fatalf("packet of exactly maxSize: %v", err)
	}
	if got := len(p.(*Publish).Payload); got != 95 {
		t.Errorf("payload %d bytes", got)
	}
}

func TestReadPacketStream(t *testing.T) {
	var stream []byte
	for _, tc := range wireCases {
		if tc.version == V5 {
			stream = append(stream, tc.wire...)
		}
	}
	br := bufio.NewReaderSize(bytes.NewReader(stream), 16)
	var got []Packet
	for {
		p, err := ReadPacket(br, V5, 0)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("packet %d: %v", len(got), err)
		}
		got = append(got, p)
	}
	// Byte fields alias a fresh buffer per packet, not bufio's buffer that
	// later reads reuse: every packet still equals its table entry.
	var i int
	for _, tc := range wireCases {
		if tc.version != V5 {
			continue
		}
		if i >= len(got) {
			t.Fatalf("read %d packets, want more", len(got))
		}
		if !reflect.DeepEqual(got[i], tc.want) {
			t.Errorf("packet %d (%s):\n got %#v\nwant %#v", i, tc.name, got[i], tc.want)
		}
		i++
	}
	if i != len(got) {
		t.Errorf("read %d packets, want %d", len(got), i)
	}
}

func TestReadPacketTruncated(t *testing.T) {
	wire := []byte{0x32, 0x09, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A, 'h', 'i'}
	for i := 1; i < len(wire); i++ {
		_, err := ReadPacket(bufio.NewReader(bytes.NewReader(wire[:i])), V311, 0)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%d of %d bytes: %v, want io.ErrUnexpectedEOF", i, len(wire), err)
		}
	}
	if _, err := ReadPacket(bufio.NewReader(bytes.NewReader(nil)), V311, 0); err != io.EOF {
		t.Errorf("empty stream: %v, want io.EOF", err)
	}
}

func TestAppendRejects(t *testing.T) {
	long := strings.Repeat("a", 65536)
	for _, tc := range []struct {
		name    string
		p       Packet
		version byte
	}{
		{"nil", nil, V311},
		{"PUBLISH QoS 3", &Publish{QoS: 3, Topic: "t", PacketID: 1}, V311},
		{"PUBLISH packet id 0", &Publish{QoS: 1, Topic: "t"}, V311},
		{"PUBLISH topic too long", &Publish{Topic: long}, V311},
		{"PUBLISH topic U+0000", &Publish{Topic: "a\x00"}, V311},
		{"PUBLISH empty topic v3", &Publish{Topic: ""}, V311},
		{"PUBLISH session expiry property", &Publish{Topic: "t", Props: Properties{SessionExpiry: ptr(uint32(1))}}, V5},
		{"PUBLISH topic alias 0", &Publish{Topic: "t", Props: Properties{TopicAlias: ptr(uint16(0))}}, V5},
		{"SUBSCRIBE no filters", &Subscribe{PacketID: 1}, V311},
		{"SUBSCRIBE two ids", &Subscribe{PacketID: 1, Props: Properties{SubscriptionIDs: []uint32{1, 2}},
			Subscriptions: []Subscription{{Filter: "#"}}}, V5},
		{"UNSUBSCRIBE no filters", &Unsubscribe{PacketID: 1}, V311},
		{"ack type", &Ack{PacketType: CONNECT, PacketID: 1}, V311},
		{"CONNECT password without user 3.1.1", &Connect{ProtocolLevel: V311, Password: []byte("p")}, V311},
		{"CONNECT unknown level", &Connect{ProtocolLevel: 9}, V311},
		{"AUTH in 3.1.1", &Auth{}, V311},
		{"CONNACK bad code", &ConnAck{ReasonCode: 9}, V311},
	} {
		dst := []byte{1, 2, 3}
		out, err := Append(dst, tc.p, tc.version)
		if err == nil {
			t.Errorf("%s: Append succeeded: % x", tc.name, out)
			continue
		}
		if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnsupportedProtocol) {
			t.Errorf("%s: %v does not wrap ErrInvalid", tc.name, err)
		}
		if len(out) != 3 {
			t.Errorf("%s: dst grew to %d bytes on error", tc.name, len(out))
		}
	}
}

func TestAppendV3DropsV5Fields(t *testing.T) {
	p := &Publish{Topic: "t", Payload: []byte("x"), Props: Properties{MessageExpiry: ptr(uint32(5))}}
	b, err := Append(nil, p, V311)
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x30, 0x04, 0x00, 0x01, 't', 'x'}; !bytes.Equal(b, want) {
		t.Errorf("got % x, want % x", b, want)
	}
	s := &SubAck{PacketID: 1, ReasonCodes: []byte{NotAuthorized}}
	if b, err = Append(nil, s, V311); err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x90, 0x03, 0x00, 0x01, 0x80}; !bytes.Equal(b, want) {
		t.Errorf("SUBACK: got % x, want % x (v5 failure codes become 0x80)", b, want)
	}
	d := &Disconnect{ReasonCode: DisconnectWithWill}
	if b, err = Append(nil, d, V311); err != nil || !bytes.Equal(b, []byte{0xE0, 0x00}) {
		t.Errorf("DISCONNECT: % x %v", b, err)
	}
}

func TestLargeRemainingLength(t *testing.T) {
	// 2,097,152 bytes of payload: remaining length needs four bytes.
	p := &Publish{Topic: "t", Payload: make([]byte, 2097152)}
	b, err := Append(nil, p, V311)
	if err != nil {
		t.Fatal(err)
	}
	if b[1]&0x80 == 0 || b[2]&0x80 == 0 || b[3]&0x80 == 0 || b[4]&0x80 != 0 {
		t.Fatalf("header % x is not a four-byte remaining length", b[:5])
	}
	q, n, err := Decode(b, V311)
	if err != nil || n != len(b) || len(q.(*Publish).Payload) != len(p.Payload) {
		t.Fatalf("Decode: n=%d err=%v", n, err)
	}
}
