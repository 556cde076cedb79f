package packet

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error this package returns wraps exactly one of
// them, so callers branch with errors.Is and answer with ReasonCode(err).
var (
	// ErrIncomplete: the buffer ends before the packet does; read more.
	ErrIncomplete = errors.New("incomplete packet")
	// ErrMalformed: the bytes break the encoding rules (MQTT 5.0 section
	// 4.13, reason code 0x81).
	ErrMalformed = errors.New("malformed packet")
	// ErrProtocol: well formed but forbidden by the protocol (0x82).
	ErrProtocol = errors.New("protocol error")
	// ErrPacketTooLarge: larger than the agreed maximum packet size (0x95).
	ErrPacketTooLarge = errors.New("packet too large")
	// ErrUnsupportedProtocol: CONNECT names a protocol name/level pair this
	// codec does not speak (0x84, v3 return code 0x01).
	ErrUnsupportedProtocol = errors.New("unsupported protocol version")
)

// ReasonCode maps an error of this package to the MQTT 5.0 reason code a
// server or client sends when it closes the connection because of it
// (section 4.13): 0x81 malformed (also for an incomplete packet), 0x82
// protocol error, 0x95 packet too large, 0x84 unsupported protocol version,
// 0x80 unspecified error for anything else.
func ReasonCode(err error) byte {
	switch {
	case err == nil:
		return Success
	case errors.Is(err, ErrPacketTooLarge):
		return PacketTooLarge
	case errors.Is(err, ErrUnsupportedProtocol):
		return UnsupportedProtocolVersion
	case errors.Is(err, ErrProtocol):
		return ProtocolError
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrIncomplete):
		return MalformedPacket
	}
	return UnspecifiedError
}

// String returns the control packet name as the spec writes it.
func (t Type) String() string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return fmt.Sprintf("packet type %d", byte(t))
}

var typeNames = [...]string{
	CONNECT: "CONNECT", CONNACK: "CONNACK", PUBLISH: "PUBLISH", PUBACK: "PUBACK",
	PUBREC: "PUBREC", PUBREL: "PUBREL", PUBCOMP: "PUBCOMP", SUBSCRIBE: "SUBSCRIBE",
	SUBACK: "SUBACK", UNSUBSCRIBE: "UNSUBSCRIBE", UNSUBACK: "UNSUBACK",
	PINGREQ: "PINGREQ", PINGRESP: "PINGRESP", DISCONNECT: "DISCONNECT", AUTH: "AUTH",
}

func decodeErr(t Type, field string, sentinel error) error {
	return fmt.Errorf("decode %v: %s: %w", t, field, sentinel)
}

func encodeErr(t Type, field string, sentinel error) error {
	return fmt.Errorf("encode %v: %s: %w", t, field, sentinel)
}

// ErrInvalid is wrapped by Append when the packet struct cannot be encoded
// (QoS 3, packet id 0 for QoS>0, a string over 65,535 bytes, a property the
// packet may not carry...).
var ErrInvalid = errors.New("invalid packet")
