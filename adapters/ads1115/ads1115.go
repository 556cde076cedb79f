// Package ads1115 reads a TI ADS1115 4-channel 16-bit ADC on I²C
// (0x48-0x4B) through periph's ads1x15 driver, with linear scaling per
// channel for industrial transmitters (4–20 mA loops across a shunt, 0–10 V
// through a divider).
//
// Options:
//
//	max_voltage: 4.096        # PGA full scale in V: 6.144, 4.096, 2.048, 1.024, 0.512, 0.256
//	channels:                 # default: ain0..ain3 in volts
//	  ain0:                   # tank level transmitter, 4-20 mA across 150 Ω
//	    name: tank_level
//	    shunt_ohms: 150       # input becomes a current in mA (V / Ω)
//	    from: [4, 20]         # input span (mA, or V without shunt_ohms)
//	    to: [0, 5]            # engineering span
//	    unit: m
//	    fault_below: 3.6      # input below this is an error (broken loop, NAMUR NE43)
//	  ain1: {name: supply, gain: 2.5, unit: V}   # 0-10 V through a 2.5:1 divider
//
// value = to[0] + (input - from[0]) · (to[1] - to[0]) / (from[1] - from[0]),
// input = V_pin · gain, or V_pin / shunt_ohms in mA.
//
// Imports: periph conn/devices and adapters/sensor; never package adapters.
package ads1115

import (
	"context"
	"fmt"
	"sort"

	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/ads1x15"

	"github.com/outpost-iot/outpost/adapters/sensor"
)

// Channel is one input's scaling.
type Channel struct {
	Input      int // 0..3
	Name, Unit string
	Gain       float64
	ShuntOhms  float64
	From, To   [2]float64
	Scaled     bool
	FaultBelow *float64
}

// Config is the parsed options.
type Config struct {
	MaxVoltage float64
	Channels   []Channel
}

// PinToInput converts a pin voltage to the channel's input (V, or mA with a shunt).
func (c Channel) PinToInput(v float64) float64 {
	if c.ShuntOhms > 0 {
		return v / c.ShuntOhms * 1000
	}
	return v * c.Gain
}

// Scale maps an input to engineering units.
func (c Channel) Scale(in float64) float64 {
	if !c.Scaled {
		return in
	}
	return c.To[0] + (in-c.From[0])*(c.To[1]-c.To[0])/(c.From[1]-c.From[0])
}

// Unscale maps an engineering value back to the pin voltage (for simulation).
func (c Channel) Unscale(v float64) float64 {
	in := v
	if c.Scaled {
		in = c.From[0] + (v-c.To[0])*(c.From[1]-c.From[0])/(c.To[1]-c.To[0])
	}
	if c.ShuntOhms > 0 {
		return in / 1000 * c.ShuntOhms
	}
	return in / c.Gain
}

var fullScales = []float64{6.144, 4.096, 2.048, 1.024, 0.512, 0.256}

