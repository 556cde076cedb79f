package brokercore

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/brokercore/packet"
)

func u16(v uint16) *uint16 { return &v }
func u32(v uint32) *uint32 { return &v }

func TestV5AssignedClientIDAndConnackProps(t *testing.T) {
	b := testBroker(t, Config{MaxInflight: 7, MaxKeepalive: 30}, Options{})
	c := dialRaw(t, addr(b), packet.V5)
	ack := c.connect("", true, func(cp *packet.Connect) { cp.KeepAlive = 100 })
	if ack.ReasonCode != 0 || !strings.HasPrefix(ack.Props.AssignedClientID, "auto-") {
		t.Fatalf("CONNACK %+v", ack)
	}
	if ack.Props.ReceiveMaximum == nil || *ack.Props.ReceiveMaximum != 7 {
		t.Fatalf("Receive Maximum %v, want 7", ack.Props.ReceiveMaximum)
	}
	if ack.Props.ServerKeepAlive == nil || *ack.Props.ServerKeepAlive != 30 {
		t.Fatalf("Server Keep Alive %v, want 30", ack.Props.ServerKeepAlive)
	}
}

// [MQTT-3.1.3-8] 3.1.1: a zero-byte client id needs clean session.
func TestV311EmptyClientID(t *testing.T) {
	b := testBroker(t, Config{}, Options{})
	if ack := dialRaw(t, addr(b), packet.V311).connect("", false); ack.ReasonCode != packet.V3IdentifierRejected {
		t.Fatalf("clean=false: code %d, want 2", ack.ReasonCode)
	}
	if ack := dialRaw(t, addr(b), packet.V311).connect("", true); ack.ReasonCode != 0 {
		t.Fatalf("clean=true: code %d, want 0", ack.ReasonCode)
	}
}

// [MQTT-3.1.4-3] a second connection with the same id takes over; a v5
// old connection gets DISCONNECT 0x8E.
func TestTakeoverV5SessionTakenOver(t *testing.T) {
	b := testBroker(t, Config{}, Options{})
	old := connected(t, b, packet.V5, "dev", true)
	connected(t, b, packet.V5, "dev", true)
	pk := old.closed()
	if len(pk) != 1 || pk[0].(*packet.Disconnect).ReasonCode != packet.SessionTakenOver {
		t.Fatalf("old connection got %+v, want DISCONNECT 0x8E", pk)
	}
}

func TestMQTT31Client(t *testing.T) {
	b := testBroker(t, Config{}, Options{})
	c := connected(t, b, packet.V31, "old-device", true)
	c.subscribe(1, "x", 1)
	c.send(pub("x", 1, 2, "hello"))
	got := map[packet.Type]bool{}
	for i := 0; i < 2; i++ {
		got[c.recv().Type()] = true
	}
	if !got[packet.PUBACK] || !got[packet.PUBLISH] {
		t.Fatalf("got %v", got)
	}
}

func willOpt(topic, payload string, delay uint32) connOpt {
	return func(cp *packet.Connect) {
		cp.WillFlag, cp.WillTopic, cp.WillPayload, cp.WillQoS = true, topic, []byte(payload), 1
		if delay > 0 {
			cp.WillProps.WillDelay = u32(delay)
		}
	}
}

func TestWills(t *testing.T) {
	b := testBroker(t, Config{}, Options{})
	watch := connected(t, b, packet.V5, "watch", true)
	watch.subscribe(1, "will/#", 1)

	// Unclean close: the will is published.
	c := connected(t, b, packet.V311, "a", true, willOpt("will/a", "gone", 0))
	c.nc.Close()
	if p := watch.recvType(packet.PUBLISH).(*packet.Publish); p.Topic != "will/a" {
		t.Fatalf("got %q", p.Topic)
	} else {
		watch.ack(packet.PUBACK, p.PacketID)
	}
	// [MQTT-3.14.4-3] clean DISCONNECT: no will.
	c = connected(t, b, packet.V311, "b", true, willOpt("will/b", "gone", 0))
	c.send(&packet.Disconnect{})
	c.closed()
	// v5 DISCONNECT 0x04: the will is sent.
	c = connected(t, b, packet.V5, "c", true, willOpt("will/c", "gone", 0))
	c.send(&packet.Disconnect{ReasonCode: packet.DisconnectWithWill})
	c.closed()
	if p := watch.recvType(packet.PUBLISH).(*packet.Publish); p.Topic != "will/c" {
		t.Fatalf("got %q, want will/c (will/b must not be sent)", p.Topic)
	}
}

