package snpacket

import (
	"encoding/binary"
	"fmt"
)

// MaxLen is the largest message the 3-octet length form can carry (section 5.2.1).
const MaxLen = 65535

// Decode reads one MQTT-SN message from the start of b and returns it with
// the number of octets it occupied (its Length field; for an Encapsulated
// message, all of b). A datagram transport should refuse a message whose n
// differs from the datagram's size.
//
// Section 5.2.1: the Length field is one octet (2..255), or three octets
// 0x01, MSB, LSB when the first is 0x01; it counts the whole message.
func Decode(b []byte) (Packet, int, error) {
	if len(b) < 2 {
		return nil, 0, fmt.Errorf("decode header: %d octets, need at least 2: %w", len(b), ErrMalformed)
	}
	if b[0] != 0x01 && MsgType(b[1]) == TypeEncapsulated {
		p, err := decodeEncapsulated(b)
		if err != nil {
			return nil, 0, err
		}
		return p, len(b), nil
	}
	var length, hdr int
	if b[0] == 0x01 {
		if len(b) < 4 {
			return nil, 0, fmt.Errorf("decode header: 3-octet length form needs 4 octets, have %d: %w", len(b), ErrMalformed)
		}
		length, hdr = int(binary.BigEndian.Uint16(b[1:3])), 3
		if length < 4 {
			return nil, 0, fmt.Errorf("decode header: 3-octet length %d is shorter than the header: %w", length, ErrMalformed)
		}
	} else {
		length, hdr = int(b[0]), 1
		if length < 2 {
			return nil, 0, fmt.Errorf("decode header: length %d is shorter than the header: %w", length, ErrMalformed)
		}
	}
	if length > len(b) {
		return nil, 0, fmt.Errorf("decode header: length field says %d octets, have %d: %w", length, len(b), ErrMalformed)
	}
	t := MsgType(b[hdr])
	r := reader{t: t, b: b[hdr+1 : length]}
	p, err := r.decode()
	if err != nil {
		return nil, 0, err
	}
	return p, length, nil
}

type reader struct {
	t   MsgType
	b   []byte
	err error
}

func (r *reader) fail(field, why string) {
	if r.err == nil {
		r.err = fmt.Errorf("decode %s: %s: %s: %w", r.t, field, why, ErrMalformed)
	}
}

func (r *reader) u8(field string) byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 1 {
		r.fail(field, "truncated")
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u16(field string) uint16 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 2 {
		r.fail(field, "truncated")
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v
}

func (r *reader) flags() Flags {
	b := r.u8("flags")
	if r.err != nil {
		return Flags{}
	}
	f, err := ParseFlags(b)
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("decode %s: %w", r.t, err)
	}
	return f
}

// rest returns the remaining octets (nil when none).
func (r *reader) rest() []byte {
	if r.err != nil || len(r.b) == 0 {
		r.b = nil
		return nil
	}
	v := r.b
	r.b = nil
	return v
}

func (r *reader) end() {
	if r.err == nil && len(r.b) != 0 {
		r.fail("length", fmt.Sprintf("%d unexpected trailing octets", len(r.b)))
	}
}

