package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpost-iot/outpost/brokercore/packet"
)

// mqttConn is a lean MQTT client for load generation: a publisher's
// goroutine sends and reads its acks itself (pump); a subscriber's read
// goroutine (readLoop) takes deliveries and acknowledges them. It answers the broker's QoS 1/2 deliveries, keeps a window of
// unacknowledged QoS 1/2 publishes, and counts what it received in a
// checker. It never reconnects: a broken connection ends the run with an
// error naming the client.
type mqttConn struct {
	id      string
	nc      net.Conn
	br      *bufio.Reader
	version byte
	epoch   time.Time

	wmu    sync.Mutex // guards bw, enc, buf and the publisher's id state
	bw     *bufio.Writer
	enc    packet.Publish
	buf    []byte
	ackBuf [4]byte

	// Publisher side.
	winSize   int
	inflightN atomic.Int32
	nextID    uint16
	busy      []bool  // packet ids in flight (65536, publishers only)
	sentAt    []int64 // send time by packet id, for ack latency
	ackLat    hist    // read goroutine only
	acked     atomic.Uint64

	// Subscriber side (read goroutine only, except got).
	chk *checker
	got atomic.Uint64 // unique messages received
	// onPublish, if set before readLoop, takes every delivery instead of
	// the checker (for $SYS reads).
	onPublish func(topic string, payload []byte)
	dec       packet.Publish

	err atomic.Pointer[error] // set when closed on purpose
}

// dialOptions are how a bench client connects.
type dialOptions struct {
	Addr     string
	ClientID string
	Version  byte // packet.V311 (default) or packet.V5
	Clean    bool
	Window   int // in-flight QoS 1/2 publishes; 0 = not a publisher
	Epoch    time.Time
	Timeout  time.Duration
	// KeepAlive is the MQTT keep alive asked for in CONNECT (whole
	// seconds); 0 = none. The runner pings (runner.ping).
	KeepAlive time.Duration
}

// dialMQTT connects and completes the CONNECT/CONNACK handshake.
func dialMQTT(ctx context.Context, o dialOptions) (*mqttConn, bool, error) {
	if o.Version == 0 {
		o.Version = packet.V311
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	d := net.Dialer{Timeout: o.Timeout}
	nc, err := d.DialContext(ctx, "tcp", o.Addr)
	if err != nil {
		return nil, false, fmt.Errorf("client %s: dial %s: %w", o.ClientID, o.Addr, err)
	}
	c := &mqttConn{
		id:      o.ClientID,
		nc:      nc,
		br:      bufio.NewReaderSize(nc, 32<<10),
		bw:      bufio.NewWriterSize(nc, 16<<10),
		version: o.Version,
		epoch:   o.Epoch,
		chk:     newChecker(),
	}
	if o.Window > 0 {
		c.winSize = o.Window
		c.busy = make([]bool, 65536)
		c.sentAt = make([]int64, 65536)
	}
	cp := &packet.Connect{
		ProtocolName:  "MQTT",
		ProtocolLevel: o.Version,
		CleanStart:    o.Clean,
		ClientID:      o.ClientID,
		KeepAlive:     uint16(min(o.KeepAlive/time.Second, 65535)),
	}
	if o.Version == packet.V5 && !o.Clean {
		exp := uint32(3600)
		cp.Props.SessionExpiry = &exp
	}
	if o.Version == packet.V5 {
		rm := uint16(65535)
		cp.Props.ReceiveMaximum = &rm
	}
	nc.SetDeadline(time.Now().Add(o.Timeout))
	if err := c.writePacket(cp); err != nil {
		nc.Close()
		return nil, false, err
	}
	b, err := c.next()
	if err != nil {
		nc.Close()
		return nil, false, fmt.Errorf("client %s: read CONNACK: %w", o.ClientID, err)
	}
	p, _, err := packet.Decode(b, o.Version)
	if err != nil {
		nc.Close()
		return nil, false, fmt.Errorf("client %s: decode CONNACK: %w", o.ClientID, err)
	}
	ca, ok := p.(*packet.ConnAck)
	if !ok {
		nc.Close()
		return nil, false, fmt.Errorf("client %s: expected CONNACK, got %v", o.ClientID, p.Type())
	}
	if ca.ReasonCode != 0 {
		nc.Close()
		return nil, false, fmt.Errorf("client %s: connection refused: code 0x%02x", o.ClientID, ca.ReasonCode)
	}
	nc.SetDeadline(time.Time{})
	return c, ca.SessionPresent, nil
}

func (c *mqttConn) writePacket(p packet.Packet) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var err error
	c.buf, err = packet.Append(c.buf[:0], p, c.version)
	if err != nil {
		return fmt.Errorf("client %s: encode %v: %w", c.id, p.Type(), err)
	}
	if _, err := c.bw.Write(c.buf); err != nil {
		return fmt.Errorf("client %s: write %v: %w", c.id, p.Type(), err)
	}
	if err := c.bw.Flush(); err != nil {
		return fmt.Errorf("client %s: write %v: %w", c.id, p.Type(), err)
	}
	return nil
}

