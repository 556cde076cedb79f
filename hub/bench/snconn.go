package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpost-iot/outpost/snbridge/snpacket"
)

// snConn is a lean MQTT-SN 1.2 publisher over UDP: CONNECT, one REGISTER,
// then PUBLISH with a window of unacknowledged QoS 1/2 messages (the
// protocol has no Receive Maximum; the window plays that part). It does
// not retransmit: on loopback a lost datagram means a full socket buffer,
// and it is reported as loss rather than hidden.
type snConn struct {
	id      string
	uc      *net.UDPConn
	epoch   time.Time
	topicID uint16

	wbuf []byte
	enc  snpacket.Publish

	window   chan struct{}
	busyMu   sync.Mutex
	nextID   uint16
	busy     []bool
	sentAt   []int64
	ackLat   hist // read goroutine only
	acked    atomic.Uint64
	rejected atomic.Uint64
	closed   atomic.Bool
}

// dialSN connects a client to the gateway at addr and registers topic.
func dialSN(addr, clientID, topic string, window int, epoch time.Time) (*snConn, error) {
	ra, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("sn client %s: resolve %s: %w", clientID, addr, err)
	}
	uc, err := net.DialUDP("udp", nil, ra)
	if err != nil {
		return nil, fmt.Errorf("sn client %s: dial %s: %w", clientID, addr, err)
	}
	uc.SetReadBuffer(1 << 20)
	c := &snConn{id: clientID, uc: uc, epoch: epoch, busy: make([]bool, 65536), sentAt: make([]int64, 65536)}
	if window < 1 {
		window = 1
	}
	c.window = make(chan struct{}, window)
	for range window {
		c.window <- struct{}{}
	}
	fail := func(err error) (*snConn, error) { uc.Close(); return nil, err }
	// Section 6.2: CONNECT / CONNACK (no will).
	if err := c.send(&snpacket.Connect{Flags: snpacket.Flags{CleanSession: true}, ProtocolID: snpacket.ProtocolID,
		Duration: 600, ClientID: clientID}); err != nil {
		return fail(err)
	}
	p, err := c.await(snpacket.TypeConnack)
	if err != nil {
		return fail(err)
	}
	if rc := p.(*snpacket.Connack).ReturnCode; rc != snpacket.Accepted {
		return fail(fmt.Errorf("sn client %s: CONNACK %v", clientID, rc))
	}
	// Section 6.5: REGISTER / REGACK.
	if err := c.send(&snpacket.Register{MsgID: 1, TopicName: topic}); err != nil {
		return fail(err)
	}
	p, err = c.await(snpacket.TypeRegack)
	if err != nil {
		return fail(err)
	}
	ra2 := p.(*snpacket.Regack)
	if ra2.ReturnCode != snpacket.Accepted {
		return fail(fmt.Errorf("sn client %s: REGACK %v for %q", clientID, ra2.ReturnCode, topic))
	}
	c.topicID = ra2.TopicID
	return c, nil
}

func (c *snConn) send(p snpacket.Packet) error {
	b, err := snpacket.Encode(p)
	if err != nil {
		return fmt.Errorf("sn client %s: %w", c.id, err)
	}
	if _, err := c.uc.Write(b); err != nil {
		return fmt.Errorf("sn client %s: send %v: %w", c.id, p.Type(), err)
	}
	return nil
}

// await reads until a message of type t arrives (setup only).
func (c *snConn) await(t snpacket.MsgType) (snpacket.Packet, error) {
	buf := make([]byte, 2048)
	c.uc.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.uc.SetReadDeadline(time.Time{})
	for {
		n, err := c.uc.Read(buf)
		if err != nil {
			return nil, fmt.Errorf("sn client %s: waiting for %v: %w", c.id, t, err)
		}
		p, _, err := snpacket.Decode(buf[:n])
		if err != nil {
			return nil, fmt.Errorf("sn client %s: %w", c.id, err)
		}
		if p.Type() == t {
			return p, nil
		}
	}
}

func (c *snConn) now() int64 { return int64(time.Since(c.epoch)) }

// readLoop takes PUBACK, PUBREC and PUBCOMP until the socket is closed.
func (c *snConn) readLoop() error {
	buf := make([]byte, 2048)
	var out []byte
	for {
		n, err := c.uc.Read(buf)
		if err != nil {
			if c.closed.Load() {
				return nil
			}
			return fmt.Errorf("sn client %s: read: %w", c.id, err)
		}
		p, _, err := snpacket.Decode(buf[:n])
		if err != nil {
			return fmt.Errorf("sn client %s: %w", c.id, err)
		}
		switch p := p.(type) {
		case *snpacket.Puback:
			if p.ReturnCode != snpacket.Accepted {
				c.rejected.Add(1)
				c.complete(p.MsgID, false)
				continue
			}
			c.complete(p.MsgID, true)
		case *snpacket.Pubrec: // section 6.7 QoS 2 flow
			out, _ = snpacket.Append(out[:0], &snpacket.Pubrel{MsgID: p.MsgID})
			if _, err := c.uc.Write(out); err != nil {
				return fmt.Errorf("sn client %s: send PUBREL: %w", c.id, err)
			}
		case *snpacket.Pubcomp:
			c.complete(p.MsgID, true)
		case *snpacket.Disconnect:
			return errors.New("sn client " + c.id + ": gateway sent DISCONNECT")
		}
	}
}

func (c *snConn) complete(id uint16, ok bool) {
	c.busyMu.Lock()
	was := c.busy[id]
	c.busy[id] = false
	c.busyMu.Unlock()
	if !was {
		return
	}
	if ok {
		c.ackLat.record(c.now() - c.sentAt[id])
		c.acked.Add(1)
	}
	c.window <- struct{}{}
}

// publish sends one PUBLISH (section 5.4.12) with a registered topic id.
func (c *snConn) publish(ctx context.Context, qos int8, payload []byte, s stamp) error {
	var id uint16
	if qos > 0 {
		select {
		case <-c.window:
		case <-ctx.Done():
			return fmt.Errorf("sn client %s: waiting for a window slot: %w", c.id, context.Cause(ctx))
		}
		c.busyMu.Lock()
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
		c.busy[id] = true
		s.sent = c.now()
		c.sentAt[id] = s.sent
		c.busyMu.Unlock()
	} else {
		s.sent = c.now()
	}
	putStamp(payload, s)
	c.enc = snpacket.Publish{Flags: snpacket.Flags{QoS: qos, TopicIDType: snpacket.TopicNormal}, TopicID: c.topicID, MsgID: id, Data: payload}
	var err error
	c.wbuf, err = snpacket.Append(c.wbuf[:0], &c.enc)
	if err != nil {
		return fmt.Errorf("sn client %s: %w", c.id, err)
	}
	if _, err := c.uc.Write(c.wbuf); err != nil {
		return fmt.Errorf("sn client %s: send PUBLISH: %w", c.id, err)
	}
	return nil
}

func (c *snConn) inflight() int { return cap(c.window) - len(c.window) }

// disconnect sends DISCONNECT (section 6.11) and closes the socket.
func (c *snConn) disconnect() {
	c.closed.Store(true)
	c.send(&snpacket.Disconnect{})
	c.uc.Close()
}
