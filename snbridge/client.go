package snbridge

import (
	"net"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/brokercore/topic"
	"github.com/outpost-iot/outpost/snbridge/snpacket"
)

// clientState follows the client state diagram of section 6.14, Figure 4,
// plus the two steps of the will dialogue of section 6.2.
type clientState int

const (
	stateDisconnected clientState = iota
	stateWillTopic                // CONNECT with Will: WILLTOPICREQ sent
	stateWillMsg                  // WILLTOPIC received: WILLMSGREQ sent
	stateConnecting               // opening the broker session; CONNACK not sent yet
	stateActive
	stateAsleep
	stateAwake
	stateLost
)

// keepAliveGrace scales the keep alive and sleep durations before a client
// is declared lost (section 6.11 leaves the margin open; MQTT 3.1.1 uses
// one and a half times, [MQTT-3.1.2-24], and so do we).
func keepAliveGrace(d time.Duration) time.Duration { return d + d/2 }

// client is one MQTT-SN client, known by its ClientId. It outlives its
// address (a sleeping node may come back from another port) and, with
// clean session false, its connection (topic ids and queued messages are
// kept, section 6.3).
type client struct {
	g  *Gateway
	id string

	mu           sync.Mutex
	peer         *peer
	state        clientState
	sess         msg.Session
	cleanSession bool
	keepAlive    time.Duration
	lastRx       time.Time
	sleepFor     time.Duration
	sleepUntil   time.Time

	// will dialogue (section 6.2) and will updates (section 6.4)
	pendingClean bool
	pendingKA    time.Duration
	willFlags    snpacket.Flags
	willTopic    string
	willMsg      []byte

	// topic ids registered for this client (section 6.5, 6.10)
	topics    map[uint16]string
	ids       map[string]uint16
	nextTopic uint16

	qos2In    map[uint16]struct{} // inbound QoS 2 MsgIds between PUBREC and PUBREL
	queue     []msg.Message       // outbound, head first
	inflight  *inflight
	nextMsgID uint16
	holdPump  int // >0 while a SUBACK is pending: retained messages wait for it
}

func newClient(g *Gateway, id string) *client {
	return &client{g: g, id: id, topics: map[uint16]string{}, ids: map[string]uint16{}, qos2In: map[uint16]struct{}{}}
}

func (c *client) connected() bool {
	switch c.state {
	case stateActive, stateAsleep, stateAwake, stateWillTopic, stateWillMsg, stateConnecting:
		return true
	}
	return false
}

// bind makes p the client's address. Caller holds g.mu.
func (g *Gateway) bind(c *client, p *peer) {
	c.mu.Lock()
	old := c.peer
	c.peer = p
	c.mu.Unlock()
	if old != nil && old != p && old.client == c {
		old.client = nil
	}
	if p.client != nil && p.client != c {
		// Another client id from the same address: the old one is gone.
		p.client.mu.Lock()
		if p.client.peer == p {
			p.client.peer = nil
		}
		p.client.mu.Unlock()
	}
	p.client = c
}

