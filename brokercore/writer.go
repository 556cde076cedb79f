package brokercore

import (
	"bufio"
	"time"

	"github.com/outpost-iot/outpost/brokercore/packet"
)

// flowChunk: the writer gives QoS 0 room back to the flow gate every this
// many packets of a batch.
const flowChunk = 256

// writeTimeout bounds one flush to a client that stopped reading.
const writeTimeout = 30 * time.Second

// send queues p for the writer goroutine. It never blocks.
func (c *conn) send(p packet.Packet) {
	c.outMu.Lock()
	if c.outClosed {
		c.outMu.Unlock()
		return
	}
	c.out = append(c.out, p)
	c.outMu.Unlock()
	c.kick()
}

// sendPublish queues a PUBLISH. QoS 0 ones are counted by the flow gate
// until written; it reports whether the gate is closed (flow.go).
func (c *conn) sendPublish(p *packet.Publish, qos0 bool) (full bool) {
	c.outMu.Lock()
	if c.outClosed {
		c.outMu.Unlock()
		return false
	}
	c.out = append(c.out, p)
	if qos0 {
		full = c.flow.addQoS0(1)
	}
	c.outMu.Unlock()
	c.kick()
	return full
}

func (c *conn) kick() {
	select {
	case c.outSig <- struct{}{}:
	default:
	}
}

// closeAfter queues p (may be nil) as the last packet: the writer sends
// what is queued up to it, then closes the network connection.
func (c *conn) closeAfter(p packet.Packet) {
	c.outMu.Lock()
	if !c.outClosed {
		if p != nil {
			c.out = append(c.out, p)
		}
		c.outClosed = true
		close(c.closing)
	}
	c.outMu.Unlock()
	// Nothing more is written: publishers held by this client go on.
	c.flow.stop()
	c.kick()
}

// writeLoop is the connection's one writer: it drains the queue into a
// buffered writer and flushes once per batch. It owns outbound topic
// aliases and the client's Maximum Packet Size.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	bw := bufio.NewWriterSize(c.nc, 32*1024)
	var batch []packet.Packet
	var buf []byte
	for {
		select {
		case <-c.outSig:
		case <-c.hardStop:
			c.nc.Close()
			return
		}
		c.outMu.Lock()
		batch, c.out = c.out, batch[:0]
		closing := c.outClosed
		c.outMu.Unlock()
		if len(batch) > 0 {
			c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
		}
		qos0 := 0
		for i, p := range batch {
			batch[i] = nil
			if pub, ok := p.(*packet.Publish); ok && pub.QoS == 0 {
				qos0++
			}
			if qos0 == flowChunk {
				c.flow.addQoS0(-qos0) // written into bw or dropped: room for more
				qos0 = 0
			}
			var err error
			buf, err = c.encode(buf[:0], p)
			if err != nil {
				c.b.log.Error("encode packet failed", "client", c.clientID, "packet", p.Type().String(), "err", err)
				continue
			}
			if buf == nil {
				continue // dropped (too large for the client)
			}
			if _, err := bw.Write(buf); err != nil {
				c.writeFailed(err)
				return
			}
			c.b.stats.BytesSent.Add(int64(len(buf)))
		}
		if bw.Buffered() > 0 {
			if err := bw.Flush(); err != nil {
				c.writeFailed(err)
				return
			}
		}
		if qos0 > 0 {
			c.flow.addQoS0(-qos0)
		}
		if closing {
			c.outMu.Lock()
			empty := len(c.out) == 0
			c.outMu.Unlock()
			if empty {
				c.nc.Close()
				return
			}
			c.kick()
		}
	}
}

func (c *conn) writeFailed(err error) {
	c.setReason("write failed: " + err.Error())
	c.outMu.Lock()
	if !c.outClosed {
		c.outClosed = true
		close(c.closing)
	}
	c.out = nil
	c.outMu.Unlock()
	c.flow.stop()
	c.nc.Close()
}

// encode appends p's bytes to dst for this connection: outbound topic
// aliases (within the client's Topic Alias Maximum) and the client's
// Maximum Packet Size. It returns nil bytes for a packet not to send.
func (c *conn) encode(dst []byte, p packet.Packet) ([]byte, error) {
	pub, isPub := p.(*packet.Publish)
	if isPub && c.version == packet.V5 && c.aliasMax > 0 {
		c.applyAlias(pub)
	}
	out, err := packet.Append(dst, p, c.version)
	if err != nil {
		return dst, err
	}
	if c.maxOut > 0 && len(out) > int(c.maxOut) {
		// [MQTT-3.1.2-24]: never send a packet over the client's Maximum
		// Packet Size; a PUBLISH is discarded as if delivered [MQTT-3.1.2-25].
		if isPub {
			if pub.Props.TopicAlias != nil && pub.Topic != "" {
				// The alias was just set up; forget it so it is not assumed known.
				delete(c.aliasOut, pub.Topic)
			}
			c.b.log.Debug("packet over client's maximum packet size dropped", "client", c.clientID, "size", len(out), "max", c.maxOut)
			if c.sess != nil {
				c.sess.dropOversize(c, pub.PacketID)
			}
			return nil, nil
		}
		return nil, nil
	}
	if isPub {
		c.b.stats.countPublishSent(pub.QoS, len(out))
		if c.debug {
			c.b.log.Debug("Sending PUBLISH", "client", c.clientID, "dup", pub.Dup, "qos", pub.QoS, "retain", pub.Retain, "mid", pub.PacketID, "topic", pub.Topic, "bytes", len(pub.Payload))
		}
	}
	return out, nil
}

// applyAlias gives pub's topic an alias (MQTT 5.0 section 3.3.2.3.4): the
// first time a topic is sent it goes with a new alias; afterwards only the
// alias is sent. Aliases are not reused once the client's maximum is
// reached (later topics go in full).
func (c *conn) applyAlias(pub *packet.Publish) {
	if a, ok := c.aliasOut[pub.Topic]; ok {
		pub.Topic = ""
		pub.Props.TopicAlias = &a
		return
	}
	if uint16(len(c.aliasOut)) >= c.aliasMax {
		return
	}
	if c.aliasOut == nil {
		c.aliasOut = make(map[string]uint16)
	}
	a := uint16(len(c.aliasOut) + 1)
	c.aliasOut[pub.Topic] = a
	pub.Props.TopicAlias = &a
}
