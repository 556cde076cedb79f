package sim

import (
	"time"

	"periph.io/x/conn/v3/gpio"
)

// HX711 models an Avia HX711 24-bit load-cell ADC on two GPIO pins: PD_SCK
// (Clk, driven by the reader) and DOUT (Data, driven by the chip).
// Quantity "weight": the raw code is Tare + weight·Scale, as a load cell with
// that offset and sensitivity would give.
//
// Datasheet rev 2.0, "Serial Interface" page 5: DOUT low means a conversion
// is ready; each of 24 PD_SCK pulses shifts out one bit, MSB first, two's
// complement; 1-3 more pulses select the next gain; DOUT then stays high
// until the next conversion.
type HX711 struct {
	Chip
	Clk   *Pin
	Data  gpio.PinIO
	Tare  float64
	Scale float64

	pulses int
	frame  uint32
}

// NewHX711 returns the model on two new pins called clk and data.
func NewHX711(now func() time.Time, seed string, signals map[string]Signal, clk, data string, tare, scale float64) *HX711 {
	m := &HX711{Chip: newChip(now, seed, signals), Clk: NewPin(Name("gpio", clk), 0), Tare: tare, Scale: scale}
	m.Data = &hxData{Pin: NewPin(Name("gpio", data), 0), m: m}
	m.Clk.OnOut(m.clock)
	return m
}

func (m *HX711) clock(l gpio.Level) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !l {
		return
	}
	if m.pulses == 0 {
		code := clampInt(m.Tare+m.value("weight", 0)*m.Scale, -(1 << 23), 1<<23-1)
		m.frame = uint32(code) & 0xFFFFFF
	}
	m.pulses++
}

// dout is the level of DOUT. Call with m.mu held.
func (m *HX711) dout() gpio.Level {
	if m.fault == FaultNACK {
		return gpio.High // powered down or unplugged: never ready
	}
	switch {
	case m.pulses == 0:
		return gpio.Low
	case m.pulses <= 24:
		return gpio.Level(m.frame>>(24-uint(m.pulses))&1 == 1)
	default: // gain pulses done: the next conversion is ready at once
		m.pulses = 0
		return gpio.Low
	}
}

type hxData struct {
	*Pin
	m *HX711
}

func (d *hxData) Read() gpio.Level {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	return d.m.dout()
}

// WaitForEdge: a ready chip has no pending edge; a dead one never gives one.
func (d *hxData) WaitForEdge(timeout time.Duration) bool {
	if d.Read() == gpio.Low {
		return true
	}
	if timeout > 0 {
		time.Sleep(timeout)
	}
	return false
}