// subscribe sends SUBSCRIBE and waits for its SUBACK; call it before
// readLoop runs. Messages that arrive before the SUBACK (none should, but
// retained ones may follow at once) stay in the read buffer for readLoop.
func (c *mqttConn) subscribe(filters []string, qos byte) error {
	s := &packet.Subscribe{PacketID: 1}
	for _, f := range filters {
		s.Subscriptions = append(s.Subscriptions, packet.Subscription{Filter: f, QoS: qos})
	}
	if err := c.writePacket(s); err != nil {
		return err
	}
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.nc.SetReadDeadline(time.Time{})
	b, err := c.next()
	for err == nil && packet.Type(b[0]>>4) == packet.PINGRESP { // the runner's keep-alive ping
		b, err = c.next()
	}
	if err != nil {
		return fmt.Errorf("client %s: read SUBACK: %w", c.id, err)
	}
	p, _, err := packet.Decode(b, c.version)
	if err != nil {
		return fmt.Errorf("client %s: decode SUBACK: %w", c.id, err)
	}
	sa, ok := p.(*packet.SubAck)
	if !ok {
		return fmt.Errorf("client %s: expected SUBACK, got %v", c.id, p.Type())
	}
	for i, rc := range sa.ReasonCodes {
		if rc >= 0x80 {
			return fmt.Errorf("client %s: subscription %q refused: code 0x%02x", c.id, filters[i], rc)
		}
	}
	return nil
}

// next returns the next whole packet. The bytes alias the read buffer and
// are valid until the following call.
func (c *mqttConn) next() ([]byte, error) {
	var rl, hl int
	for k := 2; ; k++ {
		h, err := c.br.Peek(k)
		if err != nil {
			if errors.Is(err, io.EOF) && len(h) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		_, _, rl, hl, err = packet.FixedHeader(h)
		if err == nil {
			break
		}
		if !errors.Is(err, packet.ErrIncomplete) || k == 5 {
			return nil, err
		}
	}
	n := hl + rl
	if n <= c.br.Size() {
		b, err := c.br.Peek(n)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		c.br.Discard(n)
		return b, nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c.br, b); err != nil {
		return nil, err
	}
	return b, nil
}

// readLoop handles every packet until the connection ends; it returns nil
// when the connection was closed by close().
func (c *mqttConn) readLoop() error {
	for {
		b, err := c.next()
		if err != nil {
			if p := c.err.Load(); p != nil {
				return nil // closed on purpose
			}
			return fmt.Errorf("client %s: read: %w", c.id, err)
		}
		if err := c.handle(b); err != nil {
			c.nc.Close()
			return err
		}
	}
}

func (c *mqttConn) now() int64 { return int64(time.Since(c.epoch)) }

func (c *mqttConn) handle(b []byte) error {
	typ := packet.Type(b[0] >> 4)
	switch typ {
	case packet.PUBLISH:
		if _, err := packet.DecodePublish(b, c.version, &c.dec); err != nil {
			return fmt.Errorf("client %s: %w", c.id, err)
		}
		if c.onPublish != nil {
			c.onPublish(c.dec.Topic, c.dec.Payload)
		} else if c.chk.observe(c.dec.Payload, c.now()) {
			c.got.Add(1)
		}
		switch c.dec.QoS {
		case 1:
			return c.ack(packet.PUBACK, 0, c.dec.PacketID)
		case 2:
			return c.ack(packet.PUBREC, 0, c.dec.PacketID)
		}
	case packet.PUBREL:
		return c.ack(packet.PUBCOMP, 0, pidOf(b))
	case packet.PUBACK, packet.PUBCOMP:
		c.complete(pidOf(b))
	case packet.PUBREC:
		if len(b) >= 5 && b[1] >= 3 && b[4] >= 0x80 { // v5 reason code: refused, no PUBREL
			c.complete(pidOf(b))
			return nil
		}
		return c.ack(packet.PUBREL, 0x02, pidOf(b))
	case packet.DISCONNECT:
		return fmt.Errorf("client %s: broker sent DISCONNECT", c.id)
	}
	return nil
}

func pidOf(b []byte) uint16 {
	_, _, _, hl, _ := packet.FixedHeader(b)
	if len(b) < hl+2 {
		return 0
	}
	return uint16(b[hl])<<8 | uint16(b[hl+1])
}

// ack writes a two-byte-body acknowledgement; it is flushed once the read
// buffer is empty, so a burst of deliveries costs one write of acks.
func (c *mqttConn) ack(t packet.Type, flags byte, id uint16) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.ackBuf = [4]byte{byte(t)<<4 | flags, 2, byte(id >> 8), byte(id)}
	c.bw.Write(c.ackBuf[:])
	if c.br.Buffered() == 0 {
		if err := c.bw.Flush(); err != nil {
			return fmt.Errorf("client %s: write %v: %w", c.id, t, err)
		}
	}
	return nil
}

// complete accounts for an acknowledged publish (PUBACK, PUBCOMP or a
// refusing PUBREC), freeing its window slot.
func (c *mqttConn) complete(id uint16) {
	if c.busy == nil || !c.busy[id] {
		return
	}
	c.busy[id] = false
	c.ackLat.record(c.now() - c.sentAt[id])
	c.acked.Add(1)
	c.inflightN.Add(-1)
}

