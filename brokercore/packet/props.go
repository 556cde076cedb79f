package packet

import "fmt"

// Property identifiers (MQTT 5.0 section 2.2.2.2).
const (
	propPayloadFormat        = 0x01
	propMessageExpiry        = 0x02
	propContentType          = 0x03
	propResponseTopic        = 0x08
	propCorrelationData      = 0x09
	propSubscriptionID       = 0x0B
	propSessionExpiry        = 0x11
	propAssignedClientID     = 0x12
	propServerKeepAlive      = 0x13
	propAuthMethod           = 0x15
	propAuthData             = 0x16
	propRequestProblemInfo   = 0x17
	propWillDelay            = 0x18
	propRequestResponseInfo  = 0x19
	propResponseInfo         = 0x1A
	propServerReference      = 0x1C
	propReasonString         = 0x1F
	propReceiveMaximum       = 0x21
	propTopicAliasMaximum    = 0x22
	propTopicAlias           = 0x23
	propMaximumQoS           = 0x24
	propRetainAvailable      = 0x25
	propUser                 = 0x26
	propMaximumPacketSize    = 0x27
	propWildcardSubAvailable = 0x28
	propSubIDAvailable       = 0x29
	propSharedSubAvailable   = 0x2A
)

// propSet is a bit set of property identifiers: which a packet may carry.
type propSet uint64

func bits(ids ...byte) propSet {
	var s propSet
	for _, id := range ids {
		s |= 1 << id
	}
	return s
}

// Where each property may appear: the table of section 2.2.2.2. Anything
// else is a Malformed Packet [MQTT-2.2.2-2]. A context also carries the
// packet name for error messages.
type propCtx struct {
	allowed  propSet
	multiple propSet // may repeat: User always, Subscription ID in PUBLISH
	name     string
}

func ctxConnect() propCtx {
	return propCtx{bits(propSessionExpiry, propAuthMethod, propAuthData, propRequestProblemInfo,
		propRequestResponseInfo, propReceiveMaximum, propTopicAliasMaximum, propUser,
		propMaximumPacketSize), bits(propUser), "properties"}
}

func ctxWill() propCtx {
	return propCtx{bits(propPayloadFormat, propMessageExpiry, propContentType, propResponseTopic,
		propCorrelationData, propWillDelay, propUser), bits(propUser), "will properties"}
}

func ctxConnAck() propCtx {
	return propCtx{bits(propSessionExpiry, propAssignedClientID, propServerKeepAlive, propAuthMethod,
		propAuthData, propResponseInfo, propServerReference, propReasonString, propReceiveMaximum,
		propTopicAliasMaximum, propMaximumQoS, propRetainAvailable, propUser, propMaximumPacketSize,
		propWildcardSubAvailable, propSubIDAvailable, propSharedSubAvailable), bits(propUser), "properties"}
}

func ctxPublish() propCtx {
	return propCtx{bits(propPayloadFormat, propMessageExpiry, propContentType, propResponseTopic,
		propCorrelationData, propSubscriptionID, propTopicAlias, propUser),
		bits(propUser, propSubscriptionID), "properties"}
}

// ctxReasonOnly is PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK.
func ctxReasonOnly() propCtx {
	return propCtx{bits(propReasonString, propUser), bits(propUser), "properties"}
}

func ctxSubscribe() propCtx {
	return propCtx{bits(propSubscriptionID, propUser), bits(propUser), "properties"}
}

func ctxUnsubscribe() propCtx {
	return propCtx{bits(propUser), bits(propUser), "properties"}
}

func ctxDisconnect() propCtx {
	return propCtx{bits(propSessionExpiry, propServerReference, propReasonString, propUser),
		bits(propUser), "properties"}
}

func ctxAuth() propCtx {
	return propCtx{bits(propAuthMethod, propAuthData, propReasonString, propUser), bits(propUser), "properties"}
}

