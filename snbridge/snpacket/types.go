// Package snpacket is the MQTT-SN 1.2 codec: every message of section 5.4 of
// "MQTT For Sensor Networks (MQTT-SN) Protocol Specification Version 1.2"
// (Stanford-Clark, Truong, IBM, 2013) and the forwarder encapsulation of
// section 5.5, as pure functions over byte slices.
//
//	p, n, err := snpacket.Decode(datagram) // n bytes of datagram were the message
//	out, err := snpacket.Append(buf[:0], &snpacket.Connack{ReturnCode: snpacket.Accepted})
//
// Decode never retains b except through []byte fields of the returned
// packet (Data, WillMsg, GatewayAddr, NodeID, Msg), which alias b; copy them
// if b is reused. It imports only the standard library and does no I/O.
package snpacket

import (
	"errors"
	"fmt"
)

// Errors wrapped by every decode and encode failure (errors.Is works).
var (
	// ErrMalformed: the bytes are not a well-formed MQTT-SN message.
	ErrMalformed = errors.New("malformed mqtt-sn message")
	// ErrUnknownType: the MsgType octet is reserved (section 5.2.2, Table 3).
	ErrUnknownType = errors.New("unknown mqtt-sn message type")
	// ErrTooLarge: the message would not fit the 3-octet length form (65535).
	ErrTooLarge = errors.New("mqtt-sn message too large")
)

// MsgType is the MsgType octet of the header (section 5.2.2, Table 3).
type MsgType byte

// Message types, section 5.2.2 Table 3.
const (
	TypeAdvertise     MsgType = 0x00
	TypeSearchGW      MsgType = 0x01
	TypeGWInfo        MsgType = 0x02
	TypeConnect       MsgType = 0x04
	TypeConnack       MsgType = 0x05
	TypeWillTopicReq  MsgType = 0x06
	TypeWillTopic     MsgType = 0x07
	TypeWillMsgReq    MsgType = 0x08
	TypeWillMsg       MsgType = 0x09
	TypeRegister      MsgType = 0x0A
	TypeRegack        MsgType = 0x0B
	TypePublish       MsgType = 0x0C
	TypePuback        MsgType = 0x0D
	TypePubcomp       MsgType = 0x0E
	TypePubrec        MsgType = 0x0F
	TypePubrel        MsgType = 0x10
	TypeSubscribe     MsgType = 0x12
	TypeSuback        MsgType = 0x13
	TypeUnsubscribe   MsgType = 0x14
	TypeUnsuback      MsgType = 0x15
	TypePingreq       MsgType = 0x16
	TypePingresp      MsgType = 0x17
	TypeDisconnect    MsgType = 0x18
	TypeWillTopicUpd  MsgType = 0x1A
	TypeWillTopicResp MsgType = 0x1B
	TypeWillMsgUpd    MsgType = 0x1C
	TypeWillMsgResp   MsgType = 0x1D
	TypeEncapsulated  MsgType = 0xFE // forwarder encapsulation, section 5.5
)

var typeNames = [...]string{
	TypeAdvertise: "ADVERTISE", TypeSearchGW: "SEARCHGW", TypeGWInfo: "GWINFO",
	TypeConnect: "CONNECT", TypeConnack: "CONNACK", TypeWillTopicReq: "WILLTOPICREQ",
	TypeWillTopic: "WILLTOPIC", TypeWillMsgReq: "WILLMSGREQ", TypeWillMsg: "WILLMSG",
	TypeRegister: "REGISTER", TypeRegack: "REGACK", TypePublish: "PUBLISH",
	TypePuback: "PUBACK", TypePubcomp: "PUBCOMP", TypePubrec: "PUBREC", TypePubrel: "PUBREL",
	TypeSubscribe: "SUBSCRIBE", TypeSuback: "SUBACK", TypeUnsubscribe: "UNSUBSCRIBE",
	TypeUnsuback: "UNSUBACK", TypePingreq: "PINGREQ", TypePingresp: "PINGRESP",
	TypeDisconnect: "DISCONNECT", TypeWillTopicUpd: "WILLTOPICUPD",
	TypeWillTopicResp: "WILLTOPICRESP", TypeWillMsgUpd: "WILLMSGUPD", TypeWillMsgResp: "WILLMSGRESP",
}

