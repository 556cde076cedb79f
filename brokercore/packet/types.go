// Package packet is the MQTT codec: every control packet of MQTT 3.1
// (protocol name "MQIsdp", level 3), 3.1.1 (level 4) and 5.0 (level 5), with
// all MQTT 5.0 properties and reason codes, as pure functions over bytes.
//
// It does no I/O and keeps no state beyond the caller's buffers; the
// connection loop owns reading, deadlines and the protocol version. Spec
// clauses are cited as [MQTT-x.y.z-n] from the OASIS MQTT 5.0 and 3.1.1
// standards. It imports only the standard library.
package packet

// Type is the MQTT control packet type, the high nibble of the first byte
// of the fixed header (section 2.1.2).
type Type byte

// Control packet types.
const (
	CONNECT     Type = 1
	CONNACK     Type = 2
	PUBLISH     Type = 3
	PUBACK      Type = 4
	PUBREC      Type = 5
	PUBREL      Type = 6
	PUBCOMP     Type = 7
	SUBSCRIBE   Type = 8
	SUBACK      Type = 9
	UNSUBSCRIBE Type = 10
	UNSUBACK    Type = 11
	PINGREQ     Type = 12
	PINGRESP    Type = 13
	DISCONNECT  Type = 14
	AUTH        Type = 15 // MQTT 5.0 only
)

// Protocol levels (the "Protocol Version" byte of CONNECT).
const (
	V31  byte = 3 // MQTT 3.1, protocol name "MQIsdp"
	V311 byte = 4 // MQTT 3.1.1, protocol name "MQTT"
	V5   byte = 5 // MQTT 5.0
)

// Packet is any decoded control packet. Each concrete type is a pointer to
// one of the structs below.
type Packet interface {
	Type() Type
}

// UserProperty is a v5 user property (identifier 0x26); it may repeat and
// its order is kept.
type UserProperty struct {
	Key, Value string
}

// Properties holds every MQTT 5.0 property (section 2.2.2.2). Which ones a
// packet may carry is checked on decode ([MQTT-2.2.2-2]: a property not
// allowed for the packet is a Malformed Packet). Pointer fields distinguish
// "absent" from a zero value where the spec gives absence a meaning.
type Properties struct {
	PayloadFormat        *byte          // 0x01 PUBLISH, will
	MessageExpiry        *uint32        // 0x02 PUBLISH, will
	ContentType          string         // 0x03 PUBLISH, will
	ResponseTopic        string         // 0x08 PUBLISH, will
	CorrelationData      []byte         // 0x09 PUBLISH, will
	SubscriptionIDs      []uint32       // 0x0B PUBLISH (may repeat), SUBSCRIBE (one)
	SessionExpiry        *uint32        // 0x11 CONNECT, CONNACK, DISCONNECT
	AssignedClientID     string         // 0x12 CONNACK
	ServerKeepAlive      *uint16        // 0x13 CONNACK
	AuthMethod           string         // 0x15 CONNECT, CONNACK, AUTH
	AuthData             []byte         // 0x16 CONNECT, CONNACK, AUTH
	RequestProblemInfo   *byte          // 0x17 CONNECT
	WillDelay            *uint32        // 0x18 will
	RequestResponseInfo  *byte          // 0x19 CONNECT
	ResponseInfo         string         // 0x1A CONNACK
	ServerReference      string         // 0x1C CONNACK, DISCONNECT
	ReasonString         string         // 0x1F CONNACK, acks, SUBACK, UNSUBACK, DISCONNECT, AUTH
	ReceiveMaximum       *uint16        // 0x21 CONNECT, CONNACK
	TopicAliasMaximum    *uint16        // 0x22 CONNECT, CONNACK
	TopicAlias           *uint16        // 0x23 PUBLISH
	MaximumQoS           *byte          // 0x24 CONNACK
	RetainAvailable      *byte          // 0x25 CONNACK
	User                 []UserProperty // 0x26 all
	MaximumPacketSize    *uint32        // 0x27 CONNECT, CONNACK
	WildcardSubAvailable *byte          // 0x28 CONNACK
	SubIDAvailable       *byte          // 0x29 CONNACK
	SharedSubAvailable   *byte          // 0x2A CONNACK
}

// Connect is CONNECT (section 3.1). ProtocolName is "MQIsdp" for level 3
// and "MQTT" otherwise.
type Connect struct {
	ProtocolName  string
	ProtocolLevel byte // V31, V311 or V5
	CleanStart    bool // "clean session" before v5
	KeepAlive     uint16
	ClientID      string
	UsernameFlag  bool
	Username      string
	PasswordFlag  bool
	Password      []byte
	WillFlag      bool
	WillQoS       byte
	WillRetain    bool
	WillTopic     string
	WillPayload   []byte
	WillProps     Properties // v5 only
	Props         Properties // v5 only
}

// ConnAck is CONNACK (section 3.2). ReasonCode is the v3 return code
// (0..5) or the v5 reason code.
type ConnAck struct {
	SessionPresent bool
	ReasonCode     byte
	Props          Properties
}

// Publish is PUBLISH (section 3.3). PacketID is zero for QoS 0. With a v5
// topic alias, Topic may be empty on the wire; the codec does not resolve
// aliases (the connection does).
type Publish struct {
	Dup      bool
	QoS      byte
	Retain   bool
	Topic    string
	PacketID uint16
	Props    Properties
	Payload  []byte
}

