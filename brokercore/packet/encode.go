package packet

import "fmt"

// Append encodes p for the protocol level version (V31, V311, V5) onto dst
// and returns the extended slice. The v3 forms drop what they cannot carry:
// properties, reason codes of acks and DISCONNECT, v5 subscription options.
// CONNECT uses its own ProtocolLevel (version when that is 0).
//
// It refuses (error wrapping ErrInvalid, or ErrUnsupportedProtocol) a
// packet whose bytes would not decode: QoS 3, packet id 0 with QoS>0, a
// string over 65,535 bytes or not valid UTF-8, a property the packet may
// not carry, SUBSCRIBE without filters, AUTH before v5. On error dst is
// returned with its original length.
func Append(dst []byte, p Packet, version byte) ([]byte, error) {
	start := len(dst)
	out, err := appendPacket(dst, p, version)
	if err != nil {
		return dst[:start], err
	}
	return out, nil
}

func appendPacket(dst []byte, p Packet, version byte) ([]byte, error) {
	if p == nil {
		return dst, fmt.Errorf("encode: nil packet: %w", ErrInvalid)
	}
	t := p.Type()
	var first byte
	switch t {
	case PUBREL, SUBSCRIBE, UNSUBSCRIBE:
		first = byte(t)<<4 | 0x02 // [MQTT-2.1.3-1]
	case PUBLISH:
		pp := p.(*Publish)
		if pp.QoS > 2 {
			return dst, encodeErr(PUBLISH, "QoS 3", ErrInvalid)
		}
		first = byte(t)<<4 | pp.QoS<<1
		if pp.Dup && pp.QoS > 0 { // [MQTT-3.3.1-2]: DUP is 0 for QoS 0
			first |= 0x08
		}
		if pp.Retain {
			first |= 0x01
		}
	case PUBACK, PUBREC, PUBCOMP:
		first = byte(t) << 4
	default:
		first = byte(t) << 4
	}
	mark := len(dst)
	dst = append(dst, first)
	dst, vmark := reserveVarint(dst)
	var err error
	switch v := p.(type) {
	case *Connect:
		dst, err = appendConnect(dst, v, version)
	case *ConnAck:
		dst, err = appendConnAck(dst, v, version)
	case *Publish:
		dst, err = appendPublish(dst, v, version)
	case *Ack:
		dst, err = appendAck(dst, v, version)
	case *Subscribe:
		dst, err = appendSubscribe(dst, v, version)
	case *SubAck:
		dst, err = appendSubAck(dst, v, version)
	case *Unsubscribe:
		dst, err = appendUnsubscribe(dst, v, version)
	case *UnsubAck:
		dst, err = appendUnsubAck(dst, v, version)
	case *PingReq, *PingResp:
	case *Disconnect:
		if version == V5 && (v.ReasonCode != Success || !v.Props.empty()) {
			dst = append(dst, v.ReasonCode)
			if !v.Props.empty() {
				dst, err = appendProps(dst, DISCONNECT, ctxDisconnect(), &v.Props)
			}
		}
	case *Auth:
		if version != V5 {
			return dst, fmt.Errorf("encode AUTH: not in MQTT %s: %w", versionName(version), ErrInvalid)
		}
		if v.ReasonCode != Success || !v.Props.empty() {
			dst = append(dst, v.ReasonCode)
			if !v.Props.empty() {
				dst, err = appendProps(dst, AUTH, ctxAuth(), &v.Props)
			}
		}
	default:
		return dst, fmt.Errorf("encode %v: unknown packet %T: %w", t, p, ErrInvalid)
	}
	if err != nil {
		return dst[:mark], err
	}
	dst, n := finishVarint(dst, vmark)
	if n > MaxRemainingLength {
		return dst[:mark], fmt.Errorf("encode %v: remaining length %d over %d: %w", t, n, MaxRemainingLength, ErrInvalid)
	}
	return dst, nil
}

