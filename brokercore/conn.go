package brokercore

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/outpost-iot/outpost/brokercore/listener"
	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/brokercore/packet"
	"github.com/outpost-iot/outpost/brokercore/topic"
)

// conn is one network client: a reader goroutine (serve, then resume
// after each idle spell; one at a time, handling every inbound packet in
// order) while there is something to read, and a writer goroutine
// (writeLoop) while there is something to send. An idle plain-TCP
// connection has neither: it is parked with the broker's poller (park.go).
type conn struct {
	b     *Broker
	nc    net.Conn
	in    inbuf // reader goroutine only
	addr  string
	debug bool
	// useIdentity: the username is the client certificate's CN
	// (tls.use_identity_as_username); no password is checked.
	useIdentity bool

	// Set during CONNECT, read-only afterwards.
	version   byte
	clientID  string
	username  string
	keepAlive time.Duration
	recvMax   int    // our Receive Maximum for the client's QoS 1/2 publishes
	maxOut    uint32 // client's Maximum Packet Size (0 = no limit)
	aliasMax  uint16 // client's Topic Alias Maximum (outbound aliases)
	sess      *session

	// Reader-goroutine state (one reader at a time; park.go).
	park        parkState       // guarded by the broker's poller
	deadline    time.Time       // the keep-alive read deadline; zero: none
	netDeadline time.Time       // the deadline the socket has (setReadDeadline)
	idleWait    bool            // the socket's deadline is parkAfter away, not deadline
	noGrace     bool            // parking failed: block in reads without an idle deadline
	quiet       bool            // the last packet is usually followed by silence: park at once (park.go)
	lively      bool            // more packets are likely soon: keep the reader parkAfter (park.go)
	parkedAt    time.Time       // when the connection last parked
	rpool       *poolWorker     // the resumer pool goroutine reading (pool.go); nil: a goroutine of its own
	pub         *packet.Publish // every inbound PUBLISH is decoded into it (made at the first)
	aliasIn     map[uint16]string
	connected   bool
	inflightIn  atomic.Int32 // QoS 1/2 publishes received and not yet fully acknowledged
	// blocked: connections with a closed flow gate the last PUBLISH went
	// to (filled by route); heldAck is its acknowledgement, held until
	// they have room (flow.go). routing is set while the reader routes.
	blocked []*conn
	heldAck *inAck
	routing atomic.Bool

	// flow holds publishers while this client's backlog is too long.
	flow flowGate
	// closing fires when the connection starts closing (outClosed).
	closing signal

	// Writer state: outMu guards out and outClosed.
	outMu       sync.Mutex
	out         []packet.Packet
	outClosed   bool
	writing     bool              // a writer holds the writer role: a writer goroutine (wakeLocked) or the reader (takeWriter)
	writerEnded bool              // the writer closed the connection and writerDone
	aliasOut    map[string]uint16 // writer role only
	// readerWrites: the reader goroutine holds the writer role (reader
	// only; see takeWriter). wdeadline: the socket's write deadline
	// (writer role only).
	readerWrites bool
	wdeadline    time.Time
	// wraw: the socket, for writes that must not wait (pool.go); nil
	// until the connection can park. Guarded by outMu.
	wraw syscall.RawConn

	// ackMu guards acks: the acknowledgements of received publishes in
	// receive order [MQTT-4.6.0-2], [MQTT-4.6.0-3].
	ackMu sync.Mutex
	acks  []*inAck

	writerDone signal      // the writer has closed the connection
	hardStop   atomic.Bool // the writer stops: finish gave up waiting for it

	reasonMu  sync.Mutex
	reason    string // why the connection ended, for the log
	cleanDisc bool   // DISCONNECT 0x00 received (no will)
	takenOver bool
	detached  signal // fires when the session has been let go

	// sigMu guards the three signals' channels (a leaf).
	sigMu sync.Mutex
}