// Ack is PUBACK, PUBREC, PUBREL or PUBCOMP (sections 3.4-3.7), which share
// one layout. PacketType says which. ReasonCode is 0 (Success) for v3 and
// may be omitted on the wire in v5 when 0 and there are no properties.
type Ack struct {
	PacketType Type
	PacketID   uint16
	ReasonCode byte
	Props      Properties
}

// Subscription is one topic filter of SUBSCRIBE with its options (3.8.3.1).
type Subscription struct {
	Filter            string
	QoS               byte
	NoLocal           bool // v5
	RetainAsPublished bool // v5
	RetainHandling    byte // v5: 0 send, 1 send if new, 2 don't send
}

// Subscribe is SUBSCRIBE (section 3.8).
type Subscribe struct {
	PacketID      uint16
	Props         Properties
	Subscriptions []Subscription
}

// SubAck is SUBACK (section 3.9): one return/reason code per filter.
type SubAck struct {
	PacketID    uint16
	Props       Properties
	ReasonCodes []byte
}

// Unsubscribe is UNSUBSCRIBE (section 3.10).
type Unsubscribe struct {
	PacketID uint16
	Props    Properties
	Filters  []string
}

// UnsubAck is UNSUBACK (section 3.11). ReasonCodes is empty before v5.
type UnsubAck struct {
	PacketID    uint16
	Props       Properties
	ReasonCodes []byte
}

// PingReq is PINGREQ (section 3.12).
type PingReq struct{}

// PingResp is PINGRESP (section 3.13).
type PingResp struct{}

// Disconnect is DISCONNECT (section 3.14). Before v5 it carries nothing.
type Disconnect struct {
	ReasonCode byte
	Props      Properties
}

// Auth is AUTH (section 3.15), v5 only.
type Auth struct {
	ReasonCode byte
	Props      Properties
}

func (*Connect) Type() Type     { return CONNECT }
func (*ConnAck) Type() Type     { return CONNACK }
func (*Publish) Type() Type     { return PUBLISH }
func (a *Ack) Type() Type       { return a.PacketType }
func (*Subscribe) Type() Type   { return SUBSCRIBE }
func (*SubAck) Type() Type      { return SUBACK }
func (*Unsubscribe) Type() Type { return UNSUBSCRIBE }
func (*UnsubAck) Type() Type    { return UNSUBACK }
func (*PingReq) Type() Type     { return PINGREQ }
func (*PingResp) Type() Type    { return PINGRESP }
func (*Disconnect) Type() Type  { return DISCONNECT }
func (*Auth) Type() Type        { return AUTH }

// Reason codes (MQTT 5.0 section 2.4) used across packets.
const (
	Success                     byte = 0x00 // also Normal disconnection, Granted QoS 0
	GrantedQoS1                 byte = 0x01
	GrantedQoS2                 byte = 0x02
	DisconnectWithWill          byte = 0x04
	NoMatchingSubscribers       byte = 0x10
	NoSubscriptionExisted       byte = 0x11
	ContinueAuthentication      byte = 0x18
	ReAuthenticate              byte = 0x19
	UnspecifiedError            byte = 0x80
	MalformedPacket             byte = 0x81
	ProtocolError               byte = 0x82
	ImplementationSpecificError byte = 0x83
	UnsupportedProtocolVersion  byte = 0x84
	ClientIdentifierNotValid    byte = 0x85
	BadUserNameOrPassword       byte = 0x86
	NotAuthorized               byte = 0x87
	ServerUnavailable           byte = 0x88
	ServerBusy                  byte = 0x89
	Banned                      byte = 0x8A
	ServerShuttingDown          byte = 0x8B
	BadAuthenticationMethod     byte = 0x8C
	KeepAliveTimeout            byte = 0x8D
	SessionTakenOver            byte = 0x8E
	TopicFilterInvalid          byte = 0x8F
	TopicNameInvalid            byte = 0x90
	PacketIdentifierInUse       byte = 0x91
	PacketIdentifierNotFound    byte = 0x92
	ReceiveMaximumExceeded      byte = 0x93
	TopicAliasInvalid           byte = 0x94
	PacketTooLarge              byte = 0x95
	MessageRateTooHigh          byte = 0x96
	QuotaExceeded               byte = 0x97
	AdministrativeAction        byte = 0x98
	PayloadFormatInvalid        byte = 0x99
	RetainNotSupported          byte = 0x9A
	QoSNotSupported             byte = 0x9B
	UseAnotherServer            byte = 0x9C
	ServerMoved                 byte = 0x9D
	SharedSubNotSupported       byte = 0x9E
	ConnectionRateExceeded      byte = 0x9F
	MaximumConnectTime          byte = 0xA0
	SubIDsNotSupported          byte = 0xA1
	WildcardSubNotSupported     byte = 0xA2
)

// MQTT 3.1 / 3.1.1 CONNACK return codes (3.1.1 section 3.2.2.3) and the
// SUBACK failure code (3.1.1 section 3.9.3).
const (
	V3Accepted              byte = 0x00
	V3UnacceptableProtocol  byte = 0x01
	V3IdentifierRejected    byte = 0x02
	V3ServerUnavailable     byte = 0x03
	V3BadUsernameOrPassword byte = 0x04
	V3NotAuthorized         byte = 0x05
	V3SubAckFailure         byte = 0x80
)

// MaxRemainingLength is the largest Remaining Length the four-byte variable
// byte integer can carry (section 1.5.5): 268,435,455.
const MaxRemainingLength = 268435455
