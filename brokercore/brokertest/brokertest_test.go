package brokertest_test

import (
	"net"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/brokertest"
	"github.com/outpost-iot/outpost/brokercore/msg"
)

func TestNewServer(t *testing.T) {
	var addr string
	t.Run("server", func(t *testing.T) {
		srv := brokertest.NewServer(t)
		addr = srv.Addr
		got := make(chan msg.Message, 1)
		cancel, err := srv.Broker.Subscribe("x", 1, func(m msg.Message) { got <- m })
		if err != nil {
			t.Fatal(err)
		}
		defer cancel()
		if err := srv.Broker.Publish(t.Context(), msg.Message{Topic: "x", QoS: 1, Payload: []byte("y")}); err != nil {
			t.Fatal(err)
		}
		if m := <-got; string(m.Payload) != "y" {
			t.Fatalf("got %q", m.Payload)
		}
		nc, err := net.DialTimeout("tcp", srv.Addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		nc.Close()
	})
	// t.Cleanup stopped it: the port no longer accepts.
	if nc, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		nc.Close()
		t.Fatal("server still listening after the test ended")
	}
}
