package brokercore_test

import (
	"context"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/outpost-iot/outpost/brokercore"
	"github.com/outpost-iot/outpost/brokercore/brokertest"
	"github.com/outpost-iot/outpost/brokercore/msg"
)

// Clients lists network clients (connected, and persistent ones away with
// their queued messages) and in-process sessions, not plain in-process
// subscribers.
func TestClientsList(t *testing.T) {
	srv := brokertest.NewServer(t)
	dial := func(id string, clean bool) mqtt.Client {
		o := mqtt.NewClientOptions().AddBroker("tcp://" + srv.Addr).SetClientID(id).SetCleanSession(clean).SetAutoReconnect(false)
		c := mqtt.NewClient(o)
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("connect %s: %v", id, tok.Error())
		}
		return c
	}
	live := dial("live", true)
	defer live.Disconnect(100)
	live.Subscribe("a/#", 1, func(mqtt.Client, mqtt.Message) {}).Wait()
	away := dial("away", false)
	away.Subscribe("b/+", 1, func(mqtt.Client, mqtt.Message) {}).Wait()
	away.Disconnect(100)

	cancel, err := srv.Broker.Subscribe("#", 0, func(msg.Message) {})
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	s, _, err := srv.Broker.Open(context.Background(), msg.SessionOptions{ClientID: "sn-node", CleanStart: true, Deliver: func(msg.Message) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(false)
	if err := srv.Broker.Publish(context.Background(), msg.Message{Topic: "b/x", QoS: 1, Payload: []byte("queued")}); err != nil {
		t.Fatal(err)
	}

	// The broker handles away's DISCONNECT on its own time: poll.
	var got []brokercore.ClientInfo
	ids := []string{}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got, ids = srv.Broker.Clients(), ids[:0]
		for _, c := range got {
			ids = append(ids, c.ClientID)
		}
		if len(got) == 3 && !got[0].Connected && got[0].Queued == 1 || time.Now().After(deadline) {
			break
		}
	}
	if len(got) != 3 || ids[0] != "away" || ids[1] != "live" || ids[2] != "sn-node" {
		t.Fatalf("clients %q, want [away live sn-node]", ids)
	}
	a, l, sn := got[0], got[1], got[2]
	if a.Connected || !a.Persistent || a.OfflineSince.IsZero() || a.Queued != 1 || len(a.Subscriptions) != 1 || a.Subscriptions[0].Filter != "b/+" {
		t.Errorf("away = %+v", a)
	}
	if !l.Connected || l.Protocol != 4 || l.RemoteAddr == "" || len(l.Subscriptions) != 1 || l.Subscriptions[0].QoS != 1 {
		t.Errorf("live = %+v", l)
	}
	if !sn.Connected || sn.Protocol != 0 {
		t.Errorf("sn-node = %+v", sn)
	}
}

// In-process subscribers get the retain flag as published, live and
// retained alike (the console marks retained topics from it).
func TestInprocSubscribeRetainAsPublished(t *testing.T) {
	srv := brokertest.NewServer(t)
	got := make(chan msg.Message, 4)
	cancel, err := srv.Broker.Subscribe("r/#", 1, func(m msg.Message) { got <- m })
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	ctx := context.Background()
	srv.Broker.Publish(ctx, msg.Message{Topic: "r/kept", QoS: 1, Retain: true, Payload: []byte("1")})
	srv.Broker.Publish(ctx, msg.Message{Topic: "r/live", QoS: 1, Payload: []byte("2")})
	for _, want := range []struct {
		topic  string
		retain bool
	}{{"r/kept", true}, {"r/live", false}} {
		select {
		case m := <-got:
			if m.Topic != want.topic || m.Retain != want.retain {
				t.Errorf("got %s retain=%v, want %s retain=%v", m.Topic, m.Retain, want.topic, want.retain)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no message on %s", want.topic)
		}
	}
}
