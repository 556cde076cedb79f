package snbridge

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/msg"
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

// TestWildcardRegister: a wildcard subscriber gets the gateway's REGISTER
// before the first PUBLISH on each new topic, and only once per topic (6.10).
func TestWildcardRegister(t *testing.T) {
	e := start(t, nil)
	sub := e.connect(t, "sub", sntest.ConnectOptions{CleanSession: true}, sntest.Options{})
	sa, err := sub.Subscribe(snpacket.TopicNormal, "sensors/+/temp", 0, 1)
	if err != nil || sa.ReturnCode != snpacket.Accepted || sa.TopicID != 0 {
		t.Fatalf("SUBACK %+v err %v (wildcard subscriptions get topic id 0)", sa, err)
	}
	for i, topic := range []string{"sensors/a/temp", "sensors/b/temp", "sensors/a/temp"} {
		if err := e.b.Publish(t.Context(), msgOf(topic, 1, "v")); err != nil {
			t.Fatal(err)
		}
		m, err := sub.WaitMessage(3 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if m.Topic != topic || m.TopicType != snpacket.TopicNormal || m.QoS != 1 {
			t.Errorf("message %d: %+v, want %s", i, m, topic)
		}
	}
	if n := sub.Registers(); n != 2 {
		t.Errorf("REGISTER sent %d times, want 2 (one per new topic)", n)
	}
}

// TestPredefinedAndShortTopics: pre-defined ids from the config and from a
// Paho-format file, short topic names, and invalid ids refused with 0x02 (6.7).
func TestPredefinedAndShortTopics(t *testing.T) {
	file := writeFile(t, "predef.conf", "# Paho format\n*,site/alarm,1\nnode7, site/valve/cmd , 2\nCOMMON,site/common,3\n")
	e := start(t, func(c *Config) {
		c.PredefinedTopics = map[uint16]string{10: "site/cfg"}
		c.PredefinedTopicsFile = file
	})
	rec := e.record(t, "#", 1)
	c := e.connect(t, "node7", sntest.ConnectOptions{CleanSession: true}, sntest.Options{})
	// Publish to pre-defined ids, common and per-client, and a short name.
	for _, tc := range []struct {
		tt    snpacket.TopicIDType
		id    uint16
		topic string
	}{
		{snpacket.TopicPredefined, 1, "site/alarm"},
		{snpacket.TopicPredefined, 2, "site/valve/cmd"},
		{snpacket.TopicPredefined, 10, "site/cfg"},
		{snpacket.TopicShort, shortID("ab"), "ab"},
	} {
		if rc, err := c.Publish(tc.tt, tc.id, 1, false, []byte(tc.topic)); err != nil || rc != snpacket.Accepted {
			t.Fatalf("publish %s: rc %v err %v", tc.topic, rc, err)
		}
		got := rec.wait(t, rec.len())
		if m := got[len(got)-1]; m.Topic != tc.topic {
			t.Errorf("published to %q, want %q", m.Topic, tc.topic)
		}
	}
	// Unknown ids: 0x02 (section 5.3.10), also at QoS 0.
	for _, tc := range []struct {
		tt  snpacket.TopicIDType
		id  uint16
		qos int8
	}{{snpacket.TopicPredefined, 99, 1}, {snpacket.TopicNormal, 42, 1}, {snpacket.TopicNormal, 43, 0}} {
		if err := c.Send(&snpacket.Publish{Flags: snpacket.Flags{QoS: tc.qos, TopicIDType: tc.tt}, TopicID: tc.id, MsgID: 5}); err != nil {
			t.Fatal(err)
		}
		p, err := c.Next(snpacket.TypePuback)
		if err != nil {
			t.Fatal(err)
		}
		if pa := p.(*snpacket.Puback); pa.ReturnCode != snpacket.RejectedInvalidTopicID || pa.TopicID != tc.id {
			t.Errorf("PUBACK %+v, want rejected: invalid topic id for %d", pa, tc.id)
		}
	}
	// Another client does not see node7's own pre-defined id 2.
	other := e.connect(t, "other", sntest.ConnectOptions{CleanSession: true}, sntest.Options{})
	if rc, err := other.Publish(snpacket.TopicPredefined, 2, 1, false, nil); err != nil || rc != snpacket.RejectedInvalidTopicID {
		t.Errorf("other client publishing to node7's id 2: rc %v err %v", rc, err)
	}
	// Subscribing with a pre-defined id: delivery uses that id, no REGISTER.
	sa, err := c.Subscribe(snpacket.TopicPredefined, "", 2, 1)
	if err != nil || sa.ReturnCode != snpacket.Accepted || sa.TopicID != 2 {
		t.Fatalf("SUBACK %+v err %v", sa, err)
	}
	if sa, err := c.Subscribe(snpacket.TopicPredefined, "", 77, 1); err != nil || sa.ReturnCode != snpacket.RejectedInvalidTopicID {
		t.Fatalf("SUBACK for unknown pre-defined id: %+v err %v", sa, err)
	}
	if _, err := c.Subscribe(snpacket.TopicShort, "zz", 0, 0); err != nil {
		t.Fatal(err)
	}
	_ = e.b.Publish(t.Context(), msgOf("site/valve/cmd", 1, "open"))
	_ = e.b.Publish(t.Context(), msgOf("zz", 0, "short"))
	m1, err := c.WaitMessage(3 * time.Second)
	if err != nil || m1.TopicType != snpacket.TopicPredefined || m1.TopicID != 2 || string(m1.Payload) != "open" {
		t.Errorf("pre-defined delivery %+v err %v", m1, err)
	}
	m2, err := c.WaitMessage(3 * time.Second)
	if err != nil || m2.TopicType != snpacket.TopicShort || m2.Topic != "zz" || string(m2.Payload) != "short" {
		t.Errorf("short-name delivery %+v err %v", m2, err)
	}
	if c.Registers() != 0 {
		t.Errorf("REGISTER sent for pre-defined/short topics")
	}
}

// TestQoSMinus1: PUBLISH without connecting, to pre-defined ids and short
// names only (section 6.8).
func TestQoSMinus1(t *testing.T) {
	e := start(t, func(c *Config) { c.PredefinedTopics = map[uint16]string{5: "field/battery"} })
	rec := e.record(t, "#", 0)
	c := e.dial(t, sntest.Options{})
	for _, p := range []*snpacket.Publish{
		{Flags: snpacket.Flags{QoS: -1, TopicIDType: snpacket.TopicPredefined}, TopicID: 5, Data: []byte("3.1V")},
		{Flags: snpacket.Flags{QoS: -1, TopicIDType: snpacket.TopicShort, Retain: true}, TopicID: shortID("bt"), Data: []byte("x")},
		{Flags: snpacket.Flags{QoS: -1, TopicIDType: snpacket.TopicNormal}, TopicID: 1, Data: []byte("no")},     // needs REGISTER: dropped
		{Flags: snpacket.Flags{QoS: -1, TopicIDType: snpacket.TopicPredefined}, TopicID: 6, Data: []byte("no")}, // unknown id: dropped
	} {
		if err := c.Send(p); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "two QoS -1 drops counted", func() bool { return e.g.Stats().Drops["qos_minus1_failed"] == 2 })
	got := rec.wait(t, 2)
	if len(got) != 2 || got[0].Topic != "field/battery" || string(got[0].Payload) != "3.1V" || got[1].Topic != "bt" {
		t.Errorf("got %+v", got)
	}
	if pubs := e.b.Published(); len(pubs) != 2 || pubs[0].QoS != 0 || !pubs[1].Retain {
		t.Errorf("published %+v: want QoS 0, retain kept", pubs)
	}
	if e.g.Stats().Active != 0 {
		t.Errorf("QoS -1 created a client")
	}
}

// TestCongestion: broker refusals come back as return codes (5.3.10).
func TestCongestion(t *testing.T) {
	e := start(t, nil)
	c := e.connect(t, "c", sntest.ConnectOptions{CleanSession: true}, sntest.Options{})
	id, _, err := c.Register("up/x")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		err  error
		qos  int8
		want snpacket.ReturnCode
	}{
		{msg.ErrQuotaExceeded, 1, snpacket.RejectedCongestion},
		{msg.ErrQuotaExceeded, 2, snpacket.RejectedCongestion},
		{msg.ErrNotAuthorized, 1, snpacket.RejectedNotSupported},
		{msg.ErrNotAuthorized, 0, snpacket.RejectedNotSupported},
		{errors.New("disk on fire"), 1, snpacket.RejectedCongestion},
	} {
		e.b.SetRefuse(func(msg.Message) error { return fmt.Errorf("publish up/x: %w", tc.err) })
		if tc.qos == 0 {
			_ = c.Send(&snpacket.Publish{TopicID: id, Data: []byte("q0")})
			p, err := c.Next(snpacket.TypePuback)
			if err != nil || p.(*snpacket.Puback).ReturnCode != tc.want {
				t.Errorf("QoS 0 refused with %v: %v err %v", tc.err, p, err)
			}
			continue
		}
		rc, err := c.Publish(snpacket.TopicNormal, id, tc.qos, false, []byte("x"))
		if err != nil || rc != tc.want {
			t.Errorf("QoS %d refused with %v: rc %v err %v, want %v", tc.qos, tc.err, rc, err, tc.want)
		}
	}
	e.b.SetRefuse(nil)
	if rc, err := c.Publish(snpacket.TopicNormal, id, 1, false, []byte("ok")); err != nil || rc != snpacket.Accepted {
		t.Errorf("after refusals: rc %v err %v", rc, err)
	}
	// A refused CONNECT: the broker's Open fails.
	e.b.SetOpenError(msg.ErrNotAuthorized)
	d := e.dial(t, sntest.Options{})
	if rc, err := d.Connect(sntest.ConnectOptions{ClientID: "denied"}); err != nil || rc != snpacket.RejectedNotSupported {
		t.Errorf("CONNECT refused by broker: rc %v err %v", rc, err)
	}
	e.b.SetOpenError(msg.ErrQuotaExceeded)
	if rc, err := d.Connect(sntest.ConnectOptions{ClientID: "denied"}); err != nil || rc != snpacket.RejectedCongestion {
		t.Errorf("CONNECT refused by broker: rc %v err %v", rc, err)
	}
}

// TestQoS2Duplicate: a retransmitted QoS 2 PUBLISH (lost PUBREC) is
// published once (section 6.6).
func TestQoS2Duplicate(t *testing.T) {
	e := start(t, nil)
	rec := e.record(t, "#", 2)
	c := e.connect(t, "c", sntest.ConnectOptions{CleanSession: true}, sntest.Options{})
	id, _, _ := c.Register("q2")
	p := &snpacket.Publish{Flags: snpacket.Flags{QoS: 2}, TopicID: id, MsgID: 77, Data: []byte("once")}
	for i := 0; i < 3; i++ {
		if i > 0 {
			p.Flags.DUP = true
		}
		_ = c.Send(p)
		if _, err := c.Next(snpacket.TypePubrec); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.Send(&snpacket.Pubrel{MsgID: 77})
	if _, err := c.Next(snpacket.TypePubcomp); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, 1)
	if len(e.b.Published()) != 1 {
		t.Errorf("published %d times, want once", len(e.b.Published()))
	}
}