// connect handles CONNECT (sections 5.4.4, 6.2).
func (g *Gateway) connect(p *peer, pk *snpacket.Connect) {
	if pk.ProtocolID != snpacket.ProtocolID {
		g.rl.warn(g.now(), DropUnexpected, p.String(), "mqtt-sn: CONNECT with unknown ProtocolId refused", "protocol_id", pk.ProtocolID)
		g.send(p, &snpacket.Connack{ReturnCode: snpacket.RejectedNotSupported})
		return
	}
	// Section 5.3.1: ClientId is 1 to 23 characters.
	if n := utf8.RuneCountInString(pk.ClientID); n < 1 || n > 23 || !utf8.ValidString(pk.ClientID) {
		g.rl.warn(g.now(), DropUnexpected, p.String(), "mqtt-sn: CONNECT refused: ClientId must be 1 to 23 characters (section 5.3.1)", "client_id", pk.ClientID)
		g.send(p, &snpacket.Connack{ReturnCode: snpacket.RejectedNotSupported})
		return
	}
	g.mu.Lock()
	c := g.clients[pk.ClientID]
	if c == nil {
		if g.cfg.MaxClients > 0 && g.connectedLocked() >= g.cfg.MaxClients {
			g.mu.Unlock()
			g.rl.warn(g.now(), DropUnexpected, p.String(), "mqtt-sn: CONNECT refused: mqttsn.max_clients reached", "client_id", pk.ClientID)
			g.send(p, &snpacket.Connack{ReturnCode: snpacket.RejectedCongestion})
			return
		}
		c = newClient(g, pk.ClientID)
		g.clients[pk.ClientID] = c
	}
	g.bind(c, p)
	g.mu.Unlock()

	c.mu.Lock()
	c.lastRx = g.now()
	c.pendingClean = pk.Flags.CleanSession
	c.pendingKA = time.Duration(pk.Duration) * time.Second
	if pk.Flags.Will {
		// Section 6.2: the gateway asks for the will topic, then the message.
		c.state = stateWillTopic
		c.willFlags, c.willTopic, c.willMsg = snpacket.Flags{}, "", nil
		g.send(p, &snpacket.WillTopicReq{})
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.finishConnect(false)
}

func (g *Gateway) connectedLocked() int {
	n := 0
	for _, c := range g.clients {
		c.mu.Lock()
		if c.connected() {
			n++
		}
		c.mu.Unlock()
	}
	return n
}

// will returns the will as a message, nil if none. Caller holds c.mu.
func (c *client) will() *msg.Message {
	if c.willTopic == "" {
		return nil
	}
	q := c.willFlags.QoS
	if q < 0 {
		q = 0
	}
	return &msg.Message{Topic: c.willTopic, Payload: append([]byte(nil), c.willMsg...), QoS: byte(q), Retain: c.willFlags.Retain}
}

// finishConnect opens (or keeps) the broker session and sends CONNACK.
// With clean session false and a session still open (a sleeping client
// coming back with CONNECT, section 6.14) the session is kept.
func (c *client) finishConnect(withWill bool) {
	g := c.g
	c.mu.Lock()
	old := c.sess
	clean := c.pendingClean
	reuse := old != nil && !clean
	will := c.will()
	if !withWill && !reuse {
		c.willTopic, c.willMsg = "", nil
		will = nil
	}
	if !reuse {
		c.sess = nil
	}
	if clean {
		// Section 6.3: clean session discards subscriptions and topic ids.
		c.resetLocked()
	}
	c.state = stateConnecting // deliveries queue, nothing is sent
	peer := c.peer
	c.mu.Unlock()

	if reuse {
		if withWill {
			old.SetWill(will)
		}
	} else {
		if old != nil {
			_ = old.Close(false)
		}
		remote := ""
		if peer != nil {
			remote = peer.String()
		}
		// Clean session false keeps subscriptions and registered ids
		// (section 6.3); the broker keeps a session only with an expiry,
		// so give it the one MQTT 3.1.1 gives a persistent session: never.
		var expiry time.Duration
		if !clean {
			expiry = persistentExpiry
		}
		s, _, err := g.sessions.Open(g.ctx, msg.SessionOptions{
			ClientID: c.id, Username: g.usernameFor(peer), Listener: listenerName(peer), RemoteAddr: remote,
			CleanStart: clean, SessionExpiry: expiry, Will: will, Deliver: c.deliver,
		})
		if err != nil {
			rc := returnCode(err)
			g.rl.warn(g.now(), DropUnexpected, remote, "mqtt-sn: CONNECT refused by the broker", "client_id", c.id, "error", err, "return_code", rc.String())
			c.mu.Lock()
			c.state = stateDisconnected
			if peer != nil {
				g.send(peer, &snpacket.Connack{ReturnCode: rc})
			}
			c.mu.Unlock()
			return
		}
		c.mu.Lock()
		c.sess = s
		c.mu.Unlock()
	}
	c.mu.Lock()
	c.cleanSession = clean
	c.keepAlive = c.pendingKA
	c.lastRx = g.now()
	c.state = stateActive
	g.log.Debug("mqtt-sn client connected", "client_id", c.id, "addr", remote(c.peer), "clean_session", clean, "keepalive", c.keepAlive)
	if c.peer != nil {
		g.send(c.peer, &snpacket.Connack{ReturnCode: snpacket.Accepted})
	}
	c.resendInflight()
	c.pump()
	c.mu.Unlock()
}

// usernameFor is the broker username of a client connecting from p:
// mqttsn.username, or on a DTLS port with use_identity_as_username its
// PSK identity or certificate common name.
func (g *Gateway) usernameFor(p *peer) string {
	if p != nil && g.cfg.DTLS != nil && g.cfg.DTLS.UseIdentityAsUsername {
		if it, ok := p.tr.t.(interface{ PeerIdentity(net.Addr) string }); ok {
			if id := it.PeerIdentity(p.addr); id != "" {
				return id
			}
		}
	}
	return g.cfg.Username
}

func listenerName(p *peer) string {
	if p == nil {
		return "mqtt-sn"
	}
	return p.tr.name
}

func remote(p *peer) string {
	if p == nil {
		return ""
	}
	return p.String()
}

// resetLocked forgets topic ids, QoS 2 state and queued messages.
func (c *client) resetLocked() {
	clear(c.topics)
	clear(c.ids)
	clear(c.qos2In)
	c.nextTopic = 0
	c.queue = nil
	c.inflight = nil
}

// willTopic handles WILLTOPIC in the connect dialogue (section 6.2).
func (c *client) onWillTopic(pk *snpacket.WillTopic) {
	c.mu.Lock()
	if c.state == stateWillMsg && pk.Topic != "" && topic.ValidName(pk.Topic) == nil {
		// Our WILLMSGREQ was lost and the client repeats WILLTOPIC (6.13).
		c.willFlags, c.willTopic = pk.Flags, pk.Topic
		c.g.send(c.peer, &snpacket.WillMsgReq{})
		c.mu.Unlock()
		return
	}
	if c.state != stateWillTopic {
		c.mu.Unlock()
		c.g.cnt.drop(DropUnexpected)
		return
	}
	c.lastRx = c.g.now()
	if pk.Topic == "" {
		// An empty WILLTOPIC: no will after all (section 5.4.7).
		c.willTopic, c.willMsg = "", nil
		c.mu.Unlock()
		c.finishConnect(false)
		return
	}
	if err := topic.ValidName(pk.Topic); err != nil {
		c.state = stateDisconnected
		c.g.rl.warn(c.g.now(), DropUnexpected, remote(c.peer), "mqtt-sn: CONNECT refused: bad will topic", "client_id", c.id, "error", err)
		c.g.send(c.peer, &snpacket.Connack{ReturnCode: snpacket.RejectedNotSupported})
		c.mu.Unlock()
		return
	}
	c.willFlags, c.willTopic = pk.Flags, pk.Topic
	c.state = stateWillMsg
	c.g.send(c.peer, &snpacket.WillMsgReq{})
	c.mu.Unlock()
}

func (c *client) onWillMsg(pk *snpacket.WillMsg) {
	c.mu.Lock()
	if c.state != stateWillMsg || c.willTopic == "" {
		c.mu.Unlock()
		c.g.cnt.drop(DropUnexpected)
		return
	}
	c.lastRx = c.g.now()
	c.willMsg = append([]byte(nil), pk.Msg...)
	c.mu.Unlock()
	c.finishConnect(true)
}

// onWillTopicUpd and onWillMsgUpd update the will (section 6.4).
func (c *client) onWillTopicUpd(pk *snpacket.WillTopicUpd) {
	c.mu.Lock()
	rc := snpacket.Accepted
	switch {
	case pk.Topic == "":
		c.willTopic, c.willMsg = "", nil // empty WILLTOPICUPD deletes the will
	case topic.ValidName(pk.Topic) != nil:
		rc = snpacket.RejectedNotSupported
	default:
		c.willFlags, c.willTopic = pk.Flags, pk.Topic
	}
	will, s := c.will(), c.sess
	c.mu.Unlock()
	if rc == snpacket.Accepted && s != nil {
		s.SetWill(will)
	}
	c.mu.Lock()
	c.g.send(c.peer, &snpacket.WillTopicResp{ReturnCode: rc})
	c.mu.Unlock()
}

func (c *client) onWillMsgUpd(pk *snpacket.WillMsgUpd) {
	c.mu.Lock()
	c.willMsg = append([]byte(nil), pk.Msg...)
	will, s := c.will(), c.sess
	c.mu.Unlock()
	if s != nil && will != nil {
		s.SetWill(will)
	}
	c.mu.Lock()
	c.g.send(c.peer, &snpacket.WillMsgResp{ReturnCode: snpacket.Accepted})
	c.mu.Unlock()
}

// onDisconnect handles DISCONNECT (sections 6.12 and 6.14).
func (c *client) onDisconnect(pk *snpacket.Disconnect) {
	g := c.g
	c.mu.Lock()
	if pk.HasDuration && pk.Duration > 0 {
		// Section 6.14: asleep for Duration; the gateway buffers messages.
		c.state = stateAsleep
		c.sleepFor = time.Duration(pk.Duration) * time.Second
		c.sleepUntil = g.now().Add(keepAliveGrace(c.sleepFor))
		g.send(c.peer, &snpacket.Disconnect{})
		g.log.Debug("mqtt-sn client asleep", "client_id", c.id, "duration", c.sleepFor)
		c.mu.Unlock()
		return
	}
	g.send(c.peer, &snpacket.Disconnect{})
	s := c.sess
	c.sess = nil
	c.state = stateDisconnected
	clean := c.cleanSession
	if clean {
		c.resetLocked()
	}
	p := c.peer
	c.mu.Unlock()
	if s != nil {
		_ = s.Close(false)
	}
	g.mu.Lock()
	if p != nil && p.client == c {
		p.client = nil
	}
	if clean && g.clients[c.id] == c {
		delete(g.clients, c.id)
	}
	g.mu.Unlock()
	g.log.Debug("mqtt-sn client disconnected", "client_id", c.id)
}

// wake handles PINGREQ carrying a ClientId: a sleeping client checking for
// buffered messages (section 6.14). It reports false if no such client is
// asleep or awake, so that the PINGREQ is handled as an ordinary one.
func (g *Gateway) wake(p *peer, id string) bool {
	g.mu.Lock()
	c := g.clients[id]
	if c == nil {
		g.mu.Unlock()
		return false
	}
	c.mu.Lock()
	st := c.state
	c.mu.Unlock()
	if st != stateAsleep && st != stateAwake {
		g.mu.Unlock()
		return false
	}
	g.bind(c, p)
	g.mu.Unlock()
	c.mu.Lock()
	c.lastRx = g.now()
	c.sleepUntil = g.now().Add(keepAliveGrace(c.sleepFor))
	c.state = stateAwake
	c.resendInflight()
	c.pump() // sends what is buffered, then PINGRESP, and the client sleeps again
	c.mu.Unlock()
	return true
}

// tick runs the client's timers: keep alive (section 6.11), sleep
// (section 6.14), retransmission (section 6.13).
func (c *client) tick(now time.Time) {
	g := c.g
	c.mu.Lock()
	lost := false
	switch c.state {
	case stateActive:
		lost = c.keepAlive > 0 && now.Sub(c.lastRx) > keepAliveGrace(c.keepAlive)
	case stateAsleep, stateAwake:
		lost = now.After(c.sleepUntil)
	case stateWillTopic, stateWillMsg:
		if c.sess == nil && now.Sub(c.lastRx) > g.cfg.RetryInterval*time.Duration(g.cfg.MaxRetries) {
			c.state = stateDisconnected // the will dialogue was abandoned
		}
	case stateLost, stateDisconnected:
		if c.cleanSession && now.Sub(c.lastRx) > lostRetention {
			c.mu.Unlock()
			g.mu.Lock()
			if g.clients[c.id] == c {
				delete(g.clients, c.id)
			}
			c.mu.Lock()
			if p := c.peer; p != nil && p.client == c {
				p.client = nil // the address may now be forgotten too
			}
			c.mu.Unlock()
			g.mu.Unlock()
			return
		}
	}
	if !lost && c.inflight != nil && (c.state == stateActive || c.state == stateAwake) && now.Sub(c.inflight.sent) >= g.cfg.RetryInterval {
		if c.inflight.tries >= g.cfg.MaxRetries {
			g.cnt.drop(DropRetries)
			g.rl.warn(now, DropRetries, remote(c.peer), "mqtt-sn: client does not acknowledge, treating it as lost", "client_id", c.id, "type", c.inflight.pkt.Type().String())
			lost = true
		} else {
			c.inflight.tries++
			c.inflight.sent = now
			c.sendInflight(true)
		}
	}
	if !lost {
		c.mu.Unlock()
		return
	}
	s := c.loseLocked()
	c.mu.Unlock()
	g.log.Info("mqtt-sn client lost", "client_id", c.id)
	if s != nil {
		_ = s.Close(true) // publishes the will
	}
}

// loseLocked moves the client to lost and returns the session to close
// with its will.
func (c *client) loseLocked() msg.Session {
	s := c.sess
	c.sess = nil
	c.state = stateLost
	c.inflight = nil
	if c.cleanSession {
		c.resetLocked()
	}
	return s
}

// persistentExpiry is the session expiry of a clean-session-false client:
// MQTT 5's 0xFFFFFFFF seconds, "never" (what a 3.1.1 client gets).
const persistentExpiry = time.Duration(1<<32-1) * time.Second
