package client

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/outpost-iot/outpost/brokercore/packet"
)

// Config describes one connection. The zero value of every field is its
// default, documented beside it.
type Config struct {
	// URL of the server: mqtt://host:port (also tcp://), mqtts://host:port
	// (also ssl://, tls://), ws://host:port/path or wss://host:port/path.
	// Default ports 1883, 8883, 80, 443; default WebSocket path /mqtt.
	URL string
	// ClientID; empty asks the server to assign one (v5: read it from
	// ConnAck().Props.AssignedClientID), which 3.1.1 allows only with a
	// clean session [MQTT-3.1.3-7].
	ClientID string
	// Username and Password; nil Password sends none.
	Username string
	Password []byte
	// TLS is used for mqtts:// and wss://; nil means the system roots and
	// the URL's host name. Set Certificates for a client certificate.
	TLS *tls.Config
	// ProtocolVersion is packet.V311 (the default, as mosquitto_pub),
	// packet.V5 or packet.V31.
	ProtocolVersion byte
	// KeepAlive sent in CONNECT; 0 means 60 s, negative disables it. A v5
	// server's Server Keep Alive replaces it [MQTT-3.2.2-21].
	KeepAlive time.Duration
	// CleanStart: "clean session" in 3.1.1. False resumes the session the
	// server keeps for ClientID, and this client resends what Store holds.
	CleanStart bool
	// SessionExpiry (v5) in seconds: how long the server keeps the session
	// after the connection ends; 0 ends it with the connection, 0xFFFFFFFF
	// never. Ignored before v5, where clean session false keeps it forever.
	SessionExpiry uint32
	// Will is published by the server if the connection ends without
	// DISCONNECT. Its Props may carry WillDelay and the v5 message
	// properties.
	Will *Message
	// MaxInflight bounds outgoing QoS 1/2 messages awaiting their final
	// acknowledgement. In v5 the server's Receive Maximum bounds it too
	// [MQTT-4.9.0-2]. 0 means 20 in v3 (mosquitto's default) and the
	// server's Receive Maximum in v5.
	MaxInflight int
	// ReceiveMaximum (v5) announced to the server: how many QoS 1/2
	// messages it may have in flight towards us. 0 sends none (65,535).
	ReceiveMaximum uint16
	// TopicAliasMaximum (v5) announced to the server for its messages to
	// us. 0: the server must not use aliases.
	TopicAliasMaximum uint16
	// MaxTopicAliases bounds the aliases this client creates for its own
	// PUBLISHes (v5), within the server's Topic Alias Maximum: 0 means as
	// many as the server allows, negative none.
	MaxTopicAliases int
	// MaxPacketSize (v5, sent as Maximum Packet Size) bounds packets we
	// accept; 0 means the protocol maximum. Larger ones end the connection
	// with reason 0x95.
	MaxPacketSize uint32
	// ConnectProps are extra v5 CONNECT properties (User, AuthMethod,
	// RequestProblemInfo...). The fields above take precedence.
	ConnectProps packet.Properties
	// Store keeps session state; nil means a new MemoryStore (state lost
	// with this Client). Pass the same Store to the next Dial to resume.
	Store Store
	// OnMessage receives messages that match no Subscribe handler: those a
	// resumed session delivers before Subscribe is called again.
	OnMessage Handler
	// OnConnect is called once CONNACK accepted the connection, before
	// Dial resends session state and returns.
	OnConnect func(*packet.ConnAck)
	// OnConnectionLost is called once, from the client's own goroutine,
	// when the connection ends for any reason but Disconnect or Close,
	// before Done is closed. It must not call this client's Close or
	// Disconnect (they wait for Done); Dial a new one instead.
	OnConnectionLost func(error)
	// DialTimeout bounds dialing and the CONNECT/CONNACK exchange when the
	// Dial ctx has no earlier deadline; 0 means 30 s.
	DialTimeout time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
}

