package snpacket

// Packet is one MQTT-SN message. The concrete types are the pointer types
// below, one per MsgType.
type Packet interface {
	Type() MsgType
}

// Advertise is broadcast by a gateway (section 5.4.1): GwId, Duration (seconds
// until the next ADVERTISE).
type Advertise struct {
	GatewayID byte
	Duration  uint16
}

// SearchGW is broadcast by a client looking for a gateway (section 5.4.2).
type SearchGW struct {
	Radius byte
}

// GWInfo answers SEARCHGW (section 5.4.3). GatewayAddr is present only when a
// client sends it on behalf of a gateway.
type GWInfo struct {
	GatewayID   byte
	GatewayAddr []byte
}

// Connect (section 5.4.4): Flags (Will, CleanSession), ProtocolId (0x01),
// Duration (keep alive, seconds), ClientId (1-23 characters, section 5.3.1;
// the gateway checks the length, the codec does not).
type Connect struct {
	Flags      Flags
	ProtocolID byte
	Duration   uint16
	ClientID   string
}

// ProtocolID is the only ProtocolId defined (section 5.3.8).
const ProtocolID = 0x01

// Connack (section 5.4.5).
type Connack struct{ ReturnCode ReturnCode }

// WillTopicReq (section 5.4.6) has no body.
type WillTopicReq struct{}

// WillTopic (section 5.4.7): Flags (QoS, Retain) and the will topic. The
// empty form (no Flags, no topic: exactly two octets) is encoded when Flags
// is zero and Topic is empty.
type WillTopic struct {
	Flags Flags
	Topic string
}

// WillMsgReq (section 5.4.8) has no body.
type WillMsgReq struct{}

// WillMsg (section 5.4.9).
type WillMsg struct{ Msg []byte }

// Register (section 5.4.10): TopicId (0x0000 from a client; the assigned id
// from the gateway), MsgId, TopicName.
type Register struct {
	TopicID   uint16
	MsgID     uint16
	TopicName string
}

// Regack (section 5.4.11).
type Regack struct {
	TopicID    uint16
	MsgID      uint16
	ReturnCode ReturnCode
}

// Publish (section 5.4.12): Flags (DUP, QoS, Retain, TopicIdType), TopicId
// (a short topic name packed with ShortTopicID), MsgId (0x0000 for QoS 0 and
// -1), Data.
type Publish struct {
	Flags   Flags
	TopicID uint16
	MsgID   uint16
	Data    []byte
}

// Puback (section 5.4.13).
type Puback struct {
	TopicID    uint16
	MsgID      uint16
	ReturnCode ReturnCode
}

// Pubrec, Pubrel, Pubcomp carry only MsgId (section 5.4.14).
type (
	Pubrec  struct{ MsgID uint16 }
	Pubrel  struct{ MsgID uint16 }
	Pubcomp struct{ MsgID uint16 }
)

// Subscribe (section 5.4.15): Flags (DUP, QoS, TopicIdType), MsgId, then a
// topic name (TopicNormal; may hold wildcards), a pre-defined TopicId
// (TopicPredefined) or a two-character short name (TopicShort, in TopicName).
type Subscribe struct {
	Flags     Flags
	MsgID     uint16
	TopicName string
	TopicID   uint16
}

// Suback (section 5.4.16): Flags (granted QoS), TopicId, MsgId, ReturnCode.
type Suback struct {
	Flags      Flags
	TopicID    uint16
	MsgID      uint16
	ReturnCode ReturnCode
}

// Unsubscribe (section 5.4.17): as Subscribe (only TopicIdType of Flags counts).
type Unsubscribe struct {
	Flags     Flags
	MsgID     uint16
	TopicName string
	TopicID   uint16
}

// Unsuback (section 5.4.18).
type Unsuback struct{ MsgID uint16 }

// Pingreq (section 5.4.19): ClientId only from a sleeping client that wakes
// up (section 6.14).
type Pingreq struct{ ClientID string }

// Pingresp (section 5.4.20) has no body.
type Pingresp struct{}

// Disconnect (section 5.4.21): with a Duration the client goes to sleep
// (section 6.14); HasDuration tells a present zero from an absent field.
type Disconnect struct {
	HasDuration bool
	Duration    uint16
}

// WillTopicUpd (section 5.4.22): empty (zero Flags, no topic) deletes the will.
type WillTopicUpd struct {
	Flags Flags
	Topic string
}

// WillTopicResp (section 5.4.24).
type WillTopicResp struct{ ReturnCode ReturnCode }

// WillMsgUpd (section 5.4.23).
type WillMsgUpd struct{ Msg []byte }

// WillMsgResp (section 5.4.25).
type WillMsgResp struct{ ReturnCode ReturnCode }

// Encapsulated is the forwarder encapsulation (section 5.5): Ctrl (bits 1-0
// the broadcast radius, the rest reserved and kept), the Wireless Node Id of
// the client behind the forwarder, and the whole encapsulated MQTT-SN
// message. Its Length octet counts only the encapsulation header.
type Encapsulated struct {
	Ctrl   byte
	NodeID []byte
	Msg    []byte
}

func (*Advertise) Type() MsgType     { return TypeAdvertise }
func (*SearchGW) Type() MsgType      { return TypeSearchGW }
func (*GWInfo) Type() MsgType        { return TypeGWInfo }
func (*Connect) Type() MsgType       { return TypeConnect }
func (*Connack) Type() MsgType       { return TypeConnack }
func (*WillTopicReq) Type() MsgType  { return TypeWillTopicReq }
func (*WillTopic) Type() MsgType     { return TypeWillTopic }
func (*WillMsgReq) Type() MsgType    { return TypeWillMsgReq }
func (*WillMsg) Type() MsgType       { return TypeWillMsg }
func (*Register) Type() MsgType      { return TypeRegister }
func (*Regack) Type() MsgType        { return TypeRegack }
func (*Publish) Type() MsgType       { return TypePublish }
func (*Puback) Type() MsgType        { return TypePuback }
func (*Pubrec) Type() MsgType        { return TypePubrec }
func (*Pubrel) Type() MsgType        { return TypePubrel }
func (*Pubcomp) Type() MsgType       { return TypePubcomp }
func (*Subscribe) Type() MsgType     { return TypeSubscribe }
func (*Suback) Type() MsgType        { return TypeSuback }
func (*Unsubscribe) Type() MsgType   { return TypeUnsubscribe }
func (*Unsuback) Type() MsgType      { return TypeUnsuback }
func (*Pingreq) Type() MsgType       { return TypePingreq }
func (*Pingresp) Type() MsgType      { return TypePingresp }
func (*Disconnect) Type() MsgType    { return TypeDisconnect }
func (*WillTopicUpd) Type() MsgType  { return TypeWillTopicUpd }
func (*WillTopicResp) Type() MsgType { return TypeWillTopicResp }
func (*WillMsgUpd) Type() MsgType    { return TypeWillMsgUpd }
func (*WillMsgResp) Type() MsgType   { return TypeWillMsgResp }
func (*Encapsulated) Type() MsgType  { return TypeEncapsulated }