// signal is a one-shot event of a connection (closing, writerDone,
// detached). Its channel is made only if somebody waits before it fires:
// they are waited on at a takeover, under flow control and when a writer
// is slow to finish, so most connections never make one (issue 9: three
// channels made up front cost each connection 288 bytes). The
// connection's sigMu guards it.
type signal struct{ ch chan struct{} } // nil: not fired, nobody waits; closedSignal: fired

// closedSignal is the channel of every signal that has fired.
var closedSignal = func() chan struct{} { ch := make(chan struct{}); close(ch); return ch }()

// fire fires s, once.
func (c *conn) fire(s *signal) {
	c.sigMu.Lock()
	if s.ch != closedSignal {
		if s.ch != nil {
			close(s.ch)
		}
		s.ch = closedSignal
	}
	c.sigMu.Unlock()
}

// wait returns a channel closed when s has fired.
func (c *conn) wait(s *signal) <-chan struct{} {
	c.sigMu.Lock()
	defer c.sigMu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

// inAck is the acknowledgement of one received QoS 1/2 PUBLISH (or a
// PUBCOMP), sent when ready and when every earlier one has been sent. It
// is itself the packet the writer encodes (appendAck): PUBACK, PUBREC or
// PUBCOMP with packet id and reason code, no properties.
type inAck struct {
	typ     packet.Type
	pid     uint16
	reason  byte
	ready   bool
	hold    bool // held by flow control (flow.go) until unhold
	counted bool // decrements inflightIn when sent (PUBACK / PUBCOMP / failed PUBREC)
	// For routed, the publish it acknowledges:
	c      *conn
	topic  string
	qos    byte
	noSubs bool // v5: no subscriber (reason 0x10)
}

func newConn(b *Broker, nc net.Conn) *conn {
	c := &conn{
		b:       b,
		nc:      nc,
		addr:    nc.RemoteAddr().String(),
		debug:   b.log.Enabled(b.ctx, slog.LevelDebug),
		version: packet.V311,
		lively:  true, // a new client: more packets are coming
	}
	c.flow.b = b
	c.in.init((*replyReader)(c))
	return c
}

func (c *conn) setReason(r string) {
	c.reasonMu.Lock()
	if c.reason == "" {
		c.reason = r
	}
	c.reasonMu.Unlock()
}

// shutdown is Broker.Shutdown's stop for this connection.
func (c *conn) shutdown() {
	c.setReason("server shutting down")
	// connected0 first: it orders the read of version after the handshake's write.
	if c.connected0() && c.version == packet.V5 {
		c.closeAfter(&packet.Disconnect{ReasonCode: packet.ServerShuttingDown})
	} else {
		c.closeAfter(nil)
	}
	// The reader is unblocked when the writer closes the socket.
}

func (c *conn) connected0() bool {
	c.reasonMu.Lock()
	defer c.reasonMu.Unlock()
	return c.sess != nil
}

// fail ends the connection because of err: a v5 client gets a DISCONNECT
// (or, before CONNACK, a CONNACK) with the reason code.
func (c *conn) fail(code byte, why string) {
	c.setReason(why)
	if c.version == packet.V5 {
		if c.connected {
			c.closeAfter(&packet.Disconnect{ReasonCode: code, Props: packet.Properties{ReasonString: truncate(why, 100)}})
		} else {
			c.closeAfter(&packet.ConnAck{ReasonCode: code})
		}
		return
	}
	c.closeAfter(nil)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// serve is the connection's first reader goroutine: CONNECT, then every
// packet in order until the connection parks (park.go) or ends; then the
// cleanup (will, session detach).
func (c *conn) serve() {
	if err := c.handshake(); err != nil {
		c.setReason(err.Error())
		c.end()
		return
	}
	c.netDeadline = time.Unix(1, 0) // unknown: the handshake's is set next
	if c.keepAlive == 0 {
		tcpKeepAlive(c.nc)
	}
	c.parkable()
	if c.readPackets(false) {
		return
	}
	c.end()
}

// end runs once the connection's last reader returns.
func (c *conn) end() {
	c.finish()
	// The last reader is done: its read array and buffer go back to the
	// pools (a disconnect storm would otherwise leave them all as garbage
	// and take new ones for the next clients).
	c.in.drop()
	c.b.connDone(c)
}

// readPackets reads and handles packets in order; it reports whether the
// connection parked (another goroutine resumes it; see park.go) rather
// than ended. resumed: this reader follows a parked one, whose read
// deadline still holds.
func (c *conn) readPackets(resumed bool) (parked bool) {
	maxIn := c.b.cfg.MaxPacketSize
	for {
		if c.keepAlive > 0 && !resumed {
			// [MQTT-3.1.2-22] one and a half times the keep alive.
			c.deadline = time.Now().Add(c.keepAlive * 3 / 2)
		}
		resumed = false
		idle := c.in.start == c.in.end && c.park.raw != nil && !c.noGrace
		if idle && (c.quiet || !c.lively) {
			// A packet that is mostly followed by silence, or a connection
			// that was idle until now: park now rather than after parkAfter.
			c.quiet = false
			c.releaseWriter() // the answer goes out first
			if stop, parked := c.parkIdle(); stop {
				return parked
			}
			resumed = true // the keep-alive deadline holds
			continue
		}
		// With nothing buffered the next read may wait: after parkAfter
		// of silence the connection parks (park.go).
		d := c.deadline
		c.idleWait = false
		if idle {
			if g := time.Now().Add(parkAfter); d.IsZero() || g.Before(d) {
				d, c.idleWait = g, true
			}
		}
		c.setReadDeadline(d)
		raw, err := c.in.next(maxIn)
		if err != nil {
			if c.idleWait && errors.Is(err, os.ErrDeadlineExceeded) {
				// Idle, not late.
				if stop, parked := c.parkIdle(); stop {
					return parked
				}
				resumed = true // no packet yet: the keep-alive deadline holds
				continue
			}
			c.readFailed(err)
			return false
		}
		c.b.stats.BytesReceived.Add(int64(len(raw)))
		ok, err := c.handleRaw(raw)
		if err != nil {
			c.readFailed(err)
			return false
		}
		if !ok {
			return false
		}
		if len(c.blocked) > 0 && !c.waitFlow() {
			return false
		}
	}
}

// parkIdle parks c, idle with nothing buffered, if still nothing is
// waiting on the socket (park.go). stop: the reader must return, because
// the connection parked, or because the read failed (readFailed has
// ended it; parked is false).
func (c *conn) parkIdle() (stop, parked bool) {
	c.setReadDeadline(c.deadline)
	if c.in.start != c.in.end {
		return false, false
	}
	parked, err := c.tryPark(c.deadline)
	if err != nil {
		c.readFailed(err)
		return true, false
	}
	if !parked {
		c.noGrace = c.in.start == c.in.end // cannot park: stop trying
	}
	return parked, parked
}

// setReadDeadline sets the socket's read deadline if it changed.
func (c *conn) setReadDeadline(d time.Time) {
	if !d.Equal(c.netDeadline) {
		c.nc.SetReadDeadline(d)
		c.netDeadline = d
	}
}

func (c *conn) readFailed(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed):
		c.setReason("connection closed by client")
		c.closeAfter(nil)
	case errors.As(err, &ne) && ne.Timeout():
		if !c.connected {
			c.logRefusal("no CONNECT within connect_timeout", nil)
			c.setReason("no CONNECT within connect_timeout")
			c.closeAfter(nil)
			return
		}
		c.fail(packet.KeepAliveTimeout, "exceeded timeout (keepalive)")
	case errors.Is(err, io.ErrUnexpectedEOF):
		c.setReason("connection closed inside a packet")
		c.closeAfter(nil)
	case errors.Is(err, packet.ErrMalformed) || errors.Is(err, packet.ErrProtocol) || errors.Is(err, packet.ErrPacketTooLarge) || errors.Is(err, packet.ErrUnsupportedProtocol):
		c.b.log.Warn("bad packet from client; disconnecting", "client", c.clientID, "address", c.addr, "err", err)
		c.b.stats.Dropped.Malformed.Add(1)
		c.fail(packet.ReasonCode(err), err.Error())
	default:
		c.setReason("read failed: " + err.Error())
		c.closeAfter(nil)
	}
}

