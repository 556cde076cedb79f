package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore"
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
