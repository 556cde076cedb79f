// Package client is Outpost's MQTT client: MQTT 3.1.1 and 5.0 (and 3.1)
// over TCP, TLS and WebSocket, with QoS 0/1/2, persistent sessions whose
// state lives in a pluggable Store, ordered resend after a reconnect
// [MQTT-4.6.0-1], an in-flight window bounded by the server's Receive
// Maximum, and v5 topic aliases towards the server.
//
// One Client is one network connection: Dial connects, and the connection
// ends with Disconnect, Close or a network error (Done, Err). Reconnecting
// is the caller's policy: Dial again with the same Config and Store, and
// the session state is resent (see Resumed). Each Client runs exactly two
// goroutines, one reading and one writing (batching packets into few
// writes and sending PINGREQ), both ended and waited for by Close.
//
// Not supported: v5 enhanced authentication (an AUTH packet from the server
// ends the connection), server-side reconnect (UseAnotherServer is reported
// as a *ServerError), and sending Subscription Identifiers.
//
// It imports the packet codec, the standard library and
// github.com/coder/websocket only: never brokercore or brokercore/msg.
package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpost-iot/outpost/brokercore/packet"
)

// Errors callers branch on.
var (
	// ErrClosed: Disconnect or Close ended the connection.
	ErrClosed = errors.New("client closed")
	// ErrConnectionLost wraps the cause when the connection ends while a
	// Token or call waits. Outgoing QoS 1/2 messages stay in the Store.
	ErrConnectionLost = errors.New("connection lost")
	// ErrNotSupported: the server's CONNACK rules the request out (Maximum
	// QoS, Retain Available, Maximum Packet Size).
	ErrNotSupported = errors.New("not supported by the server")
	// ErrInvalid: a topic, filter or QoS the protocol does not allow.
	ErrInvalid = errors.New("invalid request")
	// ErrKeepAliveTimeout: no PINGRESP within the keep alive interval.
	ErrKeepAliveTimeout = errors.New("keep alive timeout: no PINGRESP")
)

// ServerError is a refusal from the server: a CONNACK return code, a v5
// reason code of 0x80 or above in an ack, or a v5 DISCONNECT.
type ServerError struct {
	Op     string // "connect", "publish", "subscribe", "unsubscribe", "disconnect"
	Code   byte
	Reason string // v5 Reason String, if any
}