// handshake reads and answers CONNECT ([MQTT-3.1.0-1]: it must be first).
func (c *conn) handshake() error {
	b := c.b
	c.nc.SetReadDeadline(time.Now().Add(b.cfg.ConnectTimeout))
	raw, err := c.in.next(b.cfg.MaxPacketSize)
	if err != nil {
		if errors.Is(err, packet.ErrPacketTooLarge) {
			b.log.Warn("CONNECT too large; disconnecting", "address", c.addr, "err", err)
		}
		c.readFailed(err)
		return fmt.Errorf("read CONNECT: %w", err)
	}
	b.stats.BytesReceived.Add(int64(len(raw)))
	if t := packet.Type(raw[0] >> 4); t != packet.CONNECT {
		// [MQTT-3.1.0-1] the first packet must be CONNECT.
		b.log.Warn("first packet is not CONNECT; disconnecting", "address", c.addr, "packet", t.String())
		c.closeAfter(nil)
		return fmt.Errorf("first packet is %v, not CONNECT", t)
	}
	raw = bytes.Clone(raw) // the will payload and password alias it
	// The decoded CONNECT is needed only until it is answered: it comes
	// from a pool (issue 9: the struct is 816 bytes of garbage per
	// connection otherwise). connect keeps its fields, never cp.
	cp := connectPool.Get().(*packet.Connect)
	defer func() {
		*cp = packet.Connect{}
		connectPool.Put(cp)
	}()
	if _, err := packet.DecodeConnect(raw, cp); err != nil {
		if errors.Is(err, packet.ErrUnsupportedProtocol) {
			// Answer in a form the client understands (3.1.1: 0x01, 5: 0x84).
			if cp.ProtocolLevel == packet.V5 {
				c.version = packet.V5
				c.closeAfter(&packet.ConnAck{ReasonCode: packet.UnsupportedProtocolVersion})
			} else {
				c.version = packet.V311
				c.closeAfter(&packet.ConnAck{ReasonCode: packet.V3UnacceptableProtocol})
			}
			b.log.Warn("CONNECT with unsupported protocol; disconnecting", "address", c.addr, "protocol", cp.ProtocolName, "level", cp.ProtocolLevel)
			return err
		}
		if len(raw) > 8 && raw[8] == packet.V5 {
			c.version = packet.V5
		}
		b.log.Warn("malformed CONNECT; disconnecting", "address", c.addr, "err", err)
		b.stats.Dropped.Malformed.Add(1)
		c.fail(packet.ReasonCode(err), err.Error())
		return err
	}
	c.version = cp.ProtocolLevel
	return c.connect(cp)
}

