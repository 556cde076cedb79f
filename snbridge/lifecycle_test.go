package snbridge

import (
	"net"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/snbridge/snpacket"
	"github.com/outpost-iot/outpost/snbridge/sntest"
)

// TestWillOnKeepAliveLapse: CONNECT with the will dialogue (6.2); the will
// is published when the client stays silent past its keep alive (6.11).
func TestWillOnKeepAliveLapse(t *testing.T) {
	e := start(t, nil)
	rec := e.record(t, "status/#", 1)
	c := e.connect(t, "w1", sntest.ConnectOptions{CleanSession: true, KeepAlive: 30,
		Will: &sntest.Will{Topic: "status/w1", Payload: []byte("offline"), QoS: 1, Retain: true}}, sntest.Options{})
	if w := e.b.Session("w1").Options().Will; w == nil || w.Topic != "status/w1" || string(w.Payload) != "offline" || w.QoS != 1 || !w.Retain {
		t.Fatalf("session will %+v", w)
	}
	// Activity keeps it alive.
	e.clock.Advance(40 * time.Second)
	if err := c.Ping(""); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(40 * time.Second) // 40s < 45s since the PINGREQ
	e.waitTicks(t, 3)                 // the timers saw the new time; nothing may happen
	if rec.len() != 0 {
		t.Fatalf("will published while the client was alive")
	}
	e.clock.Advance(10 * time.Second) // 50s > 1.5 × 30s
	got := rec.wait(t, 1)
	if got[0].Topic != "status/w1" || string(got[0].Payload) != "offline" {
		t.Errorf("will %+v", got[0])
	}
	if pubs := e.b.Published(); !pubs[len(pubs)-1].Retain {
		t.Errorf("will lost its retain flag")
	}
	eventually(t, "client lost in stats", func() bool { return e.g.Stats().Lost == 1 })
	// A lost client is not connected: its PINGREQ gets DISCONNECT.
	_ = c.Send(&snpacket.Pingreq{})
	if _, err := c.Next(snpacket.TypeDisconnect); err != nil {
		t.Error(err)
	}
}

// TestWillUpdateAndCleanDisconnect: WILLTOPICUPD/WILLMSGUPD (6.4) change
// the will; an empty WILLTOPIC at connect means no will; a DISCONNECT does
// not publish the will (6.12).
func TestWillUpdateAndCleanDisconnect(t *testing.T) {
	e := start(t, nil)
	rec := e.record(t, "#", 1)
	c := e.connect(t, "w2", sntest.ConnectOptions{CleanSession: true, KeepAlive: 10,
		Will: &sntest.Will{Topic: "old/topic", Payload: []byte("old")}}, sntest.Options{})
	_ = c.Send(&snpacket.WillTopicUpd{Flags: snpacket.Flags{QoS: 1}, Topic: "new/topic"})
	if p, err := c.Next(snpacket.TypeWillTopicResp); err != nil || p.(*snpacket.WillTopicResp).ReturnCode != snpacket.Accepted {
		t.Fatalf("WILLTOPICRESP %v %v", p, err)
	}
	_ = c.Send(&snpacket.WillMsgUpd{Msg: []byte("new")})
	if p, err := c.Next(snpacket.TypeWillMsgResp); err != nil || p.(*snpacket.WillMsgResp).ReturnCode != snpacket.Accepted {
		t.Fatalf("WILLMSGRESP %v %v", p, err)
	}
	if w := e.b.Session("w2").Will(); w == nil || w.Topic != "new/topic" || string(w.Payload) != "new" || w.QoS != 1 {
		t.Fatalf("will after update %+v", w)
	}
	_ = c.Send(&snpacket.WillTopicUpd{Topic: "bad/#"})
	if p, err := c.Next(snpacket.TypeWillTopicResp); err != nil || p.(*snpacket.WillTopicResp).ReturnCode != snpacket.RejectedNotSupported {
		t.Fatalf("WILLTOPICRESP for a wildcard will topic: %v %v", p, err)
	}
	e.clock.Advance(time.Minute)
	got := rec.wait(t, 1)
	if got[0].Topic != "new/topic" || string(got[0].Payload) != "new" {
		t.Errorf("will %+v", got[0])
	}

	// Empty WILLTOPIC in the dialogue: connected without a will.
	d := e.dial(t, sntest.Options{})
	_ = d.Send(&snpacket.Connect{Flags: snpacket.Flags{Will: true, CleanSession: true}, ProtocolID: 1, Duration: 10, ClientID: "w3"})
	if _, err := d.Next(snpacket.TypeWillTopicReq); err != nil {
		t.Fatal(err)
	}
	_ = d.Send(&snpacket.WillTopic{})
	if p, err := d.Next(snpacket.TypeConnack); err != nil || p.(*snpacket.Connack).ReturnCode != snpacket.Accepted {
		t.Fatalf("CONNACK %v %v", p, err)
	}
	if e.b.Session("w3").Will() != nil {
		t.Errorf("empty WILLTOPIC left a will")
	}
	// Clean DISCONNECT: no will.
	c4 := e.connect(t, "w4", sntest.ConnectOptions{CleanSession: true, KeepAlive: 10, Will: &sntest.Will{Topic: "w4/will", Payload: []byte("x")}}, sntest.Options{})
	if err := c4.Disconnect(0); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	e.waitTicks(t, 3) // w3 is lost now (it has no will); w4 left cleanly
	for _, m := range e.b.Published() {
		if m.Topic == "w4/will" {
			t.Errorf("will published after a clean DISCONNECT")
		}
	}
}

