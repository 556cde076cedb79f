// Package sntest is an MQTT-SN 1.2 client for tests and load generation,
// written from the specification's client side (sections 6.2-6.14): connect
// with the will dialogue, REGISTER, PUBLISH at QoS -1/0/1/2, SUBSCRIBE,
// sleeping and waking, answering the gateway's REGISTER and PUBLISH. It
// encodes through snpacket and knows nothing of snbridge's internals.
//
// Request methods send one message and wait for its answer; unsolicited
// messages from the gateway (REGISTER, PUBLISH, PUBREL) are answered
// automatically and the application messages appear on Messages().
package sntest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/outpost-iot/outpost/snbridge/snpacket"
)

// Message is an application message received from the gateway.
type Message struct {
	Topic     string
	TopicID   uint16
	TopicType snpacket.TopicIDType
	Payload   []byte
	QoS       int8
	Retain    bool
	DUP       bool
}

// Options tune the client's automatic answers.
type Options struct {
	// NoAck: received QoS 1/2 PUBLISH and REGISTER are not answered (to
	// make the gateway retransmit); such PUBLISH messages go to Next and
	// NextAny instead of Messages. Toggle later with SetNoAck.
	NoAck bool
	// RefuseRegister answers the gateway's REGISTER with this return code.
	RefuseRegister snpacket.ReturnCode
	// Timeout for each request; 0 = 5s.
	Timeout time.Duration
}

// Client is one MQTT-SN client over UDP (Dial) or any datagram
// connection, e.g. a DTLS session (NewClient).
type Client struct {
	conn    net.Conn
	udp     bool // conn is a UDP socket: a read error may be a passing ICMP message
	opts    Options
	pkts    chan snpacket.Packet
	msgs    chan Message
	raw     chan []byte
	done    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	topics  map[uint16]string // topic ids the gateway registered with us or acknowledged
	pending map[uint16]Message
	noAck   bool
	nextID  uint16
	idMu    sync.Mutex
	// RegisterSeen counts REGISTER messages from the gateway.
	registers int
}

// Dial opens a UDP socket to the gateway at addr.
func Dial(addr string, opts Options) (*Client, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("sntest: resolve %q: %w", addr, err)
	}
	conn, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		return nil, fmt.Errorf("sntest: dial %s: %w", addr, err)
	}
	_ = conn.SetReadBuffer(1 << 20)
	return newClient(conn, opts, true), nil
}

// NewClient is a client on conn, which carries one MQTT-SN message per
// Read and Write (a connected UDP socket, a DTLS session). Close closes
// conn.
func NewClient(conn net.Conn, opts Options) *Client { return newClient(conn, opts, false) }

func newClient(conn net.Conn, opts Options, udp bool) *Client {
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	c := &Client{conn: conn, udp: udp, opts: opts, noAck: opts.NoAck,
		pkts: make(chan snpacket.Packet, 1024), msgs: make(chan Message, 65536), raw: make(chan []byte, 64),
		done: make(chan struct{}), topics: map[uint16]string{}, pending: map[uint16]Message{}}
	c.wg.Go(c.readLoop)
	return c
}

// Close closes the socket and waits for the reader.
func (c *Client) Close() error {
	err := c.conn.Close()
	c.wg.Wait()
	return err
}

// LocalAddr is the client's UDP address.
func (c *Client) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// SetNoAck switches automatic acknowledgements off (true) or on.
func (c *Client) SetNoAck(v bool) {
	c.mu.Lock()
	c.noAck = v
	c.mu.Unlock()
}

// Registers counts REGISTER messages received from the gateway.
func (c *Client) Registers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.registers
}

// Messages delivers application messages from the gateway.
func (c *Client) Messages() <-chan Message { return c.msgs }

// MsgID returns the next message id.
func (c *Client) MsgID() uint16 {
	c.idMu.Lock()
	defer c.idMu.Unlock()
	c.nextID++
	if c.nextID == 0 {
		c.nextID = 1
	}
	return c.nextID
}

// Send encodes and sends one message.
func (c *Client) Send(p snpacket.Packet) error {
	b, err := snpacket.Encode(p)
	if err != nil {
		return err
	}
	return c.SendRaw(b)
}

// SendRaw sends bytes as one datagram.
func (c *Client) SendRaw(b []byte) error {
	_, err := c.conn.Write(b)
	return err
}

func (c *Client) readLoop() {
	defer close(c.done)
	buf := make([]byte, 65536)
	for {
		n, err := c.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || !c.udp {
				return
			}
			continue // e.g. ICMP port unreachable surfacing as ECONNREFUSED
		}
		p, _, err := snpacket.Decode(buf[:n])
		if err != nil {
			select {
			case c.raw <- append([]byte(nil), buf[:n]...):
			default:
			}
			continue
		}
		if c.auto(p) {
			continue
		}
		if pb, ok := p.(*snpacket.Publish); ok {
			pb.Data = append([]byte(nil), pb.Data...)
		}
		select {
		case c.pkts <- p:
		default: // test not reading: drop
		}
	}
}