func appendConnect(dst []byte, c *Connect, version byte) ([]byte, error) {
	level := c.ProtocolLevel
	if level == 0 {
		level = version
	}
	name := c.ProtocolName
	if name == "" {
		name = "MQTT"
		if level == V31 {
			name = "MQIsdp"
		}
	}
	switch {
	case name == "MQIsdp" && level == V31:
	case name == "MQTT" && (level == V311 || level == V5):
	default:
		return dst, fmt.Errorf("encode CONNECT: protocol %q level %d: %w", name, level, ErrUnsupportedProtocol)
	}
	will := c.WillFlag || c.WillTopic != ""
	user := c.UsernameFlag || c.Username != ""
	pass := c.PasswordFlag || c.Password != nil
	if c.WillQoS > 2 {
		return dst, encodeErr(CONNECT, "will QoS 3", ErrInvalid)
	}
	if !will && (c.WillQoS != 0 || c.WillRetain) {
		return dst, encodeErr(CONNECT, "will QoS or retain without will [MQTT-3.1.2-11]", ErrInvalid)
	}
	if level != V5 && pass && !user {
		return dst, encodeErr(CONNECT, "password without user name [MQTT-3.1.2-22]", ErrInvalid)
	}
	dst, _ = appendString(dst, name)
	var flags byte
	if c.CleanStart {
		flags |= 0x02
	}
	if will {
		flags |= 0x04 | c.WillQoS<<3
		if c.WillRetain {
			flags |= 0x20
		}
	}
	if pass {
		flags |= 0x40
	}
	if user {
		flags |= 0x80
	}
	dst = append(dst, level, flags)
	dst = appendUint16(dst, c.KeepAlive)
	var err error
	var ok bool
	if level == V5 {
		if dst, err = appendProps(dst, CONNECT, ctxConnect(), &c.Props); err != nil {
			return dst, err
		}
	}
	if dst, ok = appendString(dst, c.ClientID); !ok {
		return dst, encodeErr(CONNECT, "client identifier", ErrInvalid)
	}
	if will {
		if level == V5 {
			if dst, err = appendProps(dst, CONNECT, ctxWill(), &c.WillProps); err != nil {
				return dst, err
			}
		}
		if dst, ok = appendString(dst, c.WillTopic); !ok {
			return dst, encodeErr(CONNECT, "will topic", ErrInvalid)
		}
		if dst, ok = appendBinary(dst, c.WillPayload); !ok {
			return dst, encodeErr(CONNECT, "will payload over 65535 bytes", ErrInvalid)
		}
	}
	if user {
		if dst, ok = appendString(dst, c.Username); !ok {
			return dst, encodeErr(CONNECT, "user name", ErrInvalid)
		}
	}
	if pass {
		if dst, ok = appendBinary(dst, c.Password); !ok {
			return dst, encodeErr(CONNECT, "password over 65535 bytes", ErrInvalid)
		}
	}
	return dst, nil
}

func appendConnAck(dst []byte, c *ConnAck, version byte) ([]byte, error) {
	if !validConnAckCode(c.ReasonCode, version) {
		return dst, encodeErr(CONNACK, fmt.Sprintf("reason code 0x%02X", c.ReasonCode), ErrInvalid)
	}
	var flags byte
	if c.SessionPresent && version != V31 {
		if c.ReasonCode != Success {
			return dst, encodeErr(CONNACK, "session present with a failure code [MQTT-3.2.2-4]", ErrInvalid)
		}
		flags = 1
	}
	dst = append(dst, flags, c.ReasonCode)
	if version == V5 {
		return appendProps(dst, CONNACK, ctxConnAck(), &c.Props)
	}
	return dst, nil
}

func appendPublish(dst []byte, p *Publish, version byte) ([]byte, error) {
	var ok bool
	if dst, ok = appendString(dst, p.Topic); !ok {
		return dst, encodeErr(PUBLISH, "topic name", ErrInvalid)
	}
	if p.Topic == "" && (version != V5 || p.Props.TopicAlias == nil) {
		return dst, encodeErr(PUBLISH, "empty topic name without topic alias", ErrInvalid)
	}
	if p.QoS > 0 {
		if p.PacketID == 0 {
			return dst, encodeErr(PUBLISH, "packet identifier 0 [MQTT-2.2.1-3]", ErrInvalid)
		}
		dst = appendUint16(dst, p.PacketID)
	}
	if version == V5 {
		var err error
		if dst, err = appendProps(dst, PUBLISH, ctxPublish(), &p.Props); err != nil {
			return dst, err
		}
	}
	return append(dst, p.Payload...), nil
}

func appendAck(dst []byte, a *Ack, version byte) ([]byte, error) {
	switch a.PacketType {
	case PUBACK, PUBREC, PUBREL, PUBCOMP:
	default:
		return dst, fmt.Errorf("encode ack: packet type %v: %w", a.PacketType, ErrInvalid)
	}
	if a.PacketID == 0 {
		return dst, encodeErr(a.PacketType, "packet identifier 0 [MQTT-2.2.1-3]", ErrInvalid)
	}
	dst = appendUint16(dst, a.PacketID)
	if version != V5 {
		return dst, nil
	}
	if !validAckCode(a.PacketType, a.ReasonCode) {
		return dst, encodeErr(a.PacketType, fmt.Sprintf("reason code 0x%02X", a.ReasonCode), ErrInvalid)
	}
	// 3.4.2.1: shortest form the receiver must accept.
	if a.Props.empty() {
		if a.ReasonCode != Success {
			dst = append(dst, a.ReasonCode)
		}
		return dst, nil
	}
	return appendProps(append(dst, a.ReasonCode), a.PacketType, ctxReasonOnly(), &a.Props)
}

