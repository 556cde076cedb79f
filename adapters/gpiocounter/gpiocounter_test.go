package gpiocounter

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/outpost-iot/outpost/adapters/sensor"
	"github.com/outpost-iot/outpost/adapters/sim"
)

type rig struct {
	t     *testing.T
	clock *sim.ManualClock
	pin   *sim.Pin
	world *sim.World
	spec  sensor.Spec
	dev   *Sensor
	stop  func()
}

func newRig(t *testing.T, dir string, opts map[string]any) *rig {
	clock := sim.NewManualClock(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC))
	w := sim.NewWorld(clock.Now)
	r := &rig{t: t, clock: clock, world: w, pin: w.AddPin("GPIO17"),
		spec: sensor.Spec{Name: "rain", Bus: sensor.BusRef{Type: "gpio", Name: "GPIO17"}, Options: opts, StateDir: dir, Clock: clock}}
	r.open()
	return r
}

func (r *rig) open() {
	d, err := Open(r.spec, r.world)
	if err != nil {
		r.t.Fatal(err)
	}
	r.dev = d
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { d.Watch(ctx, func() {}) })
	r.stop = func() { cancel(); wg.Wait() }
	deadline := time.Now().Add(5 * time.Second)
	for !r.pin.WaitingForEdge() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Microsecond)
	}
}

func (r *rig) close() {
	r.stop()
	if err := r.dev.Close(); err != nil {
		r.t.Fatal(err)
	}
}

// settle advances the clock through every debounce wait until the watcher
// is back waiting for an edge with nothing pending.
func (r *rig) settle(debounce time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	idle := 0
	for idle < 3 {
		if time.Now().After(deadline) {
			r.t.Fatal("watcher did not settle")
		}
		switch {
		case r.clock.Waiters() > 0:
			r.clock.Advance(debounce)
			idle = 0
		case r.pin.WaitingForEdge():
			idle++
			time.Sleep(time.Millisecond)
		default:
			time.Sleep(100 * time.Microsecond)
		}
	}
}

// tip is one bucket tip of a reed-switch rain gauge: the contact closes with
// bounce (low-high-low-high-low), stays closed, then opens with bounce.
func (r *rig) tip(debounce time.Duration) {
	for _, l := range []gpio.Level{gpio.Low, gpio.High, gpio.Low, gpio.High, gpio.Low} {
		r.pin.Set(l)
	}
	r.settle(debounce)
	for _, l := range []gpio.Level{gpio.High, gpio.Low, gpio.High} {
		r.pin.Set(l)
	}
	r.settle(debounce)
}

// Each tip of a bouncing rain gauge counts once; the total survives a restart
// (Close, then Open on the same state directory), and scale/unit apply.
func TestDebounceAndRestart(t *testing.T) {
	dir := t.TempDir()
	opts := map[string]any{"debounce": "20ms", "scale": 0.2794, "unit": "mm"}
	r := newRig(t, dir, opts)
	for i := 0; i < 5; i++ {
		r.tip(20 * time.Millisecond)
	}
	if got := r.dev.Pulses(); got != 5 {
		t.Fatalf("5 bouncing tips counted as %d", got)
	}
	r.clock.Advance(time.Minute)
	vals, err := r.dev.Read(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if vals[0].Quantity != "total" || vals[0].Unit != "mm" || vals[0].Value < 1.396 || vals[0].Value > 1.398 {
		t.Fatalf("total %+v, want 1.397 mm", vals[0])
	}
	if vals[1].Unit != "mm/min" || vals[1].Value <= 0 {
		t.Fatalf("rate %+v", vals[1])
	}
	r.tip(20 * time.Millisecond) // counted after the last save: Close must save it
	r.close()

	b, err := os.ReadFile(filepath.Join(dir, "rain.counter.json"))
	if err != nil || !strings.Contains(string(b), `"pulses":6`) {
		t.Fatalf("state file %q, %v", b, err)
	}
	r.open()
	if got := r.dev.Pulses(); got != 6 {
		t.Fatalf("after restart %d pulses, want 6", got)
	}
	r.tip(20 * time.Millisecond)
	if got := r.dev.Pulses(); got != 7 {
		t.Fatalf("after restart and a tip: %d, want 7", got)
	}
	r.close()
}

// Without debounce the same contact counts its bounces: the test above would
// fail if debouncing did nothing.
func TestBounceWithoutDebounceOvercounts(t *testing.T) {
	r := newRig(t, "", map[string]any{"debounce": "0s"})
	defer r.close()
	for _, l := range []gpio.Level{gpio.Low, gpio.High, gpio.Low, gpio.High, gpio.Low} {
		r.pin.Set(l)
		deadline := time.Now().Add(5 * time.Second)
		for !r.pin.WaitingForEdge() && time.Now().Before(deadline) {
			time.Sleep(100 * time.Microsecond)
		}
	}
	if got := r.dev.Pulses(); got != 3 {
		t.Fatalf("undebounced bouncing closure counted %d, want 3", got)
	}
}

// A short glitch (shorter than debounce) is not counted.
func TestGlitchIgnored(t *testing.T) {
	r := newRig(t, "", map[string]any{"debounce": "30ms"})
	defer r.close()
	r.pin.Set(gpio.Low)
	r.pin.Set(gpio.High)
	r.settle(30 * time.Millisecond)
	if got := r.dev.Pulses(); got != 0 {
		t.Fatalf("glitch counted %d", got)
	}
}

func TestCorruptStateFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "rain.counter.json"), []byte("{garbage"), 0o600)
	clock := sim.NewManualClock(time.Now())
	w := sim.NewWorld(clock.Now)
	w.AddPin("GPIO17")
	_, err := Open(sensor.Spec{Name: "rain", Bus: sensor.BusRef{Type: "gpio", Name: "GPIO17"}, StateDir: dir, Clock: clock}, w)
	if err == nil || !strings.Contains(err.Error(), "read counter state "+filepath.Join(dir, "rain.counter.json")) {
		t.Fatalf("got %v", err)
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		opts map[string]any
		want string
	}{
		{map[string]any{"edge": "both"}, `option edge: "both" is not falling or rising`},
		{map[string]any{"pull": "sideways"}, `option pull: "sideways" is not up, down or none`},
		{map[string]any{"scale": 0}, `option scale: 0 is not positive`},
		{map[string]any{"debounce": "2s"}, `option debounce: 2s is not between 0 and 1s`},
		{map[string]any{"debounce": "soon"}, `option debounce: soon is not a duration like 50ms`},
		{map[string]any{"debouce": "5ms"}, `unknown option debouce`},
	} {
		if _, err := Parse(tc.opts); err == nil || err.Error() != tc.want {
			t.Errorf("Parse(%v) = %v, want %q", tc.opts, err, tc.want)
		}
	}
}