// auto answers the gateway's unsolicited messages (sections 6.10, 6.6).
func (c *Client) auto(p snpacket.Packet) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch p := p.(type) {
	case *snpacket.Register:
		c.registers++
		if c.noAck {
			return true
		}
		rc := c.opts.RefuseRegister
		if rc == snpacket.Accepted {
			c.topics[p.TopicID] = p.TopicName
		}
		_ = c.Send(&snpacket.Regack{TopicID: p.TopicID, MsgID: p.MsgID, ReturnCode: rc})
		return true
	case *snpacket.Publish:
		m := Message{TopicID: p.TopicID, TopicType: p.Flags.TopicIDType, Payload: append([]byte(nil), p.Data...),
			QoS: p.Flags.QoS, Retain: p.Flags.Retain, DUP: p.Flags.DUP}
		switch p.Flags.TopicIDType {
		case snpacket.TopicShort:
			m.Topic = snpacket.ShortTopicName(p.TopicID)
		case snpacket.TopicNormal:
			m.Topic = c.topics[p.TopicID]
		}
		if c.noAck && p.Flags.QoS > 0 {
			return false // handed to Next/NextAny, unanswered
		}
		switch p.Flags.QoS {
		case 1:
			_ = c.Send(&snpacket.Puback{TopicID: p.TopicID, MsgID: p.MsgID})
		case 2:
			// Deliver on PUBREL (exactly once): hold it until then.
			c.pending[p.MsgID] = m
			_ = c.Send(&snpacket.Pubrec{MsgID: p.MsgID})
			return true
		}
		c.push(m)
		return true
	case *snpacket.Pubrel:
		if m, ok := c.pending[p.MsgID]; ok {
			delete(c.pending, p.MsgID)
			c.push(m)
		}
		if !c.noAck {
			_ = c.Send(&snpacket.Pubcomp{MsgID: p.MsgID})
		}
		return true
	}
	return false
}

func (c *Client) push(m Message) {
	select {
	case c.msgs <- m:
	default:
	}
}

// Next waits for the next message of type t from the gateway, skipping
// others (ADVERTISE, GWINFO, ...).
func (c *Client) Next(t snpacket.MsgType) (snpacket.Packet, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
	defer cancel()
	for {
		select {
		case p := <-c.pkts:
			if p.Type() == t {
				return p, nil
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("sntest: waiting for %s: %w", t, ctx.Err())
		case <-c.done:
			return nil, fmt.Errorf("sntest: waiting for %s: connection closed", t)
		}
	}
}

// NextAny waits for the next message of any type (ignoring ADVERTISE and GWINFO).
func (c *Client) NextAny(timeout time.Duration) (snpacket.Packet, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case p := <-c.pkts:
			if p.Type() == snpacket.TypeAdvertise || p.Type() == snpacket.TypeGWInfo {
				continue
			}
			return p, nil
		case <-t.C:
			return nil, fmt.Errorf("sntest: nothing received in %v", timeout)
		}
	}
}

// Will is a will for Connect.
type Will struct {
	Topic   string
	Payload []byte
	QoS     int8
	Retain  bool
}

// ConnectOptions are the CONNECT fields.
type ConnectOptions struct {
	ClientID     string
	CleanSession bool
	KeepAlive    uint16 // seconds
	Will         *Will
}

// Connect runs the connection setup of section 6.2, including the will
// dialogue, and returns CONNACK's return code.
func (c *Client) Connect(o ConnectOptions) (snpacket.ReturnCode, error) {
	err := c.Send(&snpacket.Connect{Flags: snpacket.Flags{Will: o.Will != nil, CleanSession: o.CleanSession},
		ProtocolID: snpacket.ProtocolID, Duration: o.KeepAlive, ClientID: o.ClientID})
	if err != nil {
		return 0, err
	}
	if o.Will != nil {
		if _, err := c.Next(snpacket.TypeWillTopicReq); err != nil {
			return 0, err
		}
		if err := c.Send(&snpacket.WillTopic{Flags: snpacket.Flags{QoS: o.Will.QoS, Retain: o.Will.Retain}, Topic: o.Will.Topic}); err != nil {
			return 0, err
		}
		if _, err := c.Next(snpacket.TypeWillMsgReq); err != nil {
			return 0, err
		}
		if err := c.Send(&snpacket.WillMsg{Msg: o.Will.Payload}); err != nil {
			return 0, err
		}
	}
	p, err := c.Next(snpacket.TypeConnack)
	if err != nil {
		return 0, err
	}
	return p.(*snpacket.Connack).ReturnCode, nil
}

