package brokercore

import (
	"fmt"
	"syscall"
	"time"

	"github.com/outpost-iot/outpost/brokercore/packet"
)

// flowChunk: the writer gives QoS 0 room back to the flow gate every this
// many packets of a batch.
const flowChunk = 256

// writeTimeout bounds a write to a client that stopped reading: the
// socket's write deadline is set writeTimeout ahead and renewed once less
// than half of it is left, so a write fails after 15 to 30 s without
// progress, and a busy connection does not reset a timer per write.
const writeTimeout = 30 * time.Second

// encoded is a packet encoded when it is queued. CONNACK and SUBACK, once
// or so per connection, go this way, from pooled structs: a packet.ConnAck
// or packet.SubAck (about 350 bytes each, with room for every v5
// property) would otherwise be made for each and left as garbage (issue 9:
// what a connection costs).
type encoded []byte

func (e encoded) Type() packet.Type { return packet.Type(e[0] >> 4) }

// sendEncoded encodes p for this connection at once and queues the bytes;
// p is not kept.
func (c *conn) sendEncoded(p packet.Packet) {
	e, err := packet.Append(nil, p, c.version)
	if err != nil {
		c.b.log.Error("encode packet failed", "client", c.clientID, "packet", p.Type().String(), "err", err)
		return
	}
	c.send(encoded(e))
}

// send queues p for the writer goroutine. It never blocks.
func (c *conn) send(p packet.Packet) {
	c.outMu.Lock()
	if c.outClosed {
		c.outMu.Unlock()
		return
	}
	c.out = append(c.out, p)
	c.wakeLocked()
	c.outMu.Unlock()
}

// sendPublish queues a PUBLISH. QoS 0 ones are counted by the flow gate
// until written; it reports whether the gate is closed (flow.go).
func (c *conn) sendPublish(p packet.Packet, qos0 bool) (full bool) {
	c.outMu.Lock()
	if c.outClosed {
		c.outMu.Unlock()
		return false
	}
	c.out = append(c.out, p)
	if qos0 {
		full = c.flow.addQoS0(1)
	}
	c.wakeLocked()
	c.outMu.Unlock()
	return full
}

// The writer role: one goroutine at a time encodes c.out and writes it
// (c.writing). Usually that is a writer goroutine started by wakeLocked,
// which runs only while there is something to write, so an idle
// connection has at most its reader (issue 9: memory per connection).
// While the reader goroutine handles the packets of one read it holds the
// role itself (takeWriter): its answers (CONNACK, SUBACK, PUBACK,
// PINGRESP, the messages a PUBACK lets out of the queue) and whatever
// others queue meanwhile wait in c.out, and the reader writes them in one
// batch before it reads or waits again (releaseWriter). A request and its
// answer then cost no goroutine start and no hand-over between threads
// (issue 9: CPU per connection and per message).

// replyReader is the reader's view of the connection (inbuf reads through
// it): it gives up the writer role before each read, which may wait, and
// takes it again once bytes came.
type replyReader conn

func (r *replyReader) Read(p []byte) (int, error) {
	c := (*conn)(r)
	c.releaseWriter()
	if c.rpool.pooled() {
		// A resumer pool goroutine reads without waiting, and leaves the
		// pool before it waits for bytes (pool.go).
		n, err := c.readNow(p)
		if n > 0 {
			c.takeWriter()
		}
		if n > 0 || err != nil {
			return n, err
		}
		c.rpool.leave()
	}
	n, err := c.nc.Read(p)
	if n > 0 {
		c.takeWriter()
	}
	return n, err
}

// takeWriter gives the writer role to the reader goroutine if no writer
// holds it; reader only.
func (c *conn) takeWriter() {
	c.outMu.Lock()
	if !c.writing && !c.writerEnded && !c.outClosed {
		c.writing = true
		c.readerWrites = true
	}
	c.outMu.Unlock()
}

// releaseWriter is called by the reader goroutine before it reads, waits
// or returns: if it holds the writer role it writes what is queued, once,
// and gives the role up; what came meanwhile (or the close) goes to a
// writer goroutine. Reader only.
func (c *conn) releaseWriter() {
	if !c.readerWrites {
		return
	}
	c.readerWrites = false
	c.outMu.Lock()
	batch := c.out
	c.out = nil
	raw := c.wraw
	c.outMu.Unlock()
	if len(batch) > 0 && !c.writeBatch(batch, c.rpool, raw) {
		return // writeFailed gave up the role
	}
	c.outMu.Lock()
	c.writing = false
	if len(c.out) > 0 || c.outClosed {
		c.wakeLocked()
	}
	c.outMu.Unlock()
}

