// Package bme280 reads Bosch BME280 (temperature, humidity, pressure) and
// BMP280 (temperature, pressure) sensors on I²C or SPI through periph's
// bmxx80 driver, in forced mode: one measurement per read.
//
// Options: oversampling (1, 2, 4, 8 or 16; default 1: a read then takes about
// 8 ms, datasheet section 9.1 page 51).
//
// Imports: periph conn/devices and adapters/sensor; never package adapters.
package bme280

import (
	"context"
	"fmt"
	"strings"

	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/bmxx80"

	"github.com/outpost-iot/outpost/adapters/sensor"
)

// Quantities the chips report.
var Quantities = []string{"temperature", "humidity", "pressure"}

// Ranges are the operating ranges of the BME280 (datasheet table 1, page 7).
var ranges = map[string]sensor.Range{
	"temperature": {Min: -40, Max: 85},
	"humidity":    {Min: 0, Max: 100},
	"pressure":    {Min: 30000, Max: 110000},
}

// Config is the parsed options.
type Config struct {
	Oversampling bmxx80.Oversampling
}

// Parse reads the options: map.
func Parse(m map[string]any) (Config, error) {
	o := sensor.NewOptions(m)
	n := o.Int("oversampling", 1)
	if err := o.Err(); err != nil {
		return Config{}, err
	}
	os := map[int]bmxx80.Oversampling{1: bmxx80.O1x, 2: bmxx80.O2x, 4: bmxx80.O4x, 8: bmxx80.O8x, 16: bmxx80.O16x}[n]
	if os == 0 {
		return Config{}, fmt.Errorf("option oversampling: %d is not 1, 2, 4, 8 or 16", n)
	}
	return Config{Oversampling: os}, nil
}

// Sensor is an open BME280/BMP280.
type Sensor struct {
	dev   *bmxx80.Dev
	isBME bool
}

// Open opens the chip at s.Bus (i2c with address 0x76/0x77, or spi).
func Open(s sensor.Spec, b sensor.Buses) (*Sensor, error) {
	cfg, err := Parse(s.Options)
	if err != nil {
		return nil, err
	}
	opts := bmxx80.Opts{Temperature: cfg.Oversampling, Pressure: cfg.Oversampling, Humidity: cfg.Oversampling}
	var dev *bmxx80.Dev
	switch s.Bus.Type {
	case "i2c":
		bus, err := b.I2C(s.Bus.Name)
		if err != nil {
			return nil, sensor.OpenError(s.Bus, err)
		}
		addr := s.Bus.Address
		if addr == 0 {
			addr = 0x76
		}
		dev, err = bmxx80.NewI2C(bus, addr, &opts)
		if err != nil {
			return nil, err
		}
	case "spi":
		port, err := b.SPI(s.Bus.Name)
		if err != nil {
			return nil, sensor.OpenError(s.Bus, err)
		}
		dev, err = bmxx80.NewSPI(port, &opts)
		if err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("bme280 on a %s bus: want i2c or spi", s.Bus.Type)
	}
	return &Sensor{dev: dev, isBME: strings.HasPrefix(dev.String(), "BME280")}, nil
}

// Read implements sensor.Sensor.
func (d *Sensor) Read(ctx context.Context, _ sensor.Waiter) ([]sensor.Value, error) {
	var e physic.Env
	if err := d.dev.Sense(&e); err != nil {
		return nil, err
	}
	vals := []sensor.Value{{Quantity: "temperature", Value: sensor.Celsius(e.Temperature), Unit: sensor.UnitCelsius}}
	if d.isBME {
		vals = append(vals, sensor.Value{Quantity: "humidity", Value: sensor.Percent(e.Humidity), Unit: sensor.UnitPercent})
	}
	vals = append(vals, sensor.Value{Quantity: "pressure", Value: sensor.Pascals(e.Pressure), Unit: sensor.UnitPascal})
	if err := sensor.CheckRanges(vals, ranges); err != nil {
		return nil, err
	}
	return vals, nil
}

// Close implements sensor.Sensor.
func (d *Sensor) Close() error { return d.dev.Halt() }

var _ sensor.Sensor = (*Sensor)(nil)
