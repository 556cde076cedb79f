package adapters

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/adapters/sim"
	"github.com/outpost-iot/outpost/brokercore/msg"
)

// A BME280 vanishes (NACK): its retained status topic says why, the DS18B20
// and the rain gauge keep publishing on schedule, and when the chip answers
// again it resumes (status online, readings again) without a restart.
func TestVanishedSensorOthersKeepPublishing(t *testing.T) {
	clock := sim.NewManualClock(t0)
	world := sim.NewWorld(clock.Now)
	pub := &recPub{clock: clock}
	cfgs := DefaultSensors()
	a, err := New(cfgs, pub, Options{Clock: clock, Sim: world, StateDir: t.TempDir(), RetryMin: time.Second, RetryMax: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	run(t, a)
	// 3 loops asleep; the counter's debouncer may also wait on the clock.
	stepUntil := func(d time.Duration) {
		end := clock.Now().Add(d)
		for clock.Now().Before(end) {
			step(t, clock, 3)
		}
	}
	stepUntil(30 * time.Second)
	if got := pub.last("sensors/weather/status"); got != "online" {
		t.Fatalf("weather status %q before the fault", got)
	}
	bme := world.AddI2C("1").Device(0x76).(*sim.BME280)
	bme.SetFault(sim.FaultNACK)
	weatherBefore := len(pub.topic("sensors/weather"))
	waterBefore := len(pub.topic("sensors/water"))
	rainBefore := len(pub.topic("sensors/rain"))
	stepUntil(60 * time.Second)

	st := pub.topic("sensors/weather/status")
	last := st[len(st)-1]
	if !strings.HasPrefix(string(last.Payload), "error: ") || !strings.Contains(string(last.Payload), "address not acknowledged") {
		t.Fatalf("weather status %q, want error: ... address not acknowledged", last.Payload)
	}
	if !last.Retain {
		t.Error("status topic not retained")
	}
	if n := len(pub.topic("sensors/weather")); n != weatherBefore {
		t.Errorf("vanished sensor published %d readings", n-weatherBefore)
	}
	if n := len(pub.topic("sensors/water")) - waterBefore; n < 11 {
		t.Errorf("water published %d readings in 60 s while weather was down, want 12", n)
	}
	if n := len(pub.topic("sensors/rain")) - rainBefore; n < 5 {
		t.Errorf("rain published %d readings in 60 s while weather was down, want 6", n)
	}
	var ws Status
	for _, s := range a.Status() {
		if s.Name == "weather" {
			ws = s
		}
	}
	if ws.State != StateError || ws.Errors == 0 || !strings.Contains(ws.Error, "not acknowledged") {
		t.Errorf("Status() for weather = %+v", ws)
	}
	// Status is published on change only, not on every failed retry.
	errs := 0
	for _, m := range st {
		if strings.HasPrefix(string(m.Payload), "error") {
			errs++
		}
	}
	if errs > 2 {
		t.Errorf("%d error statuses published for one fault", errs)
	}

	bme.SetFault(sim.FaultNone)
	stepUntil(30 * time.Second)
	if got := pub.last("sensors/weather/status"); got != "online" {
		t.Fatalf("weather status %q after repair, want online", got)
	}
	if n := len(pub.topic("sensors/weather")); n <= weatherBefore {
		t.Fatal("weather did not publish after repair")
	}
}

// Payload shape: time first, quantities with value and unit, retained when
// configured; plain per-quantity topics carry bare numbers.
func TestPayloadAndPlainTopics(t *testing.T) {
	pub := &recPub{}
	cfg := SensorConfig{Name: "mast", Driver: "bme280", Bus: BusConfig{Type: "i2c", Name: "1", Address: 0x77},
		Interval: time.Second, QoS: 1, PlainTopics: true,
		Simulate: map[string]any{"temperature": 21.5, "humidity": 40, "pressure": 101325}}
	a, err := New([]SensorConfig{cfg}, pub, Options{Jitter: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, a)
	waitFor(t, "a reading", func() bool { return len(pub.topic("sensors/mast/pressure")) > 0 })
	stop()
	m := pub.topic("sensors/mast")[0]
	p := string(m.Payload)
	if !m.Retain || m.QoS != 1 {
		t.Errorf("retain %v qos %d", m.Retain, m.QoS)
	}
	if !strings.HasPrefix(p, `{"time":"`) || !strings.Contains(p, `"temperature":{"value":21.5,"unit":"°C"}`) {
		t.Errorf("payload %s", p)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(p), &raw); err != nil {
		t.Fatalf("payload %s: %v", p, err)
	}
	type q struct {
		Value float64
		Unit  string
	}
	doc := map[string]q{}
	for k, v := range raw {
		var x q
		if k != "time" && json.Unmarshal(v, &x) == nil {
			doc[k] = x
		}
	}
	if h := doc["humidity"]; math.Abs(h.Value-40) > 0.01 || h.Unit != "%" {
		t.Errorf("humidity %+v", h)
	}
	if pr := doc["pressure"]; math.Abs(pr.Value-101325) > 0.2 || pr.Unit != "Pa" {
		t.Errorf("pressure %+v", pr)
	}
	if got := pub.last("sensors/mast/temperature"); got != "21.5" {
		t.Errorf("plain topic %q", got)
	}
	if got := pub.last("sensors/mast/status"); got != "offline" {
		t.Errorf("status after shutdown %q", got)
	}
}

func TestAppendPayload(t *testing.T) {
	got := string(AppendPayload(nil, time.Date(2026, 11, 28, 13, 5, 0, 123456789, time.FixedZone("x", 3600)),
		[]Value{{Quantity: "temperature", Value: 21.49999, Unit: "°C"}, {Quantity: "state", Value: 1}, {Quantity: "bad", Value: mathInf()}}))
	want := `{"time":"2026-11-28T12:05:00.123Z","temperature":{"value":21.5,"unit":"°C"},"state":{"value":1},"bad":{"value":null}}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// Deadband with max_interval: small moves are not published, a big one is,
// and max_interval forces a publish; averaging smooths over N readings.
func TestDeadbandAndAverage(t *testing.T) {
	var p pubState
	c := SensorConfig{Deadband: map[string]float64{"temperature": 0.5}, MaxInterval: time.Minute}
	v := func(x float64) []Value { return []Value{{Quantity: "temperature", Value: x}} }
	steps := []struct {
		at   time.Duration
		val  float64
		want bool
	}{
		{0, 20, true}, {10 * time.Second, 20.3, false}, {20 * time.Second, 20.49, false},
		{30 * time.Second, 20.5, true}, {40 * time.Second, 20.6, false}, {90 * time.Second, 20.6, true},
	}
	for _, s := range steps {
		if got := p.due(v(s.val), c, t0.Add(s.at)); got != s.want {
			t.Errorf("at %s value %v: due %v, want %v", s.at, s.val, got, s.want)
		}
	}
	// Two quantities, a deadband only on temperature: humidity is published
	// when it changes at all, not on every reading.
	var h pubState
	two := func(tv, hv float64) []Value {
		return []Value{{Quantity: "temperature", Value: tv}, {Quantity: "humidity", Value: hv}}
	}
	for i, s := range []struct {
		tv, hv float64
		want   bool
	}{{20, 40, true}, {20.1, 40, false}, {20.1, 40, false}, {20.1, 40.5, true}, {20.2, 40.5, false}} {
		if got := h.due(two(s.tv, s.hv), c, t0.Add(time.Duration(i)*time.Second)); got != s.want {
			t.Errorf("two quantities step %d %+v: due %v", i, s, got)
		}
	}
	var q pubState
	var got []float64
	for _, x := range []float64{10, 20, 30, 40} {
		got = append(got, q.average(v(x), 3)[0].Value)
	}
	if want := []float64{10, 15, 20, 30}; !equal(got, want) {
		t.Errorf("average %v, want %v", got, want)
	}
}

// A failing publisher is counted, the sensor is still read.
func TestPublishErrorCounted(t *testing.T) {
	pub := &recPub{fail: errors.New("quota exceeded")}
	cfg := SensorConfig{Name: "p", Driver: "gpio-input", Bus: BusConfig{Type: "gpio", Name: "GPIO4"}, Interval: 100 * time.Millisecond, Simulate: map[string]any{}}
	a, err := New([]SensorConfig{cfg}, pub, Options{Jitter: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	run(t, a)
	waitFor(t, "publish errors", func() bool { s := a.Status()[0]; return s.PublishErrors >= 2 && s.Reads >= 1 })
}

// ReadNow opens, reads and closes without Run; an unknown name says what exists.
func TestReadNowAndList(t *testing.T) {
	a, err := New(DefaultSensors(), &recPub{}, Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	r, err := a.ReadNow(context.Background(), "weather")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Values) != 3 || r.Values[0].Quantity != "temperature" {
		t.Fatalf("reading %+v", r)
	}
	if _, err := a.ReadNow(context.Background(), "nope"); err == nil || err.Error() != `no sensor called "nope" (have: weather, water, rain)` {
		t.Fatalf("ReadNow(nope): %v", err)
	}
	b, err := New([]SensorConfig{{Name: "valve", Driver: "gpio-output", Bus: BusConfig{Type: "gpio", Name: "GPIO22"}, Simulate: map[string]any{}}},
		&recPub{}, Options{Subscriber: &fakeSub{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.ReadNow(context.Background(), "valve"); err == nil || !strings.Contains(err.Error(), "opening it here would drive it to its initial state") {
		t.Fatalf("ReadNow of an output without Run: %v", err)
	}
	l := a.List()
	if len(l) != 3 || l[0].Topic != "sensors/weather" || !l[0].Simulated || l[2].Bus != "gpio GPIO17" {
		t.Fatalf("List %+v", l)
	}
}

// gpio-output: a command on sensors/<name>/set drives the pin and the new
// state is published at once.
func TestOutputCommand(t *testing.T) {
	sub := &fakeSub{}
	pub := &recPub{}
	world := sim.NewWorld(nil)
	cfg := SensorConfig{Name: "valve", Driver: "gpio-output", Bus: BusConfig{Type: "gpio", Name: "GPIO22"}, Interval: time.Hour,
		Options: map[string]any{"active_low": true}, Simulate: map[string]any{}}
	a, err := New([]SensorConfig{cfg}, pub, Options{Subscriber: sub, Sim: world, Jitter: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	run(t, a)
	waitFor(t, "subscription", func() bool { return sub.has("sensors/valve/set") })
	waitFor(t, "first reading", func() bool { return len(pub.topic("sensors/valve")) == 1 })
	if r, err := a.ReadNow(context.Background(), "valve"); err != nil || r.Values[0].Value != 0 {
		t.Fatalf("ReadNow of a running output: %+v, %v", r, err)
	}
	sub.deliver("sensors/valve/set", "on")
	waitFor(t, "state on", func() bool { return strings.Contains(pub.last("sensors/valve"), `"state":{"value":1}`) })
	pin := world.AddPin("GPIO22")
	if outs := pin.Outs(); len(outs) != 2 || outs[1] != false { // active low: on = Low
		t.Fatalf("pin outputs %v", outs)
	}
	sub.deliver("sensors/valve/set", `{"state":"off"}`)
	waitFor(t, "state off", func() bool { return strings.Contains(pub.last("sensors/valve"), `"state":{"value":0}`) })
	n := len(pub.topic("sensors/valve"))
	sub.deliver("sensors/valve/set", "bogus")
	sub.deliver("sensors/valve/set", "toggle")
	waitFor(t, "toggle", func() bool { return strings.Contains(pub.last("sensors/valve"), `"state":{"value":1}`) })
	if got := len(pub.topic("sensors/valve")); got != n+1 {
		t.Errorf("%d publishes after bogus+toggle, want 1", got-n)
	}
}

type fakeSub struct {
	mu   sync.Mutex
	subs map[string]func(msg.Message)
}

func (f *fakeSub) Subscribe(filter string, qos byte, fn func(msg.Message)) (func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subs == nil {
		f.subs = map[string]func(msg.Message){}
	}
	f.subs[filter] = fn
	return func() { f.mu.Lock(); delete(f.subs, filter); f.mu.Unlock() }, nil
}

func (f *fakeSub) has(t string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.subs[t] != nil
}

func (f *fakeSub) deliver(topic, payload string) {
	f.mu.Lock()
	fn := f.subs[topic]
	f.mu.Unlock()
	fn(msg.Message{Topic: topic, Payload: []byte(payload)})
}

// stuck_after: a chip whose values freeze is flagged on its status topic
// while its readings keep flowing; it is online again once values move.
func TestStuckAfter(t *testing.T) {
	clock := sim.NewManualClock(t0)
	world := sim.NewWorld(clock.Now)
	pub := &recPub{clock: clock}
	cfg := SensorConfig{Name: "mast", Driver: "bme280", Bus: BusConfig{Type: "i2c", Name: "1", Address: 0x76}, Interval: 10 * time.Second,
		StuckAfter: time.Minute, Simulate: map[string]any{"temperature": map[string]any{"base": 20, "drift": 1000}}}
	a, err := New([]SensorConfig{cfg}, pub, Options{Clock: clock, Sim: world})
	if err != nil {
		t.Fatal(err)
	}
	run(t, a)
	steps := func(n int) {
		for i := 0; i < n; i++ {
			step(t, clock, 1)
		}
		waitFor(t, "loop asleep", func() bool { return clock.Waiters() == 1 })
	}
	steps(10)
	if got := pub.last("sensors/mast/status"); got != "online" {
		t.Fatalf("status %q with moving values", got)
	}
	chip := world.AddI2C("1").Device(0x76).(*sim.BME280)
	chip.SetFault(sim.FaultStuck)
	n := len(pub.topic("sensors/mast"))
	steps(8)
	if got := pub.last("sensors/mast/status"); got != "error: values unchanged for 1m0s or more (stuck sensor?)" {
		t.Fatalf("status %q after 80 s stuck", got)
	}
	if len(pub.topic("sensors/mast")) <= n {
		t.Fatal("readings stopped while stuck")
	}
	chip.SetFault(sim.FaultNone)
	steps(2)
	if got := pub.last("sensors/mast/status"); got != "online" {
		t.Fatalf("status %q after values moved again", got)
	}
}

// A bus-wide fault (SDA held low) fails every sensor on that I²C bus, names
// the bus error on their status topics, and leaves the 1-Wire probe alone;
// when the bus recovers, both I²C sensors come back.
func TestBusErrorOnOneBus(t *testing.T) {
	clock := sim.NewManualClock(t0)
	world := sim.NewWorld(clock.Now)
	pub := &recPub{clock: clock}
	cfgs := []SensorConfig{
		{Name: "mast", Driver: "bme280", Bus: BusConfig{Type: "i2c", Name: "1"}, Interval: 10 * time.Second, Simulate: map[string]any{}},
		{Name: "box", Driver: "mcp9808", Bus: BusConfig{Type: "i2c", Name: "1"}, Interval: 10 * time.Second, Simulate: map[string]any{}},
		{Name: "tank", Driver: "ds18b20", Bus: BusConfig{Type: "onewire", Name: "w1"}, Interval: 10 * time.Second, Simulate: map[string]any{}},
	}
	a, err := New(cfgs, pub, Options{Clock: clock, Sim: world})
	if err != nil {
		t.Fatal(err)
	}
	run(t, a)
	steps := func(d time.Duration) {
		end := clock.Now().Add(d)
		for clock.Now().Before(end) {
			step(t, clock, 3)
		}
	}
	steps(20 * time.Second)
	world.AddI2C("1").SetBusError(errors.New("SDA held low"))
	tank := len(pub.topic("sensors/tank"))
	steps(40 * time.Second)
	for _, n := range []string{"mast", "box"} {
		if got := pub.last("sensors/" + n + "/status"); !strings.HasPrefix(got, "error: ") || !strings.Contains(got, "SDA held low") {
			t.Errorf("%s status %q", n, got)
		}
	}
	if got := len(pub.topic("sensors/tank")) - tank; got < 3 {
		t.Errorf("tank published %d readings during the I²C fault", got)
	}
	world.AddI2C("1").SetBusError(nil)
	steps(30 * time.Second)
	for _, n := range []string{"mast", "box", "tank"} {
		if got := pub.last("sensors/" + n + "/status"); got != "online" {
			t.Errorf("%s status %q after the bus recovered", n, got)
		}
	}
}
