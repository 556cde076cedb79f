package adapters

import (
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/outpost-iot/outpost/adapters/sim"
)

// A door contact (gpio-input) is published when it changes, at once and
// debounced, not only at the next poll: one publish per real change.
func TestInputPublishesOnChange(t *testing.T) {
	clock := sim.NewManualClock(t0)
	world := sim.NewWorld(clock.Now)
	pub := &recPub{clock: clock}
	cfg := SensorConfig{Name: "door", Driver: "gpio-input", Bus: BusConfig{Type: "gpio", Name: "GPIO27"}, Interval: time.Hour,
		Options: map[string]any{"debounce": "50ms", "invert": true}, Simulate: map[string]any{"state": 1}}
	a, err := New([]SensorConfig{cfg}, pub, Options{Clock: clock, Sim: world})
	if err != nil {
		t.Fatal(err)
	}
	run(t, a)
	pin := world.AddPin("GPIO27")
	step(t, clock, 1) // first poll
	waitFor(t, "first reading", func() bool { return len(pub.topic("sensors/door")) == 1 })
	if got := pub.last("sensors/door"); !strings.Contains(got, `"state":{"value":0}`) { // high, inverted
		t.Fatalf("closed door reads %s", got)
	}
	waitFor(t, "watcher", pin.WaitingForEdge)
	// The door opens with contact bounce: low-high-low.
	pin.Set(gpio.Low)
	pin.Set(gpio.High)
	pin.Set(gpio.Low)
	// The debouncer sleeps 50 ms on the clock (the poll loop sleeps too).
	if !clock.BlockUntil(2, 5*time.Second) {
		t.Fatal("debouncer did not wait")
	}
	clock.Advance(50 * time.Millisecond)
	waitFor(t, "change published", func() bool { return len(pub.topic("sensors/door")) == 2 })
	m := pub.topic("sensors/door")[1]
	if !strings.Contains(string(m.Payload), `"state":{"value":1}`) || !m.At.Equal(t0.Add(mustPhase(a, "door")).Add(50*time.Millisecond)) {
		t.Fatalf("change published %s at %s", m.Payload, m.At)
	}
	// Any further debounce rounds for the queued bounce edges change nothing.
	for clock.Waiters() > 1 || !pin.WaitingForEdge() {
		if clock.Waiters() > 1 {
			clock.Advance(50 * time.Millisecond)
		}
		time.Sleep(time.Millisecond)
	}
	if n := len(pub.topic("sensors/door")); n != 2 {
		t.Fatalf("%d publishes for one change", n)
	}
}

func mustPhase(a *Adapters, name string) time.Duration {
	p, _ := a.Phase(name)
	return p
}

// A DS18B20 behind a DS2482 bridge, configured through simulate:, with its
// power-on fault injected from the config: the status names the 85 °C value.
func TestBridgeProbePowerOnFault(t *testing.T) {
	clock := sim.NewManualClock(t0)
	pub := &recPub{clock: clock}
	cfgs := []SensorConfig{
		{Name: "tank", Driver: "ds18b20", Bus: BusConfig{Type: "i2c", Name: "1", Address: 0x19}, Interval: 5 * time.Second,
			Simulate: map[string]any{"temperature": 7.5, "fault": "power-on"}},
		{Name: "well", Driver: "ds18b20", Bus: BusConfig{Type: "i2c", Name: "1", Address: 0x18}, Interval: 5 * time.Second,
			Simulate: map[string]any{"temperature": 9.25}},
	}
	a, err := New(cfgs, pub, Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	run(t, a)
	for i := 0; i < 8; i++ {
		step(t, clock, 2)
	}
	waitFor(t, "status", func() bool { return pub.last("sensors/tank/status") != "" && pub.last("sensors/well") != "" })
	if got := pub.last("sensors/tank/status"); got != "error: probe temperature: reads 85 °C, its power-on value: no conversion (check power and the pull-up)" {
		t.Fatalf("tank status %q", got)
	}
	if got := pub.last("sensors/well"); !strings.Contains(got, `"temperature":{"value":9.25,"unit":"°C"}`) {
		t.Fatalf("well reading %s", got)
	}
}
