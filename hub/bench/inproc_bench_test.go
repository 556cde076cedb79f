package bench

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore"
	"github.com/outpost-iot/outpost/storeforward"
	"github.com/outpost-iot/outpost/storeforward/queue"
)

// BenchmarkInProcess runs the fan-in and fan-out scenarios against a broker
// in this process, so that one CPU profile holds the broker's hot spots
// (the tool's own frames are in package bench and easy to set aside):
//
//	go test ./hub/bench -run '^$' -bench InProcess/fan-in-qos1 -benchtime 200000x -cpuprofile cpu.out
//	go tool pprof -top -focus brokercore cpu.out
//
// b.N is the number of deliveries (connections: of connections). The broker's CPU per message is measured
// by test/bench/compare.sh against the real binary; here ns/op mixes broker
// and tool.
func BenchmarkInProcess(b *testing.B) {
	for _, c := range []Config{
		{Scenario: FanIn, QoS: 0}, {Scenario: FanIn, QoS: 1}, {Scenario: FanIn, QoS: 2},
		{Scenario: FanOut, QoS: 0}, {Scenario: FanOut, QoS: 1},
		{Scenario: Connections},
	} {
		name := fmt.Sprintf("%s-qos%d", c.Scenario, c.QoS)
		if c.Scenario == Connections {
			name = Connections
		}
		b.Run(name, func(b *testing.B) {
			srv := quietBroker(b, brokercore.Config{MaxQueued: 1 << 20}, brokercore.Options{})
			c := c.Defaults()
			c.Addr, c.Idle = srv.Addr, 5*time.Second
			switch c.Scenario {
			case FanIn:
				c.Messages = max(1, b.N/c.Publishers)
			case FanOut:
				c.Messages = max(1, b.N/c.Subscribers)
			case Connections:
				c.Messages = b.N
			}
			b.ResetTimer()
			res, err := Run(context.Background(), c)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(res.Lost), "lost")
			b.ReportMetric(res.ToolUSPer*1000, "tool-ns/op")
		})
	}
}

// BenchmarkInProcessDurable is the durable scenario with the forwarding tap
// wired as the hub does (Badger queue in b.TempDir, uplink off): b.N QoS 1
// publishes from 4 publishers, each acknowledged once it is in the queue.
//
//	go test ./hub/bench -run '^$' -bench InProcessDurable -benchtime 100000x -cpuprofile cpu.out
func BenchmarkInProcessDurable(b *testing.B) {
	db, err := queue.Open(b.TempDir(), queue.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	srv := quietBroker(b, brokercore.Config{}, brokercore.Options{Store: db})
	f, err := storeforward.New(storeforward.Config{Forward: []storeforward.ForwardRule{{Filter: "bench/#", QoS: 1}}},
		storeforward.Deps{DB: db, Publisher: srv.Broker, SysInterval: 100 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	srv.Broker.AddTap(f.Tap())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() { cancel(); <-done }()
	b.ResetTimer()
	res, err := Run(context.Background(), Config{Scenario: Durable, Addr: srv.Addr, Publishers: 4, Messages: max(1, b.N/4), SysWait: 5 * time.Second})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if res.Queued == nil || *res.Queued != int64(4*max(1, b.N/4)) {
		b.Fatalf("queued %v of %d", res.Queued, 4*max(1, b.N/4))
	}
	b.ReportMetric(res.AckP50us, "ack-p50-µs")
}