// Pools of the packet structs a connection needs once or so: its CONNECT
// (handshake), CONNACK, SUBSCRIBEs and SUBACKs (sendEncoded).
var (
	connectPool   = sync.Pool{New: func() any { return new(packet.Connect) }}
	subscribePool = sync.Pool{New: func() any { return new(packet.Subscribe) }}
	connAckPool   = sync.Pool{New: func() any { return new(packet.ConnAck) }}
	subAckPool    = sync.Pool{New: func() any { return new(packet.SubAck) }}
)

// logRefusal logs a refused connection at Info, naming client and address.
func (c *conn) logRefusal(why string, cp *packet.Connect) {
	id := c.clientID
	if cp != nil {
		id = cp.ClientID
	}
	c.b.log.Info("client refused: "+why, "client", id, "address", c.addr)
}

// connect handles a decoded CONNECT (sections 3.1 and 3.2).
func (c *conn) connect(cp *packet.Connect) error {
	b := c.b
	v5 := c.version == packet.V5
	refuse := func(v3code, v5code byte, why string) error {
		code := v3code
		if v5 {
			code = v5code
		}
		c.closeAfter(&packet.ConnAck{ReasonCode: code})
		return errors.New(why)
	}
	if b.cfg.MaxConnections > 0 && int(b.stats.ClientsConnected.Load()) >= b.cfg.MaxConnections {
		b.limitLog.refuse("max_connections reached", "max_connections", b.cfg.MaxConnections)
		return refuse(packet.V3ServerUnavailable, packet.ServerBusy, "max_connections reached")
	}
	// Client identifier (3.1.3.1).
	var assigned string
	if cp.ClientID == "" {
		switch {
		case v5:
			assigned = "auto-" + randomID()
			cp.ClientID = assigned
		case !cp.CleanStart || c.version == packet.V31:
			// [MQTT-3.1.3-8] (3.1.1) a zero-byte id needs clean session;
			// MQTT 3.1 requires an id of 1..23 bytes.
			c.logRefusal("empty client id without clean session", cp)
			return refuse(packet.V3IdentifierRejected, packet.ClientIdentifierNotValid, "empty client id without clean session")
		default:
			cp.ClientID = "auto-" + randomID()
		}
	}
	c.clientID = cp.ClientID
	if v5 && cp.Props.AuthMethod != "" {
		// Enhanced authentication (4.12) is not offered [MQTT-4.12.0-1].
		c.logRefusal("enhanced authentication method "+cp.Props.AuthMethod+" not supported", cp)
		return refuse(packet.V3NotAuthorized, packet.BadAuthenticationMethod, "unsupported authentication method")
	}
	// Authentication.
	an, _ := b.auth()
	if cp.UsernameFlag {
		c.username = cp.Username
	}
	certUser := false
	if c.useIdentity {
		cn, ok := listener.PeerIdentity(c.nc)
		if !ok {
			c.authDelay()
			b.log.Info("client refused: no verified client certificate on a use_identity_as_username listener", "client", cp.ClientID, "address", c.addr)
			return refuse(packet.V3NotAuthorized, packet.NotAuthorized, "no client certificate identity")
		}
		c.username, certUser = cn, true
	}
	switch {
	case certUser:
	case !cp.UsernameFlag || an == nil:
		// Without a password file a username proves nothing: anonymous.
		if !b.allowAnonymous() {
			c.authDelay()
			b.limitLog.refuse("anonymous client not allowed", "client", cp.ClientID, "address", c.addr)
			return refuse(packet.V3NotAuthorized, packet.NotAuthorized, "anonymous client not allowed")
		}
	case an != nil:
		if !an.Check(cp.Username, cp.Password) {
			c.authDelay()
			b.log.Info("client refused: bad username or password", "client", cp.ClientID, "address", c.addr, "username", cp.Username)
			return refuse(packet.V3NotAuthorized, packet.BadUserNameOrPassword, "bad username or password")
		}
	}
	// Keep alive (3.1.2.10); v5 Server Keep Alive when ours is lower.
	ka := int(cp.KeepAlive)
	var serverKA *uint16
	if ka > b.cfg.MaxKeepalive || (ka == 0 && b.cfg.MaxKeepalive < 65535) {
		ka = b.cfg.MaxKeepalive
		if v5 {
			k := uint16(ka)
			serverKA = &k
		}
	}
	c.keepAlive = time.Duration(ka) * time.Second
	// Limits the client announces (3.1.2.11).
	window := b.cfg.MaxInflight
	if v5 {
		if rm := cp.Props.ReceiveMaximum; rm != nil && int(*rm) < window {
			window = int(*rm)
		}
		if mp := cp.Props.MaximumPacketSize; mp != nil {
			c.maxOut = *mp
		}
		if ta := cp.Props.TopicAliasMaximum; ta != nil {
			c.aliasMax = *ta
		}
	}
	c.recvMax = b.cfg.MaxInflight
	// Session expiry.
	var expiry time.Duration
	switch {
	case v5 && cp.Props.SessionExpiry != nil:
		expiry = time.Duration(*cp.Props.SessionExpiry) * time.Second
	case !v5 && !cp.CleanStart:
		expiry = neverExpire
	}
	// Will (3.1.2.5).
	var will *msg.Message
	var willDelay time.Duration
	if cp.WillFlag {
		if err := topic.ValidName(cp.WillTopic); err != nil {
			c.logRefusal("invalid will topic", cp)
			return refuse(packet.V3IdentifierRejected, packet.TopicNameInvalid, err.Error())
		}
		will = &msg.Message{Topic: cp.WillTopic, Payload: cp.WillPayload, QoS: cp.WillQoS, Retain: cp.WillRetain, ClientID: cp.ClientID}
		if v5 {
			messageFromProps(will, &cp.WillProps)
			if cp.WillProps.WillDelay != nil {
				willDelay = time.Duration(*cp.WillProps.WillDelay) * time.Second
			}
		}
	}
	opts := openOpts{
		clientID: cp.ClientID, username: c.username, cleanStart: cp.CleanStart, expiry: expiry,
		will: will, willDelay: willDelay, conn: c, window: window,
	}
	s, present := b.openSession(opts)
	ack := connAckPool.Get().(*packet.ConnAck)
	ack.SessionPresent = present
	if v5 {
		ra := uint16(c.recvMax)
		ack.Props.ReceiveMaximum = &ra
		ack.Props.ServerKeepAlive = serverKA
		ack.Props.AssignedClientID = assigned
		tam := uint16(65535)
		ack.Props.TopicAliasMaximum = &tam
		if b.cfg.MaxPacketSize < packet.MaxRemainingLength {
			mp := uint32(b.cfg.MaxPacketSize)
			ack.Props.MaximumPacketSize = &mp
		}
	}
	// Counted before the CONNACK, so a client that has its CONNACK is counted.
	b.stats.clientConnected()
	c.reasonMu.Lock()
	c.sess = s
	c.reasonMu.Unlock()
	c.connected = true
	// The CONNACK goes first [MQTT-3.2.0-1]; then the session resumes.
	c.sendEncoded(ack)
	*ack = packet.ConnAck{}
	connAckPool.Put(ack)
	if c.debug {
		b.log.Debug("New client connected", "address", c.addr, "client", c.clientID, "protocol", protoName(c.version),
			"clean", cp.CleanStart, "keepalive", ka, "username", c.username)
	}
	b.resumeSession(s, c)
	return nil
}