// v5 will delay: a reconnect within the delay cancels the will; without
// it the will is published when the delay passes.
func TestWillDelay(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	b := testBroker(t, Config{}, Options{Now: clock})
	watch := connected(t, b, packet.V5, "watch", true)
	watch.subscribe(1, "will/#", 0)
	exp := func(cp *packet.Connect) { cp.Props.SessionExpiry = u32(600) }
	c := connected(t, b, packet.V5, "d", false, exp, willOpt("will/d", "gone", 30))
	c.nc.Close()
	poll(t, "disconnect", func() bool { return b.Stats().ClientsConnected.Load() == 1 })
	advance(10 * time.Second)
	b.sweep(clock())
	c = connected(t, b, packet.V5, "d", false, exp) // back in time: no will
	c.nc.Close()
	poll(t, "disconnect", func() bool { return b.Stats().ClientsConnected.Load() == 1 })
	advance(60 * time.Second)
	b.sweep(clock())
	watch.quiet(50 * time.Millisecond)

	c = connected(t, b, packet.V5, "e", false, exp, willOpt("will/e", "gone", 30))
	c.nc.Close()
	poll(t, "disconnect", func() bool { return b.Stats().ClientsConnected.Load() == 1 })
	advance(31 * time.Second)
	b.sweep(clock())
	if p := watch.recvType(packet.PUBLISH).(*packet.Publish); p.Topic != "will/e" {
		t.Fatalf("got %q", p.Topic)
	}
}

func TestRetained(t *testing.T) {
	b := testBroker(t, Config{}, Options{})
	p := connected(t, b, packet.V5, "pub", true)
	retain := func(topic, payload string) {
		p.send(&packet.Publish{Topic: topic, Retain: true, Payload: []byte(payload)})
	}
	retain("r/a", "1")
	retain("r/a", "2") // replaces
	retain("r/b", "x")
	retain("r/b", "") // [MQTT-3.3.1-6] empty payload clears
	poll(t, "retained count", func() bool { return b.Stats().Retained.Load() == 1 })
	s := connected(t, b, packet.V5, "s", true)
	s.subscribe(1, "r/#", 1)
	got := s.recvType(packet.PUBLISH).(*packet.Publish)
	if got.Topic != "r/a" || string(got.Payload) != "2" || !got.Retain {
		t.Fatalf("retained delivery %+v", got)
	}
	s.quiet(30 * time.Millisecond)
	// A live retained publish: retain flag cleared without Retain As
	// Published [MQTT-3.3.1-12], kept with it [MQTT-3.3.1-13].
	s.send(&packet.Subscribe{PacketID: 2, Subscriptions: []packet.Subscription{{Filter: "rap/#", RetainAsPublished: true}}})
	s.recvType(packet.SUBACK)
	retain("r/a", "3")
	if got := s.recvType(packet.PUBLISH).(*packet.Publish); got.Retain {
		t.Fatal("retain flag kept without Retain As Published")
	}
	retain("rap/a", "4")
	if got := s.recvType(packet.PUBLISH).(*packet.Publish); !got.Retain {
		t.Fatal("retain flag cleared with Retain As Published")
	}
	// Retain Handling 2: no retained messages at subscribe.
	s2 := connected(t, b, packet.V5, "s2", true)
	s2.send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "r/#", RetainHandling: 2}}})
	s2.recvType(packet.SUBACK)
	s2.quiet(30 * time.Millisecond)
	// Retain Handling 1: only when the subscription is new.
	s2.send(&packet.Subscribe{PacketID: 2, Subscriptions: []packet.Subscription{{Filter: "r/+", RetainHandling: 1}}})
	s2.recvType(packet.SUBACK)
	s2.recvType(packet.PUBLISH)
	s2.send(&packet.Subscribe{PacketID: 3, Subscriptions: []packet.Subscription{{Filter: "r/+", RetainHandling: 1}}})
	s2.recvType(packet.SUBACK)
	s2.quiet(30 * time.Millisecond)
}

