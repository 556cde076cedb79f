package sim

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/outpost-iot/outpost/adapters/sensor"
)

// Signal is the value a chip model produces over time:
//
//	v(t) = Base + Daily·sin(2π(h−PeakHour+6)/24) + Drift·days + Noise·N(0,1)
//
// with h the hour of day of t (UTC) and days the time since the model was
// created, then clamped to [Min, Max] when those are set. Daily is the
// amplitude of the day/night swing (peak at PeakHour, default 15:00).
type Signal struct {
	Base     float64
	Daily    float64
	PeakHour float64
	Drift    float64 // per day
	Noise    float64 // standard deviation
	Min, Max *float64
}

// Constant returns a signal that always reads v.
func Constant(v float64) Signal { return Signal{Base: v} }

// ParseSignal reads one entry of a simulate: map: a number (the base value)
// or a map with keys base, daily, peak_hour, drift, noise, min, max.
func ParseSignal(v any) (Signal, error) {
	if f, ok := sensor.ToFloat(v); ok {
		return Signal{Base: f}, nil
	}
	m, ok := sensor.ToMap(v)
	if !ok {
		return Signal{}, fmt.Errorf("%v is neither a number nor a signal map", v)
	}
	o := sensor.NewOptions(m)
	s := Signal{
		Base:     o.Float("base", 0),
		Daily:    o.Float("daily", 0),
		PeakHour: o.Float("peak_hour", 15),
		Drift:    o.Float("drift", 0),
		Noise:    o.Float("noise", 0),
	}
	if o.Has("min") {
		x := o.Float("min", 0)
		s.Min = &x
	}
	if o.Has("max") {
		x := o.Float("max", 0)
		s.Max = &x
	}
	if err := o.Err(); err != nil {
		return Signal{}, err
	}
	if s.Min != nil && s.Max != nil && *s.Min > *s.Max {
		return Signal{}, fmt.Errorf("min %g above max %g", *s.Min, *s.Max)
	}
	return s, nil
}

// at evaluates the signal; n is a standard normal sample.
func (s Signal) at(t, start time.Time, n float64) float64 {
	v := s.Base
	if s.Daily != 0 {
		peak := s.PeakHour
		if peak == 0 {
			peak = 15
		}
		h := float64(t.UTC().Hour()) + float64(t.UTC().Minute())/60 + float64(t.UTC().Second())/3600
		v += s.Daily * math.Sin(2*math.Pi*(h-peak+6)/24)
	}
	if s.Drift != 0 {
		v += s.Drift * t.Sub(start).Hours() / 24
	}
	v += s.Noise * n
	if s.Min != nil && v < *s.Min {
		v = *s.Min
	}
	if s.Max != nil && v > *s.Max {
		v = *s.Max
	}
	return v
}

// Fault is a failure a chip model can be told to show.
type Fault int

const (
	// FaultNone: the chip works.
	FaultNone Fault = iota
	// FaultNACK: the chip has vanished: it does not acknowledge its
	// address (I²C), gives no presence pulse (1-Wire) or reads all ones (SPI).
	FaultNACK
	// FaultBusError: every transfer with the chip fails with a bus error.
	FaultBusError
	// FaultStuck: the chip answers but its values stop changing.
	FaultStuck
	// FaultOutOfRange: the chip reports full-scale values, outside what it can measure.
	FaultOutOfRange
	// FaultPowerOn: the chip lost power and reads its power-on reset value
	// (85 °C for a DS18B20, which then never converts: insufficient pull-up).
	FaultPowerOn
)

// ParseFault maps the simulate: fault key to a Fault.
func ParseFault(s string) (Fault, error) {
	switch s {
	case "", "none":
		return FaultNone, nil
	case "nack", "vanished":
		return FaultNACK, nil
	case "bus-error":
		return FaultBusError, nil
	case "stuck":
		return FaultStuck, nil
	case "out-of-range":
		return FaultOutOfRange, nil
	case "power-on":
		return FaultPowerOn, nil
	}
	return FaultNone, fmt.Errorf("unknown fault %q (want none, nack, bus-error, stuck, out-of-range or power-on)", s)
}

func (f Fault) String() string {
	return [...]string{"none", "nack", "bus-error", "stuck", "out-of-range", "power-on"}[f]
}

// Chip is the part every chip model shares: its signals, its clock, its
// fault. Models embed it.
type Chip struct {
	mu      sync.Mutex
	now     func() time.Time
	start   time.Time
	rnd     *rand.Rand
	signals map[string]Signal
	stuck   map[string]float64
	fault   Fault
}

func newChip(now func() time.Time, seed string, signals map[string]Signal) Chip {
	h := fnv.New64a()
	h.Write([]byte(seed))
	if signals == nil {
		signals = map[string]Signal{}
	}
	return Chip{now: now, start: now(), rnd: rand.New(rand.NewPCG(h.Sum64(), 1)), signals: signals}
}

// SetFault makes the chip show f from now on (FaultNone repairs it).
func (c *Chip) SetFault(f Fault) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fault = f
	if f != FaultStuck {
		c.stuck = nil
	}
}

// Fault returns the current fault.
func (c *Chip) Fault() Fault {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fault
}

// SetSignal replaces the signal of quantity q.
func (c *Chip) SetSignal(q string, s Signal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.signals[q] = s
}

// value returns quantity q now; def is used when q has no signal. Call with c.mu held.
func (c *Chip) value(q string, def float64) float64 {
	if c.fault == FaultOutOfRange {
		return math.Inf(1)
	}
	if c.fault == FaultStuck {
		if v, ok := c.stuck[q]; ok {
			return v
		}
	}
	s, ok := c.signals[q]
	if !ok {
		s = Signal{Base: def}
	}
	n := 0.0
	if s.Noise != 0 {
		n = c.rnd.NormFloat64()
	}
	v := s.at(c.now(), c.start, n)
	if c.fault == FaultStuck {
		if c.stuck == nil {
			c.stuck = map[string]float64{}
		}
		c.stuck[q] = v
	}
	return v
}

// clampInt converts v to an integer code within [lo, hi] (full scale for ±Inf).
func clampInt(v float64, lo, hi int64) int64 {
	if math.IsNaN(v) {
		return hi
	}
	r := math.Round(v)
	if r < float64(lo) {
		return lo
	}
	if r > float64(hi) {
		return hi
	}
	return int64(r)
}