func (r *reader) decode() (Packet, error) {
	var p Packet
	switch r.t {
	case TypeAdvertise: // section 5.4.1
		p = &Advertise{GatewayID: r.u8("GwId"), Duration: r.u16("Duration")}
	case TypeSearchGW: // section 5.4.2
		p = &SearchGW{Radius: r.u8("Radius")}
	case TypeGWInfo: // section 5.4.3
		p = &GWInfo{GatewayID: r.u8("GwId"), GatewayAddr: r.rest()}
	case TypeConnect: // section 5.4.4
		c := &Connect{Flags: r.flags(), ProtocolID: r.u8("ProtocolId"), Duration: r.u16("Duration")}
		c.ClientID = string(r.rest())
		p = c
	case TypeConnack: // section 5.4.5
		p = &Connack{ReturnCode: ReturnCode(r.u8("ReturnCode"))}
	case TypeWillTopicReq: // section 5.4.6
		p = &WillTopicReq{}
	case TypeWillTopic: // section 5.4.7; the empty form has no Flags
		w := &WillTopic{}
		if len(r.b) > 0 {
			w.Flags = r.flags()
			w.Topic = string(r.rest())
		}
		p = w
	case TypeWillMsgReq: // section 5.4.8
		p = &WillMsgReq{}
	case TypeWillMsg: // section 5.4.9
		p = &WillMsg{Msg: r.rest()}
	case TypeRegister: // section 5.4.10
		g := &Register{TopicID: r.u16("TopicId"), MsgID: r.u16("MsgId")}
		g.TopicName = string(r.rest())
		p = g
	case TypeRegack: // section 5.4.11
		p = &Regack{TopicID: r.u16("TopicId"), MsgID: r.u16("MsgId"), ReturnCode: ReturnCode(r.u8("ReturnCode"))}
	case TypePublish: // section 5.4.12
		p = &Publish{Flags: r.flags(), TopicID: r.u16("TopicId"), MsgID: r.u16("MsgId"), Data: r.rest()}
	case TypePuback: // section 5.4.13
		p = &Puback{TopicID: r.u16("TopicId"), MsgID: r.u16("MsgId"), ReturnCode: ReturnCode(r.u8("ReturnCode"))}
	case TypePubrec: // section 5.4.14
		p = &Pubrec{MsgID: r.u16("MsgId")}
	case TypePubrel:
		p = &Pubrel{MsgID: r.u16("MsgId")}
	case TypePubcomp:
		p = &Pubcomp{MsgID: r.u16("MsgId")}
	case TypeSubscribe: // section 5.4.15
		s := &Subscribe{Flags: r.flags(), MsgID: r.u16("MsgId")}
		s.TopicName, s.TopicID = r.topic(s.Flags.TopicIDType)
		p = s
	case TypeSuback: // section 5.4.16
		p = &Suback{Flags: r.flags(), TopicID: r.u16("TopicId"), MsgID: r.u16("MsgId"), ReturnCode: ReturnCode(r.u8("ReturnCode"))}
	case TypeUnsubscribe: // section 5.4.17
		u := &Unsubscribe{Flags: r.flags(), MsgID: r.u16("MsgId")}
		u.TopicName, u.TopicID = r.topic(u.Flags.TopicIDType)
		p = u
	case TypeUnsuback: // section 5.4.18
		p = &Unsuback{MsgID: r.u16("MsgId")}
	case TypePingreq: // section 5.4.19
		p = &Pingreq{ClientID: string(r.rest())}
	case TypePingresp: // section 5.4.20
		p = &Pingresp{}
	case TypeDisconnect: // section 5.4.21: Duration is optional
		d := &Disconnect{}
		if len(r.b) > 0 {
			d.HasDuration, d.Duration = true, r.u16("Duration")
		}
		p = d
	case TypeWillTopicUpd: // section 5.4.22; empty deletes the will
		w := &WillTopicUpd{}
		if len(r.b) > 0 {
			w.Flags = r.flags()
			w.Topic = string(r.rest())
		}
		p = w
	case TypeWillTopicResp: // section 5.4.24
		p = &WillTopicResp{ReturnCode: ReturnCode(r.u8("ReturnCode"))}
	case TypeWillMsgUpd: // section 5.4.23
		p = &WillMsgUpd{Msg: r.rest()}
	case TypeWillMsgResp: // section 5.4.25
		p = &WillMsgResp{ReturnCode: ReturnCode(r.u8("ReturnCode"))}
	default:
		return nil, fmt.Errorf("decode: %s: %w", r.t, ErrUnknownType)
	}
	r.end()
	if r.err != nil {
		return nil, r.err
	}
	return p, nil
}

// topic reads the TopicName-or-TopicId field of SUBSCRIBE and UNSUBSCRIBE.
func (r *reader) topic(t TopicIDType) (string, uint16) {
	switch t {
	case TopicPredefined:
		id := r.u16("TopicId")
		return "", id
	case TopicShort:
		if r.err == nil && len(r.b) != 2 {
			r.fail("TopicName", fmt.Sprintf("short topic name is %d octets, must be 2 (section 6.7)", len(r.b)))
			return "", 0
		}
		return string(r.rest()), 0
	default:
		return string(r.rest()), 0
	}
}