// readProps decodes a property length and the properties after it into p.
func (r *reader) props(t Type, ctx propCtx, p *Properties) error {
	n, err := r.varint()
	if err != nil {
		return decodeErr(t, ctx.name+" length", err)
	}
	if int(n) > r.left() {
		return decodeErr(t, ctx.name+" length", ErrMalformed)
	}
	end := r.off + int(n)
	sub := reader{b: r.b[:end], off: r.off}
	var seen propSet
	for sub.off < end {
		idv, err := sub.varint()
		if err != nil {
			return decodeErr(t, ctx.name+": identifier", err)
		}
		if idv > 0x7f || ctx.allowed&(1<<idv) == 0 {
			// [MQTT-2.2.2-2]: not valid for this packet type.
			return fmt.Errorf("decode %v: %s: property 0x%02X not allowed: %w", t, ctx.name, idv, ErrMalformed)
		}
		id := byte(idv)
		if seen&(1<<id) != 0 && ctx.multiple&(1<<id) == 0 {
			// "It is a Protocol Error to include the X more than once."
			return fmt.Errorf("decode %v: %s: property 0x%02X repeated: %w", t, ctx.name, id, ErrProtocol)
		}
		seen |= 1 << id
		if err := sub.prop(id, p); err != nil {
			return fmt.Errorf("decode %v: %s: property 0x%02X: %w", t, ctx.name, id, err)
		}
	}
	r.off = end
	return nil
}

func (r *reader) boolProp() (*byte, error) {
	v, err := r.byte1()
	if err != nil {
		return nil, err
	}
	if v > 1 {
		return nil, ErrProtocol // e.g. [MQTT-3.1.2-...]: values other than 0 and 1
	}
	return &v, nil
}

func (r *reader) u16Prop() (*uint16, error) {
	v, err := r.uint16()
	if err != nil {
		return nil, err
	}
	return &v, nil
}

func (r *reader) u32Prop() (*uint32, error) {
	v, err := r.uint32()
	if err != nil {
		return nil, err
	}
	return &v, nil
}

func (r *reader) prop(id byte, p *Properties) error {
	var err error
	switch id {
	case propPayloadFormat:
		p.PayloadFormat, err = r.boolProp()
	case propMessageExpiry:
		p.MessageExpiry, err = r.u32Prop()
	case propContentType:
		p.ContentType, err = r.string()
	case propResponseTopic:
		p.ResponseTopic, err = r.string()
	case propCorrelationData:
		p.CorrelationData, err = r.binary()
	case propSubscriptionID:
		var v uint32
		v, err = r.varint()
		if err == nil && v == 0 {
			err = ErrProtocol // 3.3.2.3.8: a value of 0 is a Protocol Error
		}
		p.SubscriptionIDs = append(p.SubscriptionIDs, v)
	case propSessionExpiry:
		p.SessionExpiry, err = r.u32Prop()
	case propAssignedClientID:
		p.AssignedClientID, err = r.string()
	case propServerKeepAlive:
		p.ServerKeepAlive, err = r.u16Prop()
	case propAuthMethod:
		p.AuthMethod, err = r.string()
	case propAuthData:
		p.AuthData, err = r.binary()
	case propRequestProblemInfo:
		p.RequestProblemInfo, err = r.boolProp()
	case propWillDelay:
		p.WillDelay, err = r.u32Prop()
	case propRequestResponseInfo:
		p.RequestResponseInfo, err = r.boolProp()
	case propResponseInfo:
		p.ResponseInfo, err = r.string()
	case propServerReference:
		p.ServerReference, err = r.string()
	case propReasonString:
		p.ReasonString, err = r.string()
	case propReceiveMaximum:
		p.ReceiveMaximum, err = r.u16Prop()
		if err == nil && *p.ReceiveMaximum == 0 {
			err = ErrProtocol // 3.1.2.11.3, 3.2.2.3.3: 0 is a Protocol Error
		}
	case propTopicAliasMaximum:
		p.TopicAliasMaximum, err = r.u16Prop()
	case propTopicAlias:
		p.TopicAlias, err = r.u16Prop()
		if err == nil && *p.TopicAlias == 0 {
			err = ErrProtocol // [MQTT-3.3.2-8]: alias 0 is not permitted
		}
	case propMaximumQoS:
		p.MaximumQoS, err = r.boolProp() // 3.2.2.3.4: 0 or 1, else Protocol Error
	case propRetainAvailable:
		p.RetainAvailable, err = r.boolProp()
	case propUser:
		var k, v string
		if k, err = r.string(); err == nil {
			v, err = r.string()
		}
		p.User = append(p.User, UserProperty{k, v})
	case propMaximumPacketSize:
		p.MaximumPacketSize, err = r.u32Prop()
		if err == nil && *p.MaximumPacketSize == 0 {
			err = ErrProtocol // 3.1.2.11.4, 3.2.2.3.6: 0 is a Protocol Error
		}
	case propWildcardSubAvailable:
		p.WildcardSubAvailable, err = r.boolProp()
	case propSubIDAvailable:
		p.SubIDAvailable, err = r.boolProp()
	case propSharedSubAvailable:
		p.SharedSubAvailable, err = r.boolProp()
	default:
		err = ErrMalformed
	}
	return err
}

