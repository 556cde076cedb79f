package brokercore

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/listener"
	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/brokercore/packet"
)

// testBroker starts a broker on 127.0.0.1:0 with store st (nil: a new
// MemStore) and stops it at the end of the test (unless crashed).
func testBroker(t testing.TB, cfg Config, opts Options) *Broker {
	t.Helper()
	cfg.Listeners = []listener.Config{{Address: "127.0.0.1:0"}}
	if cfg.SysInterval == 0 {
		cfg.SysInterval = -1
	}
	if opts.Store == nil {
		opts.Store = msg.NewMemStore()
	}
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	b, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return b
}

func addr(b *Broker) string { return b.Addrs()[0].String() }

// rawClient speaks MQTT with our codec, packet by packet, so tests can
// check exactly what the broker sends and when.
type rawClient struct {
	t       testing.TB
	nc      net.Conn
	br      *bufio.Reader
	version byte
	in      chan packet.Packet
	errc    chan error
	wmu     sync.Mutex
}

func dialRaw(t testing.TB, address string, version byte) *rawClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", address, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := &rawClient{t: t, nc: nc, br: bufio.NewReader(nc), version: version, in: make(chan packet.Packet, 1000), errc: make(chan error, 1)}
	go func() {
		for {
			p, err := packet.ReadPacket(c.br, c.version, 0)
			if err != nil {
				c.errc <- err
				close(c.in)
				return
			}
			c.in <- p
		}
	}()
	t.Cleanup(func() { nc.Close() })
	return c
}

func (c *rawClient) send(p packet.Packet) {
	c.t.Helper()
	b, err := packet.Append(nil, p, c.version)
	if err != nil {
		c.t.Fatalf("encode %v: %v", p.Type(), err)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write %v: %v", p.Type(), err)
	}
}

// recv returns the next packet, failing the test after 5 s.
func (c *rawClient) recv() packet.Packet {
	c.t.Helper()
	select {
	case p, ok := <-c.in:
		if !ok {
			c.t.Fatalf("connection ended: %v", <-c.errc)
		}
		return p
	case <-time.After(5 * time.Second):
		c.t.Fatal("no packet within 5s")
	}
	return nil
}

// recvSkipSys is recv skipping nothing special; named for clarity where
// several packet kinds interleave.
func (c *rawClient) recvType(t packet.Type) packet.Packet {
	c.t.Helper()
	p := c.recv()
	if p.Type() != t {
		c.t.Fatalf("got %v %+v, want %v", p.Type(), p, t)
	}
	return p
}

// closed waits until the broker closes the connection; it returns the
// packets received before that.
func (c *rawClient) closed() []packet.Packet {
	c.t.Helper()
	var got []packet.Packet
	deadline := time.After(5 * time.Second)
	for {
		select {
		case p, ok := <-c.in:
			if !ok {
				err := <-c.errc
				if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isReset(err) {
					c.t.Logf("connection ended with %v", err)
				}
				return got
			}
			got = append(got, p)
		case <-deadline:
			c.t.Fatal("connection not closed within 5s")
		}
	}
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne)
}

// quiet checks that nothing arrives for d.
func (c *rawClient) quiet(d time.Duration) {
	c.t.Helper()
	select {
	case p := <-c.in:
		c.t.Fatalf("unexpected %v %+v", p.Type(), p)
	case <-time.After(d):
	}
}

type connOpt func(*packet.Connect)

func (c *rawClient) connect(id string, clean bool, opts ...connOpt) *packet.ConnAck {
	c.t.Helper()
	cp := &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: c.version, CleanStart: clean, KeepAlive: 60, ClientID: id}
	if c.version == packet.V31 {
		cp.ProtocolName = "MQIsdp"
	}
	for _, o := range opts {
		o(cp)
	}
	c.send(cp)
	ack := c.recvType(packet.CONNACK).(*packet.ConnAck)
	return ack
}

func (c *rawClient) subscribe(pid uint16, filter string, qos byte) *packet.SubAck {
	c.t.Helper()
	c.send(&packet.Subscribe{PacketID: pid, Subscriptions: []packet.Subscription{{Filter: filter, QoS: qos}}})
	return c.recvType(packet.SUBACK).(*packet.SubAck)
}

func (c *rawClient) ack(t packet.Type, pid uint16) {
	c.t.Helper()
	c.send(&packet.Ack{PacketType: t, PacketID: pid})
}

// ackPublish answers a delivered PUBLISH as its QoS asks: PUBACK for 1,
// PUBREC for 2, nothing for 0.
func (c *rawClient) ackPublish(p *packet.Publish) {
	c.t.Helper()
	switch p.QoS {
	case 1:
		c.ack(packet.PUBACK, p.PacketID)
	case 2:
		c.ack(packet.PUBREC, p.PacketID)
	}
}

// connected dials and connects in one step.
func connected(t testing.TB, b *Broker, version byte, id string, clean bool, opts ...connOpt) *rawClient {
	t.Helper()
	c := dialRaw(t, addr(b), version)
	if ack := c.connect(id, clean, opts...); ack.ReasonCode != 0 {
		t.Fatalf("connect %s: reason 0x%02x", id, ack.ReasonCode)
	}
	return c
}

// poll waits for cond with a deadline.
func poll(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func testListeners() []listener.Config { return []listener.Config{{Address: "127.0.0.1:0"}} }

func newMem() *msg.MemStore { return msg.NewMemStore() }

// testLogger logs warnings to stderr, or everything with BROKER_DEBUG set.
func testLogger() *slog.Logger {
	lvl := slog.LevelWarn
	if os.Getenv("BROKER_DEBUG") != "" {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}