// decodeEncapsulated reads section 5.5: Length (1 octet, header only),
// MsgType 0xFE, Ctrl, Wireless Node Id, then the encapsulated message.
func decodeEncapsulated(b []byte) (*Encapsulated, error) {
	l := int(b[0])
	if l < 3 {
		return nil, fmt.Errorf("decode ENCAPSULATED: length %d is shorter than the header: %w", l, ErrMalformed)
	}
	if l > len(b) {
		return nil, fmt.Errorf("decode ENCAPSULATED: length field says %d octets, have %d: %w", l, len(b), ErrMalformed)
	}
	e := &Encapsulated{Ctrl: b[2]}
	if l > 3 {
		e.NodeID = b[3:l]
	}
	if len(b) > l {
		e.Msg = b[l:]
	}
	return e, nil
}

// Append encodes p after dst, choosing the 1-octet length form when the
// message fits in 255 octets (section 5.2.1).
func Append(dst []byte, p Packet) ([]byte, error) {
	if e, ok := p.(*Encapsulated); ok {
		l := 3 + len(e.NodeID)
		if l > 255 {
			return dst, fmt.Errorf("encode ENCAPSULATED: node id of %d octets: %w", len(e.NodeID), ErrTooLarge)
		}
		dst = append(dst, byte(l), byte(TypeEncapsulated), e.Ctrl)
		dst = append(dst, e.NodeID...)
		return append(dst, e.Msg...), nil
	}
	n, err := bodyLen(p)
	if err != nil {
		return dst, err
	}
	switch {
	case n+2 <= 255:
		dst = append(dst, byte(n+2), byte(p.Type()))
	case n+4 <= MaxLen:
		dst = append(dst, 0x01, byte((n+4)>>8), byte(n+4), byte(p.Type()))
	default:
		return dst, fmt.Errorf("encode %s: %d octets: %w", p.Type(), n+4, ErrTooLarge)
	}
	return appendBody(dst, p), nil
}

// Encode is Append to a new slice.
func Encode(p Packet) ([]byte, error) { return Append(nil, p) }

func checkFlags(t MsgType, f Flags) error {
	if f.TopicIDType > TopicShort {
		return fmt.Errorf("encode %s: TopicIdType %d is reserved (section 5.3.4): %w", t, f.TopicIDType, ErrMalformed)
	}
	if f.QoS < -1 || f.QoS > 2 {
		return fmt.Errorf("encode %s: QoS %d: %w", t, f.QoS, ErrMalformed)
	}
	return nil
}

func bodyLen(p Packet) (int, error) {
	switch p := p.(type) {
	case *Advertise:
		return 3, nil
	case *SearchGW:
		return 1, nil
	case *GWInfo:
		return 1 + len(p.GatewayAddr), nil
	case *Connect:
		return 4 + len(p.ClientID), checkFlags(p.Type(), p.Flags)
	case *Connack, *WillTopicResp, *WillMsgResp:
		return 1, nil
	case *WillTopicReq, *WillMsgReq, *Pingresp:
		return 0, nil
	case *WillTopic:
		if p.Flags == (Flags{}) && p.Topic == "" {
			return 0, nil
		}
		return 1 + len(p.Topic), checkFlags(p.Type(), p.Flags)
	case *WillTopicUpd:
		if p.Flags == (Flags{}) && p.Topic == "" {
			return 0, nil
		}
		return 1 + len(p.Topic), checkFlags(p.Type(), p.Flags)
	case *WillMsg:
		return len(p.Msg), nil
	case *WillMsgUpd:
		return len(p.Msg), nil
	case *Register:
		return 4 + len(p.TopicName), nil
	case *Regack, *Puback:
		return 5, nil
	case *Publish:
		return 5 + len(p.Data), checkFlags(p.Type(), p.Flags)
	case *Pubrec, *Pubrel, *Pubcomp, *Unsuback:
		return 2, nil
	case *Subscribe:
		n, err := topicLen(p.Type(), p.Flags, p.TopicName)
		return 3 + n, err
	case *Unsubscribe:
		n, err := topicLen(p.Type(), p.Flags, p.TopicName)
		return 3 + n, err
	case *Suback:
		return 6, checkFlags(p.Type(), p.Flags)
	case *Pingreq:
		return len(p.ClientID), nil
	case *Disconnect:
		if p.HasDuration {
			return 2, nil
		}
		return 0, nil
	case nil:
		return 0, fmt.Errorf("encode: nil packet: %w", ErrMalformed)
	}
	return 0, fmt.Errorf("encode: %T: %w", p, ErrUnknownType)
}