// [MQTT-3.8.3-3] No Local.
func TestNoLocal(t *testing.T) {
	b := testBroker(t, Config{}, Options{})
	c := connected(t, b, packet.V5, "c", true)
	c.send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "n", NoLocal: true}}})
	c.recvType(packet.SUBACK)
	c.send(pub("n", 0, 0, "mine"))
	c.quiet(50 * time.Millisecond)
	o := connected(t, b, packet.V5, "o", true)
	o.send(pub("n", 0, 0, "theirs"))
	if got := c.recvType(packet.PUBLISH).(*packet.Publish); string(got.Payload) != "theirs" {
		t.Fatalf("got %q", got.Payload)
	}
}

func TestV5PropertiesPassThroughAndSubscriptionIDs(t *testing.T) {
	b := testBroker(t, Config{}, Options{})
	s := connected(t, b, packet.V5, "s", true)
	s.send(&packet.Subscribe{PacketID: 1, Props: packet.Properties{SubscriptionIDs: []uint32{42}}, Subscriptions: []packet.Subscription{{Filter: "p/#", QoS: 1}}})
	s.recvType(packet.SUBACK)
	s.send(&packet.Subscribe{PacketID: 2, Props: packet.Properties{SubscriptionIDs: []uint32{7}}, Subscriptions: []packet.Subscription{{Filter: "p/x", QoS: 0}}})
	s.recvType(packet.SUBACK)
	p := connected(t, b, packet.V5, "p", true)
	one := byte(1)
	p.send(&packet.Publish{Topic: "p/x", QoS: 1, PacketID: 1, Payload: []byte("{}"), Props: packet.Properties{
		PayloadFormat: &one, ContentType: "application/json", ResponseTopic: "reply/here", CorrelationData: []byte{1, 2},
		User: []packet.UserProperty{{Key: "k", Value: "v"}},
	}})
	got := s.recvType(packet.PUBLISH).(*packet.Publish)
	pr := got.Props
	if got.QoS != 1 || pr.PayloadFormat == nil || *pr.PayloadFormat != 1 || pr.ContentType != "application/json" || pr.ResponseTopic != "reply/here" ||
		string(pr.CorrelationData) != "\x01\x02" || len(pr.User) != 1 || pr.User[0] != (packet.UserProperty{Key: "k", Value: "v"}) {
		t.Fatalf("properties not passed through: %+v", pr)
	}
	if fmt.Sprint(pr.SubscriptionIDs) != "[42 7]" && fmt.Sprint(pr.SubscriptionIDs) != "[7 42]" {
		t.Fatalf("subscription ids %v, want 42 and 7", pr.SubscriptionIDs)
	}
}

// Message expiry: the interval sent is what is left; an expired queued
// message is not delivered.
func TestMessageExpiry(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	b := testBroker(t, Config{}, Options{Now: clock})
	exp := func(cp *packet.Connect) { cp.Props.SessionExpiry = u32(600) }
	s := connected(t, b, packet.V5, "s", false, exp)
	s.subscribe(1, "e/#", 1)
	s.send(&packet.Disconnect{})
	s.closed()
	poll(t, "offline", func() bool { return b.Stats().ClientsConnected.Load() == 0 })
	p := connected(t, b, packet.V5, "p", true)
	p.send(&packet.Publish{Topic: "e/1", QoS: 1, PacketID: 1, Payload: []byte("short"), Props: packet.Properties{MessageExpiry: u32(5)}})
	p.recvType(packet.PUBACK)
	p.send(&packet.Publish{Topic: "e/2", QoS: 1, PacketID: 2, Payload: []byte("long"), Props: packet.Properties{MessageExpiry: u32(100)}})
	p.recvType(packet.PUBACK)
	advance(10 * time.Second)
	s = connected(t, b, packet.V5, "s", false, exp)
	got := s.recvType(packet.PUBLISH).(*packet.Publish)
	if got.Topic != "e/2" || got.Props.MessageExpiry == nil || *got.Props.MessageExpiry != 90 {
		t.Fatalf("got %s expiry %v, want e/2 with 90 s left", got.Topic, got.Props.MessageExpiry)
	}
}