func (e *ServerError) Error() string {
	s := fmt.Sprintf("%s: server returned 0x%02X (%s)", e.Op, e.Code, codeText(e.Op, e.Code))
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// Limits is what the server's CONNACK allowed this connection.
type Limits struct {
	MaxQoS            byte
	RetainAvailable   bool
	MaxPacketSize     int           // 0: no limit beyond the protocol's
	TopicAliasMaximum uint16        // aliases this client may create
	Window            int           // outgoing QoS 1/2 messages in flight at once
	KeepAlive         time.Duration // 0: disabled
	SessionPresent    bool
}

// Client is one MQTT connection. Its methods are safe for concurrent use.
type Client struct {
	cfg     Config
	log     *slog.Logger
	store   Store
	conn    net.Conn
	br      *bufio.Reader
	version byte
	connack *packet.ConnAck
	limits  Limits

	slots chan struct{} // one per outgoing QoS 1/2 exchange in flight
	out   chan writeReq
	quit  chan struct{} // closed when the connection is being torn down
	done  chan struct{} // closed once both goroutines have exited
	alive atomic.Int32  // running goroutines
	once  sync.Once
	ping  atomic.Int64 // UnixNano of an unanswered PINGREQ, 0 if none

	pubMu sync.Mutex // orders PublishAsync: id, Store.Put, queueing

	mu        sync.Mutex
	err       error
	closing   bool // Disconnect/Close: no OnConnectionLost
	dead      bool // goroutines gone: no new waiters
	nextID    uint16
	seq       uint64
	inflight  map[uint16]*Token
	unwritten map[*Token]struct{} // QoS 0 tokens queued for the writer
	requests  map[uint16]*request
	incoming  map[uint16]bool
	subs      []subscription
	resumed   []*Token
	sizeBuf   []byte // guarded by pubMu

	// Owned by the reader goroutine.
	inAliases map[uint16]string
	// Owned by the writer goroutine.
	outAliases map[string]uint16
	wpub       packet.Publish
}

type writeReq struct {
	p   packet.Packet
	dup bool         // PUBLISH resent after reconnect [MQTT-3.3.1-1]
	tok *Token       // QoS 0 PUBLISH: completed once written
	ack chan<- error // signalled once written (Disconnect)
}

type request struct {
	done  chan struct{}
	acked bool
	codes []byte
	props packet.Properties
}

// Dial connects to cfg.URL, exchanges CONNECT/CONNACK and, when the server
// resumed the session, resends what cfg.Store holds: unacknowledged PUBLISH
// packets with DUP set and PUBREL packets, in their original order
// [MQTT-4.6.0-1]. If the server has no session (or CleanStart is set),
// stored PUBLISH packets are published again as new messages instead, so
// nothing taken by PublishAsync is dropped. Resumed returns their tokens.
//
// ctx bounds the connection setup only; the connection lives until
// Disconnect, Close or a network error.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ep, _ := parseURL(cfg.URL)
	timeout := cfg.DialTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := dialConn(dctx, ep, cfg.TLS)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", cfg.URL, err)
	}
	c := &Client{
		cfg:        cfg,
		log:        cfg.Logger,
		store:      cfg.Store,
		conn:       conn,
		br:         bufio.NewReaderSize(conn, 16<<10),
		version:    cfg.version(),
		out:        make(chan writeReq, 256),
		quit:       make(chan struct{}),
		done:       make(chan struct{}),
		inflight:   make(map[uint16]*Token),
		unwritten:  make(map[*Token]struct{}),
		requests:   make(map[uint16]*request),
		incoming:   make(map[uint16]bool),
		inAliases:  make(map[uint16]string),
		outAliases: make(map[string]uint16),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("component", "mqtt-client", "server", cfg.URL)
	if c.store == nil {
		c.store = new(MemoryStore)
	}
	if err := c.handshake(dctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("connect %s: %w", cfg.URL, err)
	}
	if cfg.OnConnect != nil {
		cfg.OnConnect(c.connack)
	}
	// The session state is loaded before the reader starts: the server
	// may send PUBREL for an incoming id right after CONNACK.
	entries, err := c.loadSession()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("connect %s: %w", cfg.URL, err)
	}
	c.alive.Store(2)
	go c.readLoop()
	go c.writeLoop()
	if err := c.resume(dctx, entries); err != nil {
		c.Close()
		return nil, fmt.Errorf("connect %s: resume session: %w", cfg.URL, err)
	}
	c.log.Debug("connected", "client_id", cfg.ClientID, "version", c.version,
		"session_present", c.limits.SessionPresent, "window", c.limits.Window,
		"resent", len(c.resumed))
	return c, nil
}

// handshake sends CONNECT and reads CONNACK under dctx.
func (c *Client) handshake(dctx context.Context) error {
	stop := context.AfterFunc(dctx, func() { c.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if dl, ok := dctx.Deadline(); ok {
		c.conn.SetDeadline(dl)
	}
	cp := c.connectPacket()
	b, err := packet.Append(nil, cp, c.version)
	if err != nil {
		return err
	}
	if _, err := c.conn.Write(b); err != nil {
		return ctxErr(dctx, err)
	}
	p, err := packet.ReadPacket(c.br, c.version, int(c.cfg.MaxPacketSize))
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("server closed the connection before CONNACK (wrong protocol version?): %w", err)
		}
		return ctxErr(dctx, err)
	}
	ca, ok := p.(*packet.ConnAck)
	if !ok {
		return fmt.Errorf("got %v instead of CONNACK: %w", p.Type(), packet.ErrProtocol)
	}
	if ca.ReasonCode != packet.Success {
		return &ServerError{Op: "connect", Code: ca.ReasonCode, Reason: ca.Props.ReasonString}
	}
	if !stop() {
		// ctx ended just now and its deadline is on the connection.
		return fmt.Errorf("after CONNACK: %w", dctx.Err())
	}
	c.conn.SetDeadline(time.Time{})
	c.connack = ca
	c.setLimits(ca)
	return nil
}

// ctxErr explains an I/O error of the handshake: the connection's
// deadline is the ctx's, so a timeout means the ctx ran out.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
	}
	return err
}

