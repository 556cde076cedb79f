package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/packet"
	"github.com/outpost-iot/outpost/test/mosquittotest"
)

var versions = []struct {
	name string
	v    byte
}{{"v3.1.1", packet.V311}, {"v5", packet.V5}}

// TestPubSubQoS publishes at QoS 0, 1 and 2 through mosquitto to a QoS 2
// subscriber and checks every message arrives once, in order per QoS, with
// its QoS, retain flag and payload.
func TestPubSubQoS(t *testing.T) {
	b := startMosquitto(t, mosquittotest.Options{})
	for _, tv := range versions {
		t.Run(tv.name, func(t *testing.T) {
			url := "mqtt://" + b.Addr()
			var got collector
			sub := dial(t, Config{URL: url, ClientID: "sub-" + tv.name, ProtocolVersion: tv.v, CleanStart: true})
			topic := "pubsub/" + tv.name
			codes, err := sub.Subscribe(ctxT(t), []packet.Subscription{{Filter: topic + "/#", QoS: 2}}, got.handle)
			if err != nil || !bytes.Equal(codes, []byte{2}) {
				t.Fatalf("Subscribe: %v %v", codes, err)
			}
			pub := dial(t, Config{URL: url, ClientID: "pub-" + tv.name, ProtocolVersion: tv.v, CleanStart: true})
			const n = 5
			for qos := byte(0); qos <= 2; qos++ {
				for i := range n {
					m := &Message{Topic: fmt.Sprintf("%s/q%d", topic, qos), QoS: qos, Payload: []byte(fmt.Sprintf("%d-%d", qos, i))}
					if err := pub.Publish(ctxT(t), m); err != nil {
						t.Fatalf("Publish QoS %d #%d: %v", qos, i, err)
					}
				}
			}
			msgs := got.waitN(t, 3*n)
			next := map[byte]int{}
			for _, m := range msgs {
				want := fmt.Sprintf("%d-%d", m.QoS, next[m.QoS])
				if string(m.Payload) != want || m.Topic != fmt.Sprintf("%s/q%d", topic, m.QoS) {
					t.Errorf("got %q on %q (QoS %d), want %q", m.Payload, m.Topic, m.QoS, want)
				}
				next[m.QoS]++
			}
			for qos := byte(0); qos <= 2; qos++ {
				if next[qos] != n {
					t.Errorf("QoS %d: %d messages, want %d", qos, next[qos], n)
				}
			}
			if err := pub.Disconnect(ctxT(t)); err != nil {
				t.Errorf("Disconnect: %v", err)
			}
			<-pub.Done()
			if !errors.Is(pub.Err(), ErrClosed) {
				t.Errorf("Err after Disconnect = %v, want ErrClosed", pub.Err())
			}
		})
	}
}