// Register registers a topic name (section 6.5) and returns its id.
func (c *Client) Register(name string) (uint16, snpacket.ReturnCode, error) {
	id := c.MsgID()
	if err := c.Send(&snpacket.Register{MsgID: id, TopicName: name}); err != nil {
		return 0, 0, err
	}
	p, err := c.Next(snpacket.TypeRegack)
	if err != nil {
		return 0, 0, err
	}
	ra := p.(*snpacket.Regack)
	if ra.MsgID != id {
		return 0, 0, fmt.Errorf("sntest: REGACK for MsgId %d, sent %d", ra.MsgID, id)
	}
	if ra.ReturnCode == snpacket.Accepted {
		c.mu.Lock()
		c.topics[ra.TopicID] = name
		c.mu.Unlock()
	}
	return ra.TopicID, ra.ReturnCode, nil
}

// Publish sends a PUBLISH and runs its QoS flow (section 6.6): for QoS 1
// it returns PUBACK's code, for QoS 2 it completes PUBREC/PUBREL/PUBCOMP.
// For QoS 0 and -1 it returns at once with Accepted.
func (c *Client) Publish(t snpacket.TopicIDType, topicID uint16, qos int8, retain bool, payload []byte) (snpacket.ReturnCode, error) {
	p := &snpacket.Publish{Flags: snpacket.Flags{QoS: qos, Retain: retain, TopicIDType: t}, TopicID: topicID, Data: payload}
	if qos > 0 {
		p.MsgID = c.MsgID()
	}
	if err := c.Send(p); err != nil {
		return 0, err
	}
	switch qos {
	case 1:
		a, err := c.Next(snpacket.TypePuback)
		if err != nil {
			return 0, err
		}
		return a.(*snpacket.Puback).ReturnCode, nil
	case 2:
		a, err := c.NextAny(c.opts.Timeout)
		if err != nil {
			return 0, err
		}
		switch a := a.(type) {
		case *snpacket.Puback:
			return a.ReturnCode, nil
		case *snpacket.Pubrec:
			if err := c.Send(&snpacket.Pubrel{MsgID: a.MsgID}); err != nil {
				return 0, err
			}
			if _, err := c.Next(snpacket.TypePubcomp); err != nil {
				return 0, err
			}
			return snpacket.Accepted, nil
		default:
			return 0, fmt.Errorf("sntest: QoS 2 PUBLISH answered with %s", a.Type())
		}
	}
	return snpacket.Accepted, nil
}

// Subscribe subscribes to a topic name or filter (TopicNormal), a short
// name (TopicShort) or a pre-defined id (TopicPredefined) and returns SUBACK.
func (c *Client) Subscribe(t snpacket.TopicIDType, name string, id uint16, qos int8) (*snpacket.Suback, error) {
	mid := c.MsgID()
	if err := c.Send(&snpacket.Subscribe{Flags: snpacket.Flags{QoS: qos, TopicIDType: t}, MsgID: mid, TopicName: name, TopicID: id}); err != nil {
		return nil, err
	}
	p, err := c.Next(snpacket.TypeSuback)
	if err != nil {
		return nil, err
	}
	sa := p.(*snpacket.Suback)
	if sa.ReturnCode == snpacket.Accepted && t == snpacket.TopicNormal && sa.TopicID != 0 {
		c.mu.Lock()
		c.topics[sa.TopicID] = name
		c.mu.Unlock()
	}
	return sa, nil
}

// Unsubscribe sends UNSUBSCRIBE and waits for UNSUBACK.
func (c *Client) Unsubscribe(t snpacket.TopicIDType, name string, id uint16) error {
	if err := c.Send(&snpacket.Unsubscribe{Flags: snpacket.Flags{TopicIDType: t}, MsgID: c.MsgID(), TopicName: name, TopicID: id}); err != nil {
		return err
	}
	_, err := c.Next(snpacket.TypeUnsuback)
	return err
}

// Ping sends PINGREQ (with clientID when waking from sleep, section 6.14)
// and waits for PINGRESP.
func (c *Client) Ping(clientID string) error {
	if err := c.Send(&snpacket.Pingreq{ClientID: clientID}); err != nil {
		return err
	}
	_, err := c.Next(snpacket.TypePingresp)
	return err
}

// Disconnect sends DISCONNECT (with a sleep duration in seconds if
// sleep > 0) and waits for the gateway's DISCONNECT.
func (c *Client) Disconnect(sleep uint16) error {
	if err := c.Send(&snpacket.Disconnect{HasDuration: sleep > 0, Duration: sleep}); err != nil {
		return err
	}
	_, err := c.Next(snpacket.TypeDisconnect)
	return err
}

// TopicName returns the name the gateway gave a topic id.
func (c *Client) TopicName(id uint16) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.topics[id]
}

// WaitMessage waits for the next application message.
func (c *Client) WaitMessage(timeout time.Duration) (Message, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case m := <-c.msgs:
		return m, nil
	case <-t.C:
		return Message{}, fmt.Errorf("sntest: no message in %v", timeout)
	}
}
