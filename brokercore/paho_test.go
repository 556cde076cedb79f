package brokercore_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/outpost-iot/outpost/brokercore/brokertest"
	"github.com/outpost-iot/outpost/brokercore/msg"
)

// v3client connects a paho.mqtt.golang (MQTT 3.1.1) client.
func v3client(t *testing.T, addr, id string, clean bool, configure ...func(*paho.ClientOptions)) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetCleanSession(clean).
		SetAutoReconnect(false).SetConnectRetry(false).SetProtocolVersion(4).SetOrderMatters(true)
	for _, f := range configure {
		f(o)
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func wait(t *testing.T, tok paho.Token, what string) {
	t.Helper()
	if !tok.WaitTimeout(5 * time.Second) {
		t.Fatalf("%s: timed out", what)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// collector gathers received messages; waitN polls with a deadline.
type collector struct {
	mu   sync.Mutex
	msgs []paho.Message
}

func (c *collector) handler(_ paho.Client, m paho.Message) {
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
}

func (c *collector) waitN(t *testing.T, n int) []paho.Message {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		got := append([]paho.Message(nil), c.msgs...)
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %d messages, want %d", len(got), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPaho311PublishSubscribeAllQoS(t *testing.T) {
	srv := brokertest.NewServer(t)
	var col collector
	sub := v3client(t, srv.Addr, "sub", true)
	wait(t, sub.Subscribe("a/#", 2, col.handler), "subscribe")
	pub := v3client(t, srv.Addr, "pub", true)
	for qos := byte(0); qos <= 2; qos++ {
		for i := 0; i < 10; i++ {
			wait(t, pub.Publish(fmt.Sprintf("a/q%d", qos), qos, false, fmt.Sprintf("%d-%d", qos, i)), "publish")
		}
	}
	got := col.waitN(t, 30)
	next := map[byte]int{}
	for _, m := range got {
		want := fmt.Sprintf("%d-%d", m.Qos(), next[m.Qos()])
		if string(m.Payload()) != want {
			t.Fatalf("got %q at qos %d, want %q (order [MQTT-4.6.0-5])", m.Payload(), m.Qos(), want)
		}
		next[m.Qos()]++
	}
}

func msgOf(topic, payload string) msg.Message {
	return msg.Message{Topic: topic, QoS: 1, Payload: []byte(payload)}
}
