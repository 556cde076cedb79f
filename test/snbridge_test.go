// Package test holds Outpost's end-to-end tests: real brokers, real
// clients, real sockets on 127.0.0.1.
package test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/outpost-iot/outpost/brokercore/brokertest"
	"github.com/outpost-iot/outpost/snbridge"
	"github.com/outpost-iot/outpost/snbridge/snpacket"
	"github.com/outpost-iot/outpost/snbridge/sntest"
)

type pahoMsg struct {
	topic    string
	payload  string
	qos      byte
	retained bool
}

func pahoClient(t *testing.T, addr, id string) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("paho %s connect: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func pahoSubscribe(t *testing.T, c mqtt.Client, filter string, qos byte) <-chan pahoMsg {
	t.Helper()
	ch := make(chan pahoMsg, 16)
	tok := c.Subscribe(filter, qos, func(_ mqtt.Client, m mqtt.Message) {
		ch <- pahoMsg{m.Topic(), string(m.Payload()), m.Qos(), m.Retained()}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("paho subscribe %s: %v", filter, tok.Error())
	}
	return ch
}

func waitPaho(t *testing.T, ch <-chan pahoMsg) pahoMsg {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("paho client got nothing")
	}
	return pahoMsg{}
}

// TestSNAndMQTTClients: an MQTT-SN client on the gateway and a
// paho.mqtt.golang client on the real broker see each other's messages
// with the right topic, payload, QoS and retain flag.
func TestSNAndMQTTClients(t *testing.T) {
	srv := brokertest.NewServer(t)
	gw, err := snbridge.New(snbridge.Config{Listen: "127.0.0.1:0", Broadcast: "127.0.0.1:9", AdvertiseInterval: -1},
		srv.Broker, slog.New(slog.NewTextHandler(tLog{t}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway Run: %v", err)
		}
	})

	paho := pahoClient(t, srv.Addr, "paho-sub")
	fromSN := pahoSubscribe(t, paho, "sn/#", 2)

	sn, err := sntest.Dial(gw.Addr().String(), sntest.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	if rc, err := sn.Connect(sntest.ConnectOptions{ClientID: "sn-node", CleanSession: true, KeepAlive: 60}); err != nil || rc != snpacket.Accepted {
		t.Fatalf("SN connect: %v %v", rc, err)
	}

	// SN → MQTT, QoS 0, 1, 2; the QoS 1 one retained.
	tid, rc, err := sn.Register("sn/temp")
	if err != nil || rc != snpacket.Accepted {
		t.Fatal(rc, err)
	}
	for q := int8(0); q <= 2; q++ {
		if rc, err := sn.Publish(snpacket.TopicNormal, tid, q, q == 1, []byte{'t', byte('0' + q)}); err != nil || rc != snpacket.Accepted {
			t.Fatalf("SN publish QoS %d: %v %v", q, rc, err)
		}
		m := waitPaho(t, fromSN)
		want := pahoMsg{"sn/temp", string([]byte{'t', byte('0' + q)}), byte(q), false}
		if m != want {
			t.Errorf("paho got %+v, want %+v", m, want)
		}
	}
	// The retained one reaches a later MQTT subscriber with retain set.
	late := pahoClient(t, srv.Addr, "paho-late")
	if m := waitPaho(t, pahoSubscribe(t, late, "sn/temp", 1)); m != (pahoMsg{"sn/temp", "t1", 1, true}) {
		t.Errorf("late paho subscriber got %+v, want the retained QoS 1 message", m)
	}
	// Short topic name from SN.
	short := pahoSubscribe(t, late, "sn", 1)
	if rc, err := sn.Publish(snpacket.TopicShort, shortID("sn"), 1, false, []byte("short")); err != nil || rc != snpacket.Accepted {
		t.Fatal(rc, err)
	}
	if m := waitPaho(t, short); m != (pahoMsg{"sn", "short", 1, false}) {
		t.Errorf("paho got %+v for the short topic", m)
	}

	// MQTT → SN: an exact subscription, QoS 1 and 2.
	sa, err := sn.Subscribe(snpacket.TopicNormal, "cloud/cmd", 0, 2)
	if err != nil || sa.ReturnCode != snpacket.Accepted {
		t.Fatal(sa, err)
	}
	for _, q := range []byte{1, 2} {
		if tok := paho.Publish("cloud/cmd", q, false, "open"+string('0'+q)); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		m, err := sn.WaitMessage(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if m.Topic != "cloud/cmd" || m.TopicID != sa.TopicID || string(m.Payload) != "open"+string('0'+q) || m.QoS != int8(q) || m.Retain {
			t.Errorf("SN got %+v for QoS %d", m, q)
		}
	}
	// A retained MQTT message reaches a new SN wildcard subscription with
	// REGISTER first and the retain flag set.
	if tok := paho.Publish("cloud/cfg/interval", 1, true, "60s"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if sa, err := sn.Subscribe(snpacket.TopicNormal, "cloud/cfg/+", 0, 1); err != nil || sa.ReturnCode != snpacket.Accepted {
		t.Fatal(sa, err)
	}
	m, err := sn.WaitMessage(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m.Topic != "cloud/cfg/interval" || string(m.Payload) != "60s" || m.QoS != 1 || !m.Retain {
		t.Errorf("SN got %+v, want the retained message", m)
	}
	if sn.Registers() != 1 {
		t.Errorf("gateway sent %d REGISTER, want 1 for the wildcard match", sn.Registers())
	}
	if err := sn.Disconnect(0); err != nil {
		t.Fatal(err)
	}
}

func shortID(s string) uint16 {
	id, _ := snpacket.ShortTopicID(s)
	return id
}

// tLog sends the gateway's log lines to t.Log.
type tLog struct{ t *testing.T }

func (w tLog) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
