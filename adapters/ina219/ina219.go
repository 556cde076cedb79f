// Package ina219 reads a TI INA219 current and power monitor on I²C
// (0x40-0x4F) through periph's ina219 driver: bus voltage, current through
// the shunt, power.
//
// Options:
//
//	shunt_ohms: 0.1     # the shunt resistor (default 0.1 Ω, most breakout boards)
//	max_current: 3.2    # A, sets the current LSB = max/32768 (datasheet equation 2, page 12)
//
// Imports: periph conn/devices and adapters/sensor; never package adapters.
package ina219

import (
	"context"
	"fmt"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/ina219"

	"github.com/outpost-iot/outpost/adapters/sensor"
)

var ranges = map[string]sensor.Range{
	"voltage": {Min: 0, Max: 32},     // bus voltage range, page 1
	"current": {Min: -100, Max: 100}, // bounded by max_current in practice
}

// Config is the parsed options.
type Config struct {
	ShuntOhms, MaxCurrent float64
}

// Parse reads the options: map.
func Parse(m map[string]any) (Config, error) {
	o := sensor.NewOptions(m)
	c := Config{ShuntOhms: o.Float("shunt_ohms", 0.1), MaxCurrent: o.Float("max_current", 3.2)}
	if err := o.Err(); err != nil {
		return Config{}, err
	}
	if c.ShuntOhms <= 0 || c.ShuntOhms > 100 {
		return Config{}, fmt.Errorf("option shunt_ohms: %g is not in (0, 100]", c.ShuntOhms)
	}
	if c.MaxCurrent <= 0 || c.MaxCurrent > 100 {
		return Config{}, fmt.Errorf("option max_current: %g is not in (0, 100] A", c.MaxCurrent)
	}
	return c, nil
}

// Sensor is an open INA219.
type Sensor struct {
	dev  *ina219.Dev
	bus  i2c.Bus
	addr uint16
}

// Open calibrates the chip at s.Bus.
func Open(s sensor.Spec, b sensor.Buses) (*Sensor, error) {
	cfg, err := Parse(s.Options)
	if err != nil {
		return nil, err
	}
	bus, err := b.I2C(s.Bus.Name)
	if err != nil {
		return nil, sensor.OpenError(s.Bus, err)
	}
	dev, err := ina219.New(bus, &ina219.Opts{
		Address:       int(s.Bus.Address),
		SenseResistor: physic.ElectricResistance(cfg.ShuntOhms * float64(physic.Ohm)),
		MaxCurrent:    physic.ElectricCurrent(cfg.MaxCurrent * float64(physic.Ampere)),
	})
	addr := s.Bus.Address
	if addr == 0 {
		addr = 0x40
	}
	if err != nil {
		return nil, sensor.I2CCause(bus, addr, 0x00, fmt.Errorf("ina219: %w", err))
	}
	return &Sensor{dev: dev, bus: bus, addr: addr}, nil
}

// Read implements sensor.Sensor.
func (d *Sensor) Read(context.Context, sensor.Waiter) ([]sensor.Value, error) {
	pm, err := d.dev.Sense()
	if err != nil {
		return nil, sensor.I2CCause(d.bus, d.addr, 0x00, fmt.Errorf("ina219: %w", err))
	}
	vals := []sensor.Value{
		{Quantity: "voltage", Value: sensor.Volts(pm.Voltage), Unit: sensor.UnitVolt},
		{Quantity: "current", Value: sensor.Amperes(pm.Current), Unit: sensor.UnitAmpere},
		{Quantity: "power", Value: sensor.Watts(pm.Power), Unit: sensor.UnitWatt},
	}
	if err := sensor.CheckRanges(vals, ranges); err != nil {
		return nil, err
	}
	return vals, nil
}

// Close implements sensor.Sensor.
func (d *Sensor) Close() error { return nil }
