// Package ds18b20 reads Maxim DS18B20 temperature probes through periph's
// ds18b20 driver, on a 1-Wire bus or through a DS2482 I²C bridge (periph's
// ds248x). One sensor is one bus: a read starts a conversion on every probe at
// once (Skip ROM + Convert T), waits the conversion time with the bus free,
// then reads each probe's scratchpad.
//
// Options:
//
//	resolution: 9..12 bits (default 12: 1/16 °C, 750 ms conversion; datasheet table 2)
//	probes: {water: "28-00000a1b2c3d", air: "28-..."}  # quantity name -> ROM
//
// Without probes the bus is searched when the sensor opens; one probe is
// published as "temperature", several as "temperature_<serial>".
//
// A probe reading exactly 85 °C has not converted (its power-on value,
// datasheet figure 8): that is rejected as an error. periph's driver tries to
// do this but compares against 85*physic.Celsius, which is 85 K (physic.Celsius
// is a temperature difference), so the check never fires.
//
// Imports: periph conn/devices and adapters/sensor; never package adapters.
package ds18b20

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"periph.io/x/conn/v3/onewire"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/ds18b20"
	"periph.io/x/devices/v3/ds248x"

	"github.com/outpost-iot/outpost/adapters/sensor"
)

// Family is the DS18B20 1-Wire family code.
const Family = 0x28

var tempRange = sensor.Range{Min: -55, Max: 125} // datasheet page 1

// PowerOn is the DS18B20's power-on reset temperature.
const PowerOn = 85*physic.Kelvin + physic.ZeroCelsius

// Config is the parsed options.
type Config struct {
	Resolution int
	Probes     map[string]onewire.Address // quantity -> ROM
}

// Parse reads the options: map.
func Parse(m map[string]any) (Config, error) {
	o := sensor.NewOptions(m)
	c := Config{Resolution: o.Int("resolution", 12)}
	probes := o.Map("probes")
	if err := o.Err(); err != nil {
		return Config{}, err
	}
	if c.Resolution < 9 || c.Resolution > 12 {
		return Config{}, fmt.Errorf("option resolution: %d is not 9..12 bits", c.Resolution)
	}
	if len(probes) > 0 {
		c.Probes = map[string]onewire.Address{}
		for q, v := range probes {
			s, ok := v.(string)
			if !ok {
				return Config{}, fmt.Errorf("option probes: %s: %v is not a ROM string like 28-00000a1b2c3d", q, v)
			}
			a, err := ParseROM(s)
			if err != nil {
				return Config{}, fmt.Errorf("option probes: %s: %w", q, err)
			}
			c.Probes[q] = a
		}
	}
	return c, nil
}