func protoName(v byte) string {
	switch v {
	case packet.V31:
		return "MQTT v3.1"
	case packet.V5:
		return "MQTT v5"
	}
	return "MQTT v3.1.1"
}

// authDelay slows down password guessing: a refused client waits a
// moment for its CONNACK.
func (c *conn) authDelay() {
	t := time.NewTimer(authFailDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.b.ctx.Done():
	}
}

func messageFromProps(m *msg.Message, pr *packet.Properties) {
	if pr.PayloadFormat != nil {
		m.PayloadFormat = *pr.PayloadFormat
	}
	if pr.MessageExpiry != nil {
		m.MessageExpiry = time.Duration(*pr.MessageExpiry) * time.Second
	}
	m.ContentType = pr.ContentType
	m.ResponseTopic = pr.ResponseTopic
	m.CorrelationData = bytes.Clone(pr.CorrelationData) // may alias the read buffer
	if len(pr.User) > 0 {
		m.UserProperties = make([]msg.UserProperty, len(pr.User))
		for i, u := range pr.User {
			m.UserProperties[i] = msg.UserProperty{Key: u.Key, Value: u.Value}
		}
	}
}

// handleRaw processes the bytes of one packet after CONNECT (valid until
// the next read); false ends the connection, an error is a bad packet.
// The hot packets skip the generic decoder: a PUBLISH is decoded into the
// connection's one packet.Publish (what is kept is copied), a 4-byte
// PUBACK/PUBREC/PUBREL/PUBCOMP is read in place.
func (c *conn) handleRaw(raw []byte) (bool, error) {
	t := packet.Type(raw[0] >> 4)
	// A client mostly goes quiet after it subscribes or pings: it waits
	// for messages, or for its next keep-alive period. After these the
	// connection parks at once when nothing more is buffered; after a
	// PUBLISH or an ack, more of the same is likely within parkAfter.
	c.quiet = t == packet.SUBSCRIBE || t == packet.UNSUBSCRIBE || t == packet.PINGREQ
	switch t {
	case packet.PUBLISH:
		if c.pub == nil {
			c.pub = new(packet.Publish) // a subscriber that never publishes has none
		}
		if _, err := packet.DecodePublish(raw, c.version, c.pub); err != nil {
			return false, err
		}
		return c.handlePublish(c.pub), nil
	case packet.PUBACK, packet.PUBREC, packet.PUBCOMP, packet.PUBREL:
		flags := byte(0)
		if t == packet.PUBREL {
			flags = 0x02 // [MQTT-3.6.1-1]
		}
		if len(raw) == 4 && raw[0]&0x0f == flags && raw[1] == 2 {
			if pid := binary.BigEndian.Uint16(raw[2:]); pid != 0 {
				c.handleAck(t, pid, 0)
				return true, nil
			}
		}
	case packet.SUBSCRIBE:
		return c.handleRawSubscribe(raw)
	case packet.DISCONNECT:
		// The usual one: no reason code (0x00) and no properties. Handled
		// without a copy or a decoded packet (issue 9: what a connection
		// costs).
		if len(raw) == 2 && raw[0] == 0xE0 {
			var d packet.Disconnect
			return c.handleDisconnect(&d), nil
		}
	}
	// Anything else: decoded fields alias raw, which the next read reuses.
	p, _, err := packet.Decode(bytes.Clone(raw), c.version)
	if err != nil {
		return false, err
	}
	return c.handle(p), nil
}