// gen names message i's topic and stamp.
type gen func(i int) (topic string, s stamp)

// pump publishes n messages and takes their acknowledgements, all in the
// calling goroutine: no read goroutine, no channel per slot, no wake-up
// of another goroutine per ack. It writes while the window has room (QoS
// 0: always), flushes once per burst, then blocks reading acks; every ack
// that is already buffered is handled before writing again. It returns
// when every message is sent and acknowledged, or with an error when the
// broker sent nothing for idle while messages were unacknowledged.
func (c *mqttConn) pump(ctx context.Context, n int, qos byte, retain bool, payload []byte, g gen, pace pacer, idle time.Duration) error {
	stop := context.AfterFunc(ctx, func() { c.nc.SetReadDeadline(time.Now()) })
	defer stop()
	win := int32(c.winSize)
	for i := 0; i < n || c.inflightN.Load() > 0; {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("client %s: %d of %d sent, %d unacknowledged: %w", c.id, i, n, c.inflightN.Load(), context.Cause(ctx))
		}
		var due time.Time
		for i < n && (qos == 0 || c.inflightN.Load() < win) {
			if pace.interval > 0 {
				if due = pace.due(i); time.Now().Before(due) {
					break
				}
				due = time.Time{}
			}
			topic, s := g(i)
			if err := c.write(topic, qos, retain, payload, s); err != nil {
				return err
			}
			i++
		}
		if err := c.flush(); err != nil {
			return err
		}
		if c.inflightN.Load() == 0 {
			if !due.IsZero() {
				time.Sleep(time.Until(due))
			}
			continue
		}
		// Read at least one packet: until the next message is due when
		// pacing, else until an ack arrives (or idle passes).
		deadline, paced := time.Now().Add(idle), false
		if !due.IsZero() && c.inflightN.Load() < win {
			deadline, paced = due, true
		}
		c.nc.SetReadDeadline(deadline)
		b, err := c.next()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
				if paced {
					continue // time to send the next one
				}
				return fmt.Errorf("client %s: no acknowledgement for %v with %d unacknowledged (%d of %d sent)", c.id, idle, c.inflightN.Load(), i, n)
			}
			if ctx.Err() != nil {
				continue // reported at the top of the loop
			}
			return fmt.Errorf("client %s: read: %w", c.id, err)
		}
		for {
			if err := c.handle(b); err != nil {
				return err
			}
			if c.br.Buffered() == 0 {
				break
			}
			if b, err = c.next(); err != nil {
				return fmt.Errorf("client %s: read: %w", c.id, err)
			}
		}
	}
	return nil
}

// write encodes one PUBLISH stamped with s into the write buffer (the
// payload's first bytes are overwritten), taking a packet id for QoS 1/2.
func (c *mqttConn) write(topic string, qos byte, retain bool, payload []byte, s stamp) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var id uint16
	if qos > 0 {
		for {
			c.nextID++
			if c.nextID == 0 {
				c.nextID = 1
			}
			if !c.busy[c.nextID] {
				break
			}
		}
		id = c.nextID
	}
	s.sent = c.now()
	putStamp(payload, s)
	if qos > 0 {
		c.sentAt[id] = s.sent
		c.busy[id] = true
		c.inflightN.Add(1)
	}
	c.enc = packet.Publish{QoS: qos, Retain: retain, Topic: topic, PacketID: id, Payload: payload}
	var err error
	c.buf, err = packet.Append(c.buf[:0], &c.enc, c.version)
	if err != nil {
		return fmt.Errorf("client %s: encode PUBLISH %s: %w", c.id, topic, err)
	}
	if _, err := c.bw.Write(c.buf); err != nil {
		return fmt.Errorf("client %s: write PUBLISH: %w", c.id, err)
	}
	return nil
}

func (c *mqttConn) flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.bw.Buffered() == 0 {
		return nil
	}
	if err := c.bw.Flush(); err != nil {
		return fmt.Errorf("client %s: flush: %w", c.id, err)
	}
	return nil
}

// inflight is the number of unacknowledged QoS 1/2 publishes.
func (c *mqttConn) inflight() int { return int(c.inflightN.Load()) }

// ping sends PINGREQ; PINGRESP is ignored when it arrives. A failed
// write is left to the reader, which reports the broken connection.
func (c *mqttConn) ping() { c.writePacket(&packet.PingReq{}) }

// disconnect sends DISCONNECT and closes the connection.
func (c *mqttConn) disconnect() {
	errClosed := errors.New("closed")
	c.err.Store(&errClosed)
	c.writePacket(&packet.Disconnect{})
	c.nc.Close()
}

// close closes the connection without DISCONNECT (the broker sees a
// network failure, as after a crash).
func (c *mqttConn) close() {
	errClosed := errors.New("closed")
	c.err.Store(&errClosed)
	c.nc.Close()
}

func newBufReader(nc net.Conn) *bufio.Reader { return bufio.NewReaderSize(nc, 32<<10) }
