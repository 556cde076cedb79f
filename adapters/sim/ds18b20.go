package sim

import (
	"hash/fnv"
	"time"

	"periph.io/x/conn/v3/onewire"
)

// DS18B20 models a Maxim DS18B20 1-Wire thermometer: ROM code, scratchpad,
// Convert T, resolution. Quantity "temperature" (°C).
//
// Datasheet 19-7487 rev 6: ROM code figure 7 (family 0x28, CRC8), scratchpad
// figure 8 (power-on temperature +85 °C = 0x0550), configuration register
// figure 10 (R1:R0 resolution), function commands table (0x44, 0xBE, 0x4E,
// 0x48, 0xB8, 0xB4), page 11-12.
type DS18B20 struct {
	Chip
	rom     onewire.Address
	spad    [9]byte
	fn      byte // current function command
	idx     int  // byte index within it
	written [3]byte
}

// NewDS18B20 returns a probe with the given 48-bit serial (0: derived from
// seed) whose temperature follows sig.
func NewDS18B20(now func() time.Time, seed string, serial uint64, sig Signal) *DS18B20 {
	if serial == 0 {
		h := fnv.New64a()
		h.Write([]byte(seed))
		serial = h.Sum64()
	}
	m := &DS18B20{Chip: newChip(now, seed, map[string]Signal{"temperature": sig})}
	m.rom = ROM(0x28, serial)
	m.powerOn()
	return m
}

// ROM builds a valid 1-Wire ROM code: family, 48-bit serial, CRC8 (byte 7).
func ROM(family byte, serial uint64) onewire.Address {
	var b [8]byte
	b[0] = family
	for i := 1; i < 7; i++ {
		b[i] = byte(serial >> (8 * (i - 1)))
	}
	b[7] = onewire.CalcCRC(b[:7])
	var a onewire.Address
	for i := 7; i >= 0; i-- {
		a = a<<8 | onewire.Address(b[i])
	}
	return a
}

func (m *DS18B20) powerOn() {
	m.spad = [9]byte{0x50, 0x05, 0x4B, 0x46, 0x7F, 0xFF, 0x0C, 0x10, 0}
	m.spad[8] = onewire.CalcCRC(m.spad[:8])
}

// ROM implements OneWireDevice.
func (m *DS18B20) ROM() onewire.Address { return m.rom }

// Present implements OneWireDevice: a vanished probe gives no presence pulse.
func (m *DS18B20) Present() bool { return m.Fault() != FaultNACK }

// Alarm implements OneWireDevice (no alarm thresholds are modelled).
func (m *DS18B20) Alarm() bool { return false }

// Reset implements OneWireDevice.
func (m *DS18B20) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fn, m.idx = 0, 0
}

// Write implements OneWireDevice.
func (m *DS18B20) Write(b byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fn == 0x4E { // write scratchpad: TH, TL, config
		if m.idx < 3 {
			m.written[m.idx] = b
			m.idx++
			if m.idx == 3 {
				m.spad[2], m.spad[3], m.spad[4] = m.written[0], m.written[1], m.written[2]&0x60|0x1F
				m.spad[8] = onewire.CalcCRC(m.spad[:8])
			}
		}
		return
	}
	m.fn, m.idx = b, 0
	switch b {
	case 0x44:
		m.convert()
	case 0xB8: // recall E²: nothing stored beyond the scratchpad
	}
}

func (m *DS18B20) convert() {
	if m.fault == FaultPowerOn {
		m.powerOn() // browned out: the conversion never happens
		return
	}
	bits := int(m.spad[4]>>5&3) + 9
	v := m.value("temperature", 20)
	code := clampInt(v*16, -55*16, 0x7FF0) // 12-bit two's complement, 1/16 °C
	code &^= (1 << uint(12-bits)) - 1      // low bits undefined (zero) below 12 bits
	m.spad[0], m.spad[1] = byte(code), byte(code>>8)
	m.spad[8] = onewire.CalcCRC(m.spad[:8])
}

// Read implements OneWireDevice.
func (m *DS18B20) Read() byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch m.fn {
	case 0xBE:
		if m.idx >= len(m.spad) {
			return 0xFF
		}
		b := m.spad[m.idx]
		if m.fault == FaultBusError && m.idx == 0 {
			b ^= 0x24 // a corrupted byte: the CRC check fails
		}
		m.idx++
		return b
	case 0xB4:
		return 0xFF // externally powered
	case 0x44:
		return 0xFF // conversion done
	}
	return 0xFF
}

var _ OneWireDevice = (*DS18B20)(nil)
