package client

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/outpost-iot/outpost/brokercore/packet"
)

type subscription struct {
	filter string // as subscribed, "$share/g/" prefix included
	match  string // the filter messages are matched against
	h      Handler
}

// Subscribe registers h for every filter in subs, sends SUBSCRIBE and waits
// for SUBACK. It returns the granted QoS / reason code per filter; a
// refused filter (code 0x80 or above) loses its handler and makes the
// error a *ServerError naming it. h is registered before SUBSCRIBE is sent,
// so retained messages that arrive before SUBACK reach it. A filter
// subscribed again replaces its handler.
func (c *Client) Subscribe(ctx context.Context, subs []packet.Subscription, h Handler) ([]byte, error) {
	if len(subs) == 0 {
		return nil, fmt.Errorf("subscribe: no topic filter [MQTT-3.8.3-3]: %w", ErrInvalid)
	}
	if h == nil {
		return nil, fmt.Errorf("subscribe: nil handler: %w", ErrInvalid)
	}
	for _, s := range subs {
		if err := checkFilter(s.Filter); err != nil {
			return nil, fmt.Errorf("subscribe %q: %w", s.Filter, err)
		}
		if s.QoS > 2 || s.RetainHandling > 2 {
			return nil, fmt.Errorf("subscribe %q: QoS %d, retain handling %d: %w", s.Filter, s.QoS, s.RetainHandling, ErrInvalid)
		}
	}
	c.mu.Lock()
	for _, s := range subs {
		c.addSub(s.Filter, h)
	}
	c.mu.Unlock()
	codes, err := c.request(ctx, &packet.Subscribe{Subscriptions: subs})
	if err != nil {
		return nil, fmt.Errorf("subscribe %q: %w", subs[0].Filter, err)
	}
	if len(codes) != len(subs) {
		return codes, fmt.Errorf("subscribe: %d reason codes for %d filters: %w", len(codes), len(subs), packet.ErrProtocol)
	}
	var refused error
	for i, code := range codes {
		if code >= 0x80 {
			c.mu.Lock()
			c.removeSub(subs[i].Filter)
			c.mu.Unlock()
			if refused == nil {
				refused = fmt.Errorf("subscribe %q: %w", subs[i].Filter, &ServerError{Op: "subscribe", Code: code})
			}
		}
	}
	return codes, refused
}

// Unsubscribe removes the handlers of filters, sends UNSUBSCRIBE and waits
// for UNSUBACK. It returns the v5 reason codes (none in 3.1.1).
func (c *Client) Unsubscribe(ctx context.Context, filters ...string) ([]byte, error) {
	if len(filters) == 0 {
		return nil, fmt.Errorf("unsubscribe: no topic filter [MQTT-3.10.3-2]: %w", ErrInvalid)
	}
	for _, f := range filters {
		if err := checkFilter(f); err != nil {
			return nil, fmt.Errorf("unsubscribe %q: %w", f, err)
		}
	}
	c.mu.Lock()
	for _, f := range filters {
		c.removeSub(f)
	}
	c.mu.Unlock()
	codes, err := c.request(ctx, &packet.Unsubscribe{Filters: filters})
	if err != nil {
		return nil, fmt.Errorf("unsubscribe %q: %w", filters[0], err)
	}
	for i, code := range codes {
		if code >= 0x80 && i < len(filters) {
			return codes, fmt.Errorf("unsubscribe %q: %w", filters[i], &ServerError{Op: "unsubscribe", Code: code})
		}
	}
	return codes, nil
}

// request sends SUBSCRIBE or UNSUBSCRIBE with a fresh packet id and waits
// for its ack.
func (c *Client) request(ctx context.Context, p packet.Packet) ([]byte, error) {
	r := &request{done: make(chan struct{})}
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return nil, c.lostErr()
	}
	id, ok := c.allocID()
	if !ok {
		c.mu.Unlock()
		return nil, fmt.Errorf("no free packet identifier")
	}
	c.requests[id] = r
	c.mu.Unlock()
	switch p := p.(type) {
	case *packet.Subscribe:
		p.PacketID = id
	case *packet.Unsubscribe:
		p.PacketID = id
	}
	drop := func() {
		c.mu.Lock()
		delete(c.requests, id)
		c.mu.Unlock()
	}
	select {
	case c.out <- writeReq{p: p}:
	case <-c.quit:
		drop()
		return nil, c.lostErr()
	case <-ctx.Done():
		drop()
		return nil, ctx.Err()
	}
	select {
	case <-r.done:
		if !r.acked {
			return nil, c.lostErr() // closed by exit, not by an ack
		}
		return r.codes, nil
	case <-ctx.Done():
		drop()
		return nil, ctx.Err()
	}
}

// addSub and removeSub keep c.subs; c.mu held.
func (c *Client) addSub(filter string, h Handler) {
	match := filter
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			match = rest[i+1:]
		}
	}
	for i := range c.subs {
		if c.subs[i].filter == filter {
			c.subs[i].h = h
			return
		}
	}
	c.subs = append(c.subs, subscription{filter: filter, match: match, h: h})
}

func (c *Client) removeSub(filter string) {
	for i := range c.subs {
		if c.subs[i].filter == filter {
			c.subs = append(c.subs[:i:i], c.subs[i+1:]...)
			return
		}
	}
}