// TestRetainedAndV5Properties checks a retained message with v5 message
// properties reaches a later subscriber with them, and that Unsubscribe
// stops delivery.
func TestRetainedAndV5Properties(t *testing.T) {
	b := startMosquitto(t, mosquittotest.Options{})
	url := "mqtt://" + b.Addr()
	pub := dial(t, Config{URL: url, ClientID: "ret-pub", ProtocolVersion: packet.V5, CleanStart: true})
	pf := byte(1)
	m := &Message{Topic: "ret/a", QoS: 1, Retain: true, Payload: []byte(`{"t":21.5}`), Props: packet.Properties{
		PayloadFormat: &pf, ContentType: "application/json", ResponseTopic: "ret/reply",
		CorrelationData: []byte{1, 2}, User: []packet.UserProperty{{Key: "site", Value: "pump-7"}}}}
	if err := pub.Publish(ctxT(t), m); err != nil {
		t.Fatal(err)
	}
	var got collector
	sub := dial(t, Config{URL: url, ClientID: "ret-sub", ProtocolVersion: packet.V5, CleanStart: true})
	if _, err := sub.Subscribe(ctxT(t), []packet.Subscription{{Filter: "ret/+", QoS: 1}}, got.handle); err != nil {
		t.Fatal(err)
	}
	r := got.waitN(t, 1)[0]
	if !r.Retain || string(r.Payload) != string(m.Payload) || r.Props.ContentType != "application/json" ||
		r.Props.ResponseTopic != "ret/reply" || !bytes.Equal(r.Props.CorrelationData, []byte{1, 2}) ||
		len(r.Props.User) != 1 || r.Props.User[0].Value != "pump-7" || r.Props.PayloadFormat == nil {
		t.Errorf("retained message = %+v", r)
	}
	if _, err := sub.Unsubscribe(ctxT(t), "ret/+"); err != nil {
		t.Fatal(err)
	}
	// After UNSUBACK nothing more arrives: publish, then a marker on a
	// still-subscribed topic proves the first was not delivered.
	var marker collector
	if _, err := sub.Subscribe(ctxT(t), []packet.Subscription{{Filter: "marker", QoS: 1}}, marker.handle); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctxT(t), &Message{Topic: "ret/a", QoS: 1, Payload: []byte("late")}); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctxT(t), &Message{Topic: "marker", QoS: 1}); err != nil {
		t.Fatal(err)
	}
	marker.waitN(t, 1)
	if n := len(got.all()); n != 1 {
		t.Errorf("%d messages after Unsubscribe, want only the retained one", n)
	}
	// Clear the retained message.
	if err := pub.Publish(ctxT(t), &Message{Topic: "ret/a", QoS: 1, Retain: true}); err != nil {
		t.Fatal(err)
	}
}

// TestMQTT31 connects with protocol name "MQIsdp", level 3, as
// mosquitto_pub -V mqttv31 does.
func TestMQTT31(t *testing.T) {
	b := startMosquitto(t, mosquittotest.Options{})
	url := "mqtt://" + b.Addr()
	var got collector
	sub := dial(t, Config{URL: url, ClientID: "sub31", ProtocolVersion: packet.V31, CleanStart: true})
	if _, err := sub.Subscribe(ctxT(t), []packet.Subscription{{Filter: "v31/#", QoS: 2}}, got.handle); err != nil {
		t.Fatal(err)
	}
	pub := dial(t, Config{URL: url, ClientID: "pub31", ProtocolVersion: packet.V31, CleanStart: true})
	for q := byte(0); q <= 2; q++ {
		if err := pub.Publish(ctxT(t), &Message{Topic: "v31/x", QoS: q, Payload: []byte{q}}); err != nil {
			t.Fatal(err)
		}
	}
	if msgs := got.waitN(t, 3); msgs[2].QoS != 2 || msgs[2].Payload[0] != 2 {
		t.Errorf("got %+v", msgs[2])
	}
}

func TestConnectRefused(t *testing.T) {
	b := startMosquitto(t, mosquittotest.Options{Listeners: []mosquittotest.Listener{{Lines: []string{"allow_anonymous false"}}}})
	for _, tv := range versions {
		_, err := Dial(ctxT(t), Config{URL: "mqtt://" + b.Addr(), ClientID: "x", ProtocolVersion: tv.v, CleanStart: true})
		var se *ServerError
		if !errors.As(err, &se) {
			t.Fatalf("%s: Dial = %v, want a ServerError", tv.name, err)
		}
		want := packet.V3NotAuthorized
		if tv.v == packet.V5 {
			want = packet.NotAuthorized
		}
		if se.Code != want {
			t.Errorf("%s: code 0x%02X, want 0x%02X (%v)", tv.name, se.Code, want, err)
		}
	}
}

