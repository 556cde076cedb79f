// Package hx711 reads a load cell through an Avia HX711 24-bit ADC on two
// GPIO pins (periph's hx711 driver): tank or silo weight, a beehive scale.
// The sensor's bus is the DOUT pin; the clock pin is an option.
//
// Options:
//
//	clock_pin: GPIO6    # PD_SCK (required)
//	tare: 8388          # raw reading with the empty tank (offset)
//	scale: 21000        # raw counts per unit (calibrate with a known weight)
//	unit: kg            # default kg
//	samples: 3          # readings per poll, the median is used (default 3)
//
// weight = (raw − tare) / scale.
//
// Imports: periph conn/devices and adapters/sensor; never package adapters.
package hx711

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"periph.io/x/devices/v3/hx711"

	"github.com/outpost-iot/outpost/adapters/sensor"
)

// Config is the parsed options.
type Config struct {
	ClockPin    string
	Tare, Scale float64
	Unit        string
	Samples     int
}

// Parse reads the options: map.
func Parse(m map[string]any) (Config, error) {
	o := sensor.NewOptions(m)
	c := Config{ClockPin: o.String("clock_pin", ""), Tare: o.Float("tare", 0), Scale: o.Float("scale", 1),
		Unit: o.String("unit", sensor.UnitKg), Samples: o.Int("samples", 3)}
	if err := o.Err(); err != nil {
		return Config{}, err
	}
	if c.ClockPin == "" {
		return Config{}, errors.New("option clock_pin: required (the PD_SCK pin, e.g. GPIO6)")
	}
	if c.Scale == 0 {
		return Config{}, errors.New("option scale: must not be 0")
	}
	if c.Samples < 1 || c.Samples > 15 {
		return Config{}, fmt.Errorf("option samples: %d is not 1..15", c.Samples)
	}
	return c, nil
}

// Sensor is an open HX711.
type Sensor struct {
	cfg Config
	dev *hx711.Dev
}

// Open sets up the two pins.
func Open(s sensor.Spec, b sensor.Buses) (*Sensor, error) {
	cfg, err := Parse(s.Options)
	if err != nil {
		return nil, err
	}
	data, err := b.GPIO(s.Bus.Name)
	if err != nil {
		return nil, sensor.OpenError(s.Bus, err)
	}
	clk, err := b.GPIO(cfg.ClockPin)
	if err != nil {
		return nil, fmt.Errorf("clock pin %q: %w", cfg.ClockPin, err)
	}
	dev, err := hx711.New(clk, data)
	if err != nil {
		return nil, fmt.Errorf("hx711: %w", err)
	}
	return &Sensor{cfg: cfg, dev: dev}, nil
}

// Read implements sensor.Sensor: the median of Samples conversions (10 SPS:
// up to 100 ms each), scaled.
func (d *Sensor) Read(context.Context, sensor.Waiter) ([]sensor.Value, error) {
	raws := make([]int32, 0, d.cfg.Samples)
	for i := 0; i < d.cfg.Samples; i++ {
		r, err := d.dev.ReadTimeout(200 * time.Millisecond)
		if err != nil {
			return nil, fmt.Errorf("hx711: %w (check wiring and power)", err)
		}
		raws = append(raws, r)
	}
	sort.Slice(raws, func(i, j int) bool { return raws[i] < raws[j] })
	raw := raws[len(raws)/2]
	if raw >= 1<<23-1 || raw <= -(1<<23) {
		return nil, fmt.Errorf("hx711: raw %d at full scale: load cell over range or disconnected", raw)
	}
	return []sensor.Value{{Quantity: "weight", Value: (float64(raw) - d.cfg.Tare) / d.cfg.Scale, Unit: d.cfg.Unit}}, nil
}

// Close implements sensor.Sensor.
func (d *Sensor) Close() error { return d.dev.Halt() }
