package storeforward

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/outpost-iot/outpost/brokercore/msg"
)

// Record is one cloud-bound message as the tap stores it in the queue and
// the uplink reads it back: the message as it will go to the cloud (topic
// already under the rule's remote_prefix, QoS already the cloud QoS) plus
// when and from whom the broker received it.
//
// The per-message id the cloud sees (user property outpost-id) is not
// stored: it is derived from the database id, the lane and the record's
// queue sequence number, which the single queue writer assigns and which
// never change, so it is stable across resends and restarts.
type Record struct {
	Topic    string
	Payload  []byte
	QoS      byte // towards the cloud: min(rule qos, publish qos)
	Retain   bool
	Received time.Time // when the broker accepted the message (UTC, ns)
	ClientID string    // the publishing client, for logs and loop checks

	// MQTT 5.0 properties of the message (section 3.3.2.3), passed through.
	PayloadFormat   byte
	MessageExpiry   time.Duration // 0: never expires (kept to the nanosecond; the uplink sends the remaining seconds)
	ContentType     string
	ResponseTopic   string
	CorrelationData []byte
	UserProperties  []msg.UserProperty

	// QueuedAfter is how long after Received the tap queued the message,
	// kept for a message with an expiry: the uplink measures the expiry as
	// QueuedAfter plus the time waited in the queue, which a step of the
	// system clock does not change (queue time, storeforward/queue). 0: not
	// recorded (the expiry is measured from Received).
	QueuedAfter time.Duration
}

// RecordVersion is the first byte of every encoded Record.
const RecordVersion = 1

// Record encoding, version 1 (all integers big-endian or unsigned varints):
//
//	version   1 byte, RecordVersion
//	flags     1 byte: bits 0-1 QoS, bit 2 retain; other bits must be 0
//	received  8 bytes, unix nanoseconds (int64)
//	topic     uvarint length, bytes
//	payload   uvarint length, bytes
//	fields    until the end: tag byte, uvarint length, that many bytes
//
// Field tags: 1 payload format (1 byte), 2 message expiry (uvarint ns),
// 3 content type, 4 response topic, 5 correlation data, 6 user property
// (uvarint key length, key, value), 7 client id, 8 queued after (uvarint
// ns, not 0). Tags 1-5, 7 and 8 appear at most once; 6 repeats, in order. A decoder skips tags it does not know, so
// a field can be added without a new version; a change to what is above
// the fields needs one.
const (
	tagPayloadFormat = 1 + iota
	tagMessageExpiry
	tagContentType
	tagResponseTopic
	tagCorrelationData
	tagUserProperty
	tagClientID
	tagQueuedAfter
)

// ErrBadRecord is wrapped by every DecodeRecord error.
var ErrBadRecord = errors.New("bad queue record")

// RecordFromMessage is the record of m going to the cloud as topic at qos.
func RecordFromMessage(m *msg.Message, topic string, qos byte) Record {
	return Record{
		Topic: topic, Payload: m.Payload, QoS: qos, Retain: m.Retain, Received: m.Received, ClientID: m.ClientID,
		PayloadFormat: m.PayloadFormat, MessageExpiry: m.MessageExpiry, ContentType: m.ContentType,
		ResponseTopic: m.ResponseTopic, CorrelationData: m.CorrelationData, UserProperties: m.UserProperties,
	}
}

// Message returns the record as a msg.Message (sharing its slices).
func (r *Record) Message() msg.Message {
	return msg.Message{
		Topic: r.Topic, Payload: r.Payload, QoS: r.QoS, Retain: r.Retain, Received: r.Received, ClientID: r.ClientID,
		PayloadFormat: r.PayloadFormat, MessageExpiry: r.MessageExpiry, ContentType: r.ContentType,
		ResponseTopic: r.ResponseTopic, CorrelationData: r.CorrelationData, UserProperties: r.UserProperties,
	}
}

