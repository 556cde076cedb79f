package brokercore

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/packet"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func healthy(t *testing.T, c *rawClient) {
	t.Helper()
	c.send(&packet.PingReq{})
	c.recvType(packet.PINGRESP)
}

func TestBadInputDisconnectsOnlyThatClient(t *testing.T) {
	var logs syncBuf
	b := testBroker(t, Config{MaxPacketSize: 1000, ConnectTimeout: 200 * time.Millisecond},
		Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	good := connected(t, b, packet.V5, "good", true)

	t.Run("malformed", func(t *testing.T) {
		c := connected(t, b, packet.V5, "mal", true)
		c.nc.Write([]byte{0x36, 0x03, 0x00, 0x01, 'a'}) // PUBLISH with QoS 3 [MQTT-3.3.1-4]
		pk := c.closed()
		if len(pk) != 1 || pk[0].(*packet.Disconnect).ReasonCode != packet.MalformedPacket {
			t.Fatalf("got %+v, want DISCONNECT 0x81", pk)
		}
		if s := logs.String(); !strings.Contains(s, "client=mal") || !strings.Contains(s, "address=127.0.0.1:") {
			t.Fatalf("log does not name client and address:\n%s", s)
		}
		healthy(t, good)
	})
	t.Run("too large", func(t *testing.T) {
		c := connected(t, b, packet.V5, "big", true)
		c.nc.Write([]byte{0x30, 0x88, 0x27}) // remaining length 5000 > 1000
		pk := c.closed()
		if len(pk) != 1 || pk[0].(*packet.Disconnect).ReasonCode != packet.PacketTooLarge {
			t.Fatalf("got %+v, want DISCONNECT 0x95", pk)
		}
		healthy(t, good)
	})
	t.Run("second CONNECT", func(t *testing.T) {
		c := connected(t, b, packet.V5, "twice", true)
		c.send(&packet.Connect{ProtocolName: "MQTT", ProtocolLevel: 5, ClientID: "twice", CleanStart: true})
		pk := c.closed()
		if len(pk) != 1 || pk[0].(*packet.Disconnect).ReasonCode != packet.ProtocolError {
			t.Fatalf("got %+v, want DISCONNECT 0x82", pk)
		}
		healthy(t, good)
	})
	t.Run("wrong protocol name", func(t *testing.T) {
		c := dialRaw(t, addr(b), packet.V311)
		// CONNECT "MQTX" level 4.
		c.nc.Write([]byte{0x10, 0x0e, 0, 4, 'M', 'Q', 'T', 'X', 4, 2, 0, 60, 0, 2, 'i', 'd'})
		pk := c.closed()
		if len(pk) != 1 || pk[0].(*packet.ConnAck).ReasonCode != packet.V3UnacceptableProtocol {
			t.Fatalf("got %+v, want CONNACK 0x01", pk)
		}
		healthy(t, good)
	})
	t.Run("first packet not CONNECT", func(t *testing.T) {
		c := dialRaw(t, addr(b), packet.V311)
		c.send(&packet.PingReq{})
		if pk := c.closed(); len(pk) != 0 {
			t.Fatalf("got %+v", pk)
		}
		healthy(t, good)
	})
	t.Run("half open", func(t *testing.T) {
		c := dialRaw(t, addr(b), packet.V311)
		start := time.Now()
		c.closed() // connect_timeout 200ms
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("closed after %v", d)
		}
		healthy(t, good)
	})
}

// FuzzConnection feeds random bytes to a live connection handler over
// net.Pipe and checks the broker survives and another client keeps working.
func FuzzConnection(f *testing.F) {
	connect, _ := packet.Append(nil, &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: 5, ClientID: "fz", CleanStart: true, KeepAlive: 10}, 5)
	connect4, _ := packet.Append(nil, &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: 4, ClientID: "fz4", CleanStart: true, KeepAlive: 10}, 4)
	sub, _ := packet.Append(nil, &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "#", QoS: 2}}}, 5)
	pb, _ := packet.Append(nil, &packet.Publish{Topic: "a/b", QoS: 2, PacketID: 3, Retain: true, Payload: []byte("x")}, 5)
	f.Add(connect)
	f.Add(append(append(append([]byte{}, connect...), sub...), pb...))
	f.Add(append(append([]byte{}, connect4...), 0x36, 0x03, 0, 1, 'a'))
	f.Add(append(append([]byte{}, connect...), 0x30, 0xff, 0xff, 0xff, 0xff))
	f.Add([]byte{0x10, 0xff, 0xff, 0xff, 0x7f})
	f.Add(append(append([]byte{}, connect...), connect...))
	b := testBroker(f, Config{ConnectTimeout: 100 * time.Millisecond}, Options{})
	good := connected(f, b, packet.V5, "good", true)
	good.subscribe(1, "#", 0)
	f.Fuzz(func(t *testing.T, data []byte) {
		good.t = t
		cli, srv := net.Pipe()
		if !b.serveConn(srv, false) {
			t.Fatal("broker closed")
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 4096)
			for {
				cli.SetReadDeadline(time.Now().Add(2 * time.Second))
				if _, err := cli.Read(buf); err != nil {
					return
				}
			}
		}()
		cli.SetWriteDeadline(time.Now().Add(time.Second))
		cli.Write(data)
		cli.Close()
		<-done
		// Drain whatever the fuzzed client published to "#", then ping.
		good.send(&packet.PingReq{})
		for {
			p := good.recv()
			if p.Type() == packet.PINGRESP {
				break
			}
		}
	})
}

// connect_timeout applies until CONNECT only: a client with keep alive 0
// is not cut off afterwards (found by the fan-in benchmark).
func TestConnectTimeoutEndsAtConnect(t *testing.T) {
	b := testBroker(t, Config{ConnectTimeout: 100 * time.Millisecond}, Options{})
	c := connected(t, b, packet.V311, "ka0", true, func(cp *packet.Connect) { cp.KeepAlive = 0 })
	c.quiet(300 * time.Millisecond)
	healthy(t, c)
}
