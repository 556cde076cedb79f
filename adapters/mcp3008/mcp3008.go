// Package mcp3008 reads a Microchip MCP3008 8-channel 10-bit ADC on SPI.
// periph v3.7.4 has no driver for it, so this one talks to spi.Conn
// directly: 3-byte transfers (datasheet DS21295D section 6.1, figure 6-1),
// SPI mode 0, 1 MHz (the part does 1.35 MHz at 2.7 V, table 1-1).
//
// Options:
//
//	vref: 3.3            # reference voltage on VREF (V)
//	channels: [0, 1]     # single-ended inputs to read (default all 8)
//
// Quantities: ch0..ch7 in V.
//
// Imports: periph conn and adapters/sensor; never package adapters.
package mcp3008

import (
	"context"
	"fmt"

	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"

	"github.com/outpost-iot/outpost/adapters/sensor"
)

// Config is the parsed options.
type Config struct {
	VRef     float64
	Channels []int
}

// Parse reads the options: map.
func Parse(m map[string]any) (Config, error) {
	o := sensor.NewOptions(m)
	c := Config{VRef: o.Float("vref", 3.3)}
	var list []any
	if v, ok := m["channels"]; ok {
		o.Has("channels")
		l, isList := v.([]any)
		if !isList {
			return Config{}, fmt.Errorf("option channels: %v is not a list like [0, 1]", v)
		}
		list = l
	}
	if err := o.Err(); err != nil {
		return Config{}, err
	}
	if c.VRef <= 0 || c.VRef > 5.5 {
		return Config{}, fmt.Errorf("option vref: %g is not in (0, 5.5] V", c.VRef)
	}
	seen := map[int]bool{}
	for _, x := range list {
		f, ok := sensor.ToFloat(x)
		if !ok || f != float64(int(f)) || f < 0 || f > 7 {
			return Config{}, fmt.Errorf("option channels: %v is not a channel 0..7", x)
		}
		if seen[int(f)] {
			return Config{}, fmt.Errorf("option channels: %v listed twice", x)
		}
		seen[int(f)] = true
		c.Channels = append(c.Channels, int(f))
	}
	if len(c.Channels) == 0 {
		c.Channels = []int{0, 1, 2, 3, 4, 5, 6, 7}
	}
	return c, nil
}

// Sensor is an open MCP3008.
type Sensor struct {
	cfg  Config
	conn spi.Conn
}

// Open connects to the port.
func Open(s sensor.Spec, b sensor.Buses) (*Sensor, error) {
	cfg, err := Parse(s.Options)
	if err != nil {
		return nil, err
	}
	port, err := b.SPI(s.Bus.Name)
	if err != nil {
		return nil, sensor.OpenError(s.Bus, err)
	}
	c, err := port.Connect(physic.MegaHertz, spi.Mode0, 8)
	if err != nil {
		return nil, fmt.Errorf("mcp3008: connect %s: %w", port, err)
	}
	return &Sensor{cfg: cfg, conn: c}, nil
}

// Read implements sensor.Sensor.
func (d *Sensor) Read(context.Context, sensor.Waiter) ([]sensor.Value, error) {
	vals := make([]sensor.Value, 0, len(d.cfg.Channels))
	var w, r [3]byte
	for _, ch := range d.cfg.Channels {
		w = [3]byte{0x01, byte(0x8|ch) << 4, 0}
		if err := d.conn.Tx(w[:], r[:]); err != nil {
			return nil, fmt.Errorf("mcp3008 ch%d: %w", ch, err)
		}
		if r[0] == 0xFF && r[1] == 0xFF && r[2] == 0xFF {
			return nil, fmt.Errorf("mcp3008 ch%d: no answer (MISO reads all ones: chip absent or not selected)", ch)
		}
		code := int(r[1]&3)<<8 | int(r[2])
		vals = append(vals, sensor.Value{Quantity: fmt.Sprintf("ch%d", ch), Value: float64(code) * d.cfg.VRef / 1024, Unit: sensor.UnitVolt})
	}
	return vals, nil
}

// Close implements sensor.Sensor.
func (d *Sensor) Close() error { return nil }