// wakeLocked hands the writer role to the writer pool (pool.go) unless
// a writer holds it (or has ended for good); outMu held. With nothing
// queued it does not: a closing connection is closed here (a disconnect
// storm wakes no writers only to close).
func (c *conn) wakeLocked() {
	if c.writing || c.writerEnded {
		return
	}
	if len(c.out) == 0 {
		if c.outClosed {
			c.endWriterLocked()
		}
		return
	}
	c.writing = true
	c.b.writers.run(c)
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
		c.fire(&c.closing)
	}
	c.wakeLocked()
	c.outMu.Unlock()
	// Nothing more is written: publishers held by this client go on.
	c.flow.stop()
}

// writeLoop is the connection's one writer while there is something to
// write, run by a writer pool goroutine w: it encodes the queue into a
// buffer taken from bufPool and writes it once per batch (or every
// writeChunk bytes), and returns when the queue is empty. Once the
// connection is closing and everything is written it closes the network
// connection and writerDone. It owns outbound topic aliases and the
// client's Maximum Packet Size. more: it still holds the writer role and
// stopped after a batch because other connections wait for the pool.
func (c *conn) writeLoop(w *poolWorker) (more bool) {
	var batch []packet.Packet
	for {
		c.outMu.Lock()
		batch, c.out = c.out, batch[:0]
		closing := c.outClosed
		if len(batch) == 0 {
			c.out = nil // idle: keep no array
			c.writing = false
			if closing {
				c.endWriterLocked()
			}
			c.outMu.Unlock()
			return false
		}
		raw := c.wraw
		c.outMu.Unlock()
		if c.hardStop.Load() {
			c.outMu.Lock()
			c.writing = false
			c.endWriterLocked()
			c.outMu.Unlock()
			return false
		}
		if !c.writeBatch(batch, w, raw) {
			return false
		}
		if cap(batch) > 1024 {
			batch = nil // a burst is over: do not keep its array
		}
		if w.pooled() && w.p.waiting() {
			return true // others' turn; c keeps the role and queues again
		}
	}
}

// endWriterLocked closes the network connection and writerDone, once;
// outMu held.
func (c *conn) endWriterLocked() {
	if c.writerEnded {
		return
	}
	c.writerEnded = true
	c.closeNet()
	c.fire(&c.writerDone)
}

// writeBatch encodes and writes batch, clearing it; false if the write
// failed (the connection is closed). w is the pool goroutine writing (nil:
// the reader) and raw the socket, to write without waiting (nil: no
// socket).
func (c *conn) writeBatch(batch []packet.Packet, w *poolWorker, raw syscall.RawConn) bool {
	if now := time.Now(); c.wdeadline.Sub(now) < writeTimeout/2 {
		c.wdeadline = now.Add(writeTimeout)
		c.nc.SetWriteDeadline(c.wdeadline)
	}
	bp := getBuf()
	defer putBuf(bp)
	buf := (*bp)[:0]
	qos0 := 0
	for i, p := range batch {
		batch[i] = nil
		switch pub := p.(type) {
		case *outMsg:
			if pub.qos == 0 {
				qos0++
			}
		case *packet.Publish:
			if pub.QoS == 0 {
				qos0++
			}
		}
		if qos0 == flowChunk {
			c.flow.addQoS0(-qos0) // encoded or dropped: room for more
			qos0 = 0
		}
		var err error
		start := len(buf)
		buf, err = c.encode(buf, p)
		if err != nil {
			c.b.log.Error("encode packet failed", "client", c.clientID, "packet", p.Type().String(), "err", err)
			continue
		}
		c.b.stats.BytesSent.Add(int64(len(buf) - start))
		if len(buf) >= writeChunk {
			if err := c.write(buf, w, raw); err != nil {
				c.writeFailed(err)
				return false
			}
			buf = buf[:0]
		}
	}
	if len(buf) > 0 {
		if err := c.write(buf, w, raw); err != nil {
			c.writeFailed(err)
			return false
		}
	}
	*bp = buf[:0]
	if qos0 > 0 {
		c.flow.addQoS0(-qos0)
	}
	return true
}

// write writes buf to the client. A pool goroutine first writes what the
// socket takes without waiting, and leaves the pool before it waits for
// the rest (pool.go).
func (c *conn) write(buf []byte, w *poolWorker, raw syscall.RawConn) error {
	if w.pooled() {
		if raw != nil {
			n, err := c.writeNow(raw, buf)
			if err != nil || n == len(buf) {
				return err
			}
			buf = buf[n:]
		}
		w.leave()
	}
	_, err := c.nc.Write(buf)
	return err
}