// AppendRecord appends the encoding of r to dst.
func AppendRecord(dst []byte, r *Record) ([]byte, error) {
	if r.QoS > 2 {
		return dst, fmt.Errorf("encode queue record for %q: qos %d", r.Topic, r.QoS)
	}
	if r.MessageExpiry < 0 || r.QueuedAfter < 0 {
		return dst, fmt.Errorf("encode queue record for %q: negative message expiry %v or queue delay %v", r.Topic, r.MessageExpiry, r.QueuedAfter)
	}
	flags := r.QoS
	if r.Retain {
		flags |= 1 << 2
	}
	var recv int64
	if !r.Received.IsZero() {
		recv = r.Received.UnixNano()
	}
	dst = append(dst, RecordVersion, flags)
	dst = binary.BigEndian.AppendUint64(dst, uint64(recv))
	dst = appendBytes(dst, []byte(r.Topic))
	dst = appendBytes(dst, r.Payload)
	if r.PayloadFormat != 0 {
		dst = append(dst, tagPayloadFormat, 1, r.PayloadFormat)
	}
	if r.MessageExpiry > 0 {
		dst = appendField(dst, tagMessageExpiry, binary.AppendUvarint(nil, uint64(r.MessageExpiry)))
	}
	if r.ContentType != "" {
		dst = appendField(dst, tagContentType, []byte(r.ContentType))
	}
	if r.ResponseTopic != "" {
		dst = appendField(dst, tagResponseTopic, []byte(r.ResponseTopic))
	}
	if r.CorrelationData != nil {
		dst = appendField(dst, tagCorrelationData, r.CorrelationData)
	}
	for _, u := range r.UserProperties {
		v := appendBytes(make([]byte, 0, len(u.Key)+len(u.Value)+2), []byte(u.Key))
		dst = appendField(dst, tagUserProperty, append(v, u.Value...))
	}
	if r.ClientID != "" {
		dst = appendField(dst, tagClientID, []byte(r.ClientID))
	}
	if r.QueuedAfter > 0 {
		dst = appendField(dst, tagQueuedAfter, binary.AppendUvarint(nil, uint64(r.QueuedAfter)))
	}
	return dst, nil
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func appendField(dst []byte, tag byte, b []byte) []byte {
	return appendBytes(append(dst, tag), b)
}

// DecodeRecord decodes a record. The result's byte slices alias b.
func DecodeRecord(b []byte) (Record, error) {
	var r Record
	if len(b) < 10 {
		return r, fmt.Errorf("%w: %d bytes, shorter than the 10-byte header", ErrBadRecord, len(b))
	}
	if b[0] != RecordVersion {
		return r, fmt.Errorf("%w: version %d, want %d", ErrBadRecord, b[0], RecordVersion)
	}
	flags := b[1]
	if flags&^7 != 0 || flags&3 == 3 {
		return r, fmt.Errorf("%w: flags %#02x", ErrBadRecord, flags)
	}
	r.QoS, r.Retain = flags&3, flags&4 != 0
	if ns := int64(binary.BigEndian.Uint64(b[2:10])); ns != 0 {
		r.Received = time.Unix(0, ns)
	}
	rest := b[10:]
	topic, rest, err := readBytes(rest, "topic")
	if err != nil {
		return r, err
	}
	r.Topic = string(topic)
	if r.Payload, rest, err = readBytes(rest, "payload"); err != nil {
		return r, err
	}
	if len(r.Payload) == 0 {
		r.Payload = nil
	}
	var seen uint32
	for len(rest) > 0 {
		tag := rest[0]
		var v []byte
		if v, rest, err = readBytes(rest[1:], fmt.Sprintf("field %d", tag)); err != nil {
			return r, err
		}
		if tag != tagUserProperty && tag < 32 {
			if seen&(1<<tag) != 0 {
				return r, fmt.Errorf("%w: field %d twice", ErrBadRecord, tag)
			}
			seen |= 1 << tag
		}
		switch tag {
		case tagPayloadFormat:
			if len(v) != 1 || v[0] == 0 {
				return r, fmt.Errorf("%w: payload format field of %d bytes", ErrBadRecord, len(v))
			}
			r.PayloadFormat = v[0]
		case tagMessageExpiry:
			ns, n := binary.Uvarint(v)
			if n <= 0 || n != len(v) || ns == 0 || ns > math.MaxInt64 {
				return r, fmt.Errorf("%w: message expiry field % x", ErrBadRecord, v)
			}
			r.MessageExpiry = time.Duration(ns)
		case tagQueuedAfter:
			ns, n := binary.Uvarint(v)
			if n <= 0 || n != len(v) || ns == 0 || ns > math.MaxInt64 {
				return r, fmt.Errorf("%w: queued-after field % x", ErrBadRecord, v)
			}
			r.QueuedAfter = time.Duration(ns)
		case tagContentType:
			r.ContentType = string(v)
		case tagResponseTopic:
			r.ResponseTopic = string(v)
		case tagCorrelationData:
			r.CorrelationData = v
		case tagUserProperty:
			key, val, err := readBytes(v, "user property key")
			if err != nil {
				return r, err
			}
			r.UserProperties = append(r.UserProperties, msg.UserProperty{Key: string(key), Value: string(val)})
		case tagClientID:
			r.ClientID = string(v)
		default:
			// A field from a newer outpost: skip it.
		}
	}
	return r, nil
}

func readBytes(b []byte, what string) (field, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, nil, fmt.Errorf("%w: %s length missing or malformed", ErrBadRecord, what)
	}
	b = b[k:]
	if n > uint64(len(b)) {
		return nil, nil, fmt.Errorf("%w: %s of %d bytes, only %d left", ErrBadRecord, what, n, len(b))
	}
	return b[:n:n], b[n:], nil
}
