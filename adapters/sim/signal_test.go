package sim

import (
	"math"
	"testing"
	"time"
)

func TestSignal(t *testing.T) {
	day := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	clock := NewManualClock(day)
	lo, hi := 0.0, 30.0
	c := newChip(clock.Now, "s", map[string]Signal{
		"t": {Base: 20, Daily: 5, PeakHour: 15},
		"d": {Base: 10, Drift: 2},
		"c": {Base: 25, Daily: 10, Min: &lo, Max: &hi},
		"n": {Base: 0, Noise: 1},
	})
	at := func(q string, d time.Duration) float64 {
		c.mu.Lock()
		defer c.mu.Unlock()
		clock.mu.Lock()
		clock.now = day.Add(d)
		clock.mu.Unlock()
		return c.value(q, 0)
	}
	if v := at("t", 15*time.Hour); math.Abs(v-25) > 1e-9 {
		t.Errorf("daily peak at 15:00 = %v, want 25", v)
	}
	if v := at("t", 3*time.Hour); math.Abs(v-15) > 1e-9 {
		t.Errorf("daily trough at 03:00 = %v, want 15", v)
	}
	if v := at("d", 36*time.Hour); math.Abs(v-13) > 1e-9 {
		t.Errorf("drift after 1.5 days = %v, want 13", v)
	}
	if v := at("c", 15*time.Hour); v != 30 {
		t.Errorf("clamped peak = %v, want 30", v)
	}
	var sum, sq float64
	for i := 0; i < 2000; i++ {
		v := at("n", 0)
		sum += v
		sq += v * v
	}
	if mean, sd := sum/2000, math.Sqrt(sq/2000); math.Abs(mean) > 0.1 || math.Abs(sd-1) > 0.1 {
		t.Errorf("noise mean %v sd %v, want 0 and 1", mean, sd)
	}
	if _, err := ParseSignal(map[string]any{"base": 1, "min": 5, "max": 2}); err == nil || err.Error() != "min 5 above max 2" {
		t.Errorf("ParseSignal: %v", err)
	}
	if _, err := ParseSignal(map[string]any{"bass": 1}); err == nil || err.Error() != "unknown option bass" {
		t.Errorf("ParseSignal: %v", err)
	}
}