// ParseROM reads a ROM in the Linux w1 form "28-00000a1b2c3d" (family,
// serial as printed by the kernel) or as 16 hex digits, CRC first as periph
// prints an Address ("0x3d00000a1b2c3d28").
func ParseROM(s string) (onewire.Address, error) {
	if fam, ser, ok := strings.Cut(s, "-"); ok {
		f, err1 := strconv.ParseUint(fam, 16, 8)
		n, err2 := strconv.ParseUint(ser, 16, 48)
		if err1 != nil || err2 != nil || len(ser) != 12 {
			return 0, fmt.Errorf("ROM %q: want family-serial like 28-00000a1b2c3d", s)
		}
		var b [8]byte
		b[0] = byte(f)
		for i := 1; i < 7; i++ {
			b[i] = byte(n >> (8 * (i - 1)))
		}
		b[7] = onewire.CalcCRC(b[:7])
		return toAddr(b), nil
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
	if err != nil {
		return 0, fmt.Errorf("ROM %q: want 28-00000a1b2c3d or 16 hex digits", s)
	}
	a := onewire.Address(n)
	var b [8]byte
	for i := range b {
		b[i] = byte(n >> (8 * i))
	}
	if !onewire.CheckCRC(b[:]) {
		return 0, fmt.Errorf("ROM %q: CRC byte does not match", s)
	}
	return a, nil
}

// FormatROM prints a in the Linux w1 form.
func FormatROM(a onewire.Address) string {
	return fmt.Sprintf("%02x-%012x", byte(a), uint64(a)>>8&0xFFFFFFFFFFFF)
}

func toAddr(b [8]byte) onewire.Address {
	var a onewire.Address
	for i := 7; i >= 0; i-- {
		a = a<<8 | onewire.Address(b[i])
	}
	return a
}

// Sensor is an open bus of probes.
type Sensor struct {
	bus    onewire.Bus
	res    int
	names  []string
	probes []*ds18b20.Dev
}

// Open opens the bus (onewire, or i2c with a DS2482 at the address,
// 0x18-0x1B) and the configured or discovered probes.
func Open(s sensor.Spec, b sensor.Buses) (*Sensor, error) {
	cfg, err := Parse(s.Options)
	if err != nil {
		return nil, err
	}
	var bus onewire.Bus
	switch s.Bus.Type {
	case "onewire":
		if bus, err = b.OneWire(s.Bus.Name); err != nil {
			return nil, sensor.OpenError(s.Bus, err)
		}
	case "i2c":
		i2c, err := b.I2C(s.Bus.Name)
		if err != nil {
			return nil, sensor.OpenError(s.Bus, err)
		}
		addr := s.Bus.Address
		if addr == 0 {
			addr = 0x18
		}
		if bus, err = ds248x.New(i2c, addr, &ds248x.DefaultOpts); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("ds18b20 on a %s bus: want onewire, or i2c for a DS2482 bridge", s.Bus.Type)
	}
	d := &Sensor{bus: bus, res: cfg.Resolution}
	probes := cfg.Probes
	if len(probes) == 0 {
		addrs, err := bus.Search(false)
		if err != nil {
			return nil, fmt.Errorf("search %s: %w", bus, err)
		}
		probes = map[string]onewire.Address{}
		var found []onewire.Address
		for _, a := range addrs {
			if byte(a) == Family {
				found = append(found, a)
			}
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("no DS18B20 found on %s", bus)
		}
		for _, a := range found {
			q := "temperature"
			if len(found) > 1 {
				q = fmt.Sprintf("temperature_%012x", uint64(a)>>8&0xFFFFFFFFFFFF)
			}
			probes[q] = a
		}
	}
	for q := range probes {
		d.names = append(d.names, q)
	}
	sort.Strings(d.names)
	for _, q := range d.names {
		dev, err := ds18b20.New(bus, probes[q], cfg.Resolution)
		if err != nil {
			return nil, fmt.Errorf("probe %s (%s): %w", q, FormatROM(probes[q]), err)
		}
		d.probes = append(d.probes, dev)
	}
	return d, nil
}

// ConversionTime is the DS18B20's maximum conversion time at bits of
// resolution (datasheet table 2: 93.75 ms at 9 bits, doubling per bit).
func ConversionTime(bits int) time.Duration {
	return (94 << uint(bits-9)) * time.Millisecond
}

// Read implements sensor.Sensor: convert all, wait with the bus free, read each.
func (d *Sensor) Read(ctx context.Context, w sensor.Waiter) ([]sensor.Value, error) {
	if err := ds18b20.StartAll(d.bus); err != nil {
		return nil, fmt.Errorf("convert all on %s: %w", d.bus, err)
	}
	if err := w.Wait(ctx, ConversionTime(d.res)); err != nil {
		return nil, err
	}
	vals := make([]sensor.Value, 0, len(d.probes))
	var errs []error
	for i, p := range d.probes {
		t, err := p.LastTemp()
		if err == nil && t == PowerOn {
			err = errors.New("reads 85 °C, its power-on value: no conversion (check power and the pull-up)")
		}
		if err == nil {
			err = tempRange.Check("temperature", t.Celsius(), sensor.UnitCelsius)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("probe %s: %w", d.names[i], err))
			continue
		}
		vals = append(vals, sensor.Value{Quantity: d.names[i], Value: t.Celsius(), Unit: sensor.UnitCelsius})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return vals, nil
}

// Close implements sensor.Sensor.
func (d *Sensor) Close() error { return nil }

var _ sensor.Sensor = (*Sensor)(nil)
