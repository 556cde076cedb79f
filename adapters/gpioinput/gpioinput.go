// Package gpioinput reads a digital input on a GPIO pin: a door contact, a
// float switch, a pressure switch. The level is debounced (sensor.Debouncer)
// and a change is published at once, not only at the next poll.
//
// Options:
//
//	debounce: 50ms   # default 50 ms
//	pull: up         # up, down, none
//	invert: false    # true: a low pin reads as state 1 (contact to ground closed)
//
// Quantity: state (0 or 1).
//
// Imports: periph conn and adapters/sensor; never package adapters.
package gpioinput

import (
	"context"
	"fmt"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/outpost-iot/outpost/adapters/sensor"
)

// Config is the parsed options.
type Config struct {
	Debounce time.Duration
	Pull     gpio.Pull
	Invert   bool
}

// Parse reads the options: map.
func Parse(m map[string]any) (Config, error) {
	o := sensor.NewOptions(m)
	c := Config{Debounce: o.Duration("debounce", 50*time.Millisecond), Invert: o.Bool("invert", false)}
	pull := o.String("pull", "up")
	if err := o.Err(); err != nil {
		return Config{}, err
	}
	var err error
	if c.Pull, err = sensor.ParsePull(pull); err != nil {
		return Config{}, err
	}
	if c.Debounce < 0 || c.Debounce > 10*time.Second {
		return Config{}, fmt.Errorf("option debounce: %s is not between 0 and 10s", c.Debounce)
	}
	return c, nil
}

// Sensor is an open digital input.
type Sensor struct {
	cfg   Config
	pin   gpio.PinIO
	clock sensor.Clock

	mu     sync.Mutex
	stable gpio.Level
}

// Open configures the pin as an input with edge detection.
func Open(s sensor.Spec, b sensor.Buses) (*Sensor, error) {
	cfg, err := Parse(s.Options)
	if err != nil {
		return nil, err
	}
	pin, err := b.GPIO(s.Bus.Name)
	if err != nil {
		return nil, sensor.OpenError(s.Bus, err)
	}
	if err := pin.In(cfg.Pull, gpio.BothEdges); err != nil {
		return nil, fmt.Errorf("set %s as input: %w", pin, err)
	}
	return &Sensor{cfg: cfg, pin: pin, clock: s.Clock, stable: pin.Read()}, nil
}

// Watch implements sensor.Watcher: on every debounced change call changed.
func (d *Sensor) Watch(ctx context.Context, changed func()) error {
	d.mu.Lock()
	db := sensor.Debouncer{Pin: d.pin, Delay: d.cfg.Debounce, Clock: d.clock, Stable: d.stable}
	d.mu.Unlock()
	for {
		l, err := db.Next(ctx)
		if err != nil {
			return nil
		}
		d.mu.Lock()
		d.stable = l
		d.mu.Unlock()
		changed()
	}
}

// Read implements sensor.Sensor: the last debounced level.
func (d *Sensor) Read(context.Context, sensor.Waiter) ([]sensor.Value, error) {
	d.mu.Lock()
	l := d.stable
	d.mu.Unlock()
	v := 0.0
	if bool(l) != d.cfg.Invert {
		v = 1
	}
	return []sensor.Value{{Quantity: "state", Value: v}}, nil
}

// Close implements sensor.Sensor.
func (d *Sensor) Close() error { return d.pin.In(d.cfg.Pull, gpio.NoEdge) }

var _ sensor.Watcher = (*Sensor)(nil)
