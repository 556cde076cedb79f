// Package aht20 reads an Aosong AHT20 humidity and temperature sensor on
// I²C (address 0x38) through periph's aht20 driver, with CRC checking.
//
// Imports: periph conn/devices and adapters/sensor; never package adapters.
package aht20

import (
	"context"
	"fmt"

	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/aht20"

	"github.com/outpost-iot/outpost/adapters/sensor"
)

var ranges = map[string]sensor.Range{
	"temperature": {Min: -40, Max: 85}, // datasheet table 1
	"humidity":    {Min: 0, Max: 100},
}

// Parse reads the options: map (none).
func Parse(m map[string]any) (struct{}, error) {
	return struct{}{}, sensor.NewOptions(m).Err()
}

// Sensor is an open AHT20.
type Sensor struct{ dev *aht20.Dev }

// Open initialises the chip (calibration command) if it needs it.
func Open(s sensor.Spec, b sensor.Buses) (*Sensor, error) {
	if _, err := Parse(s.Options); err != nil {
		return nil, err
	}
	bus, err := b.I2C(s.Bus.Name)
	if err != nil {
		return nil, sensor.OpenError(s.Bus, err)
	}
	dev, err := aht20.NewI2C(bus, nil)
	if err != nil {
		return nil, fmt.Errorf("aht20: %w", err)
	}
	return &Sensor{dev: dev}, nil
}

// Read implements sensor.Sensor (a measurement takes 80 ms).
func (d *Sensor) Read(context.Context, sensor.Waiter) ([]sensor.Value, error) {
	var e physic.Env
	if err := d.dev.Sense(&e); err != nil {
		return nil, fmt.Errorf("aht20: %w", err)
	}
	vals := []sensor.Value{
		{Quantity: "temperature", Value: e.Temperature.Celsius(), Unit: sensor.UnitCelsius},
		{Quantity: "humidity", Value: sensor.Percent(e.Humidity), Unit: sensor.UnitPercent},
	}
	if err := sensor.CheckRanges(vals, ranges); err != nil {
		return nil, err
	}
	return vals, nil
}

// Close implements sensor.Sensor.
func (d *Sensor) Close() error { return d.dev.Halt() }
