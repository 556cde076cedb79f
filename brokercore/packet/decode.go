package packet

import (
	"fmt"
	"strings"
)

// FixedHeader reads the fixed header (section 2.1) at the start of b: the
// packet type, its four flag bits, the Remaining Length and the header's
// own size. It returns an error wrapping ErrIncomplete if b ends inside the
// header and ErrMalformed for a Remaining Length over four bytes or not in
// its minimal form [MQTT-1.5.5-1].
func FixedHeader(b []byte) (t Type, flags byte, remaining int, headerLen int, err error) {
	if len(b) < 1 {
		return 0, 0, 0, 0, fmt.Errorf("decode fixed header: %w", ErrIncomplete)
	}
	t, flags = Type(b[0]>>4), b[0]&0x0f
	v, n, err := readVarint(b[1:])
	if err != nil {
		return t, flags, 0, 0, fmt.Errorf("decode %v: remaining length: %w", t, err)
	}
	return t, flags, int(v), 1 + n, nil
}

// Decode decodes one whole packet (fixed header included) at the start of
// b. version is the connection's protocol level (V31, V311 or V5); CONNECT
// ignores it, it carries its own. n is the number of bytes consumed.
//
// If b holds less than a whole packet the error wraps ErrIncomplete.
// Byte-slice fields (Payload, Password, WillPayload, CorrelationData,
// AuthData) alias b; strings are copies.
//
// On ErrUnsupportedProtocol, p is a *Connect with ProtocolName and
// ProtocolLevel set, so a server can answer with a CONNACK in a form the
// client understands.
func Decode(b []byte, version byte) (p Packet, n int, err error) {
	t, flags, rl, hl, err := FixedHeader(b)
	if err != nil {
		return nil, 0, err
	}
	n = hl + rl
	if len(b) < n {
		return nil, 0, fmt.Errorf("decode %v: %d of %d bytes: %w", t, len(b), n, ErrIncomplete)
	}
	p, err = decodeBody(t, flags, b[hl:n], version)
	return p, n, err
}

// DecodePublish decodes a whole PUBLISH packet at the start of b into p,
// which it overwrites. It is Decode for callers that reuse one Publish per
// connection: it allocates nothing but v5 properties and the topic string,
// and not even that when the topic equals p's previous one (the string is
// reused, which is safe as strings are immutable). Payload aliases b.
func DecodePublish(b []byte, version byte, p *Publish) (n int, err error) {
	body, flags, n, err := frame(b, PUBLISH)
	if err != nil {
		return 0, err
	}
	prev := p.Topic
	*p = Publish{}
	return n, decodePublish(p, flags, body, version, prev)
}

// frame finds the whole packet of type want at the start of b: its body,
// fixed-header flags and length, for the Decode… functions that decode
// one type into a caller's struct.
func frame(b []byte, want Type) (body []byte, flags byte, n int, err error) {
	t, flags, rl, hl, err := FixedHeader(b)
	if err != nil {
		return nil, 0, 0, err
	}
	if t != want {
		return nil, 0, 0, fmt.Errorf("decode %v: packet is %v: %w", want, t, ErrProtocol)
	}
	n = hl + rl
	if len(b) < n {
		return nil, 0, 0, fmt.Errorf("decode %v: %d of %d bytes: %w", t, len(b), n, ErrIncomplete)
	}
	return b[hl:n], flags, n, nil
}

// DecodeConnect decodes a whole CONNECT packet at the start of b into p,
// which it overwrites: Decode for a caller that reuses its Connect (the
// broker, once per connection). Strings are copies and byte slices alias b,
// as with Decode; on ErrUnsupportedProtocol p holds the protocol name and
// level, as Decode's packet does.
func DecodeConnect(b []byte, p *Connect) (n int, err error) {
	body, flags, n, err := frame(b, CONNECT)
	if err != nil {
		return 0, err
	}
	if flags != 0 {
		return n, flagsErr(CONNECT, flags, 0)
	}
	*p = Connect{}
	_, err = decodeConnectInto(&reader{b: body}, p)
	return n, err
}

// DecodeSubscribe decodes a whole SUBSCRIBE packet at the start of b into
// p, which it overwrites: Decode for a caller that reuses its Subscribe.
// Nothing in p aliases b (a SUBSCRIBE has no binary fields).
func DecodeSubscribe(b []byte, version byte, p *Subscribe) (n int, err error) {
	body, flags, n, err := frame(b, SUBSCRIBE)
	if err != nil {
		return 0, err
	}
	if flags != 0x02 {
		return n, flagsErr(SUBSCRIBE, flags, 0x02)
	}
	*p = Subscribe{}
	return n, decodeSubscribeInto(&reader{b: body}, version, p)
}