func appendSubscribe(dst []byte, s *Subscribe, version byte) ([]byte, error) {
	if s.PacketID == 0 {
		return dst, encodeErr(SUBSCRIBE, "packet identifier 0 [MQTT-2.2.1-3]", ErrInvalid)
	}
	if len(s.Subscriptions) == 0 {
		return dst, encodeErr(SUBSCRIBE, "no topic filter [MQTT-3.8.3-3]", ErrInvalid)
	}
	dst = appendUint16(dst, s.PacketID)
	var err error
	if version == V5 {
		if dst, err = appendProps(dst, SUBSCRIBE, ctxSubscribe(), &s.Props); err != nil {
			return dst, err
		}
	}
	for _, sub := range s.Subscriptions {
		var ok bool
		if dst, ok = appendString(dst, sub.Filter); !ok {
			return dst, encodeErr(SUBSCRIBE, fmt.Sprintf("topic filter %q", sub.Filter), ErrInvalid)
		}
		if sub.QoS > 2 || sub.RetainHandling > 2 {
			return dst, encodeErr(SUBSCRIBE, fmt.Sprintf("options of %q", sub.Filter), ErrInvalid)
		}
		o := sub.QoS
		if version == V5 {
			if sub.NoLocal {
				o |= 0x04
			}
			if sub.RetainAsPublished {
				o |= 0x08
			}
			o |= sub.RetainHandling << 4
		}
		dst = append(dst, o)
	}
	return dst, nil
}

func appendSubAck(dst []byte, s *SubAck, version byte) ([]byte, error) {
	if s.PacketID == 0 {
		return dst, encodeErr(SUBACK, "packet identifier 0 [MQTT-2.2.1-3]", ErrInvalid)
	}
	if len(s.ReasonCodes) == 0 {
		return dst, encodeErr(SUBACK, "no reason code", ErrInvalid)
	}
	dst = appendUint16(dst, s.PacketID)
	if version == V5 {
		var err error
		if dst, err = appendProps(dst, SUBACK, ctxReasonOnly(), &s.Props); err != nil {
			return dst, err
		}
	}
	for _, c := range s.ReasonCodes {
		if version != V5 && c > GrantedQoS2 {
			c = V3SubAckFailure // every v5 failure code is 0x80 in 3.1.1
		}
		if !validSubAckCode(c, version) {
			return dst, encodeErr(SUBACK, fmt.Sprintf("reason code 0x%02X", c), ErrInvalid)
		}
		dst = append(dst, c)
	}
	return dst, nil
}

func appendUnsubscribe(dst []byte, u *Unsubscribe, version byte) ([]byte, error) {
	if u.PacketID == 0 {
		return dst, encodeErr(UNSUBSCRIBE, "packet identifier 0 [MQTT-2.2.1-3]", ErrInvalid)
	}
	if len(u.Filters) == 0 {
		return dst, encodeErr(UNSUBSCRIBE, "no topic filter [MQTT-3.10.3-2]", ErrInvalid)
	}
	dst = appendUint16(dst, u.PacketID)
	if version == V5 {
		var err error
		if dst, err = appendProps(dst, UNSUBSCRIBE, ctxUnsubscribe(), &u.Props); err != nil {
			return dst, err
		}
	}
	for _, f := range u.Filters {
		var ok bool
		if dst, ok = appendString(dst, f); !ok {
			return dst, encodeErr(UNSUBSCRIBE, fmt.Sprintf("topic filter %q", f), ErrInvalid)
		}
	}
	return dst, nil
}

func appendUnsubAck(dst []byte, u *UnsubAck, version byte) ([]byte, error) {
	if u.PacketID == 0 {
		return dst, encodeErr(UNSUBACK, "packet identifier 0 [MQTT-2.2.1-3]", ErrInvalid)
	}
	dst = appendUint16(dst, u.PacketID)
	if version != V5 {
		return dst, nil
	}
	if len(u.ReasonCodes) == 0 {
		return dst, encodeErr(UNSUBACK, "no reason code", ErrInvalid)
	}
	var err error
	if dst, err = appendProps(dst, UNSUBACK, ctxReasonOnly(), &u.Props); err != nil {
		return dst, err
	}
	for _, c := range u.ReasonCodes {
		if !validUnsubAckCode(c) {
			return dst, encodeErr(UNSUBACK, fmt.Sprintf("reason code 0x%02X", c), ErrInvalid)
		}
	}
	return append(dst, u.ReasonCodes...), nil
}
