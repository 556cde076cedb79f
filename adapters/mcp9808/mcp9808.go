// Package mcp9808 reads a Microchip MCP9808 precision temperature sensor on
// I²C (0x18-0x1F) through periph's mcp9808 driver (±0.25 °C typical,
// 0.0625 °C resolution).
//
// Options: resolution: 0.0625 | 0.125 | 0.25 | 0.5 (°C, default 0.0625;
// datasheet register 5-9, page 29).
//
// Imports: periph conn/devices and adapters/sensor; never package adapters.
package mcp9808

import (
	"context"
	"fmt"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/mcp9808"

	"github.com/outpost-iot/outpost/adapters/sensor"
)

var tempRange = sensor.Range{Min: -40, Max: 125} // operating range, page 1

// Parse reads the options: map.
func Parse(m map[string]any) (float64, error) {
	o := sensor.NewOptions(m)
	r := o.Float("resolution", 0.0625)
	if err := o.Err(); err != nil {
		return 0, err
	}
	if r != 0.0625 && r != 0.125 && r != 0.25 && r != 0.5 {
		return 0, fmt.Errorf("option resolution: %g is not 0.0625, 0.125, 0.25 or 0.5", r)
	}
	return r, nil
}

// Sensor is an open MCP9808.
type Sensor struct {
	dev  *mcp9808.Dev
	bus  i2c.Bus
	addr uint16
}

// checkID reads the manufacturer and device id registers (datasheet 5.1.4,
// page 27): 0x0054 and 0x04xx. It gives the bus error that periph's driver
// hides, and refuses a different chip at the address.
func checkID(bus i2c.Bus, addr uint16) error {
	var m, id [2]byte
	if err := bus.Tx(addr, []byte{0x06}, m[:]); err != nil {
		return fmt.Errorf("mcp9808: read manufacturer id: %w", err)
	}
	if err := bus.Tx(addr, []byte{0x07}, id[:]); err != nil {
		return fmt.Errorf("mcp9808: read device id: %w", err)
	}
	if m != [2]byte{0x00, 0x54} || id[0] != 0x04 {
		return fmt.Errorf("mcp9808: the chip at 0x%02x is not an MCP9808 (manufacturer id 0x%02x%02x, device id 0x%02x)", addr, m[0], m[1], id[0])
	}
	return nil
}

// Open configures the chip at s.Bus.
func Open(s sensor.Spec, b sensor.Buses) (*Sensor, error) {
	r, err := Parse(s.Options)
	if err != nil {
		return nil, err
	}
	bus, err := b.I2C(s.Bus.Name)
	if err != nil {
		return nil, sensor.OpenError(s.Bus, err)
	}
	addr := s.Bus.Address
	if addr == 0 {
		addr = 0x18
	}
	if err := checkID(bus, addr); err != nil {
		return nil, err
	}
	opts := mcp9808.DefaultOpts
	opts.Addr = int(addr)
	switch r {
	case 0.5:
		opts.Res = mcp9808.Low
	case 0.25:
		opts.Res = mcp9808.Medium
	case 0.125:
		opts.Res = mcp9808.High
	default:
		opts.Res = mcp9808.Maximum
	}
	dev, err := mcp9808.New(bus, &opts)
	if err != nil {
		return nil, fmt.Errorf("mcp9808: %w", err)
	}
	return &Sensor{dev: dev, bus: bus, addr: addr}, nil
}

// Read implements sensor.Sensor.
func (d *Sensor) Read(context.Context, sensor.Waiter) ([]sensor.Value, error) {
	var e physic.Env
	if err := d.dev.Sense(&e); err != nil {
		return nil, sensor.I2CCause(d.bus, d.addr, 0x05, fmt.Errorf("mcp9808: %w", err))
	}
	c := e.Temperature.Celsius()
	if err := tempRange.Check("temperature", c, sensor.UnitCelsius); err != nil {
		return nil, err
	}
	return []sensor.Value{{Quantity: "temperature", Value: c, Unit: sensor.UnitCelsius}}, nil
}

// Close implements sensor.Sensor.
func (d *Sensor) Close() error { return nil }