func flagsErr(t Type, flags, want byte) error {
	return fmt.Errorf("decode %v: fixed header flags 0x%X, want 0x%X [MQTT-2.1.3-1]: %w", t, flags, want, ErrMalformed)
}

func decodeBody(t Type, flags byte, body []byte, version byte) (Packet, error) {
	// [MQTT-2.1.3-1]: reserved flag bits must be as listed in table 2-2;
	// anything else is a Malformed Packet.
	want := byte(0)
	switch t {
	case PUBLISH:
		p := new(Publish)
		if err := decodePublish(p, flags, body, version, ""); err != nil {
			return nil, err
		}
		return p, nil
	case PUBREL, SUBSCRIBE, UNSUBSCRIBE:
		want = 0x02
	case CONNECT, CONNACK, PUBACK, PUBREC, PUBCOMP, SUBACK, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT:
	case AUTH:
		if version != V5 {
			return nil, fmt.Errorf("decode AUTH: not in MQTT %s: %w", versionName(version), ErrMalformed)
		}
	default:
		return nil, fmt.Errorf("decode %v: reserved packet type: %w", t, ErrMalformed)
	}
	if flags != want {
		return nil, flagsErr(t, flags, want)
	}
	r := &reader{b: body}
	switch t {
	case CONNECT:
		return decodeConnect(r)
	case CONNACK:
		return decodeConnAck(r, version)
	case PUBACK, PUBREC, PUBREL, PUBCOMP:
		return decodeAck(r, t, version)
	case SUBSCRIBE:
		return decodeSubscribe(r, version)
	case SUBACK:
		return decodeSubAck(r, version)
	case UNSUBSCRIBE:
		return decodeUnsubscribe(r, version)
	case UNSUBACK:
		return decodeUnsubAck(r, version)
	case PINGREQ, PINGRESP:
		if len(body) != 0 {
			return nil, decodeErr(t, "remaining length not 0", ErrMalformed)
		}
		if t == PINGREQ {
			return &PingReq{}, nil
		}
		return &PingResp{}, nil
	case DISCONNECT:
		return decodeDisconnect(r, version)
	default: // AUTH
		return decodeAuth(r)
	}
}

func versionName(v byte) string {
	switch v {
	case V31:
		return "3.1"
	case V311:
		return "3.1.1"
	case V5:
		return "5.0"
	}
	return fmt.Sprintf("level %d", v)
}

func decodeConnect(r *reader) (Packet, error) {
	c, err := decodeConnectInto(r, new(Connect))
	if c == nil {
		return nil, err
	}
	return c, err
}