// handleRawSubscribe decodes SUBSCRIBE into a pooled struct (issue 9: 384
// bytes of garbage per SUBSCRIBE otherwise; nothing in it aliases raw)
// and handles it.
func (c *conn) handleRawSubscribe(raw []byte) (bool, error) {
	sp := subscribePool.Get().(*packet.Subscribe)
	defer func() {
		*sp = packet.Subscribe{}
		subscribePool.Put(sp)
	}()
	if _, err := packet.DecodeSubscribe(raw, c.version, sp); err != nil {
		return false, err
	}
	return c.handleSubscribe(sp), nil
}

// handleAck handles PUBACK, PUBREC, PUBCOMP (our deliveries) and PUBREL
// (the client's QoS 2 publish).
func (c *conn) handleAck(t packet.Type, pid uint16, reason byte) {
	if t == packet.PUBREL {
		c.handlePubrel(pid)
		return
	}
	if !c.sess.ackOut(t, pid, reason) {
		// Unknown id: ignored (a resend after reconnect may race an ack).
		c.b.log.Debug("ack for unknown packet id ignored", "client", c.clientID, "packet", t.String(), "mid", pid)
	}
}

// handle processes one decoded packet after CONNECT; false ends the connection.
func (c *conn) handle(p packet.Packet) bool {
	b := c.b
	switch p := p.(type) {
	case *packet.Publish:
		return c.handlePublish(p)
	case *packet.Ack:
		switch p.PacketType {
		case packet.PUBACK, packet.PUBREC, packet.PUBCOMP, packet.PUBREL:
			c.handleAck(p.PacketType, p.PacketID, p.ReasonCode)
		}
	case *packet.Subscribe:
		return c.handleSubscribe(p)
	case *packet.Unsubscribe:
		c.handleUnsubscribe(p)
	case *packet.PingReq:
		c.send(&packet.PingResp{})
	case *packet.Disconnect:
		return c.handleDisconnect(p)
	case *packet.Connect:
		// [MQTT-3.1.0-2] a second CONNECT is a protocol violation.
		b.log.Warn("second CONNECT; disconnecting", "client", c.clientID, "address", c.addr)
		c.fail(packet.ProtocolError, "second CONNECT [MQTT-3.1.0-2]")
		return false
	case *packet.Auth:
		// Enhanced authentication is not offered; an AUTH is a protocol error [MQTT-3.15.0-?].
		c.fail(packet.ProtocolError, "AUTH without an authentication method")
		return false
	default:
		b.log.Warn("unexpected packet from client; disconnecting", "client", c.clientID, "address", c.addr, "packet", p.Type().String())
		c.fail(packet.ProtocolError, "unexpected "+p.Type().String())
		return false
	}
	return true
}