// Parse reads the options: map.
func Parse(m map[string]any) (Config, error) {
	o := sensor.NewOptions(m)
	c := Config{MaxVoltage: o.Float("max_voltage", 4.096)}
	chans := o.Map("channels")
	if err := o.Err(); err != nil {
		return Config{}, err
	}
	ok := false
	for _, f := range fullScales {
		ok = ok || f == c.MaxVoltage
	}
	if !ok {
		return Config{}, fmt.Errorf("option max_voltage: %g is not one of 6.144, 4.096, 2.048, 1.024, 0.512, 0.256", c.MaxVoltage)
	}
	if len(chans) == 0 {
		for i := 0; i < 4; i++ {
			c.Channels = append(c.Channels, Channel{Input: i, Name: fmt.Sprintf("ain%d", i), Unit: sensor.UnitVolt, Gain: 1})
		}
		return c, nil
	}
	keys := make([]string, 0, len(chans))
	for k := range chans {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	names := map[string]bool{}
	for _, k := range keys {
		var in int
		if _, err := fmt.Sscanf(k, "ain%d", &in); err != nil || in < 0 || in > 3 || k != fmt.Sprintf("ain%d", in) {
			return Config{}, fmt.Errorf("option channels: %q is not ain0, ain1, ain2 or ain3", k)
		}
		cm, isMap := sensor.ToMap(chans[k])
		if !isMap {
			return Config{}, fmt.Errorf("option channels: %s: %v is not a map", k, chans[k])
		}
		ch, err := parseChannel(in, k, cm)
		if err != nil {
			return Config{}, fmt.Errorf("option channels: %s: %w", k, err)
		}
		if names[ch.Name] {
			return Config{}, fmt.Errorf("option channels: %s: name %q used twice", k, ch.Name)
		}
		names[ch.Name] = true
		c.Channels = append(c.Channels, ch)
	}
	return c, nil
}

func parseChannel(in int, key string, m map[string]any) (Channel, error) {
	o := sensor.NewOptions(m)
	ch := Channel{Input: in, Name: o.String("name", key), Gain: o.Float("gain", 1), ShuntOhms: o.Float("shunt_ohms", 0)}
	defUnit := sensor.UnitVolt
	if ch.ShuntOhms > 0 {
		defUnit = "mA"
	}
	ch.Unit = o.String("unit", defUnit)
	span := func(key string) ([2]float64, bool, error) {
		v, ok := m[key]
		o.Has(key)
		if !ok {
			return [2]float64{}, false, nil
		}
		l, isList := v.([]any)
		if !isList || len(l) != 2 {
			return [2]float64{}, false, fmt.Errorf("%s: %v is not a pair like [4, 20]", key, v)
		}
		var out [2]float64
		for i, x := range l {
			f, ok := sensor.ToFloat(x)
			if !ok {
				return [2]float64{}, false, fmt.Errorf("%s: %v is not a number", key, x)
			}
			out[i] = f
		}
		return out, true, nil
	}
	from, hasFrom, err := span("from")
	if err != nil {
		return Channel{}, err
	}
	to, hasTo, err := span("to")
	if err != nil {
		return Channel{}, err
	}
	if o.Has("fault_below") {
		f := o.Float("fault_below", 0)
		ch.FaultBelow = &f
	}
	if err := o.Err(); err != nil {
		return Channel{}, err
	}
	if hasFrom != hasTo {
		return Channel{}, fmt.Errorf("from and to go together")
	}
	if hasFrom {
		if from[0] == from[1] {
			return Channel{}, fmt.Errorf("from: %v is an empty span", from)
		}
		ch.From, ch.To, ch.Scaled = from, to, true
	}
	if ch.Gain <= 0 {
		return Channel{}, fmt.Errorf("gain: %g is not positive", ch.Gain)
	}
	if ch.ShuntOhms < 0 {
		return Channel{}, fmt.Errorf("shunt_ohms: %g is negative", ch.ShuntOhms)
	}
	return ch, nil
}

// Sensor is an open ADS1115.
type Sensor struct {
	cfg  Config
	pins []ads1x15.PinADC
}

// Open prepares one single-ended pin per configured channel.
func Open(s sensor.Spec, b sensor.Buses) (*Sensor, error) {
	cfg, err := Parse(s.Options)
	if err != nil {
		return nil, err
	}
	bus, err := b.I2C(s.Bus.Name)
	if err != nil {
		return nil, sensor.OpenError(s.Bus, err)
	}
	dev, err := ads1x15.NewADS1115(bus, &ads1x15.Opts{I2cAddress: s.Bus.Address})
	if err != nil {
		return nil, fmt.Errorf("ads1115: %w", err)
	}
	d := &Sensor{cfg: cfg}
	chs := []ads1x15.Channel{ads1x15.Channel0, ads1x15.Channel1, ads1x15.Channel2, ads1x15.Channel3}
	maxV := physic.ElectricPotential(cfg.MaxVoltage * float64(physic.Volt))
	for _, c := range cfg.Channels {
		// 860 SPS: 1.2 ms per conversion (datasheet table 8).
		p, err := dev.PinForChannel(chs[c.Input], maxV, 860*physic.Hertz, ads1x15.BestQuality)
		if err != nil {
			return nil, fmt.Errorf("ads1115 ain%d: %w", c.Input, err)
		}
		d.pins = append(d.pins, p)
	}
	return d, nil
}

// Read implements sensor.Sensor.
func (d *Sensor) Read(context.Context, sensor.Waiter) ([]sensor.Value, error) {
	vals := make([]sensor.Value, 0, len(d.pins))
	for i, p := range d.pins {
		s, err := p.Read()
		if err != nil {
			return nil, fmt.Errorf("ads1115 ain%d: %w", d.cfg.Channels[i].Input, err)
		}
		c := d.cfg.Channels[i]
		v := sensor.Volts(s.V)
		if s.Raw >= 32767 || s.Raw <= -32767 {
			return nil, fmt.Errorf("ads1115 ain%d: %.3f V at full scale: input over range (raise max_voltage or check wiring)", c.Input, v)
		}
		in := c.PinToInput(v)
		if c.FaultBelow != nil && in < *c.FaultBelow {
			return nil, fmt.Errorf("%s: input %.2f %s below %g: broken loop or transmitter fault", c.Name, in, inputUnit(c), *c.FaultBelow)
		}
		vals = append(vals, sensor.Value{Quantity: c.Name, Value: c.Scale(in), Unit: c.Unit})
	}
	return vals, nil
}

func inputUnit(c Channel) string {
	if c.ShuntOhms > 0 {
		return "mA"
	}
	return "V"
}

// Close implements sensor.Sensor.
func (d *Sensor) Close() error { return nil }