// TestRetransmission: the gateway resends an unacknowledged QoS 1 PUBLISH
// with DUP every Tretry and gives up after Nretry: the client is lost and
// its will published (6.13). REGISTER is retransmitted the same way.
func TestRetransmission(t *testing.T) {
	e := start(t, nil) // Tretry 10s, Nretry 3
	rec := e.record(t, "wills/#", 0)
	c := e.connect(t, "slow", sntest.ConnectOptions{CleanSession: true, Will: &sntest.Will{Topic: "wills/slow", Payload: []byte("gone")}},
		sntest.Options{NoAck: true})
	if _, err := c.Subscribe(snpacket.TopicNormal, "cmd/slow", 0, 1); err != nil {
		t.Fatal(err)
	}
	_ = e.b.Publish(t.Context(), msgOf("cmd/slow", 1, "go"))
	var dups int
	for i := 0; i < 4; i++ {
		p, err := c.NextAny(3 * time.Second)
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		pb, ok := p.(*snpacket.Publish)
		if !ok || string(pb.Data) != "go" {
			t.Fatalf("send %d: %v", i, p)
		}
		if pb.Flags.DUP {
			dups++
		}
		if i == 0 && pb.Flags.DUP {
			t.Errorf("first send has DUP")
		}
		e.clock.Advance(10 * time.Second)
	}
	if dups != 3 {
		t.Errorf("%d retransmissions with DUP, want 3", dups)
	}
	rec.wait(t, 1)
	if d := e.g.Stats().Drops["retries_exhausted"]; d != 1 {
		t.Errorf("retries_exhausted = %d", d)
	}

	// REGISTER: retransmitted until REGACK, then the PUBLISH follows.
	r := e.connect(t, "reg", sntest.ConnectOptions{CleanSession: true}, sntest.Options{NoAck: true})
	if _, err := r.Subscribe(snpacket.TopicNormal, "reg/#", 0, 0); err != nil {
		t.Fatal(err)
	}
	_ = e.b.Publish(t.Context(), msgOf("reg/a", 0, "after-register"))
	eventually(t, "first REGISTER", func() bool { return r.Registers() == 1 })
	e.clock.Advance(10 * time.Second)
	eventually(t, "REGISTER retransmitted", func() bool { return r.Registers() == 2 })
	r.SetNoAck(false)
	e.clock.Advance(10 * time.Second)
	m, err := r.WaitMessage(3 * time.Second)
	if err != nil || m.Topic != "reg/a" || string(m.Payload) != "after-register" {
		t.Errorf("after REGACK: %+v %v", m, err)
	}
}

