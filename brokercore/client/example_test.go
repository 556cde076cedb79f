package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/outpost-iot/outpost/brokercore/client"
	"github.com/outpost-iot/outpost/brokercore/packet"
)

// A persistent QoS 1 publisher with a window of messages in flight: what
// the uplink does. On a drop, Dial again with the same Store and the
// unacknowledged messages are resent in order (Resumed).
func ExampleClient_PublishAsync() {
	store := new(client.MemoryStore) // the uplink uses a durable one
	cfg := client.Config{
		URL:             "mqtts://cloud.example.com:8883",
		ClientID:        "outpost-pump-station-7",
		ProtocolVersion: packet.V5,
		SessionExpiry:   7 * 24 * 3600,
		Store:           store,
	}
	ctx := context.Background()
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Disconnect(ctx)
	for _, t := range c.Resumed() {
		fmt.Println("resending message tagged", t.Message().Tag)
	}
	var toks []*client.Token
	for i := range 100 {
		// Waits only when the server's Receive Maximum is reached.
		t, err := c.PublishAsync(ctx, &client.Message{Topic: "sites/7/t", QoS: 1, Payload: []byte(fmt.Sprint(i)), Tag: uint64(i)})
		if err != nil {
			log.Fatal(err)
		}
		toks = append(toks, t)
	}
	for _, t := range toks {
		if err := t.Wait(ctx); err != nil {
			log.Printf("message %d: %v", t.Message().Tag, err)
		}
	}
}

func ExampleClient_Subscribe() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{URL: "mqtt://127.0.0.1:1883", ClientID: "watcher", CleanStart: true})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Disconnect(ctx)
	codes, err := c.Subscribe(ctx, []packet.Subscription{{Filter: "sensors/#", QoS: 1}}, func(m *client.Message) {
		fmt.Printf("%s %s\n", m.Topic, m.Payload) // runs on the reader goroutine
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("granted QoS", codes[0])
	<-ctx.Done()
}