// deliver calls every handler whose filter matches m, or OnMessage.
func (c *Client) deliver(m *Message) {
	c.mu.Lock()
	var hs []Handler
	for _, s := range c.subs {
		if matchFilter(s.match, m.Topic) {
			hs = append(hs, s.h)
		}
	}
	c.mu.Unlock()
	if len(hs) == 0 {
		if c.cfg.OnMessage != nil {
			c.cfg.OnMessage(m)
		} else {
			c.log.Debug("message matches no subscription", "topic", m.Topic)
		}
		return
	}
	for _, h := range hs {
		h(m)
	}
}

// matchFilter reports whether topic matches filter (4.7): '+' one level,
// '#' the rest (including the parent), and wildcards in the first level do
// not match topics starting with '$' [MQTT-4.7.2-1].
func matchFilter(filter, topic string) bool {
	if topic != "" && topic[0] == '$' && filter != "" && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	for {
		fl, frest, fmore := strings.Cut(filter, "/")
		if fl == "#" {
			return true
		}
		tl, trest, tmore := strings.Cut(topic, "/")
		if fl != "+" && fl != tl {
			return false
		}
		if !fmore {
			return !tmore
		}
		if !tmore {
			return frest == "#" // "a/#" matches "a" [MQTT-4.7.1-2]
		}
		filter, topic = frest, trest
	}
}

// checkFilter: non-empty [MQTT-4.7.3-1], '#' last and alone in its level
// [MQTT-4.7.1-1], '+' alone in its level [MQTT-4.7.1-2].
func checkFilter(f string) error {
	if f == "" {
		return fmt.Errorf("empty topic filter [MQTT-4.7.3-1]: %w", ErrInvalid)
	}
	if len(f) > 65535 || strings.ContainsRune(f, 0) || !validUTF8(f) {
		return fmt.Errorf("topic filter not valid UTF-8 or too long: %w", ErrInvalid)
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return fmt.Errorf("'#' not alone at the end of the filter [MQTT-4.7.1-1]: %w", ErrInvalid)
		}
		if strings.Contains(l, "+") && l != "+" {
			return fmt.Errorf("'+' not alone in its level [MQTT-4.7.1-2]: %w", ErrInvalid)
		}
	}
	if rest, ok := strings.CutPrefix(f, "$share/"); ok {
		g, filter, ok := strings.Cut(rest, "/")
		if !ok || g == "" || filter == "" || strings.ContainsAny(g, "+#") {
			return fmt.Errorf("shared subscription needs $share/<group>/<filter> [MQTT-4.8.2-1]: %w", ErrInvalid)
		}
	}
	return nil
}

func validUTF8(s string) bool { return utf8.ValidString(s) }

// codeText names a reason code for error messages.
func codeText(op string, code byte) string {
	if op == "connect" && code < 0x80 {
		switch code {
		case packet.V3UnacceptableProtocol:
			return "unacceptable protocol version"
		case packet.V3IdentifierRejected:
			return "identifier rejected"
		case packet.V3ServerUnavailable:
			return "server unavailable"
		case packet.V3BadUsernameOrPassword:
			return "bad user name or password"
		case packet.V3NotAuthorized:
			return "not authorized"
		}
	}
	switch code {
	case packet.Success:
		return "normal disconnection"
	case packet.DisconnectWithWill:
		return "disconnect with will"
	case packet.UnspecifiedError:
		return "unspecified error"
	case packet.MalformedPacket:
		return "malformed packet"
	case packet.ProtocolError:
		return "protocol error"
	case packet.ImplementationSpecificError:
		return "implementation specific error"
	case packet.UnsupportedProtocolVersion:
		return "unsupported protocol version"
	case packet.ClientIdentifierNotValid:
		return "client identifier not valid"
	case packet.BadUserNameOrPassword:
		return "bad user name or password"
	case packet.NotAuthorized:
		return "not authorized"
	case packet.ServerUnavailable:
		return "server unavailable"
	case packet.ServerBusy:
		return "server busy"
	case packet.Banned:
		return "banned"
	case packet.ServerShuttingDown:
		return "server shutting down"
	case packet.KeepAliveTimeout:
		return "keep alive timeout"
	case packet.SessionTakenOver:
		return "session taken over"
	case packet.TopicFilterInvalid:
		return "topic filter invalid"
	case packet.TopicNameInvalid:
		return "topic name invalid"
	case packet.PacketIdentifierInUse:
		return "packet identifier in use"
	case packet.ReceiveMaximumExceeded:
		return "receive maximum exceeded"
	case packet.TopicAliasInvalid:
		return "topic alias invalid"
	case packet.PacketTooLarge:
		return "packet too large"
	case packet.QuotaExceeded:
		return "quota exceeded"
	case packet.PayloadFormatInvalid:
		return "payload format invalid"
	case packet.RetainNotSupported:
		return "retain not supported"
	case packet.QoSNotSupported:
		return "QoS not supported"
	case packet.UseAnotherServer:
		return "use another server"
	case packet.ServerMoved:
		return "server moved"
	case packet.SharedSubNotSupported:
		return "shared subscriptions not supported"
	case packet.WildcardSubNotSupported:
		return "wildcard subscriptions not supported"
	case packet.SubIDsNotSupported:
		return "subscription identifiers not supported"
	}
	return "see the MQTT 5.0 reason codes"
}
