package storeforward

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/msg"
)

func sampleRecords() []Record {
	t0 := time.Unix(1_764_000_000, 123456789)
	return []Record{
		{Topic: "sites/a/sensors/mast", Payload: []byte(`{"t":21.5}`), QoS: 1, Received: t0},
		{Topic: "t", QoS: 0},
		{Topic: "x/y", Payload: []byte{0, 1, 2}, QoS: 2, Retain: true, Received: t0, ClientID: "sensor-1",
			PayloadFormat: 1, MessageExpiry: 90 * time.Second, ContentType: "application/json",
			ResponseTopic: "reply/here", CorrelationData: []byte{}, // present but empty
			UserProperties: []msg.UserProperty{{Key: "a", Value: "1"}, {Key: "a", Value: "2"}, {Key: "", Value: ""}}},
		{Topic: "z", Payload: bytes.Repeat([]byte("p"), 300), QoS: 1, Received: t0, CorrelationData: []byte("corr"), MessageExpiry: 1},
		{Topic: "e", Payload: []byte("x"), QoS: 1, Received: t0, MessageExpiry: time.Hour, QueuedAfter: 1500 * time.Microsecond},
	}
}

// equalRecords compares records field by field; times by instant, empty
// and nil payloads alike (MQTT cannot tell them apart), but correlation
// data present-and-empty unlike absent.
func equalRecords(a, b Record) bool {
	if !a.Received.Equal(b.Received) || !bytes.Equal(a.Payload, b.Payload) ||
		(a.CorrelationData == nil) != (b.CorrelationData == nil) || !bytes.Equal(a.CorrelationData, b.CorrelationData) {
		return false
	}
	if len(a.UserProperties) != len(b.UserProperties) {
		return false
	}
	for i := range a.UserProperties {
		if a.UserProperties[i] != b.UserProperties[i] {
			return false
		}
	}
	a.Received, b.Received, a.Payload, b.Payload, a.CorrelationData, b.CorrelationData = time.Time{}, time.Time{}, nil, nil, nil, nil
	a.UserProperties, b.UserProperties = nil, nil
	return reflect.DeepEqual(a, b)
}

func TestRecordRoundTrip(t *testing.T) {
	for _, r := range sampleRecords() {
		b, err := AppendRecord([]byte("prefix"), &r)
		if err != nil {
			t.Fatal(err)
		}
		if string(b[:6]) != "prefix" {
			t.Fatalf("AppendRecord did not append")
		}
		got, err := DecodeRecord(b[6:])
		if err != nil {
			t.Fatalf("DecodeRecord(%+v): %v", r, err)
		}
		if !equalRecords(r, got) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
		}
	}
}

func TestRecordWireFormat(t *testing.T) {
	r := Record{Topic: "a/b", Payload: []byte("hi"), QoS: 1, Retain: true, Received: time.Unix(0, 0x0102030405060708), ContentType: "c"}
	b, err := AppendRecord(nil, &r)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		1,                      // version
		0b101,                  // retain, QoS 1
		1, 2, 3, 4, 5, 6, 7, 8, // received ns, big-endian
		3, 'a', '/', 'b', // topic
		2, 'h', 'i', // payload
		3, 1, 'c', // content type field
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("encoding\n got % x\nwant % x", b, want)
	}
	// An unknown field (from a newer outpost) is skipped.
	got, err := DecodeRecord(append(want, 99, 2, 'z', 'z'))
	if err != nil || got.ContentType != "c" || got.Topic != "a/b" {
		t.Fatalf("with an unknown field: %+v, %v", got, err)
	}
}

func TestRecordDecodeErrors(t *testing.T) {
	good, _ := AppendRecord(nil, &Record{Topic: "t", Payload: []byte("p"), ContentType: "c"})
	cases := map[string][]byte{
		"empty":           nil,
		"short header":    good[:9],
		"version 2":       append([]byte{2}, good[1:]...),
		"qos 3":           append([]byte{1, 3}, good[2:]...),
		"unknown flag":    append([]byte{1, 0x80}, good[2:]...),
		"topic truncated": good[:11],
		"field truncated": good[:len(good)-1],
		"duplicate field": append(append([]byte{}, good...), 3, 1, 'd'),
		"bad expiry":      append(append([]byte{}, good...), tagMessageExpiry, 1, 0),
		"bad format":      append(append([]byte{}, good...), tagPayloadFormat, 2, 1, 1),
		"bad user prop":   append(append([]byte{}, good...), tagUserProperty, 1, 5),
	}
	for name, b := range cases {
		if _, err := DecodeRecord(b); !errors.Is(err, ErrBadRecord) {
			t.Errorf("%s: err %v, want ErrBadRecord", name, err)
		}
	}
	if _, err := AppendRecord(nil, &Record{Topic: "t", QoS: 3}); err == nil {
		t.Error("qos 3 encoded")
	}
}

func TestRecordMessage(t *testing.T) {
	m := msg.Message{Topic: "local/t", Payload: []byte("v"), QoS: 2, Retain: true, ClientID: "c1", Received: time.Unix(5, 0),
		PayloadFormat: 1, MessageExpiry: time.Minute, ContentType: "ct", ResponseTopic: "rt", CorrelationData: []byte("cd"),
		UserProperties: []msg.UserProperty{{Key: "k", Value: "v"}}}
	r := RecordFromMessage(&m, "cloud/local/t", 1)
	got := r.Message()
	want := m
	want.Topic, want.QoS = "cloud/local/t", 1
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Message() = %+v, want %+v", got, want)
	}
}

// FuzzRecordRoundTrip decodes arbitrary bytes; whatever decodes must
// encode and decode again to the same record (encoding/csv's FuzzRoundtrip
// shape). Seeds: testdata/fuzz/FuzzRecordRoundTrip and the samples.
func FuzzRecordRoundTrip(f *testing.F) {
	for _, r := range sampleRecords() {
		b, err := AppendRecord(nil, &r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord(b)
		if err != nil {
			return
		}
		enc, err := AppendRecord(nil, &r)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", r, err)
		}
		r2, err := DecodeRecord(enc)
		if err != nil {
			t.Fatalf("decode re-encoded % x: %v", enc, err)
		}
		if !equalRecords(r, r2) {
			t.Fatalf("round trip changed the record:\n first %+v\nsecond %+v", r, r2)
		}
		enc2, _ := AppendRecord(nil, &r2)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable:\n% x\n% x", enc, enc2)
		}
	})
}