func (c *Client) connectPacket() *packet.Connect {
	cfg := &c.cfg
	cp := &packet.Connect{
		ProtocolLevel: c.version,
		CleanStart:    cfg.CleanStart,
		KeepAlive:     cfg.keepAlive(),
		ClientID:      cfg.ClientID,
		Username:      cfg.Username,
		UsernameFlag:  cfg.Username != "",
		Password:      cfg.Password,
		PasswordFlag:  cfg.Password != nil,
	}
	if c.version == packet.V5 {
		cp.Props = cfg.ConnectProps
		if cfg.SessionExpiry > 0 {
			v := cfg.SessionExpiry
			cp.Props.SessionExpiry = &v
		}
		if cfg.ReceiveMaximum > 0 {
			v := cfg.ReceiveMaximum
			cp.Props.ReceiveMaximum = &v
		}
		if cfg.TopicAliasMaximum > 0 {
			v := cfg.TopicAliasMaximum
			cp.Props.TopicAliasMaximum = &v
		}
		if cfg.MaxPacketSize > 0 {
			v := cfg.MaxPacketSize
			cp.Props.MaximumPacketSize = &v
		}
	}
	if w := cfg.Will; w != nil {
		cp.WillFlag = true
		cp.WillTopic = w.Topic
		cp.WillPayload = w.Payload
		if cp.WillPayload == nil {
			cp.WillPayload = []byte{}
		}
		cp.WillQoS = w.QoS
		cp.WillRetain = w.Retain
		if c.version == packet.V5 {
			cp.WillProps = w.Props
			cp.WillProps.TopicAlias = nil
			cp.WillProps.SubscriptionIDs = nil
		}
	}
	return cp
}

func (c *Client) setLimits(ca *packet.ConnAck) {
	l := Limits{MaxQoS: 2, RetainAvailable: true, SessionPresent: ca.SessionPresent}
	window := c.cfg.MaxInflight
	ka := time.Duration(c.cfg.keepAlive()) * time.Second
	if c.version == packet.V5 {
		p := &ca.Props
		if p.MaximumQoS != nil {
			l.MaxQoS = *p.MaximumQoS
		}
		if p.RetainAvailable != nil {
			l.RetainAvailable = *p.RetainAvailable == 1
		}
		if p.MaximumPacketSize != nil {
			l.MaxPacketSize = int(min(*p.MaximumPacketSize, uint32(packet.MaxPacketSize)))
		}
		if p.TopicAliasMaximum != nil && c.cfg.MaxTopicAliases >= 0 {
			l.TopicAliasMaximum = *p.TopicAliasMaximum
			if c.cfg.MaxTopicAliases > 0 && c.cfg.MaxTopicAliases < int(l.TopicAliasMaximum) {
				l.TopicAliasMaximum = uint16(c.cfg.MaxTopicAliases)
			}
		}
		rm := 65535 // [MQTT-3.2.2-?] absent Receive Maximum means 65,535
		if p.ReceiveMaximum != nil {
			rm = int(*p.ReceiveMaximum)
		}
		if window == 0 || window > rm {
			window = rm // [MQTT-4.9.0-2]
		}
		if p.ServerKeepAlive != nil {
			ka = time.Duration(*p.ServerKeepAlive) * time.Second // [MQTT-3.2.2-21]
		}
	} else if window == 0 {
		window = 20
	}
	l.Window = window
	l.KeepAlive = ka
	c.limits = l
	c.slots = make(chan struct{}, window)
}

// ConnAck is the server's CONNACK for this connection.
func (c *Client) ConnAck() *packet.ConnAck { return c.connack }

// Limits is what the server allowed this connection.
func (c *Client) Limits() Limits { return c.limits }

// Resumed returns the tokens of the QoS 1/2 messages Dial took over from
// the Store, in resend order; each completes like a PublishAsync token.
// For a PUBREL (QoS 2, already received by the server) the token's Message
// carries only QoS and Tag.
func (c *Client) Resumed() []*Token {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Token(nil), c.resumed...)
}