func TestTopicAliases(t *testing.T) {
	b := testBroker(t, Config{}, Options{})
	s := connected(t, b, packet.V5, "s", true, func(cp *packet.Connect) { cp.Props.TopicAliasMaximum = u16(5) })
	s.subscribe(1, "alias/#", 0)
	p := connected(t, b, packet.V5, "p", true)
	// Inbound: set alias 3 with the topic, then use it alone.
	p.send(&packet.Publish{Topic: "alias/long/topic", Payload: []byte("1"), Props: packet.Properties{TopicAlias: u16(3)}})
	p.send(&packet.Publish{Payload: []byte("2"), Props: packet.Properties{TopicAlias: u16(3)}})
	first := s.recvType(packet.PUBLISH).(*packet.Publish)
	second := s.recvType(packet.PUBLISH).(*packet.Publish)
	// Outbound: first with topic and alias, then alias only.
	if first.Topic != "alias/long/topic" || first.Props.TopicAlias == nil {
		t.Fatalf("first %+v", first)
	}
	if second.Topic != "" || second.Props.TopicAlias == nil || *second.Props.TopicAlias != *first.Props.TopicAlias || string(second.Payload) != "2" {
		t.Fatalf("second %+v", second)
	}
	// An unknown alias is a protocol error.
	p.send(&packet.Publish{Payload: []byte("3"), Props: packet.Properties{TopicAlias: u16(9)}})
	pk := p.closed()
	if len(pk) == 0 || pk[len(pk)-1].(*packet.Disconnect).ReasonCode != packet.ProtocolError {
		t.Fatalf("got %+v", pk)
	}
}

// The client's Receive Maximum: never more unacked QoS 1 messages than it allows.
func TestClientReceiveMaximum(t *testing.T) {
	b := testBroker(t, Config{}, Options{})
	s := connected(t, b, packet.V5, "s", true, func(cp *packet.Connect) { cp.Props.ReceiveMaximum = u16(2) })
	s.subscribe(1, "w", 1)
	p := connected(t, b, packet.V5, "p", true)
	for i := 1; i <= 5; i++ {
		p.send(pub("w", 1, uint16(i), fmt.Sprint(i)))
	}
	a := s.recvType(packet.PUBLISH).(*packet.Publish)
	s.recvType(packet.PUBLISH)
	s.quiet(50 * time.Millisecond) // window full
	s.ack(packet.PUBACK, a.PacketID)
	if got := s.recvType(packet.PUBLISH).(*packet.Publish); string(got.Payload) != "3" {
		t.Fatalf("got %q", got.Payload)
	}
}

// An inbound publisher exceeding our Receive Maximum gets DISCONNECT 0x93.
func TestReceiveMaximumExceeded(t *testing.T) {
	b := testBroker(t, Config{MaxInflight: 2}, Options{})
	b.AddTap(&gateTap{}) // holds every ack
	p := connected(t, b, packet.V5, "p", true)
	for i := 1; i <= 3; i++ {
		p.send(pub("t", 1, uint16(i), "x"))
	}
	pk := p.closed()
	if len(pk) != 1 || pk[0].(*packet.Disconnect).ReasonCode != packet.ReceiveMaximumExceeded {
		t.Fatalf("got %+v, want DISCONNECT 0x93", pk)
	}
}

// [MQTT-3.1.2-24] nothing larger than the client's Maximum Packet Size.
func TestClientMaximumPacketSize(t *testing.T) {
	b := testBroker(t, Config{}, Options{})
	s := connected(t, b, packet.V5, "s", true, func(cp *packet.Connect) { cp.Props.MaximumPacketSize = u32(64) })
	s.subscribe(1, "m", 1)
	p := connected(t, b, packet.V5, "p", true)
	p.send(pub("m", 1, 1, strings.Repeat("x", 100)))
	p.send(pub("m", 1, 2, "small"))
	if got := s.recvType(packet.PUBLISH).(*packet.Publish); string(got.Payload) != "small" {
		t.Fatalf("got %q", got.Payload)
	}
	if b.Stats().Dropped.TooLarge.Load() != 1 {
		t.Fatal("oversize drop not counted")
	}
}

