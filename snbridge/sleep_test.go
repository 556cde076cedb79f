package snbridge

import (
	"fmt"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/snbridge/snpacket"
	"github.com/outpost-iot/outpost/snbridge/sntest"
)

// TestSleepingClient: DISCONNECT with a duration puts the client to sleep;
// messages are buffered and delivered when it wakes with PINGREQ carrying
// its client id, ending with PINGRESP (section 6.14).
func TestSleepingClient(t *testing.T) {
	e := start(t, func(c *Config) { c.SleepBuffer = 3 })
	c := e.connect(t, "sleepy", sntest.ConnectOptions{CleanSession: true, KeepAlive: 60}, sntest.Options{})
	if _, err := c.Subscribe(snpacket.TopicNormal, "cmd/#", 0, 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Disconnect(600); err != nil {
		t.Fatal(err)
	}
	if st := e.g.Stats(); st.Asleep != 1 || st.Active != 0 {
		t.Fatalf("stats %+v, want one asleep", st)
	}
	// Five messages for a buffer of three: the two oldest are dropped.
	for i := 0; i < 5; i++ {
		_ = e.b.Publish(t.Context(), msgOf(fmt.Sprintf("cmd/%d", i), byte(i%2), fmt.Sprint(i)))
	}
	if d := e.g.Stats().Drops["sleep_buffer_full"]; d != 2 {
		t.Errorf("sleep_buffer_full = %d, want 2", d)
	}
	// Past the keep alive but within the sleep duration: still asleep.
	e.clock.Advance(500 * time.Second)
	e.waitTicks(t, 3)
	if st := e.g.Stats(); st.Asleep != 1 {
		t.Fatalf("stats %+v: client lost while asleep within its duration", st)
	}
	// Wake up from a new address (sleeping nodes often come back on a new port).
	w := e.dial(t, sntest.Options{})
	if err := w.Send(&snpacket.Pingreq{ClientID: "sleepy"}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 3 {
		m, err := w.WaitMessage(3 * time.Second)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		got = append(got, m.Topic+"="+string(m.Payload))
	}
	if fmt.Sprint(got) != "[cmd/2=2 cmd/3=3 cmd/4=4]" {
		t.Errorf("buffered messages %v", got)
	}
	if _, err := w.Next(snpacket.TypePingresp); err != nil {
		t.Fatalf("no PINGRESP after the buffer: %v", err)
	}
	if w.Registers() != 3 {
		t.Errorf("REGISTER count %d, want 3 (wildcard topics)", w.Registers())
	}
	eventually(t, "back asleep", func() bool { return e.g.Stats().Asleep == 1 })
	// Nothing buffered: PINGRESP straight away.
	if err := w.Ping("sleepy"); err != nil {
		t.Fatal(err)
	}
	// CONNECT makes it active again (Figure 4).
	if rc, err := w.Connect(sntest.ConnectOptions{ClientID: "sleepy", KeepAlive: 60}); err != nil || rc != 0 {
		t.Fatal(rc, err)
	}
	if st := e.g.Stats(); st.Active != 1 || st.Asleep != 0 {
		t.Errorf("stats %+v after CONNECT", st)
	}
}

// TestLostSleeper: a sleeper that misses its duration is lost and its will
// published (section 6.14).
func TestLostSleeper(t *testing.T) {
	e := start(t, nil)
	rec := e.record(t, "lwt/#", 0)
	c := e.connect(t, "s2", sntest.ConnectOptions{CleanSession: true, KeepAlive: 10,
		Will: &sntest.Will{Topic: "lwt/s2", Payload: []byte("dead")}}, sntest.Options{})
	if err := c.Disconnect(100); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(140 * time.Second)
	e.waitTicks(t, 3)
	if rec.len() != 0 {
		t.Fatal("will published within 1.5 × the sleep duration")
	}
	e.clock.Advance(20 * time.Second)
	if m := rec.wait(t, 1)[0]; m.Topic != "lwt/s2" || string(m.Payload) != "dead" {
		t.Errorf("will %+v", m)
	}
	eventually(t, "lost", func() bool { return e.g.Stats().Lost == 1 })
	// Waking after being lost: not connected.
	_ = c.Send(&snpacket.Pingreq{ClientID: "s2"})
	if _, err := c.Next(snpacket.TypeDisconnect); err != nil {
		t.Error(err)
	}
}

// TestAwakeState: while a woken client is being sent its buffered QoS 1
// messages it is awake; its PUBACK lets the gateway finish with PINGRESP.
func TestAwakeState(t *testing.T) {
	e := start(t, nil)
	c := e.connect(t, "a1", sntest.ConnectOptions{CleanSession: true}, sntest.Options{NoAck: true})
	sa, err := c.Subscribe(snpacket.TopicNormal, "a1/cmd", 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Disconnect(60); err != nil {
		t.Fatal(err)
	}
	_ = e.b.Publish(t.Context(), msgOf("a1/cmd", 1, "wake-up"))
	_ = c.Send(&snpacket.Pingreq{ClientID: "a1"})
	p, err := c.NextAny(3 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pb, ok := p.(*snpacket.Publish)
	if !ok || pb.TopicID != sa.TopicID || string(pb.Data) != "wake-up" {
		t.Fatalf("got %v", p)
	}
	if st := e.g.Stats(); st.Awake != 1 {
		t.Errorf("stats %+v, want one awake", st)
	}
	_ = c.Send(&snpacket.Puback{TopicID: pb.TopicID, MsgID: pb.MsgID})
	if _, err := c.Next(snpacket.TypePingresp); err != nil {
		t.Fatal(err)
	}
	eventually(t, "asleep again", func() bool { return e.g.Stats().Asleep == 1 })
}

// TestMaxClients: past mqttsn.max_clients a CONNECT gets "rejected:
// congestion"; a client already known may reconnect.
func TestMaxClients(t *testing.T) {
	e := start(t, func(c *Config) { c.MaxClients = 1 })
	e.connect(t, "first", sntest.ConnectOptions{CleanSession: true}, sntest.Options{})
	d := e.dial(t, sntest.Options{})
	if rc, err := d.Connect(sntest.ConnectOptions{ClientID: "second", CleanSession: true}); err != nil || rc != snpacket.RejectedCongestion {
		t.Errorf("over the limit: rc %v err %v", rc, err)
	}
	if rc, err := d.Connect(sntest.ConnectOptions{ClientID: "first", CleanSession: true}); err != nil || rc != snpacket.Accepted {
		t.Errorf("known client reconnecting: rc %v err %v", rc, err)
	}
}