// Done is closed when the connection has ended and both of its goroutines
// have exited.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is why the connection ended (ErrClosed after Disconnect or Close),
// nil while it is up.
func (c *Client) Err() error {
	select {
	case <-c.done:
	default:
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Disconnect sends DISCONNECT once everything queued before it is written,
// then closes the connection and waits for the goroutines. The server
// discards the will [MQTT-3.14.4-3]. Outgoing QoS 1/2 messages still in
// flight stay in the Store for the next Dial.
func (c *Client) Disconnect(ctx context.Context) error {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	ack := make(chan error, 1)
	var err error
	select {
	case c.out <- writeReq{p: &packet.Disconnect{}, ack: ack}:
		select {
		case err = <-ack:
		case <-c.quit:
			err = c.lostErr()
		case <-ctx.Done():
			err = ctx.Err()
		}
	case <-c.quit:
		err = c.lostErr()
	case <-ctx.Done():
		err = ctx.Err()
	}
	c.fail(ErrClosed)
	select {
	case <-c.done:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	if errors.Is(err, ErrClosed) {
		err = nil
	}
	return err
}

// Close ends the connection without DISCONNECT (the server publishes the
// will) and waits for the goroutines.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	c.fail(ErrClosed)
	<-c.done
	return nil
}

// fail records the first error and tears the connection down; the
// goroutines notice and exit.
func (c *Client) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	c.once.Do(func() {
		close(c.quit)
		c.conn.Close()
	})
}

// lostErr is the error for waiters cut off by the end of the connection.
func (c *Client) lostErr() error {
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if err == nil || errors.Is(err, ErrClosed) {
		return ErrClosed
	}
	return fmt.Errorf("%w: %w", ErrConnectionLost, err)
}

// exit runs as each goroutine returns; the last one fails what still
// waits and closes done.
func (c *Client) exit() {
	if c.alive.Add(-1) != 0 {
		return
	}
	err := c.lostErr()
	c.mu.Lock()
	c.dead = true
	toks := c.inflight
	c.inflight = map[uint16]*Token{}
	var qos0 []*Token
	for t := range c.unwritten {
		qos0 = append(qos0, t)
	}
	c.unwritten = nil
	reqs := c.requests
	c.requests = map[uint16]*request{}
	lost := !c.closing
	cause := c.err
	c.mu.Unlock()
	for _, t := range toks {
		t.complete(0, err)
	}
	for _, t := range qos0 {
		t.complete(0, err)
	}
	for _, r := range reqs {
		close(r.done)
	}
	c.log.Debug("connection ended", "err", cause)
	if lost && c.cfg.OnConnectionLost != nil {
		c.cfg.OnConnectionLost(cause)
	}
	close(c.done) // last: nothing of this client runs after Done
}

// send queues p for the writer; it fails only when the connection ends.
func (c *Client) send(r writeReq) error {
	select {
	case c.out <- r:
		return nil
	case <-c.quit:
		return c.lostErr()
	}
}

const maxBatch = 64 << 10

func (c *Client) writeLoop() {
	defer c.exit()
	var tick <-chan time.Time
	ka := c.limits.KeepAlive
	if ka > 0 {
		t := time.NewTicker(max(ka/4, 50*time.Millisecond))
		defer t.Stop()
		tick = t.C
	}
	var (
		buf     []byte
		toks    []*Token
		acks    []chan<- error
		last    = time.Now()
		timeout = max(ka, 30*time.Second)
	)
	for {
		select {
		case <-c.quit:
			return
		case now := <-tick:
			if sent := c.ping.Load(); sent != 0 {
				if now.Sub(time.Unix(0, sent)) > ka {
					c.fail(ErrKeepAliveTimeout)
					return
				}
				continue
			}
			// [MQTT-3.1.2-23]: send a packet within every keep alive
			// interval; PINGREQ when there is nothing else.
			if now.Sub(last) < ka*3/4 {
				continue
			}
			c.ping.Store(now.UnixNano())
			buf, _ = packet.Append(buf[:0], &packet.PingReq{}, c.version)
		case r := <-c.out:
			var err error
			if buf, err = c.encode(buf[:0], r); err != nil {
				c.fail(err)
				return
			}
			toks, acks = collect(toks[:0], acks[:0], r)
		batch:
			for len(buf) < maxBatch {
				select {
				case r := <-c.out:
					if buf, err = c.encode(buf, r); err != nil {
						c.fail(err)
						return
					}
					toks, acks = collect(toks, acks, r)
				default:
					break batch
				}
			}
		}
		c.conn.SetWriteDeadline(time.Now().Add(timeout))
		_, err := c.conn.Write(buf)
		last = time.Now()
		if len(toks) > 0 {
			c.mu.Lock()
			for _, t := range toks {
				delete(c.unwritten, t)
			}
			c.mu.Unlock()
		}
		for _, t := range toks {
			t.complete(0, err)
		}
		for _, a := range acks {
			a <- err
		}
		toks, acks = toks[:0], acks[:0]
		if err != nil {
			c.fail(fmt.Errorf("write: %w", err))
			return
		}
		if cap(buf) > 4*maxBatch {
			buf = nil // do not pin one huge payload's buffer
		}
	}
}

func collect(toks []*Token, acks []chan<- error, r writeReq) ([]*Token, []chan<- error) {
	if r.tok != nil {
		toks = append(toks, r.tok)
	}
	if r.ack != nil {
		acks = append(acks, r.ack)
	}
	return toks, acks
}

// encode appends r's packet; a PUBLISH goes through a copy that gets the
// DUP flag and, in v5, a topic alias [MQTT-3.3.2-7].
func (c *Client) encode(buf []byte, r writeReq) ([]byte, error) {
	p, ok := r.p.(*packet.Publish)
	if !ok {
		return packet.Append(buf, r.p, c.version)
	}
	c.wpub = *p
	w := &c.wpub
	w.Dup = r.dup && p.QoS > 0
	if max := c.limits.TopicAliasMaximum; max > 0 {
		if a, ok := c.outAliases[p.Topic]; ok {
			w.Topic = ""
			w.Props.TopicAlias = &a
		} else if len(c.outAliases) < int(max) {
			a := uint16(len(c.outAliases) + 1)
			c.outAliases[p.Topic] = a
			w.Props.TopicAlias = &a
		}
	}
	return packet.Append(buf, w, c.version)
}

func (c *Client) readLoop() {
	defer c.exit()
	for {
		p, err := packet.ReadPacket(c.br, c.version, int(c.cfg.MaxPacketSize))
		if err == nil {
			err = c.handle(p)
		}
		if err != nil {
			c.mu.Lock()
			closing := c.closing
			c.mu.Unlock()
			select {
			case <-c.quit: // we closed it
			default:
				if closing {
					// Disconnect: the server closes after DISCONNECT.
					c.fail(ErrClosed)
					return
				}
				c.protocolFailure(err)
				c.fail(fmt.Errorf("read: %w", err))
			}
			return
		}
	}
}

// protocolFailure tells a v5 server why we close (section 4.13), best
// effort: the writer may already be gone.
func (c *Client) protocolFailure(err error) {
	if c.version != packet.V5 {
		return
	}
	code := packet.ReasonCode(err)
	var topicAliasErr *aliasError
	if errors.As(err, &topicAliasErr) {
		code = packet.TopicAliasInvalid
	}
	if code == packet.UnspecifiedError || code == packet.Success {
		return
	}
	ack := make(chan error, 1)
	select {
	case c.out <- writeReq{p: &packet.Disconnect{ReasonCode: code}, ack: ack}:
		select {
		case <-ack:
		case <-c.quit:
		case <-time.After(time.Second):
		}
	default:
	}
}

type aliasError struct{ alias uint16 }

func (e *aliasError) Error() string {
	return fmt.Sprintf("PUBLISH: topic alias %d invalid: %v", e.alias, packet.ErrProtocol)
}

func (e *aliasError) Unwrap() error { return packet.ErrProtocol }

func (c *Client) handle(p packet.Packet) error {
	switch p := p.(type) {
	case *packet.Publish:
		return c.onPublish(p)
	case *packet.Ack:
		return c.onAck(p)
	case *packet.SubAck:
		c.finishRequest(p.PacketID, p.ReasonCodes, p.Props)
	case *packet.UnsubAck:
		c.finishRequest(p.PacketID, p.ReasonCodes, p.Props)
	case *packet.PingResp:
		c.ping.Store(0)
	case *packet.Disconnect:
		return &ServerError{Op: "disconnect", Code: p.ReasonCode, Reason: p.Props.ReasonString}
	default:
		return fmt.Errorf("unexpected %v from server: %w", p.Type(), packet.ErrProtocol)
	}
	return nil
}

func (c *Client) finishRequest(id uint16, codes []byte, props packet.Properties) {
	c.mu.Lock()
	r := c.requests[id]
	delete(c.requests, id)
	c.mu.Unlock()
	if r == nil {
		c.log.Warn("ack for unknown request", "packet_id", id)
		return
	}
	r.acked, r.codes, r.props = true, codes, props
	close(r.done)
}