// TestOutboundQoS2: the gateway's QoS 2 PUBLISH runs PUBREC/PUBREL/PUBCOMP
// (section 6.10) and the client sees it once.
func TestOutboundQoS2(t *testing.T) {
	e := start(t, nil)
	c := e.connect(t, "q2", sntest.ConnectOptions{CleanSession: true}, sntest.Options{})
	if _, err := c.Subscribe(snpacket.TopicNormal, "exact/once", 0, 2); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		_ = e.b.Publish(t.Context(), msgOf("exact/once", 2, string(rune('a'+i))))
	}
	for i := 0; i < 3; i++ {
		m, err := c.WaitMessage(3 * time.Second)
		if err != nil || m.QoS != 2 || string(m.Payload) != string(rune('a'+i)) {
			t.Fatalf("message %d: %+v %v", i, m, err)
		}
	}
	eventually(t, "nothing in flight", func() bool {
		cl := e.g.client("q2")
		cl.mu.Lock()
		defer cl.mu.Unlock()
		return cl.inflight == nil && len(cl.queue) == 0
	})
}

// TestCleanSessionFalse: subscriptions and registered topic ids survive a
// DISCONNECT; messages sent meanwhile arrive on reconnect (section 6.3).
func TestCleanSessionFalse(t *testing.T) {
	e := start(t, nil)
	c := e.connect(t, "keep", sntest.ConnectOptions{CleanSession: false}, sntest.Options{})
	sa, err := c.Subscribe(snpacket.TopicNormal, "keep/cmd", 0, 1)
	if err != nil || sa.TopicID == 0 {
		t.Fatal(sa, err)
	}
	pid, _, _ := c.Register("keep/up")
	if err := c.Disconnect(0); err != nil {
		t.Fatal(err)
	}
	_ = e.b.Publish(t.Context(), msgOf("keep/cmd", 1, "while-away"))
	if st := e.g.Stats(); st.Disconnected != 1 {
		t.Errorf("stats %+v, want one disconnected persistent client", st)
	}
	// Reconnect from a new socket with clean session false.
	c2 := e.dial(t, sntest.Options{})
	if rc, err := c2.Connect(sntest.ConnectOptions{ClientID: "keep"}); err != nil || rc != 0 {
		t.Fatal(rc, err)
	}
	m, err := c2.WaitMessage(3 * time.Second)
	if err != nil || string(m.Payload) != "while-away" || m.TopicID != sa.TopicID || m.TopicType != snpacket.TopicNormal {
		t.Fatalf("queued message %+v %v (want it on the old id %d)", m, err, sa.TopicID)
	}
	if c2.Registers() != 0 {
		t.Errorf("REGISTER sent again for a kept topic id")
	}
	if rc, err := c2.Publish(snpacket.TopicNormal, pid, 1, false, []byte("old id")); err != nil || rc != snpacket.Accepted {
		t.Errorf("publish on a kept topic id: rc %v err %v", rc, err)
	}
	// Clean session true drops them.
	c3 := e.dial(t, sntest.Options{})
	if rc, err := c3.Connect(sntest.ConnectOptions{ClientID: "keep", CleanSession: true}); err != nil || rc != 0 {
		t.Fatal(rc, err)
	}
	if rc, err := c3.Publish(snpacket.TopicNormal, pid, 1, false, nil); err != nil || rc != snpacket.RejectedInvalidTopicID {
		t.Errorf("topic id survived clean session: rc %v err %v", rc, err)
	}
}

// TestDiscovery: ADVERTISE at start and every advertise_interval, GWINFO in
// answer to SEARCHGW, both to mqttsn.broadcast (section 6.1).
func TestDiscovery(t *testing.T) {
	bc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	e := start(t, func(c *Config) {
		c.Broadcast = bc.LocalAddr().String()
		c.AdvertiseInterval = 15 * time.Minute
		c.GatewayID = 42
	})
	read := func() snpacket.Packet {
		t.Helper()
		buf := make([]byte, 512)
		_ = bc.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, _, err := bc.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		p, _, err := snpacket.Decode(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if a, ok := read().(*snpacket.Advertise); !ok || a.GatewayID != 42 || a.Duration != 900 {
		t.Fatalf("first ADVERTISE %+v", a)
	}
	e.clock.Advance(15 * time.Minute)
	if a, ok := read().(*snpacket.Advertise); !ok || a.GatewayID != 42 {
		t.Fatalf("second ADVERTISE %+v", a)
	}
	c := e.dial(t, sntest.Options{})
	_ = c.Send(&snpacket.SearchGW{Radius: 1})
	if g, ok := read().(*snpacket.GWInfo); !ok || g.GatewayID != 42 || len(g.GatewayAddr) != 0 {
		t.Fatalf("GWINFO %+v", g)
	}
}