func (c *conn) handleDisconnect(p *packet.Disconnect) bool {
	b := c.b
	if c.version == packet.V5 {
		if se := p.Props.SessionExpiry; se != nil {
			s := c.sess
			s.mu.Lock()
			zero := s.expiry == 0
			s.mu.Unlock()
			if zero && *se != 0 {
				// [MQTT-3.14.2-2]
				c.fail(packet.ProtocolError, "session expiry set on DISCONNECT after 0 at CONNECT")
				return false
			}
			b.setExpiry(s, time.Duration(*se)*time.Second)
		}
	}
	c.reasonMu.Lock()
	// [MQTT-3.14.4-3] no will on a normal DISCONNECT; v5 0x04 asks for it.
	c.cleanDisc = p.ReasonCode != packet.DisconnectWithWill
	c.reasonMu.Unlock()
	if p.ReasonCode == packet.Success { // normal disconnection
		c.setReason("client sent DISCONNECT (reason 0x00)")
	} else {
		c.setReason(fmt.Sprintf("client sent DISCONNECT (reason 0x%02x)", p.ReasonCode))
	}
	// Let go of the session before the socket closes, so that once the
	// client sees the close, messages for it are queued, not in flight.
	b.detachSession(c.sess, c, nil, p.ReasonCode == packet.DisconnectWithWill)
	c.closeAfter(nil)
	return false
}

