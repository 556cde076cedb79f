//go:build unix

package adapters

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/adapters/sim"
)

// BenchmarkPollCycle50 measures one poll cycle of 50 simulated sensors (10
// each of bme280, ina219, mcp9808, ads1115 and ds18b20, spread over 5 I²C
// buses and a 1-Wire bus): open once, then per iteration every sensor is
// read through the real periph driver over the chip model and its reading
// published (JSON encoded) to a recording publisher. It reports CPU time per
// reading (user+system from getrusage), which is what a Pi pays; wall time
// includes the drivers' own conversion sleeps (bmxx80 forced mode 8 ms,
// ads1x15 1.2 ms, aht20 80 ms), which cost no CPU.
func BenchmarkPollCycle50(b *testing.B) {
	all := benchConfigs()
	b.Run("all50", func(b *testing.B) { benchPoll(b, all) })
	for _, drv := range []string{"bme280", "ina219", "mcp9808", "ads1115", "ds18b20"} {
		var some []SensorConfig
		for _, c := range all {
			if c.Driver == drv {
				some = append(some, c)
			}
		}
		b.Run(drv, func(b *testing.B) { benchPoll(b, some) })
	}
}

func benchConfigs() []SensorConfig { // DS18B20 conversion waits go through the clock
	var cfgs []SensorConfig
	for i := 0; i < 10; i++ {
		bus := fmt.Sprint(1 + i/2)
		cfgs = append(cfgs,
			SensorConfig{Name: fmt.Sprintf("bme%d", i), Driver: "bme280", Bus: BusConfig{Type: "i2c", Name: bus, Address: 0x76 + uint16(i%2)},
				Simulate: map[string]any{"temperature": map[string]any{"base": 20, "noise": 0.1}}},
			SensorConfig{Name: fmt.Sprintf("ina%d", i), Driver: "ina219", Bus: BusConfig{Type: "i2c", Name: bus, Address: 0x40 + uint16(i%2)},
				Simulate: map[string]any{"voltage": 12.1, "current": 0.4}},
			SensorConfig{Name: fmt.Sprintf("mcp%d", i), Driver: "mcp9808", Bus: BusConfig{Type: "i2c", Name: bus, Address: 0x18 + uint16(i%2)},
				Simulate: map[string]any{"temperature": 4.5}},
			SensorConfig{Name: fmt.Sprintf("ads%d", i), Driver: "ads1115", Bus: BusConfig{Type: "i2c", Name: bus, Address: 0x48 + uint16(i%2)},
				Simulate: map[string]any{"ain0": 1.2, "ain1": 2.5}},
			SensorConfig{Name: fmt.Sprintf("ds%d", i), Driver: "ds18b20", Bus: BusConfig{Type: "onewire", Name: fmt.Sprintf("w%d", i)},
				Simulate: map[string]any{"temperature": 11.0}},
		)
	}
	return cfgs
}

func benchPoll(b *testing.B, cfgs []SensorConfig) {
	clock := sim.NewManualClock(t0)
	pub := &recPub{}
	a, err := New(cfgs, pub, Options{Clock: clock})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	b.ReportAllocs()
	// The DS18B20 conversion wait sleeps on the manual clock: a helper
	// advances it whenever somebody waits.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if clock.BlockUntil(1, 5*time.Millisecond) {
				clock.AdvanceToNext()
			}
		}
	}()
	defer func() { close(stop); <-done }()
	for _, e := range a.entries { // open every device outside the timing
		if !e.poll(ctx, true) {
			b.Fatalf("%s: %s", e.cfg.Name, e.st.Error)
		}
	}
	pub.msgs = nil
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	for b.Loop() {
		for _, e := range a.entries {
			if !e.poll(ctx, true) {
				b.Fatalf("%s: %s", e.cfg.Name, e.st.Error)
			}
		}
		pub.mu.Lock()
		pub.msgs = pub.msgs[:0]
		pub.mu.Unlock()
	}
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano()-ru0.Utime.Nano()) + time.Duration(ru1.Stime.Nano()-ru0.Stime.Nano())
	readings := float64(b.N * len(a.entries))
	b.ReportMetric(float64(cpu.Nanoseconds())/readings, "cpu-ns/reading")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "wall-ms/cycle")
}