// decodeConnectInto decodes CONNECT's body into c (zero); it returns c, or
// nil if the packet is malformed (c, with the error, if its protocol is
// not one this package speaks).
func decodeConnectInto(r *reader, c *Connect) (*Connect, error) {
	var err error
	if c.ProtocolName, err = r.string(); err != nil {
		return nil, decodeErr(CONNECT, "protocol name", err)
	}
	if c.ProtocolLevel, err = r.byte1(); err != nil {
		return nil, decodeErr(CONNECT, "protocol level", err)
	}
	// 3.1.2.1, 3.1.2.2 (and MQTT 3.1 section 3.1): "MQIsdp" goes with
	// level 3, "MQTT" with 4 and 5.
	switch {
	case c.ProtocolName == "MQIsdp" && c.ProtocolLevel == V31:
	case c.ProtocolName == "MQTT" && (c.ProtocolLevel == V311 || c.ProtocolLevel == V5):
	default:
		return c, fmt.Errorf("decode CONNECT: protocol %q level %d: %w", c.ProtocolName, c.ProtocolLevel, ErrUnsupportedProtocol)
	}
	v5 := c.ProtocolLevel == V5
	flags, err := r.byte1()
	if err != nil {
		return nil, decodeErr(CONNECT, "connect flags", err)
	}
	if flags&0x01 != 0 {
		return nil, decodeErr(CONNECT, "reserved flag set [MQTT-3.1.2-3]", ErrMalformed)
	}
	c.CleanStart = flags&0x02 != 0
	c.WillFlag = flags&0x04 != 0
	c.WillQoS = flags >> 3 & 0x03
	c.WillRetain = flags&0x20 != 0
	c.PasswordFlag = flags&0x40 != 0
	c.UsernameFlag = flags&0x80 != 0
	if c.WillQoS == 3 {
		return nil, decodeErr(CONNECT, "will QoS 3 [MQTT-3.1.2-14]", ErrMalformed)
	}
	if !c.WillFlag && (c.WillQoS != 0 || c.WillRetain) {
		return nil, decodeErr(CONNECT, "will QoS or retain without will flag [MQTT-3.1.2-11] [MQTT-3.1.2-13] [MQTT-3.1.2-15]", ErrMalformed)
	}
	if !v5 && c.PasswordFlag && !c.UsernameFlag {
		return nil, decodeErr(CONNECT, "password flag without user name flag [MQTT-3.1.2-22]", ErrMalformed)
	}
	if c.KeepAlive, err = r.uint16(); err != nil {
		return nil, decodeErr(CONNECT, "keep alive", err)
	}
	if v5 {
		if err := r.props(CONNECT, ctxConnect(), &c.Props); err != nil {
			return nil, err
		}
		if c.Props.AuthData != nil && c.Props.AuthMethod == "" {
			return nil, decodeErr(CONNECT, "authentication data without method", ErrProtocol)
		}
	}
	if c.ClientID, err = r.string(); err != nil {
		return nil, decodeErr(CONNECT, "client identifier", err)
	}
	if c.WillFlag {
		if v5 {
			if err := r.props(CONNECT, ctxWill(), &c.WillProps); err != nil {
				return nil, err
			}
		}
		if c.WillTopic, err = r.string(); err != nil {
			return nil, decodeErr(CONNECT, "will topic", err)
		}
		if c.WillPayload, err = r.binary(); err != nil {
			return nil, decodeErr(CONNECT, "will payload", err)
		}
	}
	if c.UsernameFlag {
		if c.Username, err = r.string(); err != nil {
			return nil, decodeErr(CONNECT, "user name", err)
		}
	}
	if c.PasswordFlag {
		if c.Password, err = r.binary(); err != nil {
			return nil, decodeErr(CONNECT, "password", err)
		}
	}
	if r.left() != 0 {
		return nil, decodeErr(CONNECT, fmt.Sprintf("%d bytes after payload", r.left()), ErrMalformed)
	}
	return c, nil
}

// CONNACK reason codes of MQTT 5.0 section 3.2.2.2.
func validConnAckCode(c byte, version byte) bool {
	if version != V5 {
		return c <= V3NotAuthorized
	}
	switch c {
	case Success, UnspecifiedError, MalformedPacket, ProtocolError, ImplementationSpecificError,
		UnsupportedProtocolVersion, ClientIdentifierNotValid, BadUserNameOrPassword, NotAuthorized,
		ServerUnavailable, ServerBusy, Banned, BadAuthenticationMethod, TopicNameInvalid, PacketTooLarge,
		QuotaExceeded, PayloadFormatInvalid, RetainNotSupported, QoSNotSupported, UseAnotherServer,
		ServerMoved, ConnectionRateExceeded:
		return true
	}
	return false
}

func decodeConnAck(r *reader, version byte) (Packet, error) {
	c := new(ConnAck)
	flags, err := r.byte1()
	if err != nil {
		return nil, decodeErr(CONNACK, "acknowledge flags", err)
	}
	// MQTT 3.1 has no flags (the byte is reserved and ignored); 3.1.1 and
	// 5.0 reserve bits 7-1 [MQTT-3.2.2-1].
	if version != V31 {
		if flags&0xfe != 0 {
			return nil, decodeErr(CONNACK, "reserved acknowledge flags set", ErrMalformed)
		}
		c.SessionPresent = flags&0x01 != 0
	}
	if c.ReasonCode, err = r.byte1(); err != nil {
		return nil, decodeErr(CONNACK, "reason code", err)
	}
	if !validConnAckCode(c.ReasonCode, version) {
		return nil, decodeErr(CONNACK, fmt.Sprintf("reason code 0x%02X", c.ReasonCode), ErrMalformed)
	}
	if c.SessionPresent && c.ReasonCode != Success {
		return nil, decodeErr(CONNACK, "session present with a failure code [MQTT-3.2.2-4]", ErrProtocol)
	}
	if version == V5 {
		if err := r.props(CONNACK, ctxConnAck(), &c.Props); err != nil {
			return nil, err
		}
	}
	if r.left() != 0 {
		return nil, decodeErr(CONNACK, fmt.Sprintf("%d extra bytes", r.left()), ErrMalformed)
	}
	return c, nil
}