func TestQoSDowngradeAndSharedSubscriptions(t *testing.T) {
	b := testBroker(t, Config{}, Options{})
	s1 := connected(t, b, packet.V5, "s1", true)
	s1.subscribe(1, "$share/g/job", 0)
	s2 := connected(t, b, packet.V5, "s2", true)
	s2.subscribe(1, "$share/g/job", 0)
	p := connected(t, b, packet.V5, "p", true)
	for i := 0; i < 4; i++ {
		p.send(pub("job", 2, uint16(i+1), "j"))
	}
	for _, c := range []*rawClient{s1, s2} {
		for i := 0; i < 2; i++ {
			if got := c.recvType(packet.PUBLISH).(*packet.Publish); got.QoS != 0 {
				t.Fatalf("QoS %d, want downgrade to 0", got.QoS)
			}
		}
	}
}

// Keep alive: a silent client is dropped after 1.5 x its keep alive and
// its will is sent.
func TestKeepAliveTimeout(t *testing.T) {
	b := testBroker(t, Config{}, Options{})
	watch := connected(t, b, packet.V311, "watch", true)
	watch.subscribe(1, "ka", 0)
	c := connected(t, b, packet.V5, "sleepy", true, func(cp *packet.Connect) { cp.KeepAlive = 1 }, willOpt("ka", "lost", 0))
	pk := c.closed()
	if len(pk) != 1 || pk[0].(*packet.Disconnect).ReasonCode != packet.KeepAliveTimeout {
		t.Fatalf("got %+v, want DISCONNECT 0x8D", pk)
	}
	watch.recvType(packet.PUBLISH)
}