// Message is an application message, published or received.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
	// Dup is set on a received message the server may have sent before.
	Dup bool
	// Props are the v5 message properties (PayloadFormat, MessageExpiry,
	// ContentType, ResponseTopic, CorrelationData, User; WillDelay for a
	// will). The client manages TopicAlias itself; a received message
	// carries its SubscriptionIDs.
	Props packet.Properties
	// Tag is not sent: it is stored with an outgoing QoS 1/2 message and
	// handed back by Resumed after a reconnect or restart.
	Tag uint64
}

// Handler receives messages. It runs on the connection's reader goroutine,
// in the order the server sent them, and the QoS 1/2 acknowledgement is
// sent when it returns, so a slow handler slows the server down (that is
// the flow control). It must not wait for this client's acknowledgements
// (Publish, Subscribe): use PublishAsync, or hand the message to another
// goroutine. The message is the handler's to keep.
type Handler func(*Message)

type endpoint struct {
	scheme string // "tcp", "tls", "ws", "wss"
	addr   string // host:port
	url    string // WebSocket URL
	host   string // for TLS ServerName
}

func parseURL(raw string) (endpoint, error) {
	if raw == "" {
		return endpoint{}, fmt.Errorf("client url: empty")
	}
	if !strings.Contains(raw, "://") {
		raw = "mqtt://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return endpoint{}, fmt.Errorf("client url %q: %w", raw, err)
	}
	var ep endpoint
	var port string
	switch strings.ToLower(u.Scheme) {
	case "mqtt", "tcp":
		ep.scheme, port = "tcp", "1883"
	case "mqtts", "ssl", "tls", "tcps":
		ep.scheme, port = "tls", "8883"
	case "ws":
		ep.scheme, port = "ws", "80"
	case "wss":
		ep.scheme, port = "wss", "443"
	default:
		return endpoint{}, fmt.Errorf("client url %q: scheme %q: want mqtt, mqtts, ws or wss", raw, u.Scheme)
	}
	ep.host = u.Hostname()
	if ep.host == "" {
		return endpoint{}, fmt.Errorf("client url %q: no host", raw)
	}
	if p := u.Port(); p != "" {
		port = p
	}
	ep.addr = net.JoinHostPort(ep.host, port)
	if ep.scheme == "ws" || ep.scheme == "wss" {
		path := u.EscapedPath()
		if path == "" {
			path = "/mqtt"
		}
		scheme := "http"
		if ep.scheme == "wss" {
			scheme = "https"
		}
		ep.url = scheme + "://" + ep.addr + path
		if u.RawQuery != "" {
			ep.url += "?" + u.RawQuery
		}
	}
	return ep, nil
}

func (c *Config) version() byte {
	if c.ProtocolVersion == 0 {
		return packet.V311
	}
	return c.ProtocolVersion
}

func (c *Config) keepAlive() uint16 {
	switch {
	case c.KeepAlive < 0:
		return 0
	case c.KeepAlive == 0:
		return 60
	case c.KeepAlive < time.Second:
		return 1
	case c.KeepAlive > 65535*time.Second:
		return 65535
	}
	return uint16(c.KeepAlive / time.Second)
}

// Validate reports a Config that cannot work.
func (c *Config) Validate() error {
	if _, err := parseURL(c.URL); err != nil {
		return err
	}
	switch c.version() {
	case packet.V31, packet.V311, packet.V5:
	default:
		return fmt.Errorf("client protocol version %d: want 3, 4 (3.1.1) or 5", c.ProtocolVersion)
	}
	if c.ClientID == "" && !c.CleanStart && c.version() != packet.V5 {
		return fmt.Errorf("client id: empty needs clean session in MQTT 3.1.1 [MQTT-3.1.3-7]")
	}
	if c.Will != nil {
		if c.Will.QoS > 2 {
			return fmt.Errorf("client will QoS %d: want 0, 1 or 2", c.Will.QoS)
		}
		if err := checkTopicName(c.Will.Topic); err != nil {
			return fmt.Errorf("client will topic: %w", err)
		}
	}
	if c.MaxInflight < 0 || c.MaxInflight > 65535 {
		return fmt.Errorf("client max inflight %d: want 0..65535", c.MaxInflight)
	}
	return nil
}
