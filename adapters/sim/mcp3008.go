package sim

import "time"

// MCP3008 models a Microchip MCP3008 8-channel 10-bit SPI ADC with reference
// VRef. Quantities "ch0".."ch7" are the input voltages (V).
//
// Datasheet DS21295D figure 6-1 (page 21): the master sends a start bit, then
// SGL/DIFF and D2..D0; the chip answers a null bit and 10 data bits, MSB first.
// With the usual 3-byte framing [0x01, (0x8|ch)<<4, 0x00] the result is
// (r[1]&3)<<8 | r[2].
type MCP3008 struct {
	Chip
	VRef float64
}

// NewMCP3008 returns the model with a 3.3 V reference.
func NewMCP3008(now func() time.Time, seed string, signals map[string]Signal) *MCP3008 {
	return &MCP3008{Chip: newChip(now, seed, signals), VRef: 3.3}
}

// SPITx implements SPIDevice.
func (m *MCP3008) SPITx(w, r []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fault == FaultNACK {
		for i := range r {
			r[i] = 0xFF
		}
		return nil
	}
	if err := faultErr(m.fault); err != nil {
		return err
	}
	if len(w) != 3 || len(r) != 3 || w[0]&1 == 0 {
		for i := range r {
			r[i] = 0
		}
		return nil
	}
	ch := int(w[1] >> 4 & 7)
	var v float64
	if w[1]&0x80 != 0 { // single-ended
		v = m.value("ch"+itoa(ch), 0)
	} else { // pseudo-differential pairs: CH0-CH1, CH1-CH0, ...
		v = m.value("ch"+itoa(ch), 0) - m.value("ch"+itoa(ch^1), 0)
	}
	code := clampInt(v/m.VRef*1024, 0, 1023)
	r[0], r[1], r[2] = 0, byte(code>>8)&3, byte(code)
	return nil
}
