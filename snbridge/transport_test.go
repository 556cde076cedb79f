package snbridge

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/snbridge/snpacket"
	"github.com/outpost-iot/outpost/snbridge/sntest"
)

// TestUDP6 serves a client over IPv6 loopback.
func TestUDP6(t *testing.T) {
	probe, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	probe.Close()
	e := start(t, func(c *Config) { c.Listen6 = "[::1]:0" })
	rec := e.record(t, "#", 1)
	addr := e.g.Addrs()[1].String()
	c, err := sntest.Dial(addr, sntest.Options{Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if rc, err := c.Connect(sntest.ConnectOptions{ClientID: "v6", CleanSession: true}); err != nil || rc != 0 {
		t.Fatal(rc, err)
	}
	if _, err := c.Subscribe(snpacket.TopicShort, "v6", 0, 1); err != nil {
		t.Fatal(err)
	}
	if rc, err := c.Publish(snpacket.TopicShort, shortID("v6"), 1, false, []byte("six")); err != nil || rc != 0 {
		t.Fatal(rc, err)
	}
	if m := rec.wait(t, 1)[0]; m.Topic != "v6" || string(m.Payload) != "six" {
		t.Errorf("published %+v", m)
	}
	if m, err := c.WaitMessage(3 * time.Second); err != nil || string(m.Payload) != "six" {
		t.Errorf("own message back %+v %v", m, err)
	}
}

// TestForwarderUDP: two nodes behind one forwarder address are two
// clients, answered encapsulated with their own node ids (section 5.5).
func TestForwarderUDP(t *testing.T) {
	e := start(t, nil)
	conn, err := net.DialUDP("udp4", nil, e.g.Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	send := func(node []byte, p snpacket.Packet) {
		inner, _ := snpacket.Encode(p)
		b, _ := snpacket.Encode(&snpacket.Encapsulated{Ctrl: 0, NodeID: node, Msg: inner})
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	recv := func() (*snpacket.Encapsulated, snpacket.Packet) {
		buf := make([]byte, 1024)
		_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		p, _, err := snpacket.Decode(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		enc, ok := p.(*snpacket.Encapsulated)
		if !ok {
			t.Fatalf("reply not encapsulated: %v", p)
		}
		in, _, err := snpacket.Decode(enc.Msg)
		if err != nil {
			t.Fatal(err)
		}
		return enc, in
	}
	for _, node := range [][]byte{{1}, {2}} {
		send(node, &snpacket.Connect{Flags: snpacket.Flags{CleanSession: true}, ProtocolID: 1, ClientID: "node" + string('0'+node[0])})
		enc, p := recv()
		if !bytes.Equal(enc.NodeID, node) || p.Type() != snpacket.TypeConnack {
			t.Fatalf("node %x: %v %v", node, enc.NodeID, p)
		}
	}
	if st := e.g.Stats(); st.Active != 2 {
		t.Errorf("stats %+v, want two clients behind one address", st)
	}
	send([]byte{2}, &snpacket.Pingreq{})
	if enc, p := recv(); enc.NodeID[0] != 2 || p.Type() != snpacket.TypePingresp {
		t.Errorf("PINGRESP to node %x: %v", enc.NodeID, p)
	}
}

func TestSLIP(t *testing.T) {
	msgs := [][]byte{{0x02, 0x16}, {0xC0, 0xDB, 0xC0}, bytes.Repeat([]byte{0xDB}, 10)}
	var stream []byte
	stream = append(stream, 0xC0, 0xC0) // empty frames are skipped
	for _, m := range msgs {
		stream = appendSLIP(stream, m)
	}
	stream = append(stream, 0xC0, 0x01, 0xDB, 0x00, 0xC0) // bad escape
	stream = appendSLIP(stream, bytes.Repeat([]byte{1}, 20))
	stream = appendSLIP(stream, []byte{0x03, 0x01, 0x05})
	rd := newSLIPReader(bytes.NewReader(stream), 16)
	buf := make([]byte, 16)
	for i, want := range msgs {
		n, err := rd.readFrame(buf)
		if err != nil || !bytes.Equal(buf[:n], want) {
			t.Fatalf("frame %d: % X %v, want % X", i, buf[:n], err, want)
		}
	}
	if _, err := rd.readFrame(buf); err == nil || !bytes.Contains([]byte(err.Error()), []byte("ESC followed by 0x00")) {
		t.Errorf("bad escape: %v", err)
	}
	if _, err := rd.readFrame(buf); err == nil || !bytes.Contains([]byte(err.Error()), []byte("longer than 16")) {
		t.Errorf("oversize frame: %v", err)
	}
	if n, err := rd.readFrame(buf); err != nil || !bytes.Equal(buf[:n], []byte{0x03, 0x01, 0x05}) {
		t.Errorf("frame after bad ones: % X %v", buf[:n], err)
	}
}
