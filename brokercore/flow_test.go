package brokercore

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/brokercore/packet"
)

// pipePublish connects as id and sends n numbered messages (4-byte
// big-endian sequence number, padded to size) to topic with at most
// window unacknowledged (QoS 2: PUBREL answered), and returns when every
// one is acknowledged (QoS 0: written).
func pipePublish(address, id, topic string, qos byte, n, window, size int) error {
	nc, err := net.DialTimeout("tcp", address, 5*time.Second)
	if err != nil {
		return err
	}
	defer nc.Close()
	br, bw := bufio.NewReader(nc), bufio.NewWriter(nc)
	var wmu sync.Mutex
	write := func(p packet.Packet) error {
		b, err := packet.Append(nil, p, packet.V311)
		if err != nil {
			return err
		}
		wmu.Lock()
		defer wmu.Unlock()
		_, err = bw.Write(b)
		return err
	}
	flush := func() error { wmu.Lock(); defer wmu.Unlock(); return bw.Flush() }
	write(&packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V311, CleanStart: true, KeepAlive: 60, ClientID: id})
	flush()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if p, err := packet.ReadPacket(br, packet.V311, 0); err != nil || p.Type() != packet.CONNACK {
		return fmt.Errorf("%s: connect: %v %v", id, p, err)
	}
	slots := make(chan struct{}, window)
	ackErr := make(chan error, 1)
	if qos > 0 {
		go func() {
			for got := 0; got < n; {
				nc.SetReadDeadline(time.Now().Add(20 * time.Second))
				p, err := packet.ReadPacket(br, packet.V311, 0)
				if err != nil {
					ackErr <- fmt.Errorf("%s: after %d acks: %w", id, got, err)
					return
				}
				a, ok := p.(*packet.Ack)
				if !ok {
					continue
				}
				switch a.PacketType {
				case packet.PUBACK, packet.PUBCOMP:
					got++
					<-slots
				case packet.PUBREC:
					write(&packet.Ack{PacketType: packet.PUBREL, PacketID: a.PacketID})
					flush()
				}
			}
			ackErr <- nil
		}()
	}
	payload := make([]byte, size)
	for i := 1; i <= n; i++ {
		binary.BigEndian.PutUint32(payload, uint32(i))
		p := &packet.Publish{Topic: topic, QoS: qos, Payload: payload}
		if qos > 0 {
			select {
			case slots <- struct{}{}:
			default:
				if err := flush(); err != nil {
					return err
				}
				slots <- struct{}{}
			}
			p.PacketID = uint16(i%65000 + 1)
		}
		if err := write(p); err != nil {
			return err
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if qos > 0 {
		return <-ackErr
	}
	return nil
}

// slowSubscriber subscribes to filter, does not read for pause, then reads
// and acknowledges everything, checking that every topic's sequence
// numbers arrive complete and in order; it returns once total messages
// arrived (or nothing came for 10 s).
func slowSubscriber(t *testing.T, address, id, filter string, qos byte, total int, pause time.Duration) (ready <-chan struct{}, result <-chan error) {
	rd, res := make(chan struct{}), make(chan error, 1)
	c := dialRaw(t, address, packet.V311)
	c.connect(id, true)
	c.subscribe(1, filter, qos)
	close(rd)
	// dialRaw's reader fills a channel of 1000 packets: past that it stops
	// reading the socket, so the pause holds the whole stream back.
	go func() {
		time.Sleep(pause)
		next := map[string]uint32{}
		for got := 0; got < total; {
			var p packet.Packet
			select {
			case x, ok := <-c.in:
				if !ok {
					res <- fmt.Errorf("connection ended after %d messages", got)
					return
				}
				p = x
			case <-time.After(10 * time.Second):
				res <- fmt.Errorf("got %d of %d messages, then nothing for 10s", got, total)
				return
			}
			switch p := p.(type) {
			case *packet.Publish:
				seq := binary.BigEndian.Uint32(p.Payload)
				if want := next[p.Topic] + 1; seq != want {
					res <- fmt.Errorf("%s: got #%d, want #%d", p.Topic, seq, want)
					return
				}
				next[p.Topic] = seq
				got++
				c.ackPublish(p)
			case *packet.Ack:
				if p.PacketType == packet.PUBREL {
					c.ack(packet.PUBCOMP, p.PacketID)
				}
			}
		}
		res <- nil
	}()
	return rd, res
}

// Fan-in to one slow subscriber with a small max_queued: every message
// arrives, in order, at every QoS; the publishers are held (FlowHeld), not
// refused, and nothing is counted as dropped.
func TestFlowFanInSlowSubscriberLosesNothing(t *testing.T) {
	for _, tc := range []struct {
		qos          byte
		window, size int
	}{{0, 0, 2048}, {1, 20, 64}, {2, 20, 64}, {2, 64, 64}} {
		t.Run(fmt.Sprintf("qos%d_w%d", tc.qos, tc.window), func(t *testing.T) {
			b := testBroker(t, Config{MaxQueued: 50, MaxInflight: 5}, Options{})
			const pubs, per = 4, 1000
			_, res := slowSubscriber(t, addr(b), "sub", "flow/#", tc.qos, pubs*per, 300*time.Millisecond)
			errs := make(chan error, pubs)
			for i := range pubs {
				go func() {
					errs <- pipePublish(addr(b), fmt.Sprint("pub", i), fmt.Sprint("flow/", i), tc.qos, per, tc.window, tc.size)
				}()
			}
			for range pubs {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			if err := <-res; err != nil {
				t.Fatal(err)
			}
			st := b.Stats()
			if st.FlowHeld.Load() == 0 {
				t.Error("the subscriber's gate never closed: the test did not exercise flow control")
			}
			if n := st.Dropped.QueueFull.Load() + st.Dropped.SlowClient.Load(); n != 0 {
				t.Errorf("%d messages dropped", n)
			}
		})
	}
}

// An in-process Publish waits while a subscriber is full; with a ctx that
// ends first it returns the error and publishes nothing; it goes on once
// the subscriber makes room.
func TestFlowInprocPublishHeldThenReleased(t *testing.T) {
	b := testBroker(t, Config{MaxQueued: 4, MaxInflight: 1}, Options{})
	c := connected(t, b, packet.V311, "sub", true)
	c.subscribe(1, "t", 1)
	ctx := context.Background()
	for i := 1; i <= 5; i++ { // 1 in flight, 4 queued: the gate closes
		if err := b.Publish(ctx, msg.Message{Topic: "t", QoS: 1, Payload: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := b.Publish(short, msg.Message{Topic: "t", QoS: 1, Payload: []byte{99}}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish to a full subscriber: %v, want context.DeadlineExceeded", err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Publish(ctx, msg.Message{Topic: "t", QoS: 1, Payload: []byte{6}}) }()
	select {
	case err := <-done:
		t.Fatalf("publish returned (%v) while the subscriber is full", err)
	case <-time.After(100 * time.Millisecond):
	}
	var got []byte
	for len(got) < 6 {
		p := c.recvType(packet.PUBLISH).(*packet.Publish)
		got = append(got, p.Payload[0])
		c.ack(packet.PUBACK, p.PacketID)
		if len(got) == 2 { // queue 2 = low-water mark: the gate opens
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
	}
	if string(got) != "\x01\x02\x03\x04\x05\x06" {
		t.Fatalf("delivered %v, want 1..6 (the refused 99 never)", got)
	}
	c.quiet(50 * time.Millisecond)
}

// A client subscribed to the topics it publishes, at every QoS, is never
// held by its own queue: it keeps reading the acks that drain it.
func TestFlowSelfSubscriberDoesNotDeadlock(t *testing.T) {
	for _, qos := range []byte{0, 1, 2} {
		t.Run(fmt.Sprint("qos", qos), func(t *testing.T) {
			b := testBroker(t, Config{MaxQueued: 5, MaxInflight: 2}, Options{})
			c := connected(t, b, packet.V311, "self", true)
			c.subscribe(1, "self/#", qos)
			const n = 300
			go func() {
				for i := 1; i <= n; i++ {
					p := pub("self/x", qos, uint16(i), "")
					p.Payload = binary.BigEndian.AppendUint32(nil, uint32(i))
					c.send(p)
				}
			}()
			delivered, acked := 0, 0
			for delivered < n || (qos > 0 && acked < n) {
				switch p := c.recv().(type) {
				case *packet.Publish:
					delivered++
					if seq := binary.BigEndian.Uint32(p.Payload); seq != uint32(delivered) {
						t.Fatalf("delivery #%d is %d", delivered, seq)
					}
					c.ackPublish(p)
				case *packet.Ack:
					switch p.PacketType {
					case packet.PUBACK, packet.PUBCOMP:
						acked++
					case packet.PUBREC:
						c.ack(packet.PUBREL, p.PacketID)
					case packet.PUBREL:
						c.ack(packet.PUBCOMP, p.PacketID)
					}
				}
			}
		})
	}
}

// A subscriber that stops acknowledging holds its publishers only until
// the keep alive (1.5 times) closes it; its persistent session then keeps
// the newest max_queued messages, drops the oldest, counts them and logs
// a warning, and the publisher gets every ack.
func TestFlowDeadSubscriberReleasedByKeepAlive(t *testing.T) {
	var logs syncBuf
	b := testBroker(t, Config{MaxQueued: 10, MaxInflight: 2}, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	dead := connected(t, b, packet.V311, "dead", false, func(cp *packet.Connect) { cp.KeepAlive = 1 })
	dead.subscribe(1, "d", 1)
	start := time.Now()
	if err := pipePublish(addr(b), "pub", "d", 1, 30, 5, 8); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < time.Second {
		t.Errorf("publisher finished after %v: it was not held by the full subscriber", el)
	}
	dead.closed()
	// 2 in flight to the old connection, the newest 10 queued, 18 dropped.
	poll(t, "drops counted", func() bool { return b.Stats().Dropped.QueueFull.Load() == 18 })
	// Every drop is logged once: the sweeper may have logged some of them
	// already (its periodic pass), the rest now (a pass one log interval
	// later, when the rest is due).
	b.sweep(b.now().Add(limitLogInterval))
	logged := 0
	for _, m := range regexp.MustCompile(`dropped_since_last_log=(\d+)`).FindAllStringSubmatch(logs.String(), -1) {
		n, _ := strconv.Atoi(m[1])
		logged += n
	}
	if logged != 18 {
		t.Errorf("warnings count %d drops, want 18; log:\n%s", logged, logs.String())
	}
	c := connected(t, b, packet.V311, "dead", false)
	var seqs []uint32
	for len(seqs) < 12 {
		p := c.recvType(packet.PUBLISH).(*packet.Publish)
		seqs = append(seqs, binary.BigEndian.Uint32(p.Payload))
		c.ack(packet.PUBACK, p.PacketID)
	}
	want := []uint32{1, 2, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30}
	if fmt.Sprint(seqs) != fmt.Sprint(want) {
		t.Fatalf("resumed session delivered %v, want %v", seqs, want)
	}
}
