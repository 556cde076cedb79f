package sim

import (
	"math"
	"time"
)

// reg16 is the register protocol that INA219, ADS1115 and MCP9808 share: a
// write of one byte sets the register pointer, a write of three bytes sets
// the pointer and writes a 16-bit big-endian word, and reads return words
// from the pointed register.
type reg16 struct {
	ptr byte
}

func (p *reg16) tx(w, r []byte, read func(reg byte) uint16, write func(reg byte, v uint16)) error {
	switch len(w) {
	case 0:
	case 1:
		p.ptr = w[0]
	case 2: // 8-bit register (MCP9808 resolution register)
		p.ptr = w[0]
		write(w[0], uint16(w[1]))
	case 3:
		p.ptr = w[0]
		write(w[0], uint16(w[1])<<8|uint16(w[2]))
	default:
		return errNACK
	}
	if len(r) > 0 {
		v := read(p.ptr)
		if len(r) == 1 {
			r[0] = byte(v)
			return nil
		}
		r[0], r[1] = byte(v>>8), byte(v)
		for i := 2; i < len(r); i++ {
			r[i] = 0xFF
		}
	}
	return nil
}

// INA219 models a TI INA219 current/power monitor (I²C 0x40-0x4F) with a
// shunt of ShuntOhms. Quantities: "voltage" (bus, V) and "current" (A).
//
// Datasheet SBOS448G: register set page 18-19 (00 config, 01 shunt voltage
// LSB 10 µV, 02 bus voltage LSB 4 mV in bits 15:3 with CNVR bit 1 and OVF bit
// 0, 03 power, 04 current, 05 calibration), equations 3-5 page 12-13.
type INA219 struct {
	Chip
	ShuntOhms float64
	regs      [6]uint16
	p         reg16
}

// NewINA219 returns the model with a 0.1 Ω shunt.
func NewINA219(now func() time.Time, seed string, signals map[string]Signal) *INA219 {
	m := &INA219{Chip: newChip(now, seed, signals), ShuntOhms: 0.1}
	m.regs[0] = 0x399F // power-on config, page 19
	return m
}

// Tx implements I2CDevice.
func (m *INA219) Tx(w, r []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := faultErr(m.fault); err != nil {
		return err
	}
	return m.p.tx(w, r, m.read, func(reg byte, v uint16) {
		switch reg {
		case 0:
			if v&0x8000 != 0 { // RST
				m.regs = [6]uint16{0x399F}
				return
			}
			m.regs[0] = v
		case 5:
			m.regs[5] = v &^ 1 // bit 0 is read-only zero
		}
	})
}

func (m *INA219) read(reg byte) uint16 {
	switch reg {
	case 1, 2, 3, 4:
		m.convert()
		return m.regs[reg]
	case 0, 5:
		return m.regs[reg]
	}
	return 0
}

func (m *INA219) convert() {
	vbus := m.value("voltage", 12)
	cur := m.value("current", 0.5)
	shunt := clampInt(cur*m.ShuntOhms/10e-6, -32000, 32000) // ±320 mV at PGA /8
	m.regs[1] = uint16(int16(shunt))
	bus := clampInt(vbus/4e-3, 0, 8000) // 32 V range
	ovf := uint16(0)
	if math.IsInf(vbus, 1) || math.IsInf(cur, 1) {
		ovf = 1
	}
	m.regs[2] = uint16(bus)<<3 | 2 | ovf
	cal := int64(m.regs[5])
	current := shunt * cal / 4096 // equation 4
	m.regs[4] = uint16(int16(clampInt(float64(current), -32768, 32767)))
	power := current * bus / 5000 // equation 5
	if power < 0 {
		power = -power
	}
	m.regs[3] = uint16(clampInt(float64(power), 0, 65535))
}

// ADS1115 models a TI ADS1115 16-bit ADC (I²C 0x48-0x4B) in single-shot
// mode. Quantities "ain0".."ain3" are the input voltages (V).
//
// Datasheet SBAS444D: pointer register page 27, conversion register page 27,
// config register table 8 page 28 (OS bit 15, MUX 14:12, PGA 11:9, MODE 8).
type ADS1115 struct {
	Chip
	config uint16
	conv   int16
	p      reg16
}

// NewADS1115 returns the model.
func NewADS1115(now func() time.Time, seed string, signals map[string]Signal) *ADS1115 {
	return &ADS1115{Chip: newChip(now, seed, signals), config: 0x8583}
}

var adsFullScale = [8]float64{6.144, 4.096, 2.048, 1.024, 0.512, 0.256, 0.256, 0.256}

// Tx implements I2CDevice.
func (m *ADS1115) Tx(w, r []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := faultErr(m.fault); err != nil {
		return err
	}
	return m.p.tx(w, r, func(reg byte) uint16 {
		switch reg {
		case 0:
			return uint16(m.conv)
		case 1:
			return m.config | 0x8000 // OS=1: not converting
		}
		return 0
	}, func(reg byte, v uint16) {
		if reg != 1 {
			return
		}
		m.config = v
		if v&0x8000 != 0 {
			m.convert()
		}
	})
}

func (m *ADS1115) convert() {
	mux := m.config >> 12 & 7
	fs := adsFullScale[m.config>>9&7]
	in := func(n int) float64 { return m.value("ain"+itoa(n), 0) }
	var v float64
	switch mux {
	case 0:
		v = in(0) - in(1)
	case 1:
		v = in(0) - in(3)
	case 2:
		v = in(1) - in(3)
	case 3:
		v = in(2) - in(3)
	default:
		v = in(int(mux - 4))
	}
	m.conv = int16(clampInt(v/fs*32768, -32768, 32767))
}

// MCP9808 models a Microchip MCP9808 temperature sensor (I²C 0x18-0x1F).
// Quantity "temperature" (°C).
//
// Datasheet DS25095A: register map table 5-1 page 16 (01 config, 05 ambient
// temperature: 13-bit two's complement, 0.0625 °C LSB, flags in 15:13;
// 06 manufacturer id 0x0054, 07 device id 0x0400, 08 resolution).
type MCP9808 struct {
	Chip
	config uint16
	res    byte
	p      reg16
}

// NewMCP9808 returns the model.
func NewMCP9808(now func() time.Time, seed string, signals map[string]Signal) *MCP9808 {
	return &MCP9808{Chip: newChip(now, seed, signals), res: 3}
}

// Tx implements I2CDevice.
func (m *MCP9808) Tx(w, r []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := faultErr(m.fault); err != nil {
		return err
	}
	return m.p.tx(w, r, func(reg byte) uint16 {
		switch reg {
		case 1:
			return m.config
		case 5:
			t := m.value("temperature", 20)
			code := clampInt(t*16, -256*16, 256*16-1) & 0x1FFF
			code &^= int64(1)<<uint(3-m.res) - 1 // resolution: 0.5 °C .. 0.0625 °C (page 29)
			return uint16(code)
		case 6:
			return 0x0054
		case 7:
			return 0x0400
		case 8:
			return uint16(m.res)
		}
		return 0
	}, func(reg byte, v uint16) {
		switch reg {
		case 1:
			m.config = v
		case 8:
			m.res = byte(v) & 3
		}
	})
}
