package sim

import (
	"math"
	"time"
)

// BME280 models a Bosch BME280 (or BMP280 with humidity off) at register
// level, on I²C (address 0x76/0x77) or SPI (mode 3). Quantities:
// "temperature" (°C), "pressure" (Pa), "humidity" (%RH).
//
// Datasheet BST-BME280-DS002 rev 1.6: memory map section 5.3 (page 27),
// calibration section 4.2.2 (page 24), compensation formulas section 4.2.3
// and 8.2 (pages 25, 50). The model stores calibration words, and a
// measurement writes the raw ADC values that make the datasheet's compensation
// give back the signal's value: the driver runs its real arithmetic.
type BME280 struct {
	Chip
	isBMP bool
	regs  [256]byte
	ptr   byte
}

// Typical trimming values of a BME280 (the datasheet's example set for T and
// P, a real part's for H).
var bmeCal = calib280{
	t1: 27504, t2: 26435, t3: -1000,
	p1: 36477, p2: -10685, p3: 3024, p4: 2855, p5: 140, p6: -7, p7: 15500, p8: -14600, p9: 6000,
	h1: 75, h2: 362, h3: 0, h4: 313, h5: 50, h6: 30,
}

// NewBME280 returns a BME280 model (BMP280 when bmp is true) whose
// quantities follow signals, on clock now.
func NewBME280(now func() time.Time, seed string, signals map[string]Signal, bmp bool) *BME280 {
	m := &BME280{Chip: newChip(now, seed, signals), isBMP: bmp}
	m.reset()
	return m
}

func (m *BME280) reset() {
	m.regs = [256]byte{}
	m.regs[0xD0] = 0x60 // chip id, page 27
	if m.isBMP {
		m.regs[0xD0] = 0x58
	}
	c := bmeCal
	put16 := func(at int, v uint16) { m.regs[at] = byte(v); m.regs[at+1] = byte(v >> 8) }
	put16(0x88, c.t1)
	put16(0x8A, uint16(c.t2))
	put16(0x8C, uint16(c.t3))
	put16(0x8E, c.p1)
	for i, p := range []int16{c.p2, c.p3, c.p4, c.p5, c.p6, c.p7, c.p8, c.p9} {
		put16(0x90+2*i, uint16(p))
	}
	m.regs[0xA1] = c.h1
	put16(0xE1, uint16(c.h2))
	m.regs[0xE3] = c.h3
	// H4 = E4[7:0]<<4 | E5[3:0]; H5 = E6[7:0]<<4 | E5[7:4] (page 24).
	m.regs[0xE4] = byte(c.h4 >> 4)
	m.regs[0xE5] = byte(c.h4&0xF) | byte(c.h5&0xF)<<4
	m.regs[0xE6] = byte(c.h5 >> 4)
	m.regs[0xE7] = byte(c.h6)
	// Data registers after reset: 0x80000 "skipped" (page 31).
	m.regs[0xF7], m.regs[0xF8], m.regs[0xF9] = 0x80, 0, 0
	m.regs[0xFA], m.regs[0xFB], m.regs[0xFC] = 0x80, 0, 0
	m.regs[0xFD], m.regs[0xFE] = 0x80, 0
}

// Tx implements I2CDevice: a write is register/value pairs (page 33: no
// auto-increment on writes) or a single register address to read from; a read
// auto-increments from the address.
func (m *BME280) Tx(w, r []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := faultErr(m.fault); err != nil {
		return err
	}
	if len(w) == 1 {
		m.ptr = w[0]
	} else {
		for i := 0; i+1 < len(w); i += 2 {
			m.write(w[i], w[i+1])
		}
	}
	m.read(r)
	return nil
}

// SPITx implements SPIDevice: bit 7 of the first byte is 1 for a read
// (page 34); a write is pairs of (address with bit 7 clear, value).
func (m *BME280) SPITx(w, r []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fault == FaultNACK {
		for i := range r {
			r[i] = 0xFF // MISO floats high: nobody drives it
		}
		return nil
	}
	if err := faultErr(m.fault); err != nil {
		return err
	}
	if len(w) == 0 {
		return nil
	}
	if w[0]&0x80 != 0 {
		m.ptr = w[0]
		if len(r) > 1 {
			m.read(r[1:])
		}
		return nil
	}
	for i := 0; i+1 < len(w); i += 2 {
		m.write(w[i]|0x80, w[i+1])
	}
	return nil
}

func (m *BME280) read(r []byte) {
	if len(r) == 0 {
		return
	}
	if m.ptr == 0xF7 && m.regs[0xF4]&3 == 3 {
		m.measure() // normal mode: the data registers follow the signal
	}
	for i := range r {
		r[i] = m.regs[m.ptr+byte(i)]
	}
}