// appendProps writes the property length and every property of p that is
// set. A set property the packet may not carry is an error (wrapping
// ErrInvalid), so what Append writes always decodes.
func appendProps(dst []byte, t Type, ctx propCtx, p *Properties) ([]byte, error) {
	dst, mark := reserveVarint(dst)
	var ok = true
	bad := func(id byte) error {
		return fmt.Errorf("encode %v: %s: property 0x%02X not allowed or out of range: %w", t, ctx.name, id, ErrInvalid)
	}
	allow := func(id byte) bool { return ctx.allowed&(1<<id) != 0 }
	if p.PayloadFormat != nil {
		if !allow(propPayloadFormat) || *p.PayloadFormat > 1 {
			return dst, bad(propPayloadFormat)
		}
		dst = append(dst, propPayloadFormat, *p.PayloadFormat)
	}
	if p.MessageExpiry != nil {
		if !allow(propMessageExpiry) {
			return dst, bad(propMessageExpiry)
		}
		dst = appendUint32(append(dst, propMessageExpiry), *p.MessageExpiry)
	}
	if p.ContentType != "" {
		if !allow(propContentType) {
			return dst, bad(propContentType)
		}
		if dst, ok = appendString(append(dst, propContentType), p.ContentType); !ok {
			return dst, bad(propContentType)
		}
	}
	if p.ResponseTopic != "" {
		if !allow(propResponseTopic) {
			return dst, bad(propResponseTopic)
		}
		if dst, ok = appendString(append(dst, propResponseTopic), p.ResponseTopic); !ok {
			return dst, bad(propResponseTopic)
		}
	}
	if p.CorrelationData != nil {
		if !allow(propCorrelationData) {
			return dst, bad(propCorrelationData)
		}
		if dst, ok = appendBinary(append(dst, propCorrelationData), p.CorrelationData); !ok {
			return dst, bad(propCorrelationData)
		}
	}
	if len(p.SubscriptionIDs) > 0 {
		if !allow(propSubscriptionID) || (len(p.SubscriptionIDs) > 1 && ctx.multiple&(1<<propSubscriptionID) == 0) {
			return dst, bad(propSubscriptionID)
		}
		for _, id := range p.SubscriptionIDs {
			if id == 0 || id > MaxRemainingLength {
				return dst, bad(propSubscriptionID)
			}
			dst = appendVarint(append(dst, propSubscriptionID), id)
		}
	}
	if p.SessionExpiry != nil {
		if !allow(propSessionExpiry) {
			return dst, bad(propSessionExpiry)
		}
		dst = appendUint32(append(dst, propSessionExpiry), *p.SessionExpiry)
	}
	if p.AssignedClientID != "" {
		if !allow(propAssignedClientID) {
			return dst, bad(propAssignedClientID)
		}
		if dst, ok = appendString(append(dst, propAssignedClientID), p.AssignedClientID); !ok {
			return dst, bad(propAssignedClientID)
		}
	}
	if p.ServerKeepAlive != nil {
		if !allow(propServerKeepAlive) {
			return dst, bad(propServerKeepAlive)
		}
		dst = appendUint16(append(dst, propServerKeepAlive), *p.ServerKeepAlive)
	}
	if p.AuthMethod != "" {
		if !allow(propAuthMethod) {
			return dst, bad(propAuthMethod)
		}
		if dst, ok = appendString(append(dst, propAuthMethod), p.AuthMethod); !ok {
			return dst, bad(propAuthMethod)
		}
	}
	if p.AuthData != nil {
		if !allow(propAuthData) {
			return dst, bad(propAuthData)
		}
		if dst, ok = appendBinary(append(dst, propAuthData), p.AuthData); !ok {
			return dst, bad(propAuthData)
		}
	}
	if p.RequestProblemInfo != nil {
		if !allow(propRequestProblemInfo) || *p.RequestProblemInfo > 1 {
			return dst, bad(propRequestProblemInfo)
		}
		dst = append(dst, propRequestProblemInfo, *p.RequestProblemInfo)
	}
	if p.WillDelay != nil {
		if !allow(propWillDelay) {
			return dst, bad(propWillDelay)
		}
		dst = appendUint32(append(dst, propWillDelay), *p.WillDelay)
	}
	if p.RequestResponseInfo != nil {
		if !allow(propRequestResponseInfo) || *p.RequestResponseInfo > 1 {
			return dst, bad(propRequestResponseInfo)
		}
		dst = append(dst, propRequestResponseInfo, *p.RequestResponseInfo)
	}
	if p.ResponseInfo != "" {
		if !allow(propResponseInfo) {
			return dst, bad(propResponseInfo)
		}
		if dst, ok = appendString(append(dst, propResponseInfo), p.ResponseInfo); !ok {
			return dst, bad(propResponseInfo)
		}
	}
	if p.ServerReference != "" {
		if !allow(propServerReference) {
			return dst, bad(propServerReference)
		}
		if dst, ok = appendString(append(dst, propServerReference), p.ServerReference); !ok {
			return dst, bad(propServerReference)
		}
	}
	if p.ReasonString != "" {
		if !allow(propReasonString) {
			return dst, bad(propReasonString)
		}
		if dst, ok = appendString(append(dst, propReasonString), p.ReasonString); !ok {
			return dst, bad(propReasonString)
		}
	}
	if p.ReceiveMaximum != nil {
		if !allow(propReceiveMaximum) || *p.ReceiveMaximum == 0 {
			return dst, bad(propReceiveMaximum)
		}
		dst = appendUint16(append(dst, propReceiveMaximum), *p.ReceiveMaximum)
	}
	if p.TopicAliasMaximum != nil {
		if !allow(propTopicAliasMaximum) {
			return dst, bad(propTopicAliasMaximum)
		}
		dst = appendUint16(append(dst, propTopicAliasMaximum), *p.TopicAliasMaximum)
	}
	if p.TopicAlias != nil {
		if !allow(propTopicAlias) || *p.TopicAlias == 0 {
			return dst, bad(propTopicAlias)
		}
		dst = appendUint16(append(dst, propTopicAlias), *p.TopicAlias)
	}
	if p.MaximumQoS != nil {
		if !allow(propMaximumQoS) || *p.MaximumQoS > 1 {
			return dst, bad(propMaximumQoS)
		}
		dst = append(dst, propMaximumQoS, *p.MaximumQoS)
	}
	if p.RetainAvailable != nil {
		if !allow(propRetainAvailable) || *p.RetainAvailable > 1 {
			return dst, bad(propRetainAvailable)
		}
		dst = append(dst, propRetainAvailable, *p.RetainAvailable)
	}
	for _, u := range p.User {
		if !allow(propUser) {
			return dst, bad(propUser)
		}
		if dst, ok = appendString(append(dst, propUser), u.Key); !ok {
			return dst, bad(propUser)
		}
		if dst, ok = appendString(dst, u.Value); !ok {
			return dst, bad(propUser)
		}
	}
	if p.MaximumPacketSize != nil {
		if !allow(propMaximumPacketSize) || *p.MaximumPacketSize == 0 {
			return dst, bad(propMaximumPacketSize)
		}
		dst = appendUint32(append(dst, propMaximumPacketSize), *p.MaximumPacketSize)
	}
	for _, f := range [...]struct {
		id byte
		v  *byte
	}{{propWildcardSubAvailable, p.WildcardSubAvailable}, {propSubIDAvailable, p.SubIDAvailable}, {propSharedSubAvailable, p.SharedSubAvailable}} {
		if f.v != nil {
			if !allow(f.id) || *f.v > 1 {
				return dst, bad(f.id)
			}
			dst = append(dst, f.id, *f.v)
		}
	}
	dst, n := finishVarint(dst, mark)
	if n > MaxRemainingLength {
		return dst, encodeErr(t, ctx.name, ErrInvalid)
	}
	return dst, nil
}

// empty reports whether no property is set.
func (p *Properties) empty() bool {
	return p.PayloadFormat == nil && p.MessageExpiry == nil && p.ContentType == "" &&
		p.ResponseTopic == "" && p.CorrelationData == nil && len(p.SubscriptionIDs) == 0 &&
		p.SessionExpiry == nil && p.AssignedClientID == "" && p.ServerKeepAlive == nil &&
		p.AuthMethod == "" && p.AuthData == nil && p.RequestProblemInfo == nil && p.WillDelay == nil &&
		p.RequestResponseInfo == nil && p.ResponseInfo == "" && p.ServerReference == "" &&
		p.ReasonString == "" && p.ReceiveMaximum == nil && p.TopicAliasMaximum == nil &&
		p.TopicAlias == nil && p.MaximumQoS == nil && p.RetainAvailable == nil && len(p.User) == 0 &&
		p.MaximumPacketSize == nil && p.WildcardSubAvailable == nil && p.SubIDAvailable == nil &&
		p.SharedSubAvailable == nil
}
