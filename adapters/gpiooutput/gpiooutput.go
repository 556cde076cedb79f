// Package gpiooutput drives a GPIO output from a command topic: a relay, a
// valve, a pump contactor. It reports the state it drives.
//
// Commands (payload of the command topic, default sensors/<name>/set): on,
// off, 1, 0, true, false, toggle, or JSON {"state": "on"} / {"state": 1}.
//
// Options:
//
//	initial: off        # state set when the sensor opens (default off)
//	active_low: false   # true: on drives the pin low (most relay boards)
//
// Quantity: state (0 or 1).
//
// Imports: periph conn and adapters/sensor; never package adapters.
package gpiooutput

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"periph.io/x/conn/v3/gpio"

	"github.com/outpost-iot/outpost/adapters/sensor"
)

// Config is the parsed options.
type Config struct {
	Initial   bool
	ActiveLow bool
}

// Parse reads the options: map.
func Parse(m map[string]any) (Config, error) {
	o := sensor.NewOptions(m)
	init := o.String("initial", "off")
	c := Config{ActiveLow: o.Bool("active_low", false)}
	if err := o.Err(); err != nil {
		return Config{}, err
	}
	on, ok := ParseState(init, false)
	if !ok {
		return Config{}, fmt.Errorf("option initial: %q is not on or off", init)
	}
	c.Initial = on
	return c, nil
}

// ParseState reads on/off/1/0/true/false/toggle (toggle flips cur).
func ParseState(s string, cur bool) (on, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "on", "1", "true", "high", "open":
		return true, true
	case "off", "0", "false", "low", "closed", "close":
		return false, true
	case "toggle":
		return !cur, true
	}
	return false, false
}

// Sensor is an open output.
type Sensor struct {
	cfg Config
	pin gpio.PinIO
	mu  sync.Mutex
	on  bool
}

// Open drives the pin to the initial state.
func Open(s sensor.Spec, b sensor.Buses) (*Sensor, error) {
	cfg, err := Parse(s.Options)
	if err != nil {
		return nil, err
	}
	pin, err := b.GPIO(s.Bus.Name)
	if err != nil {
		return nil, sensor.OpenError(s.Bus, err)
	}
	d := &Sensor{cfg: cfg, pin: pin}
	if err := d.set(cfg.Initial); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Sensor) set(on bool) error {
	if err := d.pin.Out(gpio.Level(on != d.cfg.ActiveLow)); err != nil {
		return fmt.Errorf("drive %s: %w", d.pin, err)
	}
	d.mu.Lock()
	d.on = on
	d.mu.Unlock()
	return nil
}

// Command implements sensor.Commander.
func (d *Sensor) Command(payload []byte) error {
	s := string(bytes.TrimSpace(payload))
	if strings.HasPrefix(s, "{") {
		var m struct {
			State any `json:"state"`
		}
		if err := json.Unmarshal(payload, &m); err != nil {
			return fmt.Errorf("command %q: %w", s, err)
		}
		s = fmt.Sprint(m.State)
	}
	d.mu.Lock()
	cur := d.on
	d.mu.Unlock()
	on, ok := ParseState(s, cur)
	if !ok {
		return fmt.Errorf("command %q: want on, off, 1, 0, true, false, toggle or {\"state\":\"on\"}", s)
	}
	return d.set(on)
}

// Read implements sensor.Sensor: the state last driven.
func (d *Sensor) Read(context.Context, sensor.Waiter) ([]sensor.Value, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v := 0.0
	if d.on {
		v = 1
	}
	return []sensor.Value{{Quantity: "state", Value: v}}, nil
}

// Close implements sensor.Sensor; the output keeps its level (a relay must
// not drop because the hub restarts).
func (d *Sensor) Close() error { return nil }

var _ sensor.Commander = (*Sensor)(nil)
