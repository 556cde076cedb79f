// Package scd4x reads a Sensirion SCD40/SCD41 CO₂ sensor (I²C 0x62) through
// periph's scd4x driver in periodic mode (a new measurement every 5 s, so
// poll at 5 s or slower). Quantities: co2 (ppm), temperature, humidity.
//
// Imports: periph conn/devices and adapters/sensor; never package adapters.
package scd4x

import (
	"context"
	"fmt"

	"periph.io/x/devices/v3/scd4x"

	"github.com/outpost-iot/outpost/adapters/sensor"
)

var ranges = map[string]sensor.Range{
	"co2":         {Min: 0, Max: 40000}, // output range, datasheet table 1
	"temperature": {Min: -10, Max: 60},
	"humidity":    {Min: 0, Max: 100},
}

// Parse reads the options: map (none).
func Parse(m map[string]any) (struct{}, error) { return struct{}{}, sensor.NewOptions(m).Err() }

// Sensor is an open SCD4x.
type Sensor struct{ dev *scd4x.Dev }

// Open starts periodic measurement.
func Open(s sensor.Spec, b sensor.Buses) (*Sensor, error) {
	if _, err := Parse(s.Options); err != nil {
		return nil, err
	}
	bus, err := b.I2C(s.Bus.Name)
	if err != nil {
		return nil, sensor.OpenError(s.Bus, err)
	}
	dev, err := scd4x.NewI2C(bus, s.Bus.Address)
	if err != nil {
		return nil, err
	}
	return &Sensor{dev: dev}, nil
}

// Read implements sensor.Sensor.
func (d *Sensor) Read(context.Context, sensor.Waiter) ([]sensor.Value, error) {
	var e scd4x.Env
	if err := d.dev.Sense(&e); err != nil {
		return nil, fmt.Errorf("scd4x: %w", err)
	}
	vals := []sensor.Value{
		{Quantity: "co2", Value: float64(e.CO2), Unit: sensor.UnitPPM},
		{Quantity: "temperature", Value: e.Temperature.Celsius(), Unit: sensor.UnitCelsius},
		{Quantity: "humidity", Value: sensor.Percent(e.Humidity), Unit: sensor.UnitPercent},
	}
	if err := sensor.CheckRanges(vals, ranges); err != nil {
		return nil, err
	}
	return vals, nil
}

// Close implements sensor.Sensor: stops periodic measurement.
func (d *Sensor) Close() error { return d.dev.Halt() }