// finish runs when the read loop ends: it waits for the writer, lets go
// of the session (will, expiry) and logs the disconnect.
func (c *conn) finish() {
	b := c.b
	c.releaseWriter()
	c.closeAfter(nil)
	// Give the writer a bounded time to flush a final packet.
	if done := c.wait(&c.writerDone); done != closedSignal {
		c.rpool.leave()
		t := time.NewTimer(writeTimeout)
		select {
		case <-done:
		case <-t.C:
			c.hardStop.Store(true)
			<-done
		}
		t.Stop()
	}
	c.closeNet()
	defer c.fire(&c.detached)
	if !c.connected {
		return
	}
	// Counted last, so a caller that sees the count drop sees the session
	// detached and the will sent.
	defer b.stats.clientDisconnected()
	c.reasonMu.Lock()
	reason, clean, takenOver := c.reason, c.cleanDisc, c.takenOver
	c.reasonMu.Unlock()
	if takenOver {
		reason = "session taken over"
	}
	if clean {
		b.log.Debug("Client disconnected", "client", c.clientID, "address", c.addr)
	} else {
		b.log.Debug("Client disconnected", "client", c.clientID, "address", c.addr, "reason", reason)
	}
	b.detachSession(c.sess, c, nil, !clean)
}

// setDeadlineNow unblocks the reader (used on takeover).
func (c *conn) interrupt() {
	c.nc.SetReadDeadline(time.Unix(1, 0))
	c.stopParking()
}

// tcpKeepAlive turns on TCP keep-alive probes for a client that asked
// for no MQTT keep alive, so a peer that vanished (a site's link went
// down) is still noticed; the listeners set none by default.
func tcpKeepAlive(nc net.Conn) {
	if tc, ok := nc.(interface{ NetConn() net.Conn }); ok { // TLS
		nc = tc.NetConn()
	}
	if k, ok := nc.(interface {
		SetKeepAliveConfig(net.KeepAliveConfig) error
	}); ok {
		k.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 15 * time.Second, Count: 9})
	}
}

func randomID() string { return strings.ToLower(rand.Text()) }

// authFailDelay is how long a refused client waits for its CONNACK.
const authFailDelay = 500 * time.Millisecond