// decodePublish decodes a PUBLISH body into p. If the topic equals prev it
// reuses that string instead of allocating a new one: strings are
// immutable, so sharing is safe.
func decodePublish(p *Publish, flags byte, body []byte, version byte, prev string) error {
	p.Dup = flags&0x08 != 0
	p.QoS = flags >> 1 & 0x03
	p.Retain = flags&0x01 != 0
	if p.QoS == 3 {
		return decodeErr(PUBLISH, "QoS 3 [MQTT-3.3.1-4]", ErrMalformed)
	}
	if p.Dup && p.QoS == 0 {
		return decodeErr(PUBLISH, "DUP set on QoS 0 [MQTT-3.3.1-2]", ErrMalformed)
	}
	r := &reader{b: body}
	var err error
	tb, err := r.binary()
	if err != nil || !validString(tb) {
		return decodeErr(PUBLISH, "topic name", ErrMalformed)
	}
	if string(tb) == prev {
		p.Topic = prev
	} else {
		p.Topic = string(tb)
	}
	if p.QoS > 0 {
		if p.PacketID, err = r.uint16(); err != nil {
			return decodeErr(PUBLISH, "packet identifier", err)
		}
		if p.PacketID == 0 {
			return decodeErr(PUBLISH, "packet identifier 0 [MQTT-2.2.1-3]", ErrMalformed)
		}
	}
	if version == V5 {
		if err := r.props(PUBLISH, ctxPublish(), &p.Props); err != nil {
			return err
		}
	}
	if p.Topic == "" && p.Props.TopicAlias == nil {
		// 3.3.2.1: zero length topic name needs a topic alias; v3 has none
		// [MQTT-4.7.3-1].
		return decodeErr(PUBLISH, "empty topic name without topic alias", ErrProtocol)
	}
	p.Payload = body[r.off:len(body):len(body)]
	return nil
}

// validAckCode: the reason codes of sections 3.4.2.1, 3.5.2.1, 3.6.2.1 and
// 3.7.2.1.
func validAckCode(t Type, c byte) bool {
	switch t {
	case PUBACK, PUBREC:
		switch c {
		case Success, NoMatchingSubscribers, UnspecifiedError, ImplementationSpecificError,
			NotAuthorized, TopicNameInvalid, PacketIdentifierInUse, QuotaExceeded, PayloadFormatInvalid:
			return true
		}
		return false
	}
	return c == Success || c == PacketIdentifierNotFound
}

func decodeAck(r *reader, t Type, version byte) (Packet, error) {
	a := &Ack{PacketType: t}
	var err error
	if a.PacketID, err = r.uint16(); err != nil {
		return nil, decodeErr(t, "packet identifier", err)
	}
	if a.PacketID == 0 {
		return nil, decodeErr(t, "packet identifier 0 [MQTT-2.2.1-3]", ErrMalformed)
	}
	if version == V5 && r.left() > 0 {
		// 3.4.2.1: the reason code may be omitted when 0 and there are no
		// properties; the property length may be omitted when there are
		// none (remaining length 3).
		if a.ReasonCode, err = r.byte1(); err != nil {
			return nil, decodeErr(t, "reason code", err)
		}
		if !validAckCode(t, a.ReasonCode) {
			return nil, decodeErr(t, fmt.Sprintf("reason code 0x%02X", a.ReasonCode), ErrMalformed)
		}
		if r.left() > 0 {
			if err := r.props(t, ctxReasonOnly(), &a.Props); err != nil {
				return nil, err
			}
		}
	}
	if r.left() != 0 {
		return nil, decodeErr(t, fmt.Sprintf("%d extra bytes", r.left()), ErrMalformed)
	}
	return a, nil
}

func decodeSubscribe(r *reader, version byte) (Packet, error) {
	s := new(Subscribe)
	if err := decodeSubscribeInto(r, version, s); err != nil {
		return nil, err
	}
	return s, nil
}

