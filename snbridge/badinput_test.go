package snbridge

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/snbridge/snpacket"
	"github.com/outpost-iot/outpost/snbridge/sntest"
)

// TestBadInput: garbage is dropped, counted and logged once per address and
// reason, and everyone else keeps being served.
func TestBadInput(t *testing.T) {
	e := start(t, nil)
	good := e.connect(t, "good", sntest.ConnectOptions{CleanSession: true}, sntest.Options{})
	id, _, _ := good.Register("ok/topic")
	bad := e.dial(t, sntest.Options{})

	cases := []struct {
		name   string
		b      []byte
		reason string
	}{
		{"truncated header", []byte{0x05}, "malformed"},
		{"truncated publish", []byte{0x09, 0x0C, 0x20, 0x00}, "malformed"},
		{"length beyond datagram", []byte{0x20, 0x16}, "malformed"},
		{"length shorter than datagram", []byte{0x02, 0x16, 0xAA, 0xBB}, "length_mismatch"},
		{"long form disagrees", []byte{0x01, 0x00, 0x06, 0x16, 0x00}, "malformed"},
		{"unknown type", []byte{0x02, 0x03}, "unknown_type"},
		{"unknown type 0x77", []byte{0x03, 0x77, 0x00}, "unknown_type"},
		{"reserved topic id type", []byte{0x07, 0x0C, 0x03, 0, 1, 0, 0}, "malformed"},
	}
	for _, tc := range cases {
		before := e.g.Stats().Drops[tc.reason]
		if err := bad.SendRaw(tc.b); err != nil {
			t.Fatal(err)
		}
		eventually(t, tc.name+" counted as "+tc.reason, func() bool { return e.g.Stats().Drops[tc.reason] == before+1 })
	}
	// A PUBLISH before CONNECT: DISCONNECT (connect first), counted.
	_ = bad.Send(&snpacket.Publish{Flags: snpacket.Flags{QoS: 1}, TopicID: 1, MsgID: 1, Data: []byte("x")})
	if _, err := bad.Next(snpacket.TypeDisconnect); err != nil {
		t.Errorf("PUBLISH before CONNECT: %v", err)
	}
	if e.g.Stats().Drops["not_connected"] != 1 {
		t.Errorf("not_connected = %d", e.g.Stats().Drops["not_connected"])
	}
	// Gateway-only messages from a client are dropped.
	_ = good.Send(&snpacket.Connack{})
	eventually(t, "unexpected counted", func() bool { return e.g.Stats().Drops["unexpected"] == 1 })
	// Bad CONNECTs: refused with 0x03.
	for _, c := range []*snpacket.Connect{
		{ProtocolID: 2, ClientID: "x"},
		{ProtocolID: 1, ClientID: ""},
		{ProtocolID: 1, ClientID: "a-client-id-longer-than-23"},
	} {
		_ = bad.Send(c)
		p, err := bad.Next(snpacket.TypeConnack)
		if err != nil || p.(*snpacket.Connack).ReturnCode != snpacket.RejectedNotSupported {
			t.Errorf("CONNECT %+v: %v %v", c, p, err)
		}
	}
	// One log line per address and reason, however many datagrams.
	before := e.logs.count("mqtt-sn: datagram dropped")
	for i := 0; i < 50; i++ {
		_ = bad.SendRaw([]byte{0x02, 0x03})
	}
	eventually(t, "50 more unknown types", func() bool { return e.g.Stats().Drops["unknown_type"] == 52 })
	if after := e.logs.count("mqtt-sn: datagram dropped"); after != before {
		t.Errorf("logged %d more lines for 50 repeats, want 0 (rate limited)", after-before)
	}
	// The good client was served throughout.
	if rc, err := good.Publish(snpacket.TopicNormal, id, 1, false, []byte("fine")); err != nil || rc != snpacket.Accepted {
		t.Errorf("good client: rc %v err %v", rc, err)
	}
}

// TestFlood: one address sending far faster than it is served loses its
// excess datagrams (counted as flood) and other clients are still served.
func TestFlood(t *testing.T) {
	e := start(t, func(c *Config) { c.PeerQueue = 8; c.Workers = 2 })
	// Slow the broker so that the flooder's datagrams pile up.
	gate := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	defer release()
	e.b.SetRefuse(func(m msgT) error {
		if m.Topic == "flood" {
			<-gate
		}
		return nil
	})
	flooder := e.connect(t, "flooder", sntest.ConnectOptions{CleanSession: true}, sntest.Options{})
	fid, _, _ := flooder.Register("flood")
	wire, _ := snpacket.Encode(&snpacket.Publish{TopicID: fid, Data: []byte("spam")})
	for i := 0; i < 2000; i++ {
		_ = flooder.SendRaw(wire)
	}
	eventually(t, "flood drops", func() bool { return e.g.Stats().Drops["flood"] > 0 })
	// Others on either worker are served while the flooder's worker is stuck
	// (they may share its worker: only check those that do not).
	served := 0
	for i := 0; i < 6 && served < 2; i++ {
		c := e.dial(t, sntest.Options{Timeout: 500 * time.Millisecond})
		if e.g.workerOf(c.LocalAddr()) == e.g.workerOf(flooder.LocalAddr()) {
			continue
		}
		if rc, err := c.Connect(sntest.ConnectOptions{ClientID: "bystander" + string(rune('a'+i)), CleanSession: true}); err != nil || rc != 0 {
			t.Fatalf("bystander: rc %v err %v", rc, err)
		}
		served++
	}
	if served == 0 {
		t.Fatal("no bystander on another worker")
	}
	release()
	if e.logs.count("mqtt-sn: address sends faster") != 1 {
		t.Errorf("flood logged %d times, want once", e.logs.count("mqtt-sn: address sends faster"))
	}
}

// workerOf returns the worker serving a UDP address (tests only).
func (g *Gateway) workerOf(a net.Addr) int {
	k := peerKey{tr: 0, addr: udpAddr(a.(*net.UDPAddr).AddrPort())}
	g.mu.Lock()
	defer g.mu.Unlock()
	if p := g.peers[k]; p != nil {
		return p.worker
	}
	return g.nextWorker % len(g.work) // the next new address
}
