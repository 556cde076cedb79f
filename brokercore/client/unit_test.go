package client

import (
	"reflect"
	"testing"

	"github.com/outpost-iot/outpost/brokercore/packet"
)

func TestMatchFilter(t *testing.T) {
	for _, tc := range []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/+/c", "a/b/c", true},
		{"a/#", "a", true}, // [MQTT-4.7.1-2]: the parent level too
		{"a/#", "a/b/c", true},
		{"#", "a/b", true},
		{"+", "a", true},
		{"+", "a/b", false},
		{"+/+", "/x", true},    // empty levels are levels
		{"#", "$SYS/x", false}, // [MQTT-4.7.2-1]
		{"+/x", "$SYS/x", false},
		{"$SYS/#", "$SYS/x", true},
		{"a/b", "a/b/", false},
		{"a/b/", "a/b/", true},
	} {
		if got := matchFilter(tc.filter, tc.topic); got != tc.want {
			t.Errorf("matchFilter(%q, %q) = %v, want %v", tc.filter, tc.topic, got, tc.want)
		}
	}
}

func TestSharedSubscriptionMatchesItsFilter(t *testing.T) {
	c := &Client{}
	var hit string
	c.addSub("$share/g/a/+", func(m *Message) { hit = m.Topic })
	c.deliver(&Message{Topic: "a/b"})
	if hit != "a/b" {
		t.Errorf("shared subscription did not match: %q", hit)
	}
}

func TestCheckFilter(t *testing.T) {
	for f, ok := range map[string]bool{
		"a/b": true, "#": true, "a/#": true, "+/+": true, "$share/g/a/#": true, "/": true,
		"": false, "a#": false, "a/#/b": false, "a+": false, "$share/g": false, "$share//a": false, "a\x00": false,
	} {
		if err := checkFilter(f); (err == nil) != ok {
			t.Errorf("checkFilter(%q) = %v, want ok=%v", f, err, ok)
		}
	}
}

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in                string
		scheme, addr, url string
	}{
		{"mqtt://h", "tcp", "h:1883", ""},
		{"tcp://h:1", "tcp", "h:1", ""},
		{"h:2", "tcp", "h:2", ""},
		{"mqtts://h", "tls", "h:8883", ""},
		{"ssl://[::1]:9", "tls", "[::1]:9", ""},
		{"ws://h", "ws", "h:80", "http://h:80/mqtt"},
		{"wss://h:8443/x?y=1", "wss", "h:8443", "https://h:8443/x?y=1"},
	} {
		ep, err := parseURL(tc.in)
		if err != nil || ep.scheme != tc.scheme || ep.addr != tc.addr || ep.url != tc.url {
			t.Errorf("parseURL(%q) = %+v, %v", tc.in, ep, err)
		}
	}
	for _, bad := range []string{"", "http://h", "mqtt://", "mqtt://h:x"} {
		if _, err := parseURL(bad); err == nil {
			t.Errorf("parseURL(%q) accepted", bad)
		}
	}
}

func TestMarshalEntry(t *testing.T) {
	exp := uint32(60)
	for _, e := range []Entry{
		{Seq: 1, Dir: Outgoing, Tag: 99, Packet: &packet.Publish{QoS: 2, PacketID: 7, Topic: "a/b", Retain: true,
			Payload: []byte("x"), Props: packet.Properties{MessageExpiry: &exp, User: []packet.UserProperty{{Key: "k", Value: "v"}}}}},
		{Seq: 1 << 40, Dir: Outgoing, Tag: 1, Packet: &packet.Ack{PacketType: packet.PUBREL, PacketID: 8}},
		{Seq: 3, Dir: Incoming, Packet: &packet.Ack{PacketType: packet.PUBREC, PacketID: 9}},
	} {
		b, err := MarshalEntry(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := UnmarshalEntry(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, e)
		}
	}
	bad, _ := MarshalEntry(Entry{Dir: Incoming, Packet: &packet.Ack{PacketType: packet.PUBREL, PacketID: 1}})
	if _, err := UnmarshalEntry(bad); err == nil {
		t.Error("PUBREL accepted as an incoming entry")
	}
	if _, err := UnmarshalEntry([]byte{1, 2}); err == nil {
		t.Error("short entry accepted")
	}
}

func TestMemoryStoreOrder(t *testing.T) {
	var s MemoryStore
	s.Put(Entry{Seq: 3, Dir: Outgoing, Packet: &packet.Publish{QoS: 1, PacketID: 1, Topic: "a"}})
	s.Put(Entry{Seq: 1, Dir: Outgoing, Packet: &packet.Publish{QoS: 1, PacketID: 2, Topic: "b"}})
	s.Put(Entry{Seq: 2, Dir: Incoming, Packet: &packet.Ack{PacketType: packet.PUBREC, PacketID: 1}})
	// PUBREL replaces the PUBLISH of the same id, with a later Seq.
	s.Put(Entry{Seq: 4, Dir: Outgoing, Packet: &packet.Ack{PacketType: packet.PUBREL, PacketID: 2}})
	es, _ := s.Load()
	var got []uint64
	for _, e := range es {
		got = append(got, e.Seq)
	}
	if !reflect.DeepEqual(got, []uint64{2, 3, 4}) {
		t.Errorf("Load order %v, want [2 3 4]", got)
	}
	s.Delete(Incoming, 1)
	if s.Len() != 2 {
		t.Errorf("Len %d after Delete", s.Len())
	}
	s.Reset()
	if es, _ := s.Load(); len(es) != 0 {
		t.Errorf("%d entries after Reset", len(es))
	}
}
