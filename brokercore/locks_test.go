package brokercore

import (
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/packet"
)

// Clean sessions write nothing to the store, so their QoS 1/2 traffic
// never waits for storeMu (LOCKS.md): with storeMu held by someone else,
// a QoS 1 and a QoS 2 exchange between clean sessions complete; a
// persistent subscriber's delivery waits for it.
func TestCleanSessionsSkipStoreLock(t *testing.T) {
	b := testBroker(t, Config{}, Options{})
	sub := connected(t, b, packet.V311, "sub", true)
	sub.subscribe(1, "t", 2)
	p := connected(t, b, packet.V311, "pub", true)
	b.storeMu.Lock()
	locked := true
	defer func() {
		if locked {
			b.storeMu.Unlock()
		}
	}()
	p.send(pub("t", 1, 1, "a"))
	p.recvType(packet.PUBACK)
	d := sub.recvType(packet.PUBLISH).(*packet.Publish)
	sub.ack(packet.PUBACK, d.PacketID)
	p.send(pub("t", 2, 2, "b"))
	p.recvType(packet.PUBREC)
	p.ack(packet.PUBREL, 2)
	p.recvType(packet.PUBCOMP)
	d = sub.recvType(packet.PUBLISH).(*packet.Publish)
	sub.ack(packet.PUBREC, d.PacketID)
	sub.recvType(packet.PUBREL)
	sub.ack(packet.PUBCOMP, d.PacketID)
	p.send(&packet.PingReq{})
	p.recvType(packet.PINGRESP)
	sub.send(&packet.PingReq{})
	sub.recvType(packet.PINGRESP)

	// A persistent subscriber: the delivery writes, so it waits.
	ps := dialRaw(t, addr(b), packet.V311)
	b.storeMu.Unlock()
	locked = false
	ps.connect("ps", false)
	ps.subscribe(1, "t", 1)
	b.storeMu.Lock()
	locked = true
	p.send(pub("t", 1, 3, "c"))
	sub.quiet(100 * time.Millisecond) // routing waits for the lock
	b.storeMu.Unlock()
	locked = false
	p.recvType(packet.PUBACK)
	sub.recvType(packet.PUBLISH)
	ps.recvType(packet.PUBLISH)
}
