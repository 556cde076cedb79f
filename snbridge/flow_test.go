package snbridge

import (
	"bytes"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/snbridge/snpacket"
	"github.com/outpost-iot/outpost/snbridge/sntest"
)

// TestPublishSubscribe: CONNECT, REGISTER, PUBLISH at QoS 0/1/2 one way,
// SUBSCRIBE and delivery the other, over real UDP (sections 6.2, 6.5, 6.6, 6.9, 6.10).
func TestPublishSubscribe(t *testing.T) {
	e := start(t, nil)
	rec := e.record(t, "plant/#", 2)
	sub := e.connect(t, "sub", sntest.ConnectOptions{CleanSession: true, KeepAlive: 60}, sntest.Options{})
	sa, err := sub.Subscribe(snpacket.TopicNormal, "plant/pump", 0, 2)
	if err != nil || sa.ReturnCode != snpacket.Accepted || sa.TopicID == 0 || sa.Flags.QoS != 2 {
		t.Fatalf("SUBACK %+v err %v", sa, err)
	}
	pub := e.connect(t, "pub", sntest.ConnectOptions{CleanSession: true, KeepAlive: 60}, sntest.Options{})
	id, rc, err := pub.Register("plant/pump")
	if err != nil || rc != snpacket.Accepted || id == 0 {
		t.Fatalf("REGACK id %d rc %v err %v", id, rc, err)
	}
	for q := int8(0); q <= 2; q++ {
		rc, err := pub.Publish(snpacket.TopicNormal, id, q, q == 1, []byte{'m', byte('0' + q)})
		if err != nil || rc != snpacket.Accepted {
			t.Fatalf("publish QoS %d: rc %v err %v", q, rc, err)
		}
	}
	rec.wait(t, 3)
	for i, m := range e.b.Published() {
		if m.Topic != "plant/pump" || m.QoS != byte(i) || !bytes.Equal(m.Payload, []byte{'m', byte('0' + i)}) || m.Retain != (i == 1) || m.ClientID != "pub" {
			t.Errorf("broker got %d: %+v", i, m)
		}
	}
	for q := int8(0); q <= 2; q++ {
		m, err := sub.WaitMessage(3 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if m.Topic != "plant/pump" || m.TopicID != sa.TopicID || m.TopicType != snpacket.TopicNormal || m.QoS != q || string(m.Payload) != string([]byte{'m', byte('0' + q)}) {
			t.Errorf("subscriber got %+v, want QoS %d on id %d", m, q, sa.TopicID)
		}
	}
	if sub.Registers() != 0 {
		t.Errorf("gateway sent %d REGISTER for a topic the SUBACK named", sub.Registers())
	}
	st := e.g.Stats()
	if st.Active != 2 || st.PublishIn != 3 || st.PublishOut != 3 {
		t.Errorf("stats %+v", st)
	}
	if err := sub.Unsubscribe(snpacket.TopicNormal, "plant/pump", 0); err != nil {
		t.Fatal(err)
	}
	if err := pub.Disconnect(0); err != nil {
		t.Fatal(err)
	}
	eventually(t, "one client left", func() bool { return e.g.Stats().Active == 1 })
}