func (t MsgType) String() string {
	if t == TypeEncapsulated {
		return "ENCAPSULATED"
	}
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return fmt.Sprintf("MsgType(0x%02X)", byte(t))
}

// ReturnCode is the ReturnCode field (section 5.3.10, Table 5).
type ReturnCode byte

// Return codes, section 5.3.10 Table 5.
const (
	Accepted               ReturnCode = 0x00
	RejectedCongestion     ReturnCode = 0x01
	RejectedInvalidTopicID ReturnCode = 0x02
	RejectedNotSupported   ReturnCode = 0x03
)

func (r ReturnCode) String() string {
	switch r {
	case Accepted:
		return "accepted"
	case RejectedCongestion:
		return "rejected: congestion"
	case RejectedInvalidTopicID:
		return "rejected: invalid topic ID"
	case RejectedNotSupported:
		return "rejected: not supported"
	}
	return fmt.Sprintf("ReturnCode(0x%02X)", byte(r))
}

// TopicIDType is bits 1-0 of the Flags octet (section 5.3.4, Table 4).
type TopicIDType byte

// Topic id types, section 5.3.4; 0b11 is reserved and refused by Decode.
const (
	TopicNormal     TopicIDType = 0 // normal topic id (PUBLISH) / topic name (SUBSCRIBE)
	TopicPredefined TopicIDType = 1 // pre-defined topic id (section 6.7)
	TopicShort      TopicIDType = 2 // short topic name, two octets (section 6.7)
)

// Flags is the Flags octet (section 5.3.4, Table 4):
//
//	bit 7   DUP
//	bit 6-5 QoS: 0b00 QoS 0, 0b01 QoS 1, 0b10 QoS 2, 0b11 QoS -1
//	bit 4   Retain
//	bit 3   Will
//	bit 2   CleanSession
//	bit 1-0 TopicIdType
//
// Every bit is kept, whether or not the message type uses it, so a decoded
// message re-encodes to the same octet.
type Flags struct {
	DUP          bool
	QoS          int8 // -1, 0, 1 or 2
	Retain       bool
	Will         bool
	CleanSession bool
	TopicIDType  TopicIDType
}

// Byte encodes f. QoS outside -1..2 is encoded as its low two bits.
func (f Flags) Byte() byte {
	var b byte
	if f.DUP {
		b |= 0x80
	}
	q := byte(f.QoS) & 0x03 // -1 → 0b11
	b |= q << 5
	if f.Retain {
		b |= 0x10
	}
	if f.Will {
		b |= 0x08
	}
	if f.CleanSession {
		b |= 0x04
	}
	b |= byte(f.TopicIDType) & 0x03
	return b
}

// ParseFlags decodes a Flags octet; the reserved TopicIdType 0b11 is an error.
func ParseFlags(b byte) (Flags, error) {
	f := Flags{
		DUP:          b&0x80 != 0,
		Retain:       b&0x10 != 0,
		Will:         b&0x08 != 0,
		CleanSession: b&0x04 != 0,
		TopicIDType:  TopicIDType(b & 0x03),
	}
	switch (b >> 5) & 0x03 {
	case 0:
		f.QoS = 0
	case 1:
		f.QoS = 1
	case 2:
		f.QoS = 2
	case 3:
		f.QoS = -1
	}
	if f.TopicIDType == 3 {
		return f, fmt.Errorf("flags 0x%02X: TopicIdType 0b11 is reserved (section 5.3.4): %w", b, ErrMalformed)
	}
	return f, nil
}

// ShortTopicID packs a two-character short topic name into the TopicId field
// (section 6.7). It reports false if name is not exactly two octets.
func ShortTopicID(name string) (uint16, bool) {
	if len(name) != 2 {
		return 0, false
	}
	return uint16(name[0])<<8 | uint16(name[1]), true
}

// ShortTopicName unpacks a short topic name from a TopicId field.
func ShortTopicName(id uint16) string {
	return string([]byte{byte(id >> 8), byte(id)})
}