// decodeSubscribeInto decodes SUBSCRIBE's body into s (zero).
func decodeSubscribeInto(r *reader, version byte, s *Subscribe) error {
	var err error
	if s.PacketID, err = r.uint16(); err != nil {
		return decodeErr(SUBSCRIBE, "packet identifier", err)
	}
	if s.PacketID == 0 {
		return decodeErr(SUBSCRIBE, "packet identifier 0 [MQTT-2.2.1-3]", ErrMalformed)
	}
	if version == V5 {
		if err := r.props(SUBSCRIBE, ctxSubscribe(), &s.Props); err != nil {
			return err
		}
	}
	for r.left() > 0 {
		var sub Subscription
		if sub.Filter, err = r.string(); err != nil {
			return decodeErr(SUBSCRIBE, fmt.Sprintf("topic filter %d", len(s.Subscriptions)+1), err)
		}
		o, err := r.byte1()
		if err != nil {
			return decodeErr(SUBSCRIBE, fmt.Sprintf("options of %q", sub.Filter), err)
		}
		sub.QoS = o & 0x03
		if sub.QoS == 3 {
			return decodeErr(SUBSCRIBE, fmt.Sprintf("QoS 3 for %q [MQTT-3.8.3-4]", sub.Filter), ErrMalformed)
		}
		if version == V5 {
			if o&0xc0 != 0 {
				return decodeErr(SUBSCRIBE, fmt.Sprintf("reserved option bits for %q [MQTT-3.8.3-5]", sub.Filter), ErrMalformed)
			}
			sub.NoLocal = o&0x04 != 0
			sub.RetainAsPublished = o&0x08 != 0
			sub.RetainHandling = o >> 4 & 0x03
			if sub.RetainHandling == 3 {
				return decodeErr(SUBSCRIBE, fmt.Sprintf("retain handling 3 for %q", sub.Filter), ErrProtocol)
			}
			if sub.NoLocal && strings.HasPrefix(sub.Filter, "$share/") {
				return decodeErr(SUBSCRIBE, fmt.Sprintf("no local on shared subscription %q [MQTT-3.8.3-4]", sub.Filter), ErrProtocol)
			}
		} else if o&0xfc != 0 {
			// [MQTT-3-8.3-4] (3.1.1): upper six bits reserved.
			return decodeErr(SUBSCRIBE, fmt.Sprintf("reserved option bits for %q", sub.Filter), ErrMalformed)
		}
		s.Subscriptions = append(s.Subscriptions, sub)
	}
	if len(s.Subscriptions) == 0 {
		return decodeErr(SUBSCRIBE, "no topic filter [MQTT-3.8.3-3]", ErrProtocol)
	}
	return nil
}

// validSubAckCode: 3.9.3 of 3.1.1 (0, 1, 2, 0x80; also used by 3.1
// brokers) and of 5.0.
func validSubAckCode(c byte, version byte) bool {
	switch c {
	case GrantedQoS1, GrantedQoS2, Success, UnspecifiedError:
		return true
	}
	if version != V5 {
		return false
	}
	switch c {
	case ImplementationSpecificError, NotAuthorized, TopicFilterInvalid, PacketIdentifierInUse,
		QuotaExceeded, SharedSubNotSupported, SubIDsNotSupported, WildcardSubNotSupported:
		return true
	}
	return false
}

func decodeSubAck(r *reader, version byte) (Packet, error) {
	s := new(SubAck)
	var err error
	if s.PacketID, err = r.uint16(); err != nil {
		return nil, decodeErr(SUBACK, "packet identifier", err)
	}
	if s.PacketID == 0 {
		return nil, decodeErr(SUBACK, "packet identifier 0 [MQTT-2.2.1-3]", ErrMalformed)
	}
	if version == V5 {
		if err := r.props(SUBACK, ctxReasonOnly(), &s.Props); err != nil {
			return nil, err
		}
	}
	if r.left() == 0 {
		return nil, decodeErr(SUBACK, "no reason code", ErrProtocol)
	}
	s.ReasonCodes = make([]byte, r.left())
	copy(s.ReasonCodes, r.b[r.off:])
	for _, c := range s.ReasonCodes {
		if !validSubAckCode(c, version) {
			return nil, decodeErr(SUBACK, fmt.Sprintf("reason code 0x%02X", c), ErrMalformed)
		}
	}
	return s, nil
}

func decodeUnsubscribe(r *reader, version byte) (Packet, error) {
	u := new(Unsubscribe)
	var err error
	if u.PacketID, err = r.uint16(); err != nil {
		return nil, decodeErr(UNSUBSCRIBE, "packet identifier", err)
	}
	if u.PacketID == 0 {
		return nil, decodeErr(UNSUBSCRIBE, "packet identifier 0 [MQTT-2.2.1-3]", ErrMalformed)
	}
	if version == V5 {
		if err := r.props(UNSUBSCRIBE, ctxUnsubscribe(), &u.Props); err != nil {
			return nil, err
		}
	}
	for r.left() > 0 {
		f, err := r.string()
		if err != nil {
			return nil, decodeErr(UNSUBSCRIBE, fmt.Sprintf("topic filter %d", len(u.Filters)+1), err)
		}
		u.Filters = append(u.Filters, f)
	}
	if len(u.Filters) == 0 {
		return nil, decodeErr(UNSUBSCRIBE, "no topic filter [MQTT-3.10.3-2]", ErrProtocol)
	}
	return u, nil
}