func (m *BME280) write(reg, v byte) {
	switch reg {
	case 0xE0: // reset
		if v == 0xB6 {
			m.reset()
		}
	case 0xF2, 0xF5:
		m.regs[reg] = v
	case 0xF4:
		m.regs[reg] = v
		if mode := v & 3; mode == 1 || mode == 2 { // forced: measure once, back to sleep
			m.measure()
			m.regs[0xF4] = v &^ 3
		}
	}
}

// measure writes raw ADC values for the current signal values (the inverse of
// the compensation formulas, found by bisection: each is monotonic in raw).
func (m *BME280) measure() {
	c := bmeCal
	t := m.value("temperature", 20)
	tOf := func(raw int32) float64 { v, _ := c.temp(raw); return float64(v) / 100 }
	tRaw := nearest(bisect(0, 0xFFFFF, func(raw int32) bool { return tOf(raw) >= t }), t, tOf)
	_, tFine := c.temp(tRaw)
	putRaw20 := func(at int, raw int32) {
		m.regs[at] = byte(raw >> 12)
		m.regs[at+1] = byte(raw >> 4)
		m.regs[at+2] = byte(raw<<4) & 0xF0
	}
	putRaw20(0xFA, tRaw)
	p := m.value("pressure", 101325)
	// Pressure falls as raw rises.
	pOf := func(raw int32) float64 { return float64(c.pressure(raw, tFine)) / 256 }
	pRaw := nearest(bisect(0, 0xFFFFF, func(raw int32) bool { return pOf(raw) <= p }), p, pOf)
	putRaw20(0xF7, pRaw)
	if !m.isBMP {
		h := m.value("humidity", 50)
		hOf := func(raw int32) float64 { return float64(c.humidity(raw, tFine)) / 1024 }
		hRaw := nearest(bisect(0, 0xFFFF, func(raw int32) bool { return hOf(raw) >= h }), h, hOf)
		m.regs[0xFD], m.regs[0xFE] = byte(hRaw>>8), byte(hRaw)
	}
}

// nearest returns raw or raw-1, whichever f maps closer to want.
func nearest(raw int32, want float64, f func(int32) float64) int32 {
	if raw > 0 && math.Abs(f(raw-1)-want) < math.Abs(f(raw)-want) {
		return raw - 1
	}
	return raw
}

// bisect returns the smallest x in [lo, hi] with ok(x), or hi if none (for a
// target above full scale, the chip saturates).
func bisect(lo, hi int32, ok func(int32) bool) int32 {
	for lo < hi {
		mid := lo + (hi-lo)/2
		if ok(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

type calib280 struct {
	t1                             uint16
	t2, t3                         int16
	p1                             uint16
	p2, p3, p4, p5, p6, p7, p8, p9 int16
	h1, h3                         uint8
	h2, h4, h5                     int16
	h6                             int8
}

// temp is the datasheet's BME280_compensate_T_int32 (section 8.2): 0.01 °C.
func (c calib280) temp(raw int32) (int32, int32) {
	x := ((raw>>3 - int32(c.t1)<<1) * int32(c.t2)) >> 11
	y := ((((raw>>4 - int32(c.t1)) * (raw>>4 - int32(c.t1))) >> 12) * int32(c.t3)) >> 14
	f := x + y
	return (f*5 + 128) >> 8, f
}

// pressure is BME280_compensate_P_int64: Pa in Q24.8.
func (c calib280) pressure(raw, tFine int32) uint32 {
	x := int64(tFine) - 128000
	y := x * x * int64(c.p6)
	y += (x * int64(c.p5)) << 17
	y += int64(c.p4) << 35
	x = (x*x*int64(c.p3))>>8 + ((x * int64(c.p2)) << 12)
	x = ((int64(1)<<47 + x) * int64(c.p1)) >> 33
	if x == 0 {
		return 0
	}
	p := ((((1048576 - int64(raw)) << 31) - y) * 3125) / x
	x = (int64(c.p9) * (p >> 13) * (p >> 13)) >> 25
	y = (int64(c.p8) * p) >> 19
	return uint32(((p + x + y) >> 8) + (int64(c.p7) << 4))
}

// humidity is bme280_compensate_H_int32: %RH in Q22.10.
func (c calib280) humidity(raw, tFine int32) uint32 {
	x := tFine - 76800
	x1 := raw<<14 - int32(c.h4)<<20 - int32(c.h5)*x
	x2 := (x1 + 16384) >> 15
	x3 := (x * int32(c.h6)) >> 10
	x4 := (x * int32(c.h3)) >> 11
	x5 := (x3 * (x4 + 32768)) >> 10
	x6 := ((x5+2097152)*int32(c.h2) + 8192) >> 14
	x = x2 * x6
	x -= ((((x >> 15) * (x >> 15)) >> 7) * int32(c.h1)) >> 4
	if x < 0 {
		return 0
	}
	if x > 419430400 {
		return 419430400 >> 12
	}
	return uint32(x >> 12)
}