func TestMaxConnections(t *testing.T) {
	var logs syncBuf
	b := testBroker(t, Config{MaxConnections: 1}, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	connected(t, b, packet.V5, "one", true)
	for i := 0; i < 3; i++ {
		if ack := dialRaw(t, addr(b), packet.V5).connect(fmt.Sprint("more", i), true); ack.ReasonCode != packet.ServerBusy {
			t.Fatalf("code 0x%02x, want 0x89", ack.ReasonCode)
		}
	}
	// Logged once per cause (with a count), not once per client.
	if n := strings.Count(logs.String(), "max_connections reached"); n != 1 {
		t.Fatalf("%d log lines for 3 refusals:\n%s", n, logs.String())
	}
}

func TestInprocSubscribePublishAndSessions(t *testing.T) {
	b := testBroker(t, Config{}, Options{})
	got := make(chan msg.Message, 10)
	cancel, err := b.Subscribe("in/#", 1, func(m msg.Message) { got <- m })
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	sessGot := make(chan msg.Message, 10)
	s, present, err := b.Open(t.Context(), msg.SessionOptions{ClientID: "sn-1", SessionExpiry: time.Hour, Deliver: func(m msg.Message) { sessGot <- m }})
	if err != nil || present {
		t.Fatal(err, present)
	}
	if _, err := s.Subscribe("cmd/#", 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Publish(t.Context(), msg.Message{Topic: "in/x", QoS: 1, Payload: []byte("hi")}); err != nil {
		t.Fatal(err)
	}
	if m := <-got; m.Topic != "in/x" || m.ClientID != "sn-1" {
		t.Fatalf("got %+v", m)
	}
	s.Close(false)
	// Queued while away, delivered on resume.
	if err := b.Publish(t.Context(), msg.Message{Topic: "cmd/1", QoS: 1, Payload: []byte("c")}); err != nil {
		t.Fatal(err)
	}
	s2, present, err := b.Open(t.Context(), msg.SessionOptions{ClientID: "sn-1", SessionExpiry: time.Hour, Deliver: func(m msg.Message) { sessGot <- m }})
	if err != nil || !present {
		t.Fatal(err, present)
	}
	defer s2.Close(false)
	select {
	case m := <-sessGot:
		if m.Topic != "cmd/1" {
			t.Fatalf("got %+v", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("queued message not delivered on resume")
	}
}

// An in-process subscriber may publish from its callback (Deliver runs
// with no broker lock held), e.g. a request/response responder.
func TestInprocCallbackMayPublish(t *testing.T) {
	b := testBroker(t, Config{}, Options{})
	replies := make(chan msg.Message, 1)
	cancel2, _ := b.Subscribe("reply", 1, func(m msg.Message) { replies <- m })
	defer cancel2()
	cancel, err := b.Subscribe("req", 1, func(m msg.Message) {
		if err := b.Publish(t.Context(), msg.Message{Topic: "reply", QoS: 1, Payload: m.Payload}); err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	if err := b.Publish(t.Context(), msg.Message{Topic: "req", QoS: 1, Payload: []byte("ping")}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-replies:
		if string(m.Payload) != "ping" {
			t.Fatalf("got %q", m.Payload)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reply (deadlock?)")
	}
}

// Shutdown: v5 clients get DISCONNECT 0x8B and their wills are published
// (a server shutting down is not a clean DISCONNECT).
func TestShutdownSendsDisconnectAndWills(t *testing.T) {
	b, err := New(Config{Listeners: testListeners(), SysInterval: -1}, Options{Store: newMem()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	wills := make(chan msg.Message, 1)
	cancel, _ := b.Subscribe("will/#", 0, func(m msg.Message) { wills <- m })
	defer cancel()
	c := connected(t, b, packet.V5, "w", true, willOpt("will/w", "bye", 0))
	if err := b.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	pk := c.closed()
	if len(pk) != 1 || pk[0].(*packet.Disconnect).ReasonCode != packet.ServerShuttingDown {
		t.Fatalf("got %+v, want DISCONNECT 0x8B", pk)
	}
	select {
	case m := <-wills:
		if m.Topic != "will/w" {
			t.Fatalf("got %q", m.Topic)
		}
	default:
		t.Fatal("will not published by the time Shutdown returned")
	}
	if err := b.Publish(t.Context(), msg.Message{Topic: "x"}); !errors.Is(err, msg.ErrClosed) {
		t.Fatalf("Publish after Shutdown = %v", err)
	}
}

// Open of a client id already open in-process takes it over; the old
// handle's Close does not touch the new one.
func TestInprocTakeover(t *testing.T) {
	b := testBroker(t, Config{}, Options{})
	got1 := make(chan msg.Message, 10)
	got2 := make(chan msg.Message, 10)
	s1, _, err := b.Open(t.Context(), msg.SessionOptions{ClientID: "node", SessionExpiry: time.Hour, Deliver: func(m msg.Message) { got1 <- m }})
	if err != nil {
		t.Fatal(err)
	}
	s1.Subscribe("n/#", 1)
	s2, present, err := b.Open(t.Context(), msg.SessionOptions{ClientID: "node", SessionExpiry: time.Hour, Deliver: func(m msg.Message) { got2 <- m }})
	if err != nil || !present {
		t.Fatal(err, present)
	}
	defer s2.Close(false)
	s1.Close(false)
	b.Publish(t.Context(), msg.Message{Topic: "n/1", QoS: 1, Payload: []byte("x")})
	select {
	case <-got2:
	case <-time.After(5 * time.Second):
		t.Fatal("new session not delivered to")
	}
	if len(got1) != 0 {
		t.Fatal("old handle still delivered to")
	}
}

// [MQTT-3.8.3-4] No Local on a shared subscription is a Protocol Error.
func TestSharedNoLocalProtocolError(t *testing.T) {
	b := testBroker(t, Config{}, Options{})
	c := connected(t, b, packet.V5, "c", true)
	c.send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "$share/g/x", NoLocal: true}}})
	pk := c.closed()
	if len(pk) != 1 || pk[0].(*packet.Disconnect).ReasonCode != packet.ProtocolError {
		t.Fatalf("got %+v, want DISCONNECT 0x82", pk)
	}
}

func TestV5NoMatchingSubscribers(t *testing.T) {
	b := testBroker(t, Config{}, Options{})
	p := connected(t, b, packet.V5, "p", true)
	p.send(pub("nobody/home", 1, 1, "x"))
	if a := p.recvType(packet.PUBACK).(*packet.Ack); a.ReasonCode != packet.NoMatchingSubscribers {
		t.Fatalf("PUBACK 0x%02x, want 0x10", a.ReasonCode)
	}
	s := connected(t, b, packet.V5, "s", true)
	s.subscribe(1, "nobody/#", 0)
	p.send(pub("nobody/home", 1, 2, "x"))
	if a := p.recvType(packet.PUBACK).(*packet.Ack); a.ReasonCode != 0 {
		t.Fatalf("PUBACK 0x%02x, want 0", a.ReasonCode)
	}
}

// Refusals after the last line are not lost: the sweeper logs them once
// the interval has passed, and Shutdown logs what is left.
func TestLimitLogFlush(t *testing.T) {
	var logs syncBuf
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	b := testBroker(t, Config{}, Options{Now: clock, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for i := 0; i < 4; i++ {
		b.limitLog.refuse("max_connections reached", "max_connections", 1)
	}
	b.sweep(clock())
	if n := strings.Count(logs.String(), "max_connections reached"); n != 1 {
		t.Fatalf("%d lines before the interval", n)
	}
	mu.Lock()
	now = now.Add(11 * time.Second)
	mu.Unlock()
	b.sweep(clock()) // the next refusal would carry them; the sweeper waits a minute
	if strings.Count(logs.String(), "max_connections reached") != 1 {
		t.Fatalf("sweeper logged before limitLogIdle:\n%s", logs.String())
	}
	mu.Lock()
	now = now.Add(limitLogIdle)
	mu.Unlock()
	b.sweep(clock())
	if !strings.Contains(logs.String(), "refused_since_last_log=3") {
		t.Fatalf("pending count not logged after the interval:\n%s", logs.String())
	}
	b.limitLog.refuse("max_connections reached", "max_connections", 1)
	b.limitLog.refuse("max_connections reached", "max_connections", 1)
	b.Shutdown(t.Context())
	if !strings.Contains(logs.String(), "refused_since_last_log=2") {
		t.Fatalf("pending count not logged at Shutdown:\n%s", logs.String())
	}
}

// A retained message published while a subscription is being made reaches
// the new subscriber once (live or as retained), never twice.
func TestRetainedDuringSubscribeDeliveredOnce(t *testing.T) {
	b := testBroker(t, Config{}, Options{})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			b.Publish(t.Context(), msg.Message{Topic: "rr", Retain: true, Payload: []byte(fmt.Sprint(i))})
		}
	}()
	for round := 0; round < 200; round++ {
		var mu sync.Mutex
		seen := map[string]int{}
		cancel, err := b.Subscribe("rr", 0, func(m msg.Message) {
			mu.Lock()
			seen[string(m.Payload)]++
			mu.Unlock()
		})
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		mu.Lock()
		for p, n := range seen {
			if n > 1 {
				t.Fatalf("round %d: %q delivered %d times", round, p, n)
			}
		}
		mu.Unlock()
	}
	close(stop)
	<-done
}

// Outbound aliases never exceed the client's Topic Alias Maximum; topics
// beyond it go in full.
func TestTopicAliasMaximumHonoured(t *testing.T) {
	b := testBroker(t, Config{}, Options{})
	s := connected(t, b, packet.V5, "s", true, func(cp *packet.Connect) { cp.Props.TopicAliasMaximum = u16(2) })
	s.subscribe(1, "m/#", 0)
	p := connected(t, b, packet.V5, "p", true)
	for i := 0; i < 4; i++ {
		p.send(pub(fmt.Sprint("m/", i), 0, 0, "x"))
	}
	for i := 0; i < 4; i++ {
		got := s.recvType(packet.PUBLISH).(*packet.Publish)
		if got.Topic != fmt.Sprint("m/", i) {
			t.Fatalf("message %d: topic %q (must be sent in full the first time)", i, got.Topic)
		}
		if a := got.Props.TopicAlias; (a != nil) != (i < 2) || (a != nil && (*a == 0 || *a > 2)) {
			t.Fatalf("message %d: alias %v, want one of 1..2 only for the first two topics", i, a)
		}
	}
}