func validUnsubAckCode(c byte) bool {
	switch c {
	case Success, NoSubscriptionExisted, UnspecifiedError, ImplementationSpecificError,
		NotAuthorized, TopicFilterInvalid, PacketIdentifierInUse:
		return true
	}
	return false
}

func decodeUnsubAck(r *reader, version byte) (Packet, error) {
	u := new(UnsubAck)
	var err error
	if u.PacketID, err = r.uint16(); err != nil {
		return nil, decodeErr(UNSUBACK, "packet identifier", err)
	}
	if u.PacketID == 0 {
		return nil, decodeErr(UNSUBACK, "packet identifier 0 [MQTT-2.2.1-3]", ErrMalformed)
	}
	if version != V5 {
		if r.left() != 0 {
			return nil, decodeErr(UNSUBACK, "remaining length not 2", ErrMalformed)
		}
		return u, nil
	}
	if err := r.props(UNSUBACK, ctxReasonOnly(), &u.Props); err != nil {
		return nil, err
	}
	if r.left() == 0 {
		return nil, decodeErr(UNSUBACK, "no reason code", ErrProtocol)
	}
	u.ReasonCodes = make([]byte, r.left())
	copy(u.ReasonCodes, r.b[r.off:])
	for _, c := range u.ReasonCodes {
		if !validUnsubAckCode(c) {
			return nil, decodeErr(UNSUBACK, fmt.Sprintf("reason code 0x%02X", c), ErrMalformed)
		}
	}
	return u, nil
}

func validDisconnectCode(c byte) bool {
	switch c {
	case Success, DisconnectWithWill, UnspecifiedError, MalformedPacket, ProtocolError,
		ImplementationSpecificError, NotAuthorized, ServerBusy, ServerShuttingDown, KeepAliveTimeout,
		SessionTakenOver, TopicFilterInvalid, TopicNameInvalid, ReceiveMaximumExceeded, TopicAliasInvalid,
		PacketTooLarge, MessageRateTooHigh, QuotaExceeded, AdministrativeAction, PayloadFormatInvalid,
		RetainNotSupported, QoSNotSupported, UseAnotherServer, ServerMoved, SharedSubNotSupported,
		ConnectionRateExceeded, MaximumConnectTime, SubIDsNotSupported, WildcardSubNotSupported:
		return true
	}
	return false
}

func decodeDisconnect(r *reader, version byte) (Packet, error) {
	d := new(Disconnect)
	if version == V5 && r.left() > 0 {
		// 3.14.2.1: reason code and properties may be omitted.
		d.ReasonCode, _ = r.byte1()
		if !validDisconnectCode(d.ReasonCode) {
			return nil, decodeErr(DISCONNECT, fmt.Sprintf("reason code 0x%02X", d.ReasonCode), ErrMalformed)
		}
		if r.left() > 0 {
			if err := r.props(DISCONNECT, ctxDisconnect(), &d.Props); err != nil {
				return nil, err
			}
		}
	}
	if r.left() != 0 {
		return nil, decodeErr(DISCONNECT, fmt.Sprintf("%d extra bytes", r.left()), ErrMalformed)
	}
	return d, nil
}

func decodeAuth(r *reader) (Packet, error) {
	a := new(Auth)
	if r.left() > 0 {
		// 3.15.2.1: may be omitted (remaining length 0) for Success.
		a.ReasonCode, _ = r.byte1()
		switch a.ReasonCode {
		case Success, ContinueAuthentication, ReAuthenticate:
		default:
			return nil, decodeErr(AUTH, fmt.Sprintf("reason code 0x%02X", a.ReasonCode), ErrMalformed)
		}
		if r.left() > 0 {
			if err := r.props(AUTH, ctxAuth(), &a.Props); err != nil {
				return nil, err
			}
		}
	}
	if r.left() != 0 {
		return nil, decodeErr(AUTH, fmt.Sprintf("%d extra bytes", r.left()), ErrMalformed)
	}
	return a, nil
}
