package brokercore

import (
	"bufio"
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/outpost-iot/outpost/brokercore/packet"
)

// benchConn is a minimal pipelining client for benchmarks.
type benchConn struct {
	nc net.Conn
	br *bufio.Reader
	bw *bufio.Writer
	mu sync.Mutex
}

func benchDial(b *testing.B, br *Broker, id string) *benchConn {
	nc, err := net.Dial("tcp", addr(br))
	if err != nil {
		b.Fatal(err)
	}
	c := &benchConn{nc: nc, br: bufio.NewReaderSize(nc, 64<<10), bw: bufio.NewWriterSize(nc, 64<<10)}
	c.write(&packet.Connect{ProtocolName: "MQTT", ProtocolLevel: 4, CleanStart: true, ClientID: id})
	c.flush()
	if p, err := packet.ReadPacket(c.br, 4, 0); err != nil || p.Type() != packet.CONNACK {
		b.Fatalf("connect: %v %v", p, err)
	}
	b.Cleanup(func() { nc.Close() })
	return c
}

func (c *benchConn) write(p packet.Packet) {
	buf, _ := packet.Append(nil, p, 4)
	c.mu.Lock()
	c.bw.Write(buf)
	c.mu.Unlock()
}

func (c *benchConn) flush() {
	c.mu.Lock()
	c.bw.Flush()
	c.mu.Unlock()
}

// BenchmarkFanIn: 4 publishers -> 1 subscriber over loopback, per QoS.
//
//	go test -run XXX -bench FanIn -benchmem ./brokercore
func BenchmarkFanIn(b *testing.B) {
	for _, qos := range []byte{0, 1, 2} {
		b.Run(fmt.Sprintf("qos%d", qos), func(b *testing.B) { benchFanIn(b, qos) })
	}
}

func benchFanIn(b *testing.B, qos byte) {
	// Publishers are acked when the message is routed, so they may run
	// ahead of the subscriber: the queue must hold the whole run (a full
	// queue drops and counts, which would end the benchmark early).
	br := testBroker(b, Config{MaxInflight: 100, MaxQueued: b.N + 16}, Options{})
	sub := benchDial(b, br, "sub")
	sub.write(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "bench/#", QoS: qos}}})
	sub.flush()
	if p, err := packet.ReadPacket(sub.br, 4, 0); err != nil || p.Type() != packet.SUBACK {
		b.Fatalf("subscribe: %v %v", p, err)
	}
	const pubs = 4
	per := b.N/pubs + 1
	total := per * pubs
	payload := make([]byte, 64)
	subDone := make(chan error, 1)
	go func() {
		n := 0
		for n < total {
			p, err := packet.ReadPacket(sub.br, 4, 0)
			if err != nil {
				subDone <- err
				return
			}
			switch p := p.(type) {
			case *packet.Publish:
				n++
				switch p.QoS {
				case 1:
					sub.write(&packet.Ack{PacketType: packet.PUBACK, PacketID: p.PacketID})
				case 2:
					sub.write(&packet.Ack{PacketType: packet.PUBREC, PacketID: p.PacketID})
				}
			case *packet.Ack:
				if p.PacketType == packet.PUBREL {
					sub.write(&packet.Ack{PacketType: packet.PUBCOMP, PacketID: p.PacketID})
				}
			}
			if sub.br.Buffered() == 0 {
				sub.flush()
			}
		}
		sub.flush()
		subDone <- nil
	}()
	conns := make([]*benchConn, pubs)
	for i := range conns {
		conns[i] = benchDial(b, br, fmt.Sprint("pub", i))
	}
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			window := make(chan struct{}, 50)
			ackDone := make(chan struct{})
			if qos > 0 {
				go func() {
					defer close(ackDone)
					for got := 0; got < per; {
						p, err := packet.ReadPacket(c.br, 4, 0)
						if err != nil {
							return
						}
						a := p.(*packet.Ack)
						switch a.PacketType {
						case packet.PUBACK, packet.PUBCOMP:
							got++
							<-window
						case packet.PUBREC:
							c.write(&packet.Ack{PacketType: packet.PUBREL, PacketID: a.PacketID})
							c.flush()
						}
					}
				}()
			} else {
				close(ackDone)
			}
			topic := fmt.Sprint("bench/", i)
			for j := 0; j < per; j++ {
				p := &packet.Publish{Topic: topic, QoS: qos, Payload: payload}
				if qos > 0 {
					select {
					case window <- struct{}{}:
					default:
						c.flush()
						window <- struct{}{}
					}
					p.PacketID = uint16(j%60000 + 1)
				}
				c.write(p)
			}
			c.flush()
			<-ackDone
		}()
	}
	wg.Wait()
	if err := <-subDone; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
}