func (c *conn) writeFailed(err error) {
	c.setReason("write failed: " + err.Error())
	c.outMu.Lock()
	if !c.outClosed {
		c.outClosed = true
		c.fire(&c.closing)
	}
	c.out = nil
	c.writing = false
	c.endWriterLocked()
	c.outMu.Unlock()
	c.flow.stop()
}

// encode appends p's bytes to dst for this connection: outbound topic
// aliases (within the client's Topic Alias Maximum) and the client's
// Maximum Packet Size. A packet not to send leaves dst as it was.
func (c *conn) encode(dst []byte, p packet.Packet) ([]byte, error) {
	start := len(dst)
	if a, ok := p.(*inAck); ok {
		return appendAck(dst, a, c.version), nil
	}
	if om, ok := p.(*outMsg); ok {
		out, err := appendPublishV3(dst, om)
		if err != nil {
			return dst, err
		}
		c.b.stats.countPublishSent(om.qos, len(out)-start)
		if c.debug {
			c.b.log.Debug("Sending PUBLISH", "client", c.clientID, "dup", false, "qos", om.qos, "retain", om.retain, "mid", om.pid, "topic", om.m.Topic, "bytes", len(om.m.Payload))
		}
		return out, nil
	}
	pub, isPub := p.(*packet.Publish)
	if isPub && c.version == packet.V5 && c.aliasMax > 0 {
		c.applyAlias(pub)
	}
	var out []byte
	if e, ok := p.(encoded); ok {
		out = append(dst, e...)
	} else {
		var err error
		if out, err = packet.Append(dst, p, c.version); err != nil {
			return dst, err
		}
	}
	if c.maxOut > 0 && len(out)-start > int(c.maxOut) {
		// [MQTT-3.1.2-24]: never send a packet over the client's Maximum
		// Packet Size; a PUBLISH is discarded as if delivered [MQTT-3.1.2-25].
		if isPub {
			if pub.Props.TopicAlias != nil && pub.Topic != "" {
				// The alias was just set up; forget it so it is not assumed known.
				delete(c.aliasOut, pub.Topic)
			}
			c.b.log.Debug("packet over client's maximum packet size dropped", "client", c.clientID, "size", len(out)-start, "max", c.maxOut)
			if c.sess != nil {
				c.sess.dropOversize(c, pub.PacketID)
			}
		}
		return out[:start], nil
	}
	if isPub {
		c.b.stats.countPublishSent(pub.QoS, len(out)-start)
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

// appendPublishV3 encodes the first send of om as an MQTT 3.1/3.1.1
// PUBLISH (section 3.3): fixed header, topic, packet id (QoS 1/2), payload.
// It reads only fields of om that do not change while om is queued.
func appendPublishV3(dst []byte, om *outMsg) ([]byte, error) {
	m := om.m
	rl := 2 + len(m.Topic) + len(m.Payload)
	if om.qos > 0 {
		rl += 2
	}
	if rl > packet.MaxRemainingLength || len(m.Topic) > 65535 {
		return dst, fmt.Errorf("encode PUBLISH %q: remaining length %d over %d: %w", m.Topic, rl, packet.MaxRemainingLength, packet.ErrInvalid)
	}
	first := byte(packet.PUBLISH)<<4 | om.qos<<1
	if om.retain {
		first |= 0x01
	}
	dst = append(dst, first)
	for { // Remaining Length, variable byte integer (1.5.5)
		b := byte(rl & 0x7f)
		rl >>= 7
		if rl > 0 {
			dst = append(dst, b|0x80)
			continue
		}
		dst = append(dst, b)
		break
	}
	dst = append(dst, byte(len(m.Topic)>>8), byte(len(m.Topic)))
	dst = append(dst, m.Topic...)
	if om.qos > 0 {
		dst = append(dst, byte(om.pid>>8), byte(om.pid))
	}
	return append(dst, m.Payload...), nil
}

// Type makes an inAck the packet it stands for.
func (a *inAck) Type() packet.Type { return a.typ }

// appendAck encodes a PUBACK, PUBREC or PUBCOMP (sections 3.4, 3.5, 3.7):
// the packet id, and in MQTT 5 the reason code unless it is 0 Success
// (3.4.2.1: then it may be left out, remaining length 2).
func appendAck(dst []byte, a *inAck, version byte) []byte {
	if version == packet.V5 && a.reason != 0 {
		return append(dst, byte(a.typ)<<4, 3, byte(a.pid>>8), byte(a.pid), a.reason)
	}
	return append(dst, byte(a.typ)<<4, 2, byte(a.pid>>8), byte(a.pid))
}
