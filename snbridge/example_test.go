package snbridge_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/outpost-iot/outpost/snbridge"
	"github.com/outpost-iot/outpost/snbridge/internal/fakebroker"
	"github.com/outpost-iot/outpost/snbridge/snpacket"
	"github.com/outpost-iot/outpost/snbridge/sntest"
)

// The hub hands New the broker (msg.Sessions and msg.Publisher) and runs
// the gateway until shutdown.
func Example() {
	broker := fakebroker.New() // the hub passes *brokercore.Broker
	gw, err := snbridge.New(snbridge.Config{Listen: "127.0.0.1:0", AdvertiseInterval: -1, Broadcast: "127.0.0.1:9"},
		broker, slog.New(slog.DiscardHandler))
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- gw.Run(ctx) }()

	c, _ := sntest.Dial(gw.Addr().String(), sntest.Options{Timeout: 5 * time.Second})
	rc, _ := c.Connect(sntest.ConnectOptions{ClientID: "node-1", CleanSession: true, KeepAlive: 60})
	fmt.Println("CONNACK:", rc)
	id, _, _ := c.Register("site/temp")
	rc, _ = c.Publish(snpacket.TopicNormal, id, 1, false, []byte("21.5"))
	fmt.Println("PUBACK:", rc)
	fmt.Println("published:", broker.Published()[0].Topic)
	c.Close()

	stop()
	fmt.Println("Run:", <-done)
	// Output:
	// CONNACK: accepted
	// PUBACK: accepted
	// published: site/temp
	// Run: <nil>
}