// TestServerLimits: a v5 CONNACK's Maximum QoS, Retain Available and
// Maximum Packet Size are honoured before anything is sent.
func TestServerLimits(t *testing.T) {
	b := startMosquitto(t, mosquittotest.Options{
		Extra:     []string{"retain_available false", "max_packet_size 200"},
		Listeners: []mosquittotest.Listener{{Lines: []string{"max_qos 1"}}},
	})
	c := dial(t, Config{URL: "mqtt://" + b.Addr(), ClientID: "limits", ProtocolVersion: packet.V5, CleanStart: true})
	l := c.Limits()
	if l.MaxQoS != 1 || l.RetainAvailable || l.MaxPacketSize != 200 {
		t.Fatalf("Limits = %+v", l)
	}
	for _, m := range []*Message{
		{Topic: "l", QoS: 2},
		{Topic: "l", Retain: true},
		{Topic: "l", Payload: make([]byte, 300)},
	} {
		if err := c.Publish(ctxT(t), m); !errors.Is(err, ErrNotSupported) {
			t.Errorf("Publish(QoS %d retain %v %d bytes) = %v, want ErrNotSupported", m.QoS, m.Retain, len(m.Payload), err)
		}
	}
	if err := c.Publish(ctxT(t), &Message{Topic: "l", QoS: 1, Payload: make([]byte, 100)}); err != nil {
		t.Errorf("Publish within limits: %v", err)
	}
}

func TestInvalidRequests(t *testing.T) {
	b := startMosquitto(t, mosquittotest.Options{})
	c := dial(t, Config{URL: "mqtt://" + b.Addr(), ClientID: "inv", CleanStart: true})
	for _, m := range []*Message{{Topic: ""}, {Topic: "a/+"}, {Topic: "a/#"}, {Topic: "a", QoS: 3}, {Topic: "a\x00b"}} {
		if _, err := c.PublishAsync(ctxT(t), m); !errors.Is(err, ErrInvalid) {
			t.Errorf("PublishAsync(%q, QoS %d) = %v, want ErrInvalid", m.Topic, m.QoS, err)
		}
	}
	for _, f := range []string{"", "a/#/b", "a+/b", "$share/g", "$share//a"} {
		if _, err := c.Subscribe(ctxT(t), []packet.Subscription{{Filter: f}}, func(*Message) {}); !errors.Is(err, ErrInvalid) {
			t.Errorf("Subscribe(%q) = %v, want ErrInvalid", f, err)
		}
	}
}

// TestKeepAlive: an idle client sends PINGREQ, and gives up when no
// PINGRESP comes.
func TestKeepAlive(t *testing.T) {
	b := startMosquitto(t, mosquittotest.Options{})
	px := newProxy(t, b.Addr(), packet.V311)
	lost := make(chan error, 1)
	c := dial(t, Config{URL: "mqtt://" + px.addr(), ClientID: "ka", CleanStart: true, KeepAlive: time.Second,
		OnConnectionLost: func(err error) { lost <- err }})
	waitFor(t, "PINGRESP", func() bool { return countType(px.downstream(0), packet.PINGRESP) >= 1 })
	px.setHold(true, packet.PINGRESP)
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("no keep alive timeout")
	}
	if !errors.Is(c.Err(), ErrKeepAliveTimeout) {
		t.Errorf("Err = %v, want ErrKeepAliveTimeout", c.Err())
	}
	if err := <-lost; !errors.Is(err, ErrKeepAliveTimeout) {
		t.Errorf("OnConnectionLost(%v)", err)
	}
}

func TestDialErrors(t *testing.T) {
	ctx := ctxT(t)
	for _, cfg := range []Config{
		{URL: ""},
		{URL: "http://x"},
		{URL: "mqtt://127.0.0.1:1", ProtocolVersion: 7},
		{URL: "mqtt://127.0.0.1:1", ClientID: "", CleanStart: false},
	} {
		if _, err := Dial(ctx, cfg); err == nil {
			t.Errorf("Dial(%+v) succeeded", cfg)
		}
	}
	// Nothing listens: the error names the address.
	port := freePort(t)
	_, err := Dial(ctx, Config{URL: fmt.Sprintf("mqtt://127.0.0.1:%d", port), CleanStart: true})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte(fmt.Sprint(port))) {
		t.Errorf("Dial to closed port: %v", err)
	}
	// ctx ends during the handshake: a listener that never answers.
	ln := newSilentListener(t)
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := Dial(short, Config{URL: "mqtt://" + ln, CleanStart: true}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Dial to silent server: %v, want DeadlineExceeded", err)
	}
}
