package adapters

import (
	"fmt"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/adapters/sim"
)

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// Over two simulated days the polls stay exactly on the grid start + phase +
// k·interval, even for a DS18B20 whose read itself takes 752 ms of clock time
// (conversion): the schedule is computed from the start, not by sleeping an
// interval after each read.
func TestNoDriftOverDays(t *testing.T) {
	clock := sim.NewManualClock(t0)
	pub := &recPub{clock: clock}
	cfgs := []SensorConfig{
		{Name: "door", Driver: "gpio-input", Bus: BusConfig{Type: "gpio", Name: "GPIO5"}, Interval: 13 * time.Second,
			Simulate: map[string]any{"state": 1}},
		{Name: "tank", Driver: "ds18b20", Bus: BusConfig{Type: "onewire", Name: "w1"}, Interval: 10 * time.Second,
			Simulate: map[string]any{"temperature": 9.5}},
	}
	a, err := New(cfgs, pub, Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	run(t, a)
	end := t0.Add(48 * time.Hour)
	for clock.Now().Before(end) {
		step(t, clock, 2)
	}
	for _, tc := range []struct {
		name     string
		interval time.Duration
		readTime time.Duration
	}{{"door", 13 * time.Second, 0}, {"tank", 10 * time.Second, 752 * time.Millisecond}} {
		ph, _ := a.Phase(tc.name)
		got := pub.topic("sensors/" + tc.name)
		want := int(48*time.Hour/tc.interval) - 1
		if len(got) < want {
			t.Fatalf("%s: %d readings in 48h, want at least %d", tc.name, len(got), want)
		}
		for k, m := range got {
			slot := t0.Add(ph + time.Duration(k)*tc.interval + tc.readTime)
			if !m.At.Equal(slot) {
				t.Fatalf("%s reading %d at %s, want %s (drift %s)", tc.name, k, m.At, slot, m.At.Sub(slot))
			}
		}
	}
}

// Twenty sensors on one bus get phases spread inside the jitter bound.
func TestJitterBounds(t *testing.T) {
	var cfgs []SensorConfig
	for i := 0; i < 20; i++ {
		cfgs = append(cfgs, SensorConfig{Name: fmt.Sprintf("probe%02d", i), Driver: "gpio-input",
			Bus: BusConfig{Type: "gpio", Name: fmt.Sprintf("GPIO%d", i)}, Interval: 10 * time.Second,
			Simulate: map[string]any{}})
	}
	for _, jitter := range []time.Duration{0, 2 * time.Second, time.Minute} {
		a, err := New(cfgs, &recPub{}, Options{Jitter: jitter})
		if err != nil {
			t.Fatal(err)
		}
		bound := 10 * time.Second
		if jitter > 0 && jitter < bound {
			bound = jitter
		}
		distinct := map[time.Duration]bool{}
		for _, s := range a.List() {
			if s.Phase < 0 || s.Phase >= bound {
				t.Errorf("jitter %s: %s phase %s outside [0, %s)", jitter, s.Name, s.Phase, bound)
			}
			distinct[s.Phase] = true
		}
		if len(distinct) < 15 {
			t.Errorf("jitter %s: only %d distinct phases for 20 sensors", jitter, len(distinct))
		}
		// Stable across restarts.
		b, _ := New(cfgs, &recPub{}, Options{Jitter: jitter})
		for i, s := range b.List() {
			if s.Phase != a.List()[i].Phase {
				t.Errorf("phase of %s changed between two New calls", s.Name)
			}
		}
	}
}

func TestNextSlot(t *testing.T) {
	base := t0.Add(3 * time.Second)
	iv := 10 * time.Second
	for _, tc := range []struct{ now, want time.Duration }{
		{0, 3 * time.Second},                   // before the first slot
		{3 * time.Second, 13 * time.Second},    // exactly on a slot: the next one
		{12 * time.Second, 13 * time.Second},   // late read
		{47 * time.Second, 53 * time.Second},   // overran several slots: skip them
		{53*time.Second + 1, 63 * time.Second}, // just after
	} {
		if got := nextSlot(base, iv, t0.Add(tc.now)); !got.Equal(t0.Add(tc.want)) {
			t.Errorf("nextSlot(now=%s) = %s, want %s", tc.now, got.Sub(t0), tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	e := &entry{a: &Adapters{opts: Options{RetryMin: time.Second, RetryMax: 5 * time.Minute}}, cfg: SensorConfig{Interval: time.Minute}}
	var got []time.Duration
	for n := 1; n <= 8; n++ {
		got = append(got, e.backoff(n))
	}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("backoff %v, want %v s", got, want)
		}
	}
}