func topicLen(t MsgType, f Flags, name string) (int, error) {
	if err := checkFlags(t, f); err != nil {
		return 0, err
	}
	switch f.TopicIDType {
	case TopicPredefined:
		return 2, nil
	case TopicShort:
		if len(name) != 2 {
			return 0, fmt.Errorf("encode %s: short topic name %q must be 2 octets (section 6.7): %w", t, name, ErrMalformed)
		}
	}
	return len(name), nil
}

func be16(dst []byte, v uint16) []byte { return append(dst, byte(v>>8), byte(v)) }

func appendBody(dst []byte, p Packet) []byte {
	switch p := p.(type) {
	case *Advertise:
		return be16(append(dst, p.GatewayID), p.Duration)
	case *SearchGW:
		return append(dst, p.Radius)
	case *GWInfo:
		return append(append(dst, p.GatewayID), p.GatewayAddr...)
	case *Connect:
		dst = be16(append(dst, p.Flags.Byte(), p.ProtocolID), p.Duration)
		return append(dst, p.ClientID...)
	case *Connack:
		return append(dst, byte(p.ReturnCode))
	case *WillTopicResp:
		return append(dst, byte(p.ReturnCode))
	case *WillMsgResp:
		return append(dst, byte(p.ReturnCode))
	case *WillTopic:
		if p.Flags == (Flags{}) && p.Topic == "" {
			return dst
		}
		return append(append(dst, p.Flags.Byte()), p.Topic...)
	case *WillTopicUpd:
		if p.Flags == (Flags{}) && p.Topic == "" {
			return dst
		}
		return append(append(dst, p.Flags.Byte()), p.Topic...)
	case *WillMsg:
		return append(dst, p.Msg...)
	case *WillMsgUpd:
		return append(dst, p.Msg...)
	case *Register:
		return append(be16(be16(dst, p.TopicID), p.MsgID), p.TopicName...)
	case *Regack:
		return append(be16(be16(dst, p.TopicID), p.MsgID), byte(p.ReturnCode))
	case *Puback:
		return append(be16(be16(dst, p.TopicID), p.MsgID), byte(p.ReturnCode))
	case *Publish:
		return append(be16(be16(append(dst, p.Flags.Byte()), p.TopicID), p.MsgID), p.Data...)
	case *Pubrec:
		return be16(dst, p.MsgID)
	case *Pubrel:
		return be16(dst, p.MsgID)
	case *Pubcomp:
		return be16(dst, p.MsgID)
	case *Unsuback:
		return be16(dst, p.MsgID)
	case *Subscribe:
		return appendTopic(be16(append(dst, p.Flags.Byte()), p.MsgID), p.Flags, p.TopicName, p.TopicID)
	case *Unsubscribe:
		return appendTopic(be16(append(dst, p.Flags.Byte()), p.MsgID), p.Flags, p.TopicName, p.TopicID)
	case *Suback:
		return append(be16(be16(append(dst, p.Flags.Byte()), p.TopicID), p.MsgID), byte(p.ReturnCode))
	case *Pingreq:
		return append(dst, p.ClientID...)
	case *Disconnect:
		if p.HasDuration {
			return be16(dst, p.Duration)
		}
	}
	return dst
}

func appendTopic(dst []byte, f Flags, name string, id uint16) []byte {
	if f.TopicIDType == TopicPredefined {
		return be16(dst, id)
	}
	return append(dst, name...)
}
