package client

import (
	"context"
	"log/slog"
	"testing"

	"github.com/outpost-iot/outpost/brokercore/packet"
	"github.com/outpost-iot/outpost/test/mosquittotest"
)

// BenchmarkPublish measures pipelined publishing to a real mosquitto on
// loopback (64-byte payloads, v5, window = mosquitto's Receive Maximum
// of 20), the uplink's pattern: PublishAsync in a loop, wait at the end.
func BenchmarkPublish(b *testing.B) {
	br := startMosquitto(b, mosquittotest.Options{LogTypes: []string{"error"}})
	for _, qos := range []byte{0, 1, 2} {
		b.Run("QoS"+string('0'+qos), func(b *testing.B) {
			ctx := context.Background()
			c, err := Dial(ctx, Config{URL: "mqtt://" + br.Addr(), ClientID: "bench", ProtocolVersion: packet.V5,
				CleanStart: true, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			payload := make([]byte, 64)
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			var last *Token
			for b.Loop() {
				t, err := c.PublishAsync(ctx, &Message{Topic: "bench/x", QoS: qos, Payload: payload})
				if err != nil {
					b.Fatal(err)
				}
				last = t
			}
			if err := last.Wait(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
}
